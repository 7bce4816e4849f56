// SPDX-License-Identifier: Apache-2.0
#include "index/zmq_publisher.h"

#include <chrono>

#include "common/error.h"
#include "index/zmq_wire.h"

namespace kvcore::index {

namespace {

// How often the replay thread looks at stopping_: the destructor's join waits at most this long.
constexpr std::chrono::milliseconds kStopPoll{20};

void open(zmq::socket_t& socket, const std::string& endpoint, bool connect, const char* what) {
    try {
        connect ? socket.connect(endpoint) : socket.bind(endpoint);
    } catch (const zmq::error_t& e) {
        fail(KVC_ERR_INVALID_ARGUMENT, std::string("zmq publisher: cannot ") + (connect ? "connect" : "bind") +
                                           " the " + what + " socket to '" + endpoint + "': " + e.what());
    }
}

}  // namespace

std::string last_endpoint(zmq::socket_t& socket) { return socket.get(zmq::sockopt::last_endpoint); }

ZmqPublisher::ZmqPublisher(PublisherOptions options)
    : options_(std::move(options)), pub_(context_, zmq::socket_type::pub) {
    if (options_.buffer_steps == 0 && !options_.replay_endpoint.empty()) {
        fail(KVC_ERR_INVALID_ARGUMENT, "zmq publisher: buffer_steps must be at least 1 with a replay endpoint");
    }
    pub_.set(zmq::sockopt::sndhwm, options_.send_hwm);
    pub_.set(zmq::sockopt::linger, options_.linger_ms);
    open(pub_, options_.endpoint, options_.connect, "PUB");
    endpoint_ = options_.connect ? options_.endpoint : last_endpoint(pub_);
    if (options_.replay_endpoint.empty()) return;

    router_ = zmq::socket_t(context_, zmq::socket_type::router);
    // A full replay must fit in the client's pipe, and a pipe that is full must not drop part of an
    // answer silently: with ROUTER_MANDATORY a send fails instead, and the answer is abandoned whole.
    router_.set(zmq::sockopt::sndhwm, static_cast<int>(std::min<size_t>(options_.buffer_steps + 16, INT32_MAX)));
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::sndtimeo, options_.replay_send_timeout_ms);
    router_.set(zmq::sockopt::linger, 0);
    open(router_, options_.replay_endpoint, false, "replay ROUTER");
    replay_endpoint_ = last_endpoint(router_);
    replay_thread_ = std::thread([this] { serve_replay(); });
}

ZmqPublisher::~ZmqPublisher() {
    stopping_.store(true, std::memory_order_relaxed);
    if (replay_thread_.joinable()) replay_thread_.join();
}

uint64_t ZmqPublisher::publish(std::span<const uint8_t> payload) {
    auto kept = std::make_shared<const std::vector<uint8_t>>(payload.begin(), payload.end());
    std::lock_guard lock(mutex_);
    const uint64_t seq = next_seq_++;
    // Kept before it is sent: whatever a subscriber saw live, a replay can give it again.
    if (options_.buffer_steps > 0) {
        if (kept_.size() == options_.buffer_steps) kept_.pop_front();
        kept_.emplace_back(seq, kept);
    }
    const auto seq_bytes = encode_seq(seq);
    pub_.send(zmq::buffer(options_.topic), zmq::send_flags::sndmore);
    pub_.send(zmq::buffer(seq_bytes), zmq::send_flags::sndmore);
    // PUB never blocks: past the HWM it drops for that subscriber.
    pub_.send(zmq::buffer(payload.data(), payload.size()), zmq::send_flags::none);
    return seq;
}

PublisherCounters ZmqPublisher::counters() const {
    PublisherCounters c;
    {
        std::lock_guard lock(mutex_);
        c.published = next_seq_;
    }
    c.replay_requests = replay_requests_.load(std::memory_order_relaxed);
    c.replayed_batches = replayed_batches_.load(std::memory_order_relaxed);
    c.bad_replay_requests = bad_replay_requests_.load(std::memory_order_relaxed);
    c.replays_abandoned = replays_abandoned_.load(std::memory_order_relaxed);
    return c;
}

void ZmqPublisher::serve_replay() {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    while (!stopping_.load(std::memory_order_relaxed)) {
        if (zmq::poll(&item, 1, kStopPoll) == 0) continue;
        // One request: [client id, "", start_seq]. Every frame is read (a message arrives whole, so this
        // ends) and only the first 3 kept, so the next request starts clean.
        zmq::message_t frames[3];
        size_t count = 0;
        bool more = true;
        while (more) {
            zmq::message_t part;
            if (!router_.recv(part, zmq::recv_flags::dontwait)) break;
            more = part.more();
            if (count < 3) frames[count] = std::move(part);
            ++count;
        }
        const auto start = count == 3 && frames[1].size() == 0 ? decode_seq(frames[2].data(), frames[2].size())
                                                               : std::nullopt;
        if (!start) {
            bad_replay_requests_.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        replay_requests_.fetch_add(1, std::memory_order_relaxed);
        answer(frames[0], *start);
    }
}

void ZmqPublisher::answer(const zmq::message_t& client, uint64_t start_seq) {
    std::vector<std::pair<uint64_t, Payload>> batches;
    {
        // Only pointers are copied under the lock, so publish() waits microseconds, not a whole replay.
        std::lock_guard lock(mutex_);
        for (const auto& [seq, payload] : kept_) {
            if (seq >= start_seq) batches.emplace_back(seq, payload);
        }
    }
    const auto send = [&](std::span<const uint8_t> topic, uint64_t seq, std::span<const uint8_t> payload) {
        const auto seq_bytes = encode_seq(seq);
        try {
            return router_.send(zmq::buffer(client.data(), client.size()), zmq::send_flags::sndmore) &&
                   router_.send(zmq::message_t(), zmq::send_flags::sndmore) &&
                   router_.send(zmq::buffer(topic.data(), topic.size()), zmq::send_flags::sndmore) &&
                   router_.send(zmq::buffer(seq_bytes), zmq::send_flags::sndmore) &&
                   router_.send(zmq::buffer(payload.data(), payload.size()), zmq::send_flags::none);
        } catch (const zmq::error_t&) {
            return false;  // EHOSTUNREACH: the client is gone (ROUTER_MANDATORY)
        }
    };
    const std::span<const uint8_t> topic(reinterpret_cast<const uint8_t*>(options_.topic.data()),
                                         options_.topic.size());
    for (const auto& [seq, payload] : batches) {
        if (stopping_.load(std::memory_order_relaxed) || !send(topic, seq, *payload)) {
            replays_abandoned_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        replayed_batches_.fetch_add(1, std::memory_order_relaxed);
    }
    // The end marker, as current vLLM writes it: an empty topic, seq -1, an empty payload.
    if (!send({}, kEndSeq, {})) replays_abandoned_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace kvcore::index
