// SPDX-License-Identifier: Apache-2.0
#include "index/zmq_subscriber.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <optional>
#include <unordered_map>
#include <zmq.hpp>

#include "common/error.h"
#include "index/zmq_publisher.h"
#include "index/zmq_wire.h"

namespace kvcore::index {

namespace {

using Clock = std::chrono::steady_clock;
// How often the thread looks at the stop flag: stop() joins within about this long.
constexpr std::chrono::milliseconds kStopPoll{20};
// Messages taken from one socket before the others get a turn (and the stop flag a look).
constexpr size_t kDrainPerSocket = 256;
// Frames kept of one message: a replay answer has at most 4; more make it malformed anyway.
constexpr size_t kKeptFrames = 4;

using Frames = std::array<zmq::message_t, kKeptFrames>;

// Reads one whole message (ZeroMQ delivers all its frames together, so this ends), keeping the first
// kKeptFrames; returns how many frames it had, 0 when none was waiting.
size_t receive(zmq::socket_t& socket, Frames& frames) {
    size_t count = 0;
    for (bool more = true; more;) {
        zmq::message_t part;
        if (!socket.recv(part, zmq::recv_flags::dontwait)) break;
        more = part.more();
        if (count < kKeptFrames) frames[count] = std::move(part);
        ++count;
    }
    return count;
}

std::string_view view(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct ReplayClient;

struct Held {
    uint64_t seq;
    zmq::message_t payload;
    bool gap_counted;  // the batch whose gap asked for the replay: its gap is counted already
};

struct Stream {
    std::string topic, pod, model;
    ReplayClient* replay = nullptr;  // where gaps are asked to be filled; null: nowhere
    uint64_t expected = 0;           // the next seq to deliver
    std::optional<uint64_t> last_live;
    bool restarted = false;
    bool waiting_replay = false;  // live batches are held until its replay ends
    std::deque<Held> held;
};

struct ReplayClient {
    std::string endpoint;
    std::optional<zmq::socket_t> dealer;  // made at the first request, remade after a failed one
    Stream* active = nullptr;
    std::deque<Stream*> queue;  // streams waiting for this endpoint; each at most once
    Clock::time_point deadline;
    size_t received = 0;
};

struct Source {
    std::optional<zmq::socket_t> sub;
    ReplayClient* replay = nullptr;  // connect mode: the engine's
    bool bound = false;
    std::unordered_map<std::string, std::unique_ptr<Stream>, StringHash, std::equal_to<>> streams;
};

void set_common_options(zmq::socket_t& socket) { socket.set(zmq::sockopt::linger, 0); }

}  // namespace

struct ZmqSubscriber::Impl {
    const SubscriberOptions& options;
    const BatchHandler& handler;
    zmq::context_t context{1};
    std::vector<Source> sources;  // the engines in order, then the bound socket
    std::map<std::string, std::unique_ptr<ReplayClient>> replays;  // by endpoint
    std::string bound_endpoint;
    size_t stream_count = 0;

    struct {
        std::atomic<uint64_t> messages{0}, delivered{0}, malformed{0}, bad_topics{0}, gaps{0},
            replays_requested{0}, replayed_batches{0}, duplicates{0}, replays_failed{0}, lost_batches{0},
            restarts{0}, streams_refused{0}, handler_errors{0};
    } count;

    Impl(const SubscriberOptions& o, const BatchHandler& h) : options(o), handler(h) {}

    static void add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
        // One writer (the subscriber's thread): a load and a store, no locked instruction.
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    ReplayClient* replay_client(const std::string& endpoint) {
        if (endpoint.empty()) return nullptr;
        auto& client = replays[endpoint];
        if (!client) {
            client = std::make_unique<ReplayClient>();
            client->endpoint = endpoint;
        }
        return client.get();
    }

    zmq::socket_t open_sub(const std::string& endpoint, bool bind) {
        zmq::socket_t sub(context, zmq::socket_type::sub);
        set_common_options(sub);
        sub.set(zmq::sockopt::rcvhwm, options.receive_hwm);
        sub.set(zmq::sockopt::reconnect_ivl, options.reconnect_ivl_ms);
        sub.set(zmq::sockopt::reconnect_ivl_max, options.reconnect_ivl_max_ms);
        sub.set(zmq::sockopt::maxmsgsize, options.max_message_bytes);
        sub.set(zmq::sockopt::subscribe, kTopicPrefix);
        try {
            bind ? sub.bind(endpoint) : sub.connect(endpoint);
        } catch (const zmq::error_t& e) {
            fail(KVC_ERR_INVALID_ARGUMENT, std::string("zmq subscriber: cannot ") + (bind ? "bind" : "connect") +
                                               " to '" + endpoint + "': " + e.what());
        }
        return sub;
    }

