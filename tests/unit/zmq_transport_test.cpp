// SPDX-License-Identifier: Apache-2.0
// The ZeroMQ transport over real sockets on 127.0.0.1 (ports chosen by the kernel). Every wait has a
// deadline; messages a PUB drops before a subscription reaches it are what replay is for, so tests that
// need a quiet start wait for a probe to arrive first.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/error.h"
#include "index/index.h"
#include "index/index_feed.h"
#include "index/ingest_pool.h"
#include "index/zmq_publisher.h"
#include "index/zmq_subscriber.h"
#include "index/zmq_wire.h"
#include "pool/pool.h"
#include "pool_event_batches.h"

using namespace kvcore::index;
using namespace std::chrono_literals;

namespace {

constexpr auto kDeadline = 15s;  // generous: the tsan build is ~10x slower

struct Got {
    std::string pod, model;
    uint64_t seq;
    std::vector<uint8_t> payload;
    bool replayed, restarted;
};

class Collector {
public:
    BatchHandler handler() {
        return [this](const ReceivedBatch& b) {
            std::lock_guard lock(mutex_);
            got_.push_back(Got{std::string(b.pod), std::string(b.model), b.seq,
                               std::vector<uint8_t>(b.payload.begin(), b.payload.end()), b.replayed,
                               b.engine_restarted});
        };
    }
    std::vector<Got> all() const {
        std::lock_guard lock(mutex_);
        return got_;
    }
    std::vector<Got> of(const std::string& pod) const {
        std::vector<Got> out;
        for (Got& g : all()) {
            if (g.pod == pod) out.push_back(std::move(g));
        }
        return out;
    }
    size_t count(const std::string& pod) const { return of(pod).size(); }

private:
    mutable std::mutex mutex_;
    std::vector<Got> got_;
};

template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds timeout = kDeadline) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

void send_frames(zmq::socket_t& socket, const std::vector<std::vector<uint8_t>>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
        socket.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

std::vector<uint8_t> seq_frame(uint64_t seq) {
    const auto b = encode_seq(seq);
    return {b.begin(), b.end()};
}

// A raw engine socket bound to a kernel-chosen port: an XPUB, which is a PUB on the wire but tells when
// a subscription reaches it, so a test can wait for that instead of losing its first messages.
struct RawPub {
    zmq::context_t context{1};
    zmq::socket_t pub{context, zmq::socket_type::xpub};
    std::string endpoint;
    RawPub() {
        pub.set(zmq::sockopt::linger, 0);
        pub.bind("tcp://127.0.0.1:0");
        endpoint = last_endpoint(pub);
    }
    void send(const std::string& topic, uint64_t seq, const std::vector<uint8_t>& payload) {
        send_frames(pub, {bytes(topic), seq_frame(seq), payload});
    }
    // True once the subscriber's "kv@" subscription has arrived.
    bool wait_subscribed() {
        zmq::pollitem_t item{pub.handle(), 0, ZMQ_POLLIN, 0};
        const auto deadline = std::chrono::steady_clock::now() + kDeadline;
        while (std::chrono::steady_clock::now() < deadline) {
            if (zmq::poll(&item, 1, 50ms) == 0) continue;
            zmq::message_t m;
            if (pub.recv(m, zmq::recv_flags::dontwait) && m.size() >= 1 && m.data<uint8_t>()[0] == 1) return true;
        }
        return false;
    }
};

PublisherOptions loopback_publisher(const std::string& pod, const std::string& model = "meta/llama-3") {
    return {.endpoint = "tcp://127.0.0.1:0", .replay_endpoint = "tcp://127.0.0.1:0", .topic = make_topic(pod, model)};
}

SubscriberOptions fast_reconnect(SubscriberOptions o) {
    o.reconnect_ivl_ms = 10;
    o.reconnect_ivl_max_ms = 100;
    return o;
}

// Seqs delivered for one pod are first, first+1, ... with no repeat.
void expect_contiguous(const std::vector<Got>& got, uint64_t first) {
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].seq, first + i) << "delivery " << i;
}

