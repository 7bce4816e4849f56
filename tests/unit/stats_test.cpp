// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <barrier>
#include <nlohmann/json.hpp>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <thread>
#include <vector>

#include "common/error.h"
#include "kvcore/stats.h"
#include "stats/recorder.h"

namespace kvcore::stats {
namespace {

std::atomic<uint64_t> fake_now_ns{0};
uint64_t fake_clock() noexcept { return fake_now_ns.load(); }

RecorderConfig config_with(uint32_t window_accesses, uint32_t layers = 0) {
    RecorderConfig c;
    c.window_accesses = window_accesses;
    c.layers = layers;
    return c;
}

TEST(Recorder, EmptySnapshotHasZeroRatesAndZeroLookups) {
    Recorder r{RecorderConfig{}};
    const Snapshot s = r.snapshot();
    EXPECT_EQ(s.lookups(), 0u);
    EXPECT_EQ(hit_rate(s.hits, s.lookups()), 0.0);
    EXPECT_EQ(s.window_lookups, 0u);
    EXPECT_EQ(s.time_window_lookups, 0u);
    EXPECT_EQ(s.window_size, 1000u);
    EXPECT_EQ(s.window_seconds, 60u);
}

TEST(Recorder, CountsSaturateInsteadOfWrapping) {
    Recorder r{RecorderConfig{}};
    r.record_insertions(UINT64_MAX);
    r.record_insertions(5);  // used to wrap to 4
    r.record_tokens(UINT64_MAX, UINT64_MAX - 1);
    r.record_tokens(3, 3);
    r.record_reused_tokens(UINT64_MAX);
    r.record_reused_tokens(1);
    r.record_evictions(UINT64_MAX);
    r.record_evictions(UINT64_MAX);
    r.record_prefix_lookup(UINT64_MAX - 1, 0);
    r.record_access(true);
    r.record_access(true);
    r.record_access(false);
    Snapshot s = r.snapshot();
    EXPECT_EQ(s.insertions, UINT64_MAX);
    EXPECT_EQ(s.tokens_queried, UINT64_MAX);
    EXPECT_EQ(s.tokens_hit, UINT64_MAX);
    EXPECT_EQ(s.tokens_reused, UINT64_MAX);
    EXPECT_EQ(s.evictions, UINT64_MAX);
    EXPECT_EQ(s.hits, UINT64_MAX);
    EXPECT_EQ(s.misses, 1u);
    EXPECT_EQ(s.lookups(), UINT64_MAX);

    // Two threads' shards that are each near the top sum to the top, not past it.
    Recorder shared{RecorderConfig{}};
    shared.record_insertions(UINT64_MAX - 1);
    std::thread([&] { shared.record_insertions(UINT64_MAX - 1); }).join();
    EXPECT_EQ(shared.snapshot().insertions, UINT64_MAX);
}

TEST(Recorder, BytesInUseRejectChangesPastEitherBound) {
    Recorder r{RecorderConfig{}};
    EXPECT_TRUE(r.add_bytes(INT64_MAX));
    EXPECT_TRUE(r.add_bytes(INT64_MAX));
    EXPECT_FALSE(r.add_bytes(2));  // would pass UINT64_MAX
    EXPECT_TRUE(r.add_bytes(1));
    EXPECT_EQ(r.snapshot().bytes_in_use, UINT64_MAX);
    EXPECT_FALSE(r.add_bytes(1));
    EXPECT_TRUE(r.add_bytes(-static_cast<int64_t>(INT64_MAX)));
    EXPECT_EQ(r.snapshot().peak_bytes, UINT64_MAX);
}

TEST(Recorder, CumulativeCounts) {
    Recorder r{RecorderConfig{}};
    for (int i = 0; i < 30; ++i) r.record_access(i % 3 == 0);
    r.record_insertions(5);
    r.record_evictions(2);
    r.record_memory_pressure();
    r.record_tokens(100, 40);
    r.record_tokens(50, 50);
    r.record_reused_tokens(39);
    const Snapshot s = r.snapshot();
    EXPECT_EQ(s.hits, 10u);
    EXPECT_EQ(s.misses, 20u);
    EXPECT_DOUBLE_EQ(hit_rate(s.hits, s.lookups()), 1.0 / 3.0);
    EXPECT_EQ(s.insertions, 5u);
    EXPECT_EQ(s.evictions, 2u);
    EXPECT_EQ(s.memory_pressure_events, 1u);
    EXPECT_EQ(s.tokens_queried, 150u);
    EXPECT_EQ(s.tokens_hit, 90u);
    EXPECT_EQ(s.tokens_reused, 39u);
}

TEST(Recorder, BatchCountsExactlyLikeSingleAccesses) {
    // Batches of every size, straddling the ring's wrap and longer than the window.
    std::mt19937 rng(7);
    Recorder single{config_with(37)}, batched{config_with(37)};
    std::vector<uint8_t> outcomes;
    for (size_t n : {0, 1, 5, 16, 17, 36, 37, 38, 100, 3}) {
        outcomes.resize(n);
        for (auto& o : outcomes) o = static_cast<uint8_t>(rng() % 3);  // 2 is a hit too
        for (uint8_t o : outcomes) single.record_access(o != 0);
        batched.record_accesses(outcomes.data(), outcomes.size());
        const Snapshot a = single.snapshot(), b = batched.snapshot();
        EXPECT_EQ(a.hits, b.hits) << "after a batch of " << n;
        EXPECT_EQ(a.misses, b.misses);
        EXPECT_EQ(a.window_hits, b.window_hits);
        EXPECT_EQ(a.window_lookups, b.window_lookups);
        EXPECT_EQ(a.time_window_hits, b.time_window_hits);
        EXPECT_EQ(a.time_window_lookups, b.time_window_lookups);
    }
}

// The three ways to record (one call per access, a byte per access, a bit per access) agree with each
// other and with the history itself, for windows of one partial word, one word and several words.
TEST(Recorder, EveryRecordingPathKeepsTheExactWindow) {
    std::mt19937 rng(11);
    for (uint32_t window : {37u, 64u, 130u, 1000u}) {
        Recorder single{config_with(window)}, bytes{config_with(window)}, bits{config_with(window)};
        std::vector<bool> history;
        for (int step = 0; step < 60; ++step) {
            const size_t n = 1 + rng() % 700;  // long enough for the vector path of record_accesses
            std::vector<uint8_t> outcomes(n);
            for (auto& o : outcomes) o = static_cast<uint8_t>(rng() % 3 == 0 ? 0 : 1 + rng() % 255);
            for (uint8_t o : outcomes) {
                single.record_access(o != 0);
                history.push_back(o != 0);
            }
            bytes.record_accesses(outcomes.data(), n);
            for (size_t i = 0; i < n; i += 64) {
                const unsigned count = static_cast<unsigned>(std::min<size_t>(64, n - i));
                uint64_t word = count == 64 ? 0 : ~uint64_t{0} << count;  // bits above count must be ignored
                for (unsigned j = 0; j < count; ++j) word |= uint64_t{outcomes[i + j] != 0} << j;
                bits.record_access_bits(word, count);
            }
            const size_t in_window = std::min<size_t>(window, history.size());
            const uint64_t expected = static_cast<uint64_t>(std::count(history.end() - in_window, history.end(), true));
            for (const Recorder* r : {&single, &bytes, &bits}) {
                const Snapshot s = r->snapshot();
                ASSERT_EQ(s.window_hits, expected) << "window " << window << ", step " << step << ", path " << (r == &single ? "single" : r == &bytes ? "bytes" : "bits");
                ASSERT_EQ(s.window_lookups, in_window);
                ASSERT_EQ(s.hits, static_cast<uint64_t>(std::count(history.begin(), history.end(), true)));
                ASSERT_EQ(s.hits + s.misses, history.size());
            }
        }
    }
}

// A prefix lookup counts like its hits then its misses, one at a time: short ones (one pattern), long
// ones (runs) and ones longer than the ring.
TEST(Recorder, PrefixLookupCountsLikeItsAccessesInOrder) {
    std::mt19937 rng(5);
    for (uint32_t window : {37u, 64u, 130u, 1000u}) {
        Recorder single{config_with(window)}, prefix{config_with(window)};
        for (int step = 0; step < 80; ++step) {
            const uint64_t n = step % 4 == 0 ? rng() % 2500 : rng() % 65;
            const uint64_t hits = n == 0 ? 0 : rng() % (n + 1);
            for (uint64_t i = 0; i < n; ++i) single.record_access(i < hits);
            prefix.record_prefix_lookup(hits, n - hits);
            const Snapshot a = single.snapshot(), b = prefix.snapshot();
            ASSERT_EQ(b.window_hits, a.window_hits) << "window " << window << ", step " << step << ", n " << n;
            ASSERT_EQ(b.window_lookups, a.window_lookups);
            ASSERT_EQ(b.hits, a.hits);
            ASSERT_EQ(b.misses, a.misses);
        }
    }
}

TEST(Recorder, ExclusiveWriterRecordsIntoItsOwnShardAndLeavesItsCountsBehind) {
    Recorder r{config_with(100)};
    {
        Recorder::ExclusiveWriter writer(r);
        // Driven by two threads in turn, as a pool may be: the caller's lock orders their calls.
        std::mutex turn;
        auto drive = [&] {
            for (int i = 0; i < 500; ++i) {
                std::lock_guard lock(turn);
                writer.record_prefix_lookup(3, 1);
            }
        };
        std::thread a(drive), b(drive);
        for (int i = 0; i < 50; ++i) (void)r.snapshot();  // a reader meanwhile
        a.join();
        b.join();
        r.record_access(false);  // this thread's own shard, apart from the writer's
        const Snapshot s = r.snapshot();
        EXPECT_EQ(s.hits, 3000u);
        EXPECT_EQ(s.misses, 1001u);
        EXPECT_EQ(s.window_lookups, 101u);  // the last 100 of the writer's, the last 1 of this thread's
        EXPECT_EQ(s.window_hits, 75u);
    }
    // The writer is gone, its counts stay, and its shard goes to the next thread that records.
    std::thread([&] { r.record_access(true); }).join();
    const Snapshot s = r.snapshot();
    EXPECT_EQ(s.hits, 3001u);
    EXPECT_EQ(s.misses, 1001u);
    EXPECT_EQ(s.window_hits, 75u);  // the taker continued the writer's ring: 1 hit in, 1 (a hit) out
}

TEST(Recorder, CountWindowHoldsExactlyTheLastNAccesses) {
    Recorder r{config_with(10)};
    for (int i = 0; i < 10; ++i) r.record_access(true);
    EXPECT_EQ(r.snapshot().window_hits, 10u);
    for (int i = 0; i < 4; ++i) r.record_access(false);  // 4 hits leave the window
    Snapshot s = r.snapshot();
    EXPECT_EQ(s.window_lookups, 10u);
    EXPECT_EQ(s.window_hits, 6u);
    for (int i = 0; i < 10; ++i) r.record_access(false);
    s = r.snapshot();
    EXPECT_EQ(s.window_hits, 0u);
    EXPECT_EQ(s.hits, 10u);  // cumulative remembers
    for (int i = 0; i < 3; ++i) r.record_access(true);
    EXPECT_EQ(r.snapshot().window_hits, 3u);
}

TEST(Recorder, CountWindowBeforeItFills) {
    Recorder r{config_with(1000)};
    for (int i = 0; i < 7; ++i) r.record_access(i < 5);
    const Snapshot s = r.snapshot();
    EXPECT_EQ(s.window_lookups, 7u);
    EXPECT_EQ(s.window_hits, 5u);
}

TEST(Recorder, TimeWindowForgetsOldBuckets) {
    constexpr unsigned k = Recorder::kClockEvery;  // accesses per clock check
    fake_now_ns = 1'000'000'000'000ull;
    RecorderConfig c;
    c.window_seconds = 60;  // 1 s buckets
    c.clock = fake_clock;
    Recorder r{c};
    for (unsigned i = 0; i < k; ++i) r.record_access(true);
    fake_now_ns += 30'000'000'000ull;
    for (unsigned i = 0; i < k; ++i) r.record_access(false);  // the first of these checks the clock
    Snapshot s = r.snapshot();
    EXPECT_EQ(s.time_window_lookups, 2 * k);
    EXPECT_EQ(s.time_window_hits, k);

    fake_now_ns += 40'000'000'000ull;  // the hits are 70 s old now, the misses 40 s
    s = r.snapshot();
    EXPECT_EQ(s.time_window_lookups, k);
    EXPECT_EQ(s.time_window_hits, 0u);

    fake_now_ns += 61'000'000'000ull;
    s = r.snapshot();
    EXPECT_EQ(s.time_window_lookups, 0u);
    EXPECT_EQ(s.lookups(), 2 * k);
}

// One access a second is far below one clock check per bucket, so the recording thread alone cannot
// date them; a snapshot every 15 s (a Prometheus scrape) marks the time and keeps the window right to
// within a scrape interval.
TEST(Recorder, TimeWindowAtLowRatesFollowsSnapshots) {
    fake_now_ns = 2'000'000'000'000ull;
    RecorderConfig c;
    c.window_seconds = 60;
    c.clock = fake_clock;
    Recorder r{c};
    for (unsigned second = 0; second < 200; ++second) {
        r.record_access(second % 2 == 0);
        if (second % 15 == 0) (void)r.snapshot();
        fake_now_ns += 1'000'000'000ull;
    }
    const Snapshot s = r.snapshot();
    ASSERT_LT(s.lookups(), Recorder::kClockEvery);  // no clock check since the first access
    EXPECT_GE(s.time_window_lookups, 60u - 15u);      // 59 accesses in the last 60 s
    EXPECT_LE(s.time_window_lookups, 60u);
    EXPECT_NEAR(static_cast<double>(s.time_window_hits), s.time_window_lookups / 2.0, 1.0);
}

TEST(Recorder, PerLayerCountsAlsoFeedTotals) {
    Recorder r{config_with(1000, 3)};
    r.record_layer_access(0, true);
    r.record_layer_access(0, false);
    r.record_layer_access(2, true);
    r.record_access(false);
    const Snapshot s = r.snapshot();
    ASSERT_EQ(s.layer_hits.size(), 3u);
    EXPECT_EQ(s.layer_hits[0], 1u);
    EXPECT_EQ(s.layer_misses[0], 1u);
    EXPECT_EQ(s.layer_hits[1] + s.layer_misses[1], 0u);
    EXPECT_EQ(s.layer_hits[2], 1u);
    EXPECT_EQ(s.hits, 2u);
    EXPECT_EQ(s.misses, 2u);
}

TEST(Recorder, BytesNeverGoNegativeAndPeakFollows) {
    Recorder r{RecorderConfig{}};
    EXPECT_TRUE(r.add_bytes(100));
    EXPECT_TRUE(r.add_bytes(-40));
    EXPECT_FALSE(r.add_bytes(-61));
    EXPECT_FALSE(r.add_bytes(INT64_MIN));
    Snapshot s = r.snapshot();
    EXPECT_EQ(s.bytes_in_use, 60u);
    EXPECT_EQ(s.peak_bytes, 100u);
    r.set_bytes(500);
    r.set_bytes(10);
    s = r.snapshot();
    EXPECT_EQ(s.bytes_in_use, 10u);
    EXPECT_EQ(s.peak_bytes, 500u);
}

TEST(Recorder, RejectsBadConfig) {
    auto expect_invalid = [](RecorderConfig c) {
        try {
            Recorder r{c};
            FAIL() << "accepted a bad config";
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), KVC_ERR_INVALID_ARGUMENT);
        }
    };
    expect_invalid(config_with(0));
    expect_invalid(config_with(KVC_STATS_MAX_WINDOW_ACCESSES + 1));
    expect_invalid(config_with(10, KVC_STATS_MAX_LAYERS + 1));
    RecorderConfig c;
    c.window_seconds = 0;
    expect_invalid(c);
    c = {};
    c.component = "has space";
    expect_invalid(c);
    c.component = "";
    expect_invalid(c);
}

