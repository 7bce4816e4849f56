// SPDX-License-Identifier: Apache-2.0
// The cluster index in Redis mode (issue 13) against a redis-server this program starts on 127.0.0.1 (a
// free port, no persistence), with the same workloads as index_bench.cpp: adding 10,000 keys, looking up
// and scoring 10,000 keys, scoring a 512-block prompt over 100 candidate pods. Reads are measured
// pipelined (the default windows: 32 keys, then 4x) and with one round trip per key (read_window 1,
// growth 1) in the same run, and the in-memory index as the reference. Exits 0 with a message when
// redis-server is not installed.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "index/index.h"
#include "index_batches.h"
#include "redis_server.h"

namespace {

using namespace kvcore::index;

kvcore::testing::RedisServer* g_server = nullptr;

std::vector<uint64_t> random_keys(size_t n, uint32_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> k(n);
    for (auto& x : k) x = rng();
    return k;
}

// Direct engine keys (the engines hash as the index): a batch is its keys, no hashing.
IndexConfig config(bool redis, bool per_key = false) {
    IndexConfig c{.hash_algo = kvcore::pool::HashAlgo::kSha256Cbor, .block_size = 16, .engine_keys_direct = true};
    if (redis) {
        c.redis.url = g_server->url();
        if (per_key) {
            c.redis.read_window = 1;
            c.redis.read_window_growth = 1;
        }
    }
    return c;
}

// Empties the server between benchmarks (untimed).
void flush() { (void)g_server->integer("FLUSHALL"); }

// ---- add 10,000 keys: one batch, one script ---------------------------------------------------------------
// Each iteration adds keys new to the index; the pod is removed untimed afterwards.
void BM_Add10k(benchmark::State& state) {
    const bool redis = state.range(0) != 0;
    flush();
    Index index(config(redis));
    const ModelId m = index.intern_model("m");
    uint32_t seed = 1;
    for (auto _ : state) {
        state.PauseTiming();
        const EventBatch batch = stored_batch(random_keys(10000, seed++));
        const PodId p = index.intern_pod("pod-0");
        state.ResumeTiming();
        index.apply(p, m, batch);
        state.PauseTiming();
        index.remove_pod(p);
        state.ResumeTiming();
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * 10000);
}
BENCHMARK(BM_Add10k)->Arg(0)->Arg(1)->ArgName("redis")->Unit(benchmark::kMicrosecond);

// ---- look up and score 10,000 keys (a chain held by 4 pods, 2 of them to its end) --------------------------
// mode 0: in memory; 1: Redis pipelined; 2: Redis, one round trip per key.
void BM_LookupScore10k(benchmark::State& state) {
    const int mode = static_cast<int>(state.range(0));
    flush();
    const auto keys = random_keys(10000, 2);
    Index writer(config(mode != 0));
    const ModelId mw = writer.intern_model("m");
    for (int p = 0; p < 4; ++p)
        writer.apply(writer.intern_pod("pod-" + std::to_string(p)), mw,
                     stored_batch(p < 2 ? std::span<const uint64_t>(keys) : std::span<const uint64_t>(keys).first(5000)));
    Index reader_redis(config(mode != 0, mode == 2));
    Index& reader = mode == 0 ? writer : reader_redis;
    const ModelId m = reader.intern_model("m");
    std::vector<PodId> cands;
    for (int p = 0; p < 4; ++p) cands.push_back(reader.find_pod("pod-" + std::to_string(p)));
    std::vector<PodScore> out(4);
    for (auto _ : state) {
        reader.score(m, keys, cands, out);
        benchmark::DoNotOptimize(out.data());
    }
    if (out[0].blocks != 10000 || out[2].blocks != 5000) state.SkipWithError("wrong score");
}
BENCHMARK(BM_LookupScore10k)->Arg(0)->Arg(1)->Arg(2)->ArgName("mode")->Unit(benchmark::kMicrosecond);

// ---- score a 512-block prompt over 100 candidate pods ---------------------------------------------------------
// 8 pods hold prefixes of the prompt (512, 400, ..., 8 blocks), the other 92 other prompts' blocks;
// all_hold: every pod holds all 512 (each key's hash has 100 fields). mode as above.
void BM_Score512x100(benchmark::State& state) {
    const int mode = static_cast<int>(state.range(0));
    const bool all_hold = state.range(1) != 0;
    flush();
    const auto prompt = random_keys(512, 3);
    Index writer(config(mode != 0));
    const ModelId mw = writer.intern_model("m");
    const size_t held[8] = {512, 400, 256, 128, 64, 32, 16, 8};
    for (int p = 0; p < 100; ++p) {
        const auto other = random_keys(512, 100 + p);
        std::span<const uint64_t> keys = all_hold ? std::span<const uint64_t>(prompt)
                                         : p < 8  ? std::span<const uint64_t>(prompt).first(held[p])
                                                  : std::span<const uint64_t>(other);
        writer.apply(writer.intern_pod("pod-" + std::to_string(p)), mw, stored_batch(keys));
    }
    Index reader_redis(config(mode != 0, mode == 2));
    Index& reader = mode == 0 ? writer : reader_redis;
    const ModelId m = reader.intern_model("m");
    std::vector<PodId> cands;
    for (int p = 0; p < 100; ++p) cands.push_back(reader.find_pod("pod-" + std::to_string(p)));
    std::vector<PodScore> out(cands.size());
    for (auto _ : state) {
        reader.score(m, prompt, cands, out);
        benchmark::DoNotOptimize(out.data());
    }
    if (out[0].blocks != 512) state.SkipWithError("wrong score");
}
BENCHMARK(BM_Score512x100)
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->ArgNames({"mode", "all_hold"})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
    kvcore::testing::RedisServer server;
    if (kvcore::testing::RedisServer::binary().empty()) {
        std::puts("kvcore_index_redis_bench: redis-server is not installed; nothing measured");
        return 0;
    }
    if (!server.start()) {
        std::fprintf(stderr, "kvcore_index_redis_bench: redis-server did not start on port %d\n", server.port());
        return 1;
    }
    g_server = &server;
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