    void open() {
        if (sources.empty()) {
            for (const EngineEndpoint& e : options.engines) sources.push_back(Source{.replay = replay_client(e.replay_endpoint)});
            if (!options.bind_endpoint.empty()) sources.push_back(Source{.bound = true});
        }
        size_t i = 0;
        for (; i < options.engines.size(); ++i) sources[i].sub = open_sub(options.engines[i].endpoint, false);
        if (!options.bind_endpoint.empty()) {
            sources[i].sub = open_sub(options.bind_endpoint, true);
            bound_endpoint = last_endpoint(*sources[i].sub);
        }
    }

    // After the thread is joined: what was in flight is dropped without counting anything lost, so the
    // next start sees the same gap again and asks for it again.
    void close() {
        for (auto& [endpoint, client] : replays) {
            client->active = nullptr;
            client->queue.clear();
            client->dealer.reset();
        }
        for (Source& source : sources) {
            source.sub.reset();
            for (auto& [topic, stream] : source.streams) {
                stream->held.clear();
                stream->waiting_replay = false;
            }
        }
    }

    Stream* stream_for(Source& source, std::string_view topic) {
        if (auto it = source.streams.find(topic); it != source.streams.end()) return it->second.get();
        const std::optional<Topic> parsed = parse_topic(topic);
        if (!parsed) {
            add(count.bad_topics);
            return nullptr;
        }
        if (stream_count >= options.max_streams) {
            add(count.streams_refused);
            return nullptr;
        }
        auto stream = std::make_unique<Stream>();
        stream->topic = topic;
        stream->pod = parsed->pod;
        stream->model = parsed->model;
        if (source.bound) {
            const auto it = options.replay_by_pod.find(parsed->pod);
            stream->replay = it == options.replay_by_pod.end() ? nullptr : replay_client(it->second);
        } else {
            stream->replay = source.replay;
        }
        ++stream_count;
        Stream* raw = stream.get();
        source.streams.emplace(std::string(topic), std::move(stream));
        return raw;
    }

    void deliver(Stream& s, uint64_t seq, const zmq::message_t& payload, bool replayed) {
        const ReceivedBatch batch{.pod = s.pod,
                                  .model = s.model,
                                  .seq = seq,
                                  .payload = {static_cast<const uint8_t*>(payload.data()), payload.size()},
                                  .replayed = replayed,
                                  .engine_restarted = s.restarted};
        s.restarted = false;
        s.expected = seq + 1;
        add(count.delivered);
        if (replayed) add(count.replayed_batches);
        try {
            handler(batch);
        } catch (...) {
            add(count.handler_errors);  // the stream goes on: one bad batch must not stop the router
        }
    }

    // A live batch in arrival order. allow_replay is false for batches held during a replay, so a gap
    // that replay could not fill is not asked for again and again.
    void process(Stream& s, uint64_t seq, zmq::message_t&& payload, bool allow_replay, bool gap_counted) {
        if (s.last_live && seq <= *s.last_live) {
            add(count.restarts);
            s.expected = 0;
            s.last_live.reset();
            s.restarted = true;
        }
        if (seq > s.expected && allow_replay && s.replay != nullptr) {
            add(count.gaps);
            s.waiting_replay = true;
            s.held.push_back(Held{seq, std::move(payload), true});
            request(*s.replay, s);
            return;
        }
        s.last_live = seq;
        if (seq < s.expected) {
            add(count.duplicates);  // a replay delivered it already
            return;
        }
        if (seq > s.expected) {
            if (!gap_counted) add(count.gaps);
            add(count.lost_batches, seq - s.expected);
        }
        deliver(s, seq, payload, false);
    }