TEST(Recorder, ConcurrentRecordingLosesNothing) {
    Recorder r{config_with(100, 2)};
    constexpr int kThreads = 4, kPerThread = 200000;
    std::barrier done(kThreads);  // no thread exits (and hands its shard on) before all have recorded
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&r, &done, t] {
            for (int i = 0; i < kPerThread; ++i) {
                r.record_layer_access(static_cast<uint32_t>(t % 2), (i & 1) == 0);
                r.record_tokens(2, 1);
                if ((i & 1023) == 0) (void)r.snapshot();  // readers alongside writers
            }
            done.arrive_and_wait();
        });
    }
    for (auto& th : threads) th.join();
    const Snapshot s = r.snapshot();
    EXPECT_EQ(s.lookups(), uint64_t{kThreads} * kPerThread);
    EXPECT_EQ(s.hits, uint64_t{kThreads} * kPerThread / 2);
    EXPECT_EQ(s.tokens_queried, 2u * kThreads * kPerThread);
    EXPECT_EQ(s.layer_hits[0] + s.layer_misses[0], 2u * kPerThread);
    // Each thread's window holds its own last 100 accesses, alternating hit/miss.
    EXPECT_EQ(s.window_lookups, 100u * kThreads);
    EXPECT_EQ(s.window_hits, 50u * kThreads);
}