// Publishes the payloads in order. Until the pod's first batch arrives it waits a little after each, so
// that a subscription still on its way misses a few batches (replay brings them back) and not all of
// them: a subscriber learns of a gap only from a later live batch.
void publish_all(ZmqPublisher& publisher, std::span<const std::vector<uint8_t>> payloads, const Collector& got,
                 const std::string& pod, size_t already = 0) {
    for (const auto& payload : payloads) {
        publisher.publish(payload);
        if (got.count(pod) == already) eventually([&] { return got.count(pod) > already; }, 100ms);
    }
}

// A free TCP port on 127.0.0.1, for a bound socket whose peers must be set up before it exists.
std::string free_endpoint() {
    zmq::context_t context{1};
    zmq::socket_t probe(context, zmq::socket_type::rep);
    probe.set(zmq::sockopt::linger, 0);
    probe.bind("tcp://127.0.0.1:0");
    return last_endpoint(probe);
}

}  // namespace

TEST(ZmqWire, TopicsAndSeqs) {
    const auto t = parse_topic("kv@pod-1@meta-llama/Llama-3-8B");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->pod, "pod-1");
    EXPECT_EQ(t->model, "meta-llama/Llama-3-8B");
    const auto at = parse_topic("kv@10.0.0.5:8000@org/model@v2");  // '@' inside the model is kept
    ASSERT_TRUE(at);
    EXPECT_EQ(at->pod, "10.0.0.5:8000");
    EXPECT_EQ(at->model, "org/model@v2");
    for (const char* bad : {"", "kv@", "kv@pod", "kv@pod@", "kv@@model", "xv@pod@model", "KV@pod@model"}) {
        EXPECT_FALSE(parse_topic(bad)) << bad;
    }
    EXPECT_EQ(make_topic("p", "m"), "kv@p@m");
    const auto b = encode_seq(0x0102030405060708ull);
    EXPECT_EQ(b[0], 1);
    EXPECT_EQ(b[7], 8);
    EXPECT_EQ(decode_seq(b.data(), 8), 0x0102030405060708ull);
    EXPECT_FALSE(decode_seq(b.data(), 7));
    const uint8_t nine[9] = {};
    EXPECT_FALSE(decode_seq(nine, 9));
    const auto end = encode_seq(kEndSeq);
    for (uint8_t byte : end) EXPECT_EQ(byte, 0xff);
}

