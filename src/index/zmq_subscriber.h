/* SPDX-License-Identifier: Apache-2.0 */
// Receives KV event batches from vLLM engines (or ZmqPublisher) as llm-d's router does, and hands each
// batch's payload to a handler in seq order per stream, filling gaps by replay. Decoding the payload is
// the handler's job. Wire format: index/zmq_wire.h.
//
// Modes (both may be used at once):
//   connect: one SUB socket per engine endpoint; each engine may name its replay ROUTER.
//   bind:    one SUB socket bound at bind_endpoint, engines' PUBs connect to it; replay endpoints can be
//            given per pod (replay_by_pod), since a bound socket does not know who is on the other end.
// A stream is (source socket, topic): one engine's publisher. Its seq must go 0, 1, 2, ...:
//   seq > expected             gap: counted; replay from `expected` is asked of the stream's replay
//                              endpoint, live batches are held meanwhile, then delivered after it, each
//                              batch once. Without a replay endpoint, or when replay cannot fill it, the
//                              missing batches are counted lost and delivery goes on.
//   seq <= last live seq       the engine restarted (vLLM's seq starts again at 0): counted; tracking
//                              starts over, and the next delivery says engine_restarted.
// A subscriber's first batch from a stream with seq > 0 is a gap from 0: replay gives what the engine
// still keeps. The protocol has no epoch, so a restart whose first batch seen is past the old seq reads
// as a gap (replay then serves the new run's batches, which is still correct data).
//
// Threads: start() and stop() from one owning thread; counters() from any thread. The handler runs on
// the subscriber's own thread, one call at a time; an exception it throws is counted and dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace kvcore::index {

struct EngineEndpoint {
    std::string endpoint;         // the engine's PUB, e.g. tcp://10.0.0.5:5557
    std::string replay_endpoint;  // its replay ROUTER; empty: no replay
};

struct SubscriberOptions {
    std::vector<EngineEndpoint> engines;  // connect mode
    std::string bind_endpoint;            // bind mode; empty: off
    std::map<std::string, std::string> replay_by_pod;  // bind mode: pod -> replay endpoint
    int reconnect_ivl_ms = 100;       // ZeroMQ reconnects on its own, backing off to the max
    int reconnect_ivl_max_ms = 5000;
    int receive_hwm = 100000;         // messages queued per socket before ZeroMQ drops (then: a gap)
    int64_t max_message_bytes = 64 << 20;  // larger messages are refused by ZeroMQ (peer disconnected)
    // A replay that sends nothing for this long is abandoned (the batches it had not brought are lost).
    int replay_timeout_ms = 2000;
    // Live batches held per stream while its replay runs; past it the replay is abandoned.
    size_t max_pending_batches = 10000;
    // Batches one replay answer may bring (vLLM keeps 10,000); past it the replay is abandoned.
    size_t max_replay_batches = 100000;
    size_t max_streams = 4096;  // topics tracked; batches of further topics are refused and counted
};

struct SubscriberCounters {
    uint64_t messages = 0;          // well-formed live messages received
    uint64_t delivered = 0;         // handler calls (live and replayed)
    uint64_t malformed = 0;         // not 3 frames, a seq frame that is not 8 bytes, bad replay frames
    uint64_t bad_topics = 0;        // 3 frames but not kv@<pod>@<model>
    uint64_t gaps = 0;
    uint64_t replays_requested = 0;
    uint64_t replayed_batches = 0;  // delivered from replay answers
    uint64_t duplicates = 0;        // batches already delivered, skipped
    uint64_t replays_failed = 0;    // timed out, or abandoned at a bound
    uint64_t lost_batches = 0;      // seqs never delivered (replay unavailable or incomplete)
    uint64_t restarts = 0;
    uint64_t streams_refused = 0;
    uint64_t handler_errors = 0;
};

// One batch as the handler sees it; the views live for the call only.
struct ReceivedBatch {
    std::string_view pod, model;
    uint64_t seq = 0;
    std::span<const uint8_t> payload;  // msgpack EventBatch, undecoded
    bool replayed = false;             // came from a replay answer rather than live
    bool engine_restarted = false;     // the first delivery of this stream after a restart
};

using BatchHandler = std::function<void(const ReceivedBatch&)>;

class ZmqSubscriber {
public:
    // Nothing is opened until start().
    ZmqSubscriber(SubscriberOptions options, BatchHandler handler);
    ~ZmqSubscriber();  // stop()
    ZmqSubscriber(const ZmqSubscriber&) = delete;
    ZmqSubscriber& operator=(const ZmqSubscriber&) = delete;

    // Opens the sockets (binding before it returns, so bound_endpoint() is known) and starts the thread.
    // Throws kvcore::Error(KVC_ERR_INVALID_ARGUMENT) naming an endpoint ZeroMQ refuses; INVALID_STATE
    // when running or with no endpoint at all.
    void start();
    // Joins the thread within about 20 ms plus the handler call in progress; closes the sockets.
    // Tracking is kept: a later start() continues each stream where it stopped.
    void stop();

    [[nodiscard]] bool running() const noexcept { return thread_.joinable(); }
    // bind_endpoint as bound (tcp://127.0.0.1:0 resolved to its port); empty in connect mode.
    [[nodiscard]] std::string bound_endpoint() const;
    [[nodiscard]] SubscriberCounters counters() const;

    struct Impl;  // the sockets and streams; touched by the subscriber's thread only while it runs

private:
    void run();

    SubscriberOptions options_;
    BatchHandler handler_;
    std::unique_ptr<Impl> impl_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace kvcore::index