TEST(Recorder, ShardsOfExitedThreadsAreReusedAndKeepTheirCounts) {
    Recorder r{RecorderConfig{}};
    for (int round = 0; round < 50; ++round) {
        std::thread([&r] {
            for (int i = 0; i < 10; ++i) r.record_access(true);
        }).join();
    }
    EXPECT_EQ(r.snapshot().hits, 500u);
}

TEST(Recorder, MoreLiveThreadsThanShardsStillCountEverything) {
    Recorder r{RecorderConfig{}};
    constexpr int kThreads = static_cast<int>(Recorder::kMaxShards) + 40;
    std::barrier all_alive(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            r.record_access(true);
            all_alive.arrive_and_wait();  // every thread holds its shard at once
            for (int i = 0; i < 100; ++i) r.record_access(false);
        });
    }
    for (auto& th : threads) th.join();
    const Snapshot s = r.snapshot();
    EXPECT_EQ(s.hits, uint64_t{kThreads});
    EXPECT_EQ(s.misses, 100u * kThreads);
}

TEST(Recorder, ManyRecordersOnOneThread) {
    std::vector<std::unique_ptr<Recorder>> recorders;
    for (int i = 0; i < 40; ++i) recorders.push_back(std::make_unique<Recorder>(RecorderConfig{}));
    for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < recorders.size(); ++i) {
            for (size_t k = 0; k <= i; ++k) recorders[i]->record_access(true);
        }
    }
    for (size_t i = 0; i < recorders.size(); ++i) EXPECT_EQ(recorders[i]->snapshot().hits, 3 * (i + 1));
    recorders.clear();  // destroying recorders this thread claimed shards in must be safe at thread exit
}