// What a vLLM engine does, checked from the outside with raw sockets: [topic, 8-byte BE seq, payload]
// from seq 0, and a replay answered as ["", topic, seq, payload] per kept batch, then ["", "", -1, ""].
TEST(ZmqPublisher, FramesAndReplayAnswerAreVllms) {
    ZmqPublisher publisher(loopback_publisher("pod-a"));
    zmq::context_t context{1};
    zmq::socket_t sub(context, zmq::socket_type::sub);
    sub.set(zmq::sockopt::subscribe, "");
    sub.set(zmq::sockopt::rcvtimeo, 100);
    sub.connect(publisher.endpoint());
    std::vector<zmq::message_t> frames;
    uint64_t sent = 0;
    ASSERT_TRUE(eventually([&] {  // until the subscription reaches the PUB
        publisher.publish(bytes("batch " + std::to_string(sent++)));
        frames.clear();
        return zmq::recv_multipart(sub, std::back_inserter(frames)).has_value();
    }));
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].to_string(), "kv@pod-a@meta/llama-3");
    ASSERT_EQ(frames[1].size(), 8u);
    const uint64_t seq = *decode_seq(frames[1].data(), 8);
    EXPECT_EQ(frames[2].to_string(), "batch " + std::to_string(seq));

    zmq::socket_t dealer(context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::rcvtimeo, 5000);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(publisher.replay_endpoint());
    const auto start = seq_frame(1);
    send_frames(dealer, {{}, start});
    for (uint64_t s = 1; s < sent; ++s) {
        frames.clear();
        ASSERT_TRUE(zmq::recv_multipart(dealer, std::back_inserter(frames)));
        ASSERT_EQ(frames.size(), 4u);
        EXPECT_EQ(frames[0].size(), 0u);
        EXPECT_EQ(frames[1].to_string(), "kv@pod-a@meta/llama-3");
        EXPECT_EQ(decode_seq(frames[2].data(), frames[2].size()), s);
        EXPECT_EQ(frames[3].to_string(), "batch " + std::to_string(s));
    }
    frames.clear();
    ASSERT_TRUE(zmq::recv_multipart(dealer, std::back_inserter(frames)));
    ASSERT_EQ(frames.size(), 4u);
    EXPECT_EQ(frames[1].size(), 0u);
    EXPECT_EQ(decode_seq(frames[2].data(), frames[2].size()), kEndSeq);
    EXPECT_EQ(frames[3].size(), 0u);
    // A request that is not ["", 8-byte seq] is ignored and counted.
    send_frames(dealer, {{}, bytes("short")});
    EXPECT_TRUE(eventually([&] { return publisher.counters().bad_replay_requests == 1; }));
    EXPECT_EQ(publisher.counters().replay_requests, 1u);
    EXPECT_EQ(publisher.counters().replayed_batches, sent - 1);
}

// The buffer keeps the last buffer_steps batches; a replay from before them starts at the oldest kept,
// and the subscriber counts what it can no longer get as lost.
TEST(ZmqTransport, PoolBatchesArriveInOrderEndToEnd) {
    const auto batches = kvcore::testing::pool_event_batches(60);
    ASSERT_GT(batches.blocks, 60u * 4);
    ZmqPublisher publisher(loopback_publisher("engine-0"));
    Collector got;
    ZmqSubscriber subscriber(
        fast_reconnect({.engines = {{publisher.endpoint(), publisher.replay_endpoint()}}}), got.handler());
    subscriber.start();
    publish_all(publisher, batches.payloads, got, "engine-0");
    EXPECT_EQ(publisher.counters().published, batches.payloads.size());
    ASSERT_TRUE(eventually([&] { return got.count("engine-0") >= batches.payloads.size(); }));
    subscriber.stop();
    const std::vector<Got> all = got.of("engine-0");
    ASSERT_EQ(all.size(), batches.payloads.size());
    expect_contiguous(all, 0);
    for (size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(all[i].payload, batches.payloads[i]);
        EXPECT_EQ(all[i].model, "meta/llama-3");
    }
    const SubscriberCounters c = subscriber.counters();
    EXPECT_EQ(c.delivered, batches.payloads.size());
    EXPECT_EQ(c.lost_batches, 0u);
    EXPECT_EQ(c.malformed, 0u);
    EXPECT_EQ(c.restarts, 0u);
    // Whatever the subscription missed at the start came by replay.
    EXPECT_EQ(c.messages + c.replayed_batches - c.duplicates, batches.payloads.size());
}

