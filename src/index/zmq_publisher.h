/* SPDX-License-Identifier: Apache-2.0 */
// Publishes KV event batches as a vLLM engine does, so that a kvcore engine (its pool's drained events)
// talks to any router that speaks vLLM's protocol, and kvcore's own router can be tested end to end.
// Wire format: index/zmq_wire.h.
//
// Threads: publish() may be called from any thread (calls are serialized: the PUB socket and the seq
// counter sit behind one mutex). Replay requests are answered on an internal thread that owns the
// ROUTER socket; it starts in the constructor and is joined by the destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

namespace kvcore::index {

struct PublisherOptions {
    // vLLM's default. With connect = true the PUB connects to a subscriber that binds (the router's bind
    // mode; vLLM connects when its endpoint names a host rather than '*').
    std::string endpoint = "tcp://*:5557";
    bool connect = false;
    // Where the ROUTER answering replay requests binds; empty: no replay (as vLLM without replay_endpoint).
    std::string replay_endpoint;
    // Sent as the first frame of every message; llm-d's form is kv@<pod>@<model> (make_topic).
    std::string topic;
    // Batches kept for replay (vLLM's buffer_steps).
    size_t buffer_steps = 10000;
    // Messages queued per subscriber before the PUB drops (vLLM's hwm).
    int send_hwm = 100000;
    // How long close waits to flush queued messages.
    int linger_ms = 250;
    // A replay to a client that reads nothing is abandoned after this long without progress.
    int replay_send_timeout_ms = 1000;
};

struct PublisherCounters {
    uint64_t published = 0;          // batches sent (= the next seq)
    uint64_t replay_requests = 0;    // well-formed requests answered
    uint64_t replayed_batches = 0;   // batches sent in answers
    uint64_t bad_replay_requests = 0;
    uint64_t replays_abandoned = 0;  // the client vanished or stopped reading
};

class ZmqPublisher {
public:
    // Binds (or connects) both sockets; throws kvcore::Error(KVC_ERR_INVALID_ARGUMENT) when an endpoint
    // cannot be used, naming it and ZeroMQ's reason.
    explicit ZmqPublisher(PublisherOptions options);
    ~ZmqPublisher();
    ZmqPublisher(const ZmqPublisher&) = delete;
    ZmqPublisher& operator=(const ZmqPublisher&) = delete;

    // Sends [topic, seq, payload] and keeps the batch for replay; returns its seq (0, 1, 2, ...). Never
    // blocks on a slow subscriber: past send_hwm the PUB drops for that subscriber, whose gap replay fills.
    uint64_t publish(std::span<const uint8_t> payload);

    // The endpoints actually bound (tcp://127.0.0.1:0 resolved to its port); the replay one empty when off.
    [[nodiscard]] const std::string& endpoint() const noexcept { return endpoint_; }
    [[nodiscard]] const std::string& replay_endpoint() const noexcept { return replay_endpoint_; }
    [[nodiscard]] PublisherCounters counters() const;

private:
    using Payload = std::shared_ptr<const std::vector<uint8_t>>;
    void serve_replay();
    void answer(const zmq::message_t& client, uint64_t start_seq);

    PublisherOptions options_;
    zmq::context_t context_{1};
    zmq::socket_t pub_;
    zmq::socket_t router_;  // used only by replay_thread_ once it runs
    std::string endpoint_, replay_endpoint_;

    mutable std::mutex mutex_;  // pub_, next_seq_, kept_
    uint64_t next_seq_ = 0;
    std::deque<std::pair<uint64_t, Payload>> kept_;  // the last buffer_steps batches, oldest first

    std::atomic<bool> stopping_{false};
    std::atomic<uint64_t> replay_requests_{0}, replayed_batches_{0}, bad_replay_requests_{0},
        replays_abandoned_{0};
    std::thread replay_thread_;
};

// The endpoint a socket is bound to (ZMQ_LAST_ENDPOINT): how a test learns the port of tcp://...:0.
std::string last_endpoint(zmq::socket_t& socket);

}  // namespace kvcore::index