TEST(Snapshot, PrometheusTextIsWellFormed) {
    Recorder r{config_with(1000, 2)};
    r.record_layer_access(1, true);
    r.record_access(false);
    const std::string text = r.snapshot().to_prometheus();
    std::istringstream in(text);
    std::string line, last_type_name;
    int samples = 0;
    while (std::getline(in, line)) {
        ASSERT_FALSE(line.empty());
        if (line.rfind("# HELP kvcore_", 0) == 0) continue;
        if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream t(line.substr(7));
            std::string type;
            t >> last_type_name >> type;
            EXPECT_TRUE(type == "counter" || type == "gauge") << line;
            if (type == "counter") {
                EXPECT_TRUE(last_type_name.ends_with("_total")) << line;
            }
            continue;
        }
        ASSERT_EQ(line.rfind(last_type_name + "{component=\"cache\"", 0), 0u) << line;
        const std::string value = line.substr(line.rfind(' ') + 1);
        EXPECT_NO_THROW((void)std::stod(value)) << line;
        ++samples;
    }
    EXPECT_NE(text.find("kvcore_hits_total{component=\"cache\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("kvcore_hit_rate{component=\"cache\",window=\"cumulative\"} 0.5\n"), std::string::npos);
    EXPECT_NE(text.find("kvcore_layer_hits_total{component=\"cache\",layer=\"1\"} 1\n"), std::string::npos);
    EXPECT_EQ(samples, 10 + 3 + 1 + 3 * 2);
}