TEST(ZmqSubscriber, OnlyThreeFrameMessagesWithAGoodTopicAreDelivered) {
    RawPub engine;
    Collector got;
    ZmqSubscriber subscriber({.engines = {{engine.endpoint, ""}}}, got.handler());
    subscriber.start();
    ASSERT_TRUE(engine.wait_subscribed());
    send_frames(engine.pub, {bytes("kv@pod@m"), seq_frame(0)});                               // 2 frames
    send_frames(engine.pub, {bytes("kv@pod@m"), seq_frame(0), bytes("x"), bytes("y")});        // 4 frames
    send_frames(engine.pub, {bytes("kv@pod@m"), bytes("1234567"), bytes("x")});                // 7-byte seq
    send_frames(engine.pub, {bytes("kv@pod-without-model"), seq_frame(0), bytes("x")});        // bad topic
    send_frames(engine.pub, {bytes("other"), seq_frame(0), bytes("x")});                       // filtered out
    engine.send("kv@probe@m", 0, bytes("last"));  // ZeroMQ keeps order: once it is in, so are the others
    ASSERT_TRUE(eventually([&] { return got.count("probe") == 1; }));
    const SubscriberCounters c = subscriber.counters();
    EXPECT_EQ(c.malformed, 3u);
    EXPECT_EQ(c.bad_topics, 1u);
    EXPECT_EQ(c.messages, 1u);
    EXPECT_EQ(got.count("pod"), 0u);
    for (const Got& g : got.all()) EXPECT_EQ(g.pod, "probe");
}

// Live batches come from a raw PUB that skips seqs 3..6; the engine's replay ROUTER (a real publisher
// holding the same batches) fills them in; each seq is delivered once, in order.
TEST(ZmqSubscriber, AGapIsFilledByReplayInOrder) {
    const auto batches = kvcore::testing::pool_event_batches(10);
    ZmqPublisher keeper(loopback_publisher("pod-g"));
    for (const auto& p : batches.payloads) keeper.publish(p);
    RawPub live;
    Collector got;
    ZmqSubscriber subscriber({.engines = {{live.endpoint, keeper.replay_endpoint()}}}, got.handler());
    subscriber.start();
    ASSERT_TRUE(live.wait_subscribed());
    const std::string topic = make_topic("pod-g", "meta/llama-3");
    for (uint64_t s : {0, 1, 2, 7}) live.send(topic, s, batches.payloads[s]);
    ASSERT_TRUE(eventually([&] { return got.count("pod-g") >= 10; }));
    live.send(topic, 8, batches.payloads[8]);  // already replayed: skipped
    live.send(topic, 10, bytes("next"));
    ASSERT_TRUE(eventually([&] { return got.count("pod-g") >= 11; }));
    const std::vector<Got> all = got.of("pod-g");
    ASSERT_EQ(all.size(), 11u);
    expect_contiguous(all, 0);
    for (size_t i = 0; i < 10; ++i) {
        EXPECT_EQ(all[i].payload, batches.payloads[i]);
        EXPECT_EQ(all[i].replayed, i >= 3) << i;
    }
    EXPECT_EQ(all[10].payload, bytes("next"));
    const SubscriberCounters c = subscriber.counters();
    EXPECT_EQ(c.gaps, 1u);
    EXPECT_EQ(c.replays_requested, 1u);
    EXPECT_EQ(c.replayed_batches, 7u);  // 3..9
    EXPECT_EQ(c.duplicates, 2u);        // the held 7 and the live 8
    EXPECT_EQ(c.lost_batches, 0u);
    EXPECT_EQ(c.replays_failed, 0u);
}

// A replay endpoint that never answers: the replay is abandoned at its timeout, the held batch goes
// out and the missing ones are counted lost.
TEST(ZmqSubscriber, AReplayThatNeverAnswersTimesOut) {
    zmq::context_t context{1};
    zmq::socket_t mute(context, zmq::socket_type::router);
    mute.set(zmq::sockopt::linger, 0);
    mute.bind("tcp://127.0.0.1:0");
    RawPub live;
    Collector got;
    SubscriberOptions options{.engines = {{live.endpoint, last_endpoint(mute)}}};
    options.replay_timeout_ms = 100;
    ZmqSubscriber subscriber(options, got.handler());
    subscriber.start();
    ASSERT_TRUE(live.wait_subscribed());
    const std::string topic = make_topic("pod-m", "m");
    live.send(topic, 0, bytes("0"));
    live.send(topic, 4, bytes("4"));
    ASSERT_TRUE(eventually([&] { return got.count("pod-m") >= 2; }));
    const std::vector<Got> all = got.of("pod-m");
    EXPECT_EQ(all[0].seq, 0u);
    EXPECT_EQ(all[1].seq, 4u);
    const SubscriberCounters c = subscriber.counters();
    EXPECT_EQ(c.replays_failed, 1u);
    EXPECT_EQ(c.lost_batches, 3u);
    EXPECT_EQ(c.gaps, 1u);
}

