// SPDX-License-Identifier: Apache-2.0
// End to end over loopback TCP: a kvcore engine's publisher -> the router's subscriber -> its handler,
// with realistic batches drained from a pool (4 prompts of 16 blocks per scheduler step, sha256_cbor,
// map events). Anchor in the same run: the same payloads through a bare cppzmq PUB -> SUB pair (3 frames,
// no seq tracking, no replay buffer), which is the floor the transport adds to. BM_EndToEndIndex goes on
// to what a router does with them (IndexFeed): decode each batch and apply it to an Index, on the
// subscriber's thread or on ingest threads; its blocks/s is the end-to-end ingest rate over ZeroMQ.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <zmq.hpp>

#include "index/index.h"
#include "index/index_feed.h"
#include "index/ingest_pool.h"
#include "index/zmq_publisher.h"
#include "index/zmq_subscriber.h"
#include "index/zmq_wire.h"
#include "pool_event_batches.h"

using namespace kvcore::index;

namespace {

constexpr size_t kBatchesPerIteration = 1000;

const kvcore::testing::EventBatches& batches() {
    static const auto b = kvcore::testing::pool_event_batches(kBatchesPerIteration);
    return b;
}

template <class Count>
void spin_until_count(Count&& count, uint64_t target) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (count() < target) {
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("zmq bench: batches lost");
        std::this_thread::yield();
    }
}

void spin_until(const std::atomic<uint64_t>& counter, uint64_t target) {
    spin_until_count([&] { return counter.load(std::memory_order_acquire); }, target);
}

void report(benchmark::State& state) {
    const auto& b = batches();
    size_t bytes = 0;
    for (const auto& p : b.payloads) bytes += p.size();
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * b.payloads.size()));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
    state.counters["blocks/s"] =
        benchmark::Counter(static_cast<double>(state.iterations() * b.blocks), benchmark::Counter::kIsRate);
    state.counters["blocks/batch"] = static_cast<double>(b.blocks) / static_cast<double>(b.payloads.size());
    state.counters["bytes/batch"] = static_cast<double>(bytes) / static_cast<double>(b.payloads.size());
}