    void on_live(Source& source, Frames& frames, size_t n) {
        const std::optional<uint64_t> seq = n == 3 ? decode_seq(frames[1].data(), frames[1].size()) : std::nullopt;
        if (!seq) {
            add(count.malformed);
            return;
        }
        Stream* s = stream_for(source, view(frames[0]));
        if (s == nullptr) return;
        add(count.messages);
        if (!s->waiting_replay) {
            process(*s, *seq, std::move(frames[2]), true, false);
            return;
        }
        if (s->held.size() >= options.max_pending_batches) {
            abandon(*s);
            process(*s, *seq, std::move(frames[2]), false, false);
            return;
        }
        s->held.push_back(Held{*seq, std::move(frames[2]), false});
    }

    void request(ReplayClient& c, Stream& s) {
        if (c.active != nullptr) {
            c.queue.push_back(&s);
            return;
        }
        begin(c, s);
    }

    void begin(ReplayClient& c, Stream& s) {
        add(count.replays_requested);
        c.active = &s;
        c.received = 0;
        c.deadline = Clock::now() + std::chrono::milliseconds(options.replay_timeout_ms);
        try {
            if (!c.dealer) {
                c.dealer.emplace(context, zmq::socket_type::dealer);
                set_common_options(*c.dealer);
                c.dealer->set(zmq::sockopt::reconnect_ivl, options.reconnect_ivl_ms);
                c.dealer->set(zmq::sockopt::reconnect_ivl_max, options.reconnect_ivl_max_ms);
                c.dealer->set(zmq::sockopt::maxmsgsize, options.max_message_bytes);
                // The whole answer may queue here while the handler works: it is bounded by the engine's
                // buffer, and max_replay_batches ends a longer one.
                c.dealer->set(zmq::sockopt::rcvhwm,
                              static_cast<int>(std::min<size_t>(options.max_replay_batches + 16, INT32_MAX)));
                c.dealer->connect(c.endpoint);
            }
            const auto start = encode_seq(s.expected);
            // Queued until connected (the DEALER holds it); the deadline covers an engine that never answers.
            if (c.dealer->send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
                c.dealer->send(zmq::buffer(start), zmq::send_flags::dontwait)) {
                return;
            }
        } catch (const zmq::error_t&) {
        }
        finish(c, true);
    }

    // The replay ended (its end marker) or failed; the stream's held batches go out, then the next
    // stream waiting on this endpoint starts its replay.
    void finish(ReplayClient& c, bool failed) {
        Stream* s = c.active;
        c.active = nullptr;
        if (failed) {
            add(count.replays_failed);
            c.dealer.reset();  // a late answer to this request must not be read as the next one's
        }
        if (s != nullptr) release(*s);
        while (c.active == nullptr && !c.queue.empty()) {
            Stream* next = c.queue.front();
            c.queue.pop_front();
            begin(c, *next);
        }
    }

    void release(Stream& s) {
        s.waiting_replay = false;
        std::deque<Held> held = std::move(s.held);
        s.held.clear();
        for (Held& h : held) process(s, h.seq, std::move(h.payload), false, h.gap_counted);
    }

    // A stream gives up its replay (too many held batches): in flight, it fails; queued, it leaves.
    void abandon(Stream& s) {
        ReplayClient& c = *s.replay;
        if (c.active == &s) {
            finish(c, true);
            return;
        }
        c.queue.erase(std::remove(c.queue.begin(), c.queue.end(), &s), c.queue.end());
        add(count.replays_failed);
        release(s);
    }

    void on_replay(ReplayClient& c, Frames& frames, size_t n) {
        // ["", topic, seq, payload] (current vLLM) or ["", seq, payload] (older vLLM, SGLang).
        const bool with_topic = n == 4;
        std::optional<uint64_t> seq;
        if ((n == 3 || n == 4) && frames[0].size() == 0) {
            const zmq::message_t& seq_frame = frames[with_topic ? 2 : 1];
            seq = decode_seq(seq_frame.data(), seq_frame.size());
        }
        if (!seq || c.active == nullptr) {
            add(count.malformed);
            return;
        }
        if (*seq == kEndSeq) {
            finish(c, false);
            return;
        }
        Stream& s = *c.active;
        if (with_topic && frames[1].size() != 0 && view(frames[1]) != s.topic) {
            add(count.malformed);  // another stream's batch: not this replay's to deliver
            return;
        }
        if (++c.received > options.max_replay_batches) {
            finish(c, true);
            return;
        }
        c.deadline = Clock::now() + std::chrono::milliseconds(options.replay_timeout_ms);
        if (*seq < s.expected) {
            add(count.duplicates);
            return;
        }
        // Batches older than the engine still keeps are gone for good.
        if (*seq > s.expected) add(count.lost_batches, *seq - s.expected);
        deliver(s, *seq, frames[with_topic ? 3 : 2], true);
    }