// The engine restarts on the same endpoints: ZeroMQ reconnects the subscriber, the seq goes back to 0,
// tracking starts over and the first delivery says so.
TEST(ZmqTransport, EngineRestartIsDetectedAfterReconnect) {
    const auto batches = kvcore::testing::pool_event_batches(40);
    Collector got;
    std::string endpoint, replay;
    auto first = std::make_unique<ZmqPublisher>(loopback_publisher("pod-r"));
    endpoint = first->endpoint();
    replay = first->replay_endpoint();
    ZmqSubscriber subscriber(fast_reconnect({.engines = {{endpoint, replay}}}), got.handler());
    subscriber.start();
    publish_all(*first, std::span(batches.payloads).first(30), got, "pod-r");
    ASSERT_TRUE(eventually([&] { return got.count("pod-r") >= 30; }));
    first.reset();

    PublisherOptions again = loopback_publisher("pod-r");
    again.endpoint = endpoint;
    again.replay_endpoint = replay;
    ZmqPublisher second(again);
    const size_t sent = 25;
    publish_all(second, std::span(batches.payloads).first(sent), got, "pod-r", 30);
    const bool caught_up = eventually([&] { return got.count("pod-r") >= 30 + sent; });
    const SubscriberCounters c = subscriber.counters();
    ASSERT_TRUE(caught_up) << "delivered " << got.count("pod-r") << " of " << 30 + sent << ", restarts " << c.restarts
                           << ", gaps " << c.gaps << ", replays " << c.replays_requested << " failed " << c.replays_failed
                           << ", duplicates " << c.duplicates << ", lost " << c.lost_batches << ", messages " << c.messages;
    const std::vector<Got> all = got.of("pod-r");
    ASSERT_EQ(all.size(), 30 + sent);
    expect_contiguous(std::vector<Got>(all.begin(), all.begin() + 30), 0);
    const std::vector<Got> after(all.begin() + 30, all.end());
    expect_contiguous(after, 0);
    EXPECT_TRUE(after[0].restarted);
    for (size_t i = 1; i < after.size(); ++i) EXPECT_FALSE(after[i].restarted);
    EXPECT_EQ(subscriber.counters().restarts, 1u);
    EXPECT_EQ(subscriber.counters().lost_batches, 0u);
}

// Bind mode: the router binds, two engines connect their PUBs to it; replay endpoints are known by pod.
// The engines connect before the router binds (ZeroMQ retries), as when the router restarts.
TEST(ZmqTransport, BindModeWithTwoEngines) {
    const auto batches = kvcore::testing::pool_event_batches(30);
    const std::string router = free_endpoint();
    std::vector<std::unique_ptr<ZmqPublisher>> engines;
    SubscriberOptions options = fast_reconnect({.bind_endpoint = router});
    for (const char* pod : {"pod-x", "pod-y"}) {
        PublisherOptions o = loopback_publisher(pod);
        o.endpoint = router;
        o.connect = true;
        engines.push_back(std::make_unique<ZmqPublisher>(o));
        options.replay_by_pod[pod] = engines.back()->replay_endpoint();
    }
    Collector got;
    ZmqSubscriber subscriber(options, got.handler());
    subscriber.start();
    EXPECT_EQ(subscriber.bound_endpoint(), router);
    for (size_t i = 0; i < batches.payloads.size(); ++i) {
        engines[0]->publish(batches.payloads[i]);
        engines[1]->publish(batches.payloads[batches.payloads.size() - 1 - i]);
        const auto both_seen = [&] { return got.count("pod-x") > 0 && got.count("pod-y") > 0; };
        if (!both_seen()) eventually(both_seen, 100ms);  // see publish_all
    }
    ASSERT_TRUE(eventually([&] { return got.count("pod-x") >= 30 && got.count("pod-y") >= 30; }));
    const std::vector<Got> x = got.of("pod-x"), y = got.of("pod-y");
    ASSERT_EQ(x.size(), 30u);
    ASSERT_EQ(y.size(), 30u);
    expect_contiguous(x, 0);
    expect_contiguous(y, 0);
    for (size_t i = 0; i < 30; ++i) {
        EXPECT_EQ(x[i].payload, batches.payloads[i]);
        EXPECT_EQ(y[i].payload, batches.payloads[29 - i]);
    }
    EXPECT_EQ(subscriber.counters().lost_batches, 0u);
}