void BM_KvcoreTransport(benchmark::State& state) {
    const auto& b = batches();
    ZmqPublisher publisher({.endpoint = "tcp://127.0.0.1:0", .replay_endpoint = "tcp://127.0.0.1:0",
                            .topic = make_topic("bench-pod", "bench/model")});
    std::atomic<uint64_t> delivered{0};
    ZmqSubscriber subscriber({.engines = {{publisher.endpoint(), publisher.replay_endpoint()}}},
                             [&](const ReceivedBatch& batch) {
                                 benchmark::DoNotOptimize(batch.payload.data());
                                 delivered.fetch_add(1, std::memory_order_release);
                             });
    subscriber.start();
    // Warm up until the subscription is in place (what it missed comes by replay).
    uint64_t sent = 0;
    while (delivered.load() == 0 && sent < 10000) {
        publisher.publish(b.payloads[sent++ % b.payloads.size()]);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    spin_until(delivered, sent);
    for (auto _ : state) {
        for (const auto& p : b.payloads) publisher.publish(p);
        sent += b.payloads.size();
        spin_until(delivered, sent);
    }
    subscriber.stop();
    if (subscriber.counters().lost_batches != 0) state.SkipWithError("batches lost");
    report(state);
}

void BM_AnchorBareZmq(benchmark::State& state) {
    const auto& b = batches();
    zmq::context_t context{1};
    zmq::socket_t pub(context, zmq::socket_type::pub);
    pub.set(zmq::sockopt::sndhwm, 100000);
    pub.set(zmq::sockopt::linger, 0);
    pub.bind("tcp://127.0.0.1:0");
    const std::string endpoint = last_endpoint(pub);
    std::atomic<uint64_t> received{0};
    std::atomic<bool> done{false};
    std::thread receiver([&] {
        zmq::socket_t sub(context, zmq::socket_type::sub);
        sub.set(zmq::sockopt::rcvhwm, 100000);
        sub.set(zmq::sockopt::linger, 0);
        sub.set(zmq::sockopt::rcvtimeo, 20);
        sub.set(zmq::sockopt::subscribe, kTopicPrefix);
        sub.connect(endpoint);
        while (!done.load(std::memory_order_relaxed)) {
            zmq::message_t frames[3];
            if (!sub.recv(frames[0])) continue;
            (void)sub.recv(frames[1]);
            (void)sub.recv(frames[2]);
            benchmark::DoNotOptimize(frames[2].data());
            received.fetch_add(1, std::memory_order_release);
        }
    });
    const std::string topic = make_topic("bench-pod", "bench/model");
    uint64_t seq = 0;
    const auto send = [&](const std::vector<uint8_t>& p) {
        const auto s = encode_seq(seq++);
        pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
        pub.send(zmq::buffer(s), zmq::send_flags::sndmore);
        pub.send(zmq::buffer(p), zmq::send_flags::none);
    };
    while (received.load() == 0 && seq < 10000) {  // warm up until subscribed
        send(b.payloads[0]);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    uint64_t target = received.load();
    for (auto _ : state) {
        for (const auto& p : b.payloads) send(p);
        target += b.payloads.size();
        spin_until(received, target);
    }
    done = true;
    receiver.join();
    report(state);
}

// Arguments: ingest threads (0: apply on the subscriber's thread), direct keys (1: sha256_cbor engine
// keys used as they are, as a router configured with the engines' seed; 0: keys recomputed from each
// event's tokens with xxh3, as a router that does not know it).
void BM_EndToEndIndex(benchmark::State& state) {
    const auto& b = batches();
    const auto threads = static_cast<uint32_t>(state.range(0));
    IndexConfig config;
    config.block_size = 16;
    config.engine_keys_direct = state.range(1) != 0;
    config.hash_algo = config.engine_keys_direct ? kvcore::pool::HashAlgo::kSha256Cbor : kvcore::pool::HashAlgo::kXxh3;
    Index index(config);
    std::unique_ptr<IngestPool> ingest;
    if (threads != 0) ingest = std::make_unique<IngestPool>(index, threads, 1024);
    ZmqPublisher publisher({.endpoint = "tcp://127.0.0.1:0", .replay_endpoint = "tcp://127.0.0.1:0",
                            .topic = make_topic("bench-pod", "bench/model")});
    IndexFeed feed(index, ingest.get(), {.engines = {{publisher.endpoint(), publisher.replay_endpoint()}}});
    feed.start();
    const auto applied = [&] {
        if (ingest) return ingest->applied() + ingest->failed();
        return feed.counters().applied + feed.counters().apply_failures;
    };
    uint64_t sent = 0;
    while (feed.subscriber_counters().delivered == 0 && sent < 10000) {  // until subscribed; replay brings the rest
        publisher.publish(b.payloads[sent++ % b.payloads.size()]);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    spin_until_count(applied, sent);
    for (auto _ : state) {
        for (const auto& p : b.payloads) publisher.publish(p);
        sent += b.payloads.size();
        spin_until_count(applied, sent);
    }
    feed.stop();
    const FeedCounters c = feed.counters();
    if (feed.subscriber_counters().lost_batches != 0) state.SkipWithError("batches lost");
    if (c.decode_failures + c.apply_failures != 0 || (ingest && ingest->failed() != 0))
        state.SkipWithError("batches refused");
    report(state);
    state.counters["index_keys"] = static_cast<double>(index.counters().keys);
}

}  // namespace

BENCHMARK(BM_EndToEndIndex)
    ->ArgNames({"ingest_threads", "direct"})
    ->Args({0, 1})
    ->Args({0, 0})
    ->Args({2, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AnchorBareZmq)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KvcoreTransport)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