    void run(const std::atomic<bool>& stopping) {
        std::vector<zmq::pollitem_t> items;
        std::vector<ReplayClient*> clients;  // items past the sources
        Frames frames;
        while (!stopping.load(std::memory_order_relaxed)) {
            items.clear();
            clients.clear();
            auto timeout = kStopPoll;
            const Clock::time_point now = Clock::now();
            for (Source& source : sources) items.push_back({source.sub->handle(), 0, ZMQ_POLLIN, 0});
            for (auto& [endpoint, client] : replays) {
                if (!client->dealer) continue;
                items.push_back({client->dealer->handle(), 0, ZMQ_POLLIN, 0});
                clients.push_back(client.get());
                if (client->active != nullptr) {
                    const auto left = std::chrono::ceil<std::chrono::milliseconds>(client->deadline - now);
                    timeout = std::clamp(left, std::chrono::milliseconds(0), timeout);
                }
            }
            zmq::poll(items.data(), items.size(), timeout);
            for (size_t i = 0; i < sources.size(); ++i) {
                if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
                for (size_t k = 0; k < kDrainPerSocket; ++k) {
                    const size_t n = receive(*sources[i].sub, frames);
                    if (n == 0) break;
                    on_live(sources[i], frames, n);
                }
            }
            for (size_t j = 0; j < clients.size(); ++j) {
                ReplayClient& c = *clients[j];
                if ((items[sources.size() + j].revents & ZMQ_POLLIN) == 0) continue;
                for (size_t k = 0; k < kDrainPerSocket && c.dealer; ++k) {
                    const size_t n = receive(*c.dealer, frames);
                    if (n == 0) break;
                    on_replay(c, frames, n);
                }
            }
            const Clock::time_point after = Clock::now();
            for (auto& [endpoint, client] : replays) {
                if (client->active != nullptr && after >= client->deadline) finish(*client, true);
            }
        }
    }
};

ZmqSubscriber::ZmqSubscriber(SubscriberOptions options, BatchHandler handler)
    : options_(std::move(options)), handler_(std::move(handler)), impl_(std::make_unique<Impl>(options_, handler_)) {}

ZmqSubscriber::~ZmqSubscriber() { stop(); }

void ZmqSubscriber::start() {
    if (running()) fail(KVC_ERR_INVALID_STATE, "zmq subscriber: already running");
    if (options_.engines.empty() && options_.bind_endpoint.empty()) {
        fail(KVC_ERR_INVALID_STATE, "zmq subscriber: no engine endpoint and no bind endpoint");
    }
    if (!handler_) fail(KVC_ERR_INVALID_ARGUMENT, "zmq subscriber: no handler");
    try {
        impl_->open();
    } catch (...) {
        impl_->close();
        throw;
    }
    stopping_.store(false, std::memory_order_relaxed);
    // The sockets move to the new thread; starting it is the full barrier ZeroMQ asks for.
    thread_ = std::thread([this] { impl_->run(stopping_); });
}

void ZmqSubscriber::stop() {
    if (!thread_.joinable()) return;
    stopping_.store(true, std::memory_order_relaxed);
    thread_.join();
    impl_->close();
}

std::string ZmqSubscriber::bound_endpoint() const { return impl_->bound_endpoint; }

SubscriberCounters ZmqSubscriber::counters() const {
    const auto& c = impl_->count;
    const auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    return {.messages = get(c.messages),
            .delivered = get(c.delivered),
            .malformed = get(c.malformed),
            .bad_topics = get(c.bad_topics),
            .gaps = get(c.gaps),
            .replays_requested = get(c.replays_requested),
            .replayed_batches = get(c.replayed_batches),
            .duplicates = get(c.duplicates),
            .replays_failed = get(c.replays_failed),
            .lost_batches = get(c.lost_batches),
            .restarts = get(c.restarts),
            .streams_refused = get(c.streams_refused),
            .handler_errors = get(c.handler_errors)};
}

}  // namespace kvcore::index