// Stop joins promptly while engines keep publishing; nothing is delivered after it; a new start goes
// on where each stream stopped, the batches missed meanwhile coming by replay.
TEST(ZmqTransport, StopWhileEnginesPublish) {
    std::vector<std::unique_ptr<ZmqPublisher>> engines;
    SubscriberOptions options = fast_reconnect({});
    for (const char* pod : {"pod-1", "pod-2"}) {
        engines.push_back(std::make_unique<ZmqPublisher>(loopback_publisher(pod)));
        options.engines.push_back({engines.back()->endpoint(), engines.back()->replay_endpoint()});
    }
    Collector got;
    ZmqSubscriber subscriber(options, got.handler());
    subscriber.start();
    std::atomic<bool> done{false};
    std::vector<std::thread> publishers;
    for (auto& engine : engines) {
        publishers.emplace_back([&done, e = engine.get()] {
            for (int i = 0; i < 20000 && !done.load(); ++i) {  // at most ~20 s
                e->publish(bytes("batch " + std::to_string(i)));
                std::this_thread::sleep_for(1ms);
            }
        });
    }
    ASSERT_TRUE(eventually([&] { return got.count("pod-1") >= 20 && got.count("pod-2") >= 20; }));
    const auto t0 = std::chrono::steady_clock::now();
    subscriber.stop();
    const auto stop_time = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(stop_time, 1s);
    const size_t at_stop = got.all().size();
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(got.all().size(), at_stop);

    subscriber.start();
    const size_t pod1_before = got.count("pod-1");
    ASSERT_TRUE(eventually([&] { return got.count("pod-1") >= pod1_before + 20; }));
    done = true;
    for (std::thread& t : publishers) t.join();
    subscriber.stop();
    for (const char* pod : {"pod-1", "pod-2"}) {
        const std::vector<Got> all = got.of(pod);
        expect_contiguous(all, 0);
        for (const Got& g : all) EXPECT_EQ(g.payload, bytes("batch " + std::to_string(g.seq)));
    }
    EXPECT_EQ(subscriber.counters().lost_batches, 0u);
}

// A handler that throws loses nothing else: the error is counted and delivery goes on.
TEST(ZmqSubscriber, AThrowingHandlerIsCountedAndDeliveryGoesOn) {
    RawPub engine;
    Collector got;
    BatchHandler inner = got.handler();
    ZmqSubscriber subscriber({.engines = {{engine.endpoint, ""}}}, [&](const ReceivedBatch& b) {
        inner(b);
        if (b.pod == "pod-t" && b.seq == 1) throw std::runtime_error("bad batch");
    });
    subscriber.start();
    ASSERT_TRUE(engine.wait_subscribed());
    for (uint64_t s = 0; s < 3; ++s) engine.send("kv@pod-t@m", s, bytes("x"));
    ASSERT_TRUE(eventually([&] { return got.count("pod-t") >= 3; }));
    EXPECT_EQ(subscriber.counters().handler_errors, 1u);
}