// One scrape of several components: each family's # HELP and # TYPE once (Prometheus rejects a second),
// its samples together, the layer families only with the snapshots that count layers.
TEST(Snapshot, SeveralComponentsShareEachFamilyOnce) {
    RecorderConfig pool_config = config_with(1000, 2), store_config = config_with(1000);
    pool_config.component = "pool";
    store_config.component = "store";
    Recorder pool{pool_config}, store{store_config};
    pool.record_layer_access(1, true);
    store.record_access(false);
    store.record_access(false);
    const std::vector<Snapshot> both = {pool.snapshot(), store.snapshot()};
    const std::string text = kvcore::stats::to_prometheus(both);

    std::istringstream in(text);
    std::string line, family;
    std::set<std::string> families_seen;
    std::map<std::string, int> samples_per_component;
    while (std::getline(in, line)) {
        if (line.rfind("# HELP ", 0) == 0) {
            std::istringstream h(line.substr(7));
            h >> family;
            EXPECT_TRUE(families_seen.insert(family).second) << "second HELP for " << family;
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            ASSERT_EQ(line.rfind("# TYPE " + family + " ", 0), 0u) << "TYPE not right after its HELP: " << line;
            continue;
        }
        ASSERT_EQ(line.rfind(family + "{component=\"", 0), 0u) << "sample outside its family: " << line;
        const size_t start = family.size() + 12, end = line.find('"', start);
        ++samples_per_component[line.substr(start, end - start)];
    }
    EXPECT_EQ(samples_per_component["pool"], 10 + 3 + 1 + 3 * 2);
    EXPECT_EQ(samples_per_component["store"], 10 + 3 + 1);
    EXPECT_NE(text.find("kvcore_misses_total{component=\"store\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("kvcore_layer_hits_total{component=\"pool\",layer=\"1\"} 1\n"), std::string::npos);
    // One snapshot's text is the same exposition of one.
    EXPECT_EQ(kvcore::stats::to_prometheus(std::span<const Snapshot>(&both[0], 1)), both[0].to_prometheus());
}

TEST(Snapshot, JsonParsesAndMatches) {
    Recorder r{config_with(1000, 1)};
    r.record_layer_access(0, true);
    r.record_access(false);
    r.record_tokens(10, 4);
    const auto j = nlohmann::json::parse(r.snapshot().to_json());
    EXPECT_EQ(j["component"], "cache");
    EXPECT_EQ(j["hits"], 1);
    EXPECT_EQ(j["lookups"], 2);
    EXPECT_DOUBLE_EQ(j["hit_rate"].get<double>(), 0.5);
    EXPECT_DOUBLE_EQ(j["token_hit_rate"].get<double>(), 0.4);
    EXPECT_EQ(j["window"]["lookups"], 2);
    EXPECT_EQ(j["time_window"]["seconds"], 60);
    EXPECT_EQ(j["layers"][0]["hits"], 1);
}

// The counts of caches that load values: summed over threads, exported under their own families, left
// out of the hit rate.
TEST(Recorder, LoadingCacheCountsReachEveryExport) {
    RecorderConfig config = config_with(1000);
    config.loads_values = true;
    Recorder r{config};
    r.record_access(true);
    std::thread other([&] {
        r.record_negative_hits(3);
        r.record_loads(2);
        r.record_expirations(7);
    });
    other.join();
    r.record_negative_hits(1);
    r.record_load_failures(1);
    const Snapshot s = r.snapshot();
    EXPECT_EQ(s.negative_hits, 4u);
    EXPECT_EQ(s.loads, 2u);
    EXPECT_EQ(s.load_failures, 1u);
    EXPECT_EQ(s.expirations, 7u);
    EXPECT_EQ(s.lookups(), 1u);  // negative hits are neither hits nor misses
    const std::string text = s.to_prometheus();
    for (const char* line : {"# TYPE kvcore_negative_hits_total counter\n", "kvcore_negative_hits_total{component=\"cache\"} 4\n",
                             "# TYPE kvcore_loads_total counter\n", "kvcore_loads_total{component=\"cache\"} 2\n",
                             "# TYPE kvcore_load_failures_total counter\n", "kvcore_load_failures_total{component=\"cache\"} 1\n",
                             "# TYPE kvcore_expirations_total counter\n", "kvcore_expirations_total{component=\"cache\"} 7\n",
                             "kvcore_hit_rate{component=\"cache\",window=\"cumulative\"} 1\n"}) {
        EXPECT_NE(text.find(line), std::string::npos) << line;
    }
    // In one scrape with a component that loads nothing, that one adds no samples to these families.
    RecorderConfig pool_config = config_with(1000);
    pool_config.component = "pool";
    Recorder pool{pool_config};
    pool.record_access(true);
    const std::vector<Snapshot> both = {pool.snapshot(), s};
    const std::string joint = kvcore::stats::to_prometheus(both);
    EXPECT_EQ(joint.find("kvcore_loads_total{component=\"pool\"}"), std::string::npos);
    EXPECT_NE(joint.find("kvcore_loads_total{component=\"cache\"} 2\n"), std::string::npos);
    EXPECT_EQ(pool.snapshot().to_prometheus().find("kvcore_loads_total"), std::string::npos);
    const auto j = nlohmann::json::parse(s.to_json());
    EXPECT_EQ(j["negative_hits"], 4);
    EXPECT_EQ(j["loads"], 2);
    EXPECT_EQ(j["load_failures"], 1);
    EXPECT_EQ(j["expirations"], 7);
}

}  // namespace
}  // namespace kvcore::stats