TEST(ZmqSubscriber, BadEndpointsAreRefusedAtStart) {
    Collector got;
    ZmqSubscriber none({}, got.handler());
    EXPECT_THROW(none.start(), kvcore::Error);
    ZmqSubscriber bad({.bind_endpoint = "nonsense://x"}, got.handler());
    EXPECT_THROW(bad.start(), kvcore::Error);
    EXPECT_FALSE(bad.running());
    EXPECT_THROW(ZmqPublisher({.endpoint = "nonsense://x"}), kvcore::Error);
}

namespace {

// A kvcore engine: a pool with KV events on, hashing as vLLM does (sha256_cbor, seed 42, 16 tokens).
struct Engine {
    kvcore::pool::Pool pool;
    Engine() : pool([] {
        kvcore::pool::PoolConfig c;
        c.num_blocks = 256;
        c.block_size = 16;
        c.events = true;
        c.hash_algo = kvcore::pool::HashAlgo::kSha256Cbor;
        c.hash_seed = "42";
        return c;
    }()) {}
    // Runs a prompt (its blocks stay cached after the sequence ends) and returns the events it caused.
    std::vector<uint8_t> run(const std::vector<int32_t>& prompt) {
        const auto id = pool.create_sequence(prompt, {});
        pool.allocate(id, prompt.size());
        pool.free_sequence(id);
        std::vector<uint8_t> payload = pool.encode_events(kvcore::pool::EventEncoding::kMap);
        pool.clear_events();
        return payload;
    }
};

IndexConfig vllm_router_config() {
    IndexConfig c;
    c.hash_algo = kvcore::pool::HashAlgo::kSha256Cbor;
    c.hash_seed = "42";
    c.block_size = 16;
    c.engine_keys_direct = true;
    c.shards = 8;
    return c;
}

std::vector<int32_t> prompt_of(size_t blocks, int32_t first) {
    std::vector<int32_t> p(blocks * 16);
    for (size_t i = 0; i < p.size(); ++i) p[i] = first + static_cast<int32_t>(i);
    return p;
}

// The run of cached blocks each named pod has for the prompt (0 for a pod the index does not know).
std::vector<uint32_t> cached_blocks(const Index& index, const std::string& model, const std::vector<int32_t>& prompt,
                                    const std::vector<std::string>& pods) {
    std::vector<uint32_t> out;
    const ModelId m = const_cast<Index&>(index).intern_model(model);
    for (const std::string& pod : pods) {
        const PodId p = index.find_pod(pod);
        if (p == Index::kNoPod) {
            out.push_back(0);
            continue;
        }
        PodScore score[1];
        const PodId candidate[1] = {p};
        index.score_tokens(m, prompt, {}, candidate, score);
        out.push_back(score[0].blocks);
    }
    return out;
}

}  // namespace

// A kvcore engine and a kvcore router talk end to end: pool events -> ZmqPublisher -> IndexFeed (the
// router's subscriber) -> Index, scored by the prompt's tokens. Two engines; one router applying on
// ingest threads, the other on the subscriber's thread.
TEST(ZmqTransport, PoolEventsReachTheIndexAndScore) {
    for (const uint32_t threads : {0u, 2u}) {
        SCOPED_TRACE(threads);
        Index index(vllm_router_config());
        std::unique_ptr<IngestPool> ingest;
        if (threads != 0) ingest = std::make_unique<IngestPool>(index, threads, 64);
        Engine a, b;
        ZmqPublisher pub_a(loopback_publisher("engine-a")), pub_b(loopback_publisher("engine-b"));
        std::atomic<uint64_t> refused{0};
        IndexFeed feed(index, ingest.get(),
                       fast_reconnect({.engines = {{pub_a.endpoint(), pub_a.replay_endpoint()},
                                                   {pub_b.endpoint(), pub_b.replay_endpoint()}}}),
                       &refused);
        feed.start();
        const std::vector<int32_t> shared = prompt_of(8, 100), longer = prompt_of(12, 100);
        // Empty batches until both subscriptions are in place (the index then knows both pods): a batch
        // missed before that would be noticed, and replayed, only when a later one arrives.
        uint64_t warmup = 0;
        ASSERT_TRUE(eventually([&] {
            warmup += 2;
            pub_a.publish(a.pool.encode_events(kvcore::pool::EventEncoding::kArray));
            pub_b.publish(b.pool.encode_events(kvcore::pool::EventEncoding::kMap));
            std::this_thread::sleep_for(5ms);
            return index.find_pod("engine-a") != Index::kNoPod && index.find_pod("engine-b") != Index::kNoPod;
        }));
        pub_a.publish(a.run(longer));
        pub_b.publish(b.run(std::vector<int32_t>(shared.begin(), shared.begin() + 5 * 16)));
        const std::vector<std::string> pods = {"engine-a", "engine-b", "engine-c"};
        const auto want = std::vector<uint32_t>{12, 5, 0};
        ASSERT_TRUE(eventually([&] {
            if (ingest) ingest->flush();
            return cached_blocks(index, "meta/llama-3", longer, pods) == want;
        })) << "engine-a " << cached_blocks(index, "meta/llama-3", longer, pods)[0];
        EXPECT_EQ(cached_blocks(index, "meta/llama-3", shared, pods), (std::vector<uint32_t>{8, 5, 0}));
        EXPECT_EQ(cached_blocks(index, "other/model", longer, pods), (std::vector<uint32_t>{0, 0, 0}));
        ASSERT_TRUE(eventually([&] { return feed.counters().applied == warmup + 2; })) << feed.counters().applied;
        const FeedCounters c = feed.counters();
        EXPECT_EQ(c.decode_failures + c.apply_failures + refused.load(), 0u);
        EXPECT_EQ(index.counters().blocks_stored, 12u + 5u);
        feed.stop();
    }
}

// An engine restart (seq back to 0) clears what it held before; a payload that is not an EventBatch
// is counted and applied nothing, also into the caller's refused count.
TEST(ZmqTransport, IndexFeedClearsARestartedEngineAndCountsBadPayloads) {
    Index index(vllm_router_config());
    RawPub engine;
    std::atomic<uint64_t> refused{0};
    IndexFeed feed(index, nullptr, {.engines = {{engine.endpoint, ""}}}, &refused);
    feed.start();
    ASSERT_TRUE(engine.wait_subscribed());
    Engine before;
    const std::vector<int32_t> old_prompt = prompt_of(6, 7), new_prompt = prompt_of(3, 5000);
    const std::string topic = make_topic("pod-r", "m");
    engine.send(topic, 0, before.run(old_prompt));
    engine.send(topic, 1, bytes("\x93\x01"));  // a truncated array
    ASSERT_TRUE(eventually([&] { return feed.counters().decode_failures == 1; }));
    EXPECT_EQ(cached_blocks(index, "m", old_prompt, {"pod-r"}), std::vector<uint32_t>{6});
    EXPECT_EQ(refused.load(), 1u);

    Engine after;  // the new process: an empty cache, seq from 0
    engine.send(topic, 0, after.run(new_prompt));
    ASSERT_TRUE(eventually([&] { return feed.counters().restart_clears == 1; }));
    EXPECT_EQ(cached_blocks(index, "m", old_prompt, {"pod-r"}), std::vector<uint32_t>{0});
    EXPECT_EQ(cached_blocks(index, "m", new_prompt, {"pod-r"}), std::vector<uint32_t>{3});
    EXPECT_EQ(feed.subscriber_counters().restarts, 1u);
    EXPECT_EQ(feed.counters().applied, 2u);
    EXPECT_EQ(index.counters().clears, 1u);
    index.check_invariants();
}
