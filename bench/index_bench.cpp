// SPDX-License-Identifier: Apache-2.0
// The cluster index's core and scorer (issue 13) against a node-based baseline in the same run: llm-d's
// in-memory design, a std::unordered_map from key to a std::list LRU node holding the key's pod entries
// (pod name and tier as strings). Measured: adding 10,000 keys, looking up and scoring 10,000 keys, scoring
// a 512-block prompt over 100 candidate pods (p50/p99 per call), ingest of decoded events on one core,
// and heap bytes per (block, pod) entry (glibc's mallinfo2 before and after). The score cache
// (score_tokens uncached, hit and miss; ingest with it enabled) is measured against the same index
// without it.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <list>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/index.h"
#include "index_batches.h"

namespace {

using namespace kvcore::index;

// ---- the baseline: llm-d's in-memory index ------------------------------------------------------------------
struct NodeIndex {
    struct PodEntry {
        std::string pod, tier;
    };
    struct Node {
        uint64_t key;
        std::vector<PodEntry> pods;
    };
    std::list<Node> lru;  // front: most recent
    std::unordered_map<uint64_t, std::list<Node>::iterator> map;

    void add(std::span<const uint64_t> keys, const std::string& pod, const std::string& tier) {
        for (uint64_t k : keys) {
            auto it = map.find(k);
            if (it == map.end()) {
                lru.push_front(Node{k, {}});
                it = map.emplace(k, lru.begin()).first;
            } else {
                lru.splice(lru.begin(), lru, it->second);
            }
            auto& pods = it->second->pods;
            if (std::none_of(pods.begin(), pods.end(), [&](const PodEntry& e) { return e.pod == pod && e.tier == tier; }))
                pods.push_back(PodEntry{pod, tier});
        }
    }
    // Lookup as llm-d: per key the pods among the filter, stopping at the first key without any; then the
    // longest-prefix scorer over the result.
    std::unordered_map<std::string, double> score(std::span<const uint64_t> keys, const std::vector<std::string>& pods) {
        std::unordered_map<std::string, double> scores;
        std::vector<std::string> active = pods;
        for (size_t i = 0; i < keys.size() && !active.empty(); ++i) {
            auto it = map.find(keys[i]);
            if (it == map.end()) break;
            lru.splice(lru.begin(), lru, it->second);
            std::vector<std::string> next;
            for (const auto& p : active) {
                double w = 0;
                for (const auto& e : it->second->pods)
                    if (e.pod == p) w = std::max(w, e.tier == "gpu" ? 1.0 : 0.8);
                if (w > 0) {
                    scores[p] += w;
                    next.push_back(p);
                }
            }
            active.swap(next);
        }
        return scores;
    }
};

std::vector<uint64_t> random_keys(size_t n, uint32_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> k(n);
    for (auto& x : k) x = rng();
    return k;
}

IndexConfig direct() {
    return IndexConfig{.hash_algo = kvcore::pool::HashAlgo::kSha256Cbor, .block_size = 16, .engine_keys_direct = true};
}

// ---- add 10,000 keys --------------------------------------------------------------------------------------
// fresh: into a new index (its first allocations and page faults included); else into an index that
// held keys before (the steady state of a router), emptied between iterations untimed.
void BM_Add10k_kvcore(benchmark::State& state) {
    const bool fresh = state.range(0) != 0;
    const auto keys = random_keys(10000, 1);
    const EventBatch batch = stored_batch(keys);
    auto index = std::make_unique<Index>(direct());
    for (auto _ : state) {
        state.PauseTiming();
        if (fresh) index = std::make_unique<Index>(direct());
        const ModelId m = index->intern_model("m");
        const PodId p = index->intern_pod("pod-0");
        state.ResumeTiming();
        index->apply(p, m, batch);
        state.PauseTiming();
        index->remove_pod(p);
        state.ResumeTiming();
    }
}
BENCHMARK(BM_Add10k_kvcore)->Arg(0)->Arg(1)->ArgName("fresh")->Unit(benchmark::kMicrosecond);

void BM_Add10k_baseline(benchmark::State& state) {
    const bool fresh = state.range(0) != 0;
    const auto keys = random_keys(10000, 1);
    auto index = std::make_unique<NodeIndex>();
    for (auto _ : state) {
        state.PauseTiming();
        if (fresh) index = std::make_unique<NodeIndex>();
        state.ResumeTiming();
        index->add(keys, "pod-0", "gpu");
        state.PauseTiming();
        index->map.clear();
        index->lru.clear();
        state.ResumeTiming();
    }
}
BENCHMARK(BM_Add10k_baseline)->Arg(0)->Arg(1)->ArgName("fresh")->Unit(benchmark::kMicrosecond);

// ---- look up and score 10,000 keys (a chain held by 4 pods, 2 of them to its end) -----------------------------
// big: the index also holds 2 M other keys (another pod's), so the chain's entries are spread over large
// tables and most reads miss the caches, as in a router's index.
void BM_LookupScore10k_kvcore(benchmark::State& state) {
    const auto keys = random_keys(10000, 2);
    Index index(direct());
    const ModelId m = index.intern_model("m");
    std::vector<PodId> pods;
    for (int p = 0; p < 4; ++p) {
        pods.push_back(index.intern_pod("pod-" + std::to_string(p)));
        const size_t n = p < 2 ? keys.size() : keys.size() / (p + 1);
        index.apply(pods.back(), m, stored_batch(std::span(keys).first(n)));
    }
    if (state.range(0) != 0) index.apply(index.intern_pod("other"), m, stored_batch(random_keys(2000000, 6)));
    std::vector<PodScore> out(pods.size());
    for (auto _ : state) {
        index.score(m, keys, pods, out);
        benchmark::DoNotOptimize(out.data());
    }
    if (out[0].blocks != keys.size()) state.SkipWithError("wrong score");
}
BENCHMARK(BM_LookupScore10k_kvcore)->Arg(0)->Arg(1)->ArgName("big")->Unit(benchmark::kMicrosecond);

void BM_LookupScore10k_baseline(benchmark::State& state) {
    const auto keys = random_keys(10000, 2);
    NodeIndex index;
    std::vector<std::string> pods;
    for (int p = 0; p < 4; ++p) {
        pods.push_back("pod-" + std::to_string(p));
        const size_t n = p < 2 ? keys.size() : keys.size() / (p + 1);
        index.add(std::span(keys).first(n), pods.back(), "gpu");
    }
    for (auto _ : state) {
        auto s = index.score(keys, pods);
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_LookupScore10k_baseline)->Unit(benchmark::kMicrosecond);

// p50 / p90 / p99 of the per-call times (ns) as counters, in µs.
void report_percentiles(benchmark::State& state, std::vector<double>& ns) {
    std::sort(ns.begin(), ns.end());
    state.counters["p50_us"] = ns[ns.size() / 2] / 1000;
    state.counters["p90_us"] = ns[ns.size() * 90 / 100] / 1000;
    state.counters["p99_us"] = ns[ns.size() * 99 / 100] / 1000;
}

// ---- a 512-block prompt over 100 candidate pods: p50 / p99 per call ----------------------------------------------
// Eight pods hold prefixes of the prompt (512, 400, 256, 128, 64, 32, 16, 8 blocks), as a shared system
// prompt spreads; the other 92 hold 512 blocks of other prompts each. all_hold: every pod holds all 512
// (the worst case: no candidate ever drops out).
template <bool kBaseline>
void score512(benchmark::State& state) {
    const bool all_hold = state.range(0) != 0;
    const auto prompt = random_keys(512, 3);
    Index index(direct());
    NodeIndex base;
    const ModelId m = index.intern_model("m");
    std::vector<PodId> ids;
    std::vector<std::string> names;
    const size_t held[8] = {512, 400, 256, 128, 64, 32, 16, 8};
    for (int p = 0; p < 100; ++p) {
        names.push_back("pod-" + std::to_string(p));
        ids.push_back(index.intern_pod(names.back()));
        const auto other = random_keys(512, 100 + p);
        std::span<const uint64_t> keys = all_hold ? std::span<const uint64_t>(prompt)
                                         : p < 8  ? std::span<const uint64_t>(prompt).first(held[p])
                                                  : std::span<const uint64_t>(other);
        index.apply(ids.back(), m, stored_batch(keys));
        if (kBaseline) base.add(keys, names.back(), "gpu");
    }
    std::vector<PodScore> out(ids.size());
    std::vector<double> ns;
    ns.reserve(1 << 16);
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        if constexpr (kBaseline) {
            auto s = base.score(prompt, names);
            benchmark::DoNotOptimize(s);
        } else {
            index.score(m, prompt, ids, out);
            benchmark::DoNotOptimize(out.data());
        }
        const auto t1 = std::chrono::steady_clock::now();
        if (ns.size() < (1u << 16)) ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
    report_percentiles(state, ns);
    if (!kBaseline && out[0].blocks != 512) state.SkipWithError("wrong score");
}
void BM_Score512x100_kvcore(benchmark::State& state) { score512<false>(state); }
void BM_Score512x100_baseline(benchmark::State& state) { score512<true>(state); }
BENCHMARK(BM_Score512x100_kvcore)->Arg(0)->Arg(1)->ArgName("all_hold");
BENCHMARK(BM_Score512x100_baseline)->Arg(0)->Arg(1)->ArgName("all_hold");

// ---- ingest of decoded events on one core --------------------------------------------------------------------------
// 16 pods; each batch is 16 BlockStored events of 4 blocks x 16 tokens chained on the pod's previous
// block, plus the BlockRemoved of that pod's blocks from 8 batches earlier (a steady state). Direct:
// engine keys are request keys. Mapped: the index hashes each block's tokens with xxh3 (its own keys).
// score_cache: the score cache enabled (every touched key bumps its generation).
void ingest(benchmark::State& state, bool mapped, bool score_cache = false) {
    constexpr int kPods = 16, kBatchesPerPod = 64, kEvents = 16, kBlocks = 4, kBs = 16, kLag = 8;
    IndexConfig cfg = mapped ? IndexConfig{.block_size = kBs} : direct();
    if (score_cache) cfg.score_cache = ScoreCacheConfig{4096, 30000, 5};
    Index index(cfg);
    const ModelId m = index.intern_model("m");
    std::vector<PodId> pods;
    for (int p = 0; p < kPods; ++p) pods.push_back(index.intern_pod("pod-" + std::to_string(p)));
    std::vector<std::vector<EventBatch>> batches(kPods);
    std::mt19937_64 rng(4);
    for (int p = 0; p < kPods; ++p) {
        std::optional<uint64_t> parent;
        std::vector<std::vector<uint64_t>> stored_by_batch;
        for (int b = 0; b < kBatchesPerPod; ++b) {
            EventBatch batch;
            std::vector<uint64_t> mine;
            for (int e = 0; e < kEvents; ++e) {
                BlockStored s;
                s.parent_block_hash = parent;
                s.block_size = kBs;
                for (int k = 0; k < kBlocks; ++k) s.block_hashes.push_back(rng());
                for (int t = 0; t < kBlocks * kBs; ++t) s.token_ids.push_back(static_cast<int32_t>(rng() % 150000));
                parent = s.block_hashes.back();
                mine.insert(mine.end(), s.block_hashes.begin(), s.block_hashes.end() - (e == kEvents - 1 ? 1 : 0));
                batch.events.push_back(std::move(s));
            }
            if (b >= kLag) {
                BlockRemoved r;
                r.block_hashes = stored_by_batch[b - kLag];
                batch.events.push_back(std::move(r));
            }
            stored_by_batch.push_back(std::move(mine));
            batches[p].push_back(std::move(batch));
        }
    }
    int64_t blocks = 0;
    size_t round = 0;
    for (auto _ : state) {
        // One pass: every pod's batches once, interleaved as they would arrive.
        if (round == 0) {
            state.PauseTiming();
            for (PodId p : pods) index.remove_pod(p), index.intern_pod("pod-" + std::to_string(p));
            state.ResumeTiming();
        }
        for (int p = 0; p < kPods; ++p) {
            const EventBatch& b = batches[p][round];
            index.apply(pods[p], m, b);
            for (const auto& ev : b.events) {
                if (auto* s = std::get_if<BlockStored>(&ev)) blocks += static_cast<int64_t>(s->block_hashes.size());
                if (auto* r = std::get_if<BlockRemoved>(&ev)) blocks += static_cast<int64_t>(r->block_hashes.size());
            }
        }
        round = (round + 1) % kBatchesPerPod;
    }
    state.counters["blocks_per_s"] = benchmark::Counter(static_cast<double>(blocks), benchmark::Counter::kIsRate);
}
void BM_Ingest_direct(benchmark::State& state) { ingest(state, false); }
void BM_Ingest_mapped_xxh3(benchmark::State& state) { ingest(state, true); }
void BM_Ingest_direct_score_cache(benchmark::State& state) { ingest(state, false, true); }
void BM_Ingest_mapped_xxh3_score_cache(benchmark::State& state) { ingest(state, true, true); }
BENCHMARK(BM_Ingest_direct)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Ingest_mapped_xxh3)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Ingest_direct_score_cache)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Ingest_mapped_xxh3_score_cache)->Unit(benchmark::kMicrosecond);

// ---- the score cache (score_tokens): uncached vs hit vs miss -----------------------------------------------------
// The index hashes tokens with xxh3 (16-token blocks). 512: a 512-block prompt over 100 candidates, the
// first eight holding prefixes as in score512 (512 ... 8 blocks); 10k: a 10,000-block prompt over 4
// candidates (2 hold it all, then 1/3 and 1/4), as in LookupScore10k. mode 0: the cache off (the
// uncached path); 1: a hit (the same prompt and candidates each call); 2: a miss: each call scores
// another prompt (the same but for its last block's tokens, so the index work is the same), cycling
// through more prompts than the cache keeps, so each is new to it and its insertion evicts another.
// Every mode reads its prompt from one of 4 x the cache's entries buffers in turn (mode 0 the same
// prompts as mode 2, mode 1 copies of one prompt), as a router reads each request from a new buffer:
// hashing a prompt just read from cold memory costs more than hashing the one scored a moment ago.
struct PromptWorld {
    std::vector<int32_t> prompt;
    std::vector<std::vector<int32_t>> variants;  // the prompt with another last block, or copies of it
    std::vector<PodId> candidates;
    uint32_t expect_blocks;  // candidate 0's run
};

PromptWorld fill_prompt_world(Index& index, size_t blocks, bool many_pods, size_t variants, bool copies) {
    PromptWorld w;
    std::mt19937 rng(9);
    w.prompt.resize(blocks * 16);
    for (auto& t : w.prompt) t = static_cast<int32_t>(rng() % 150000);
    const ModelId m = index.intern_model("m");
    const size_t pods = many_pods ? 100 : 4;
    for (size_t p = 0; p < pods; ++p) {
        w.candidates.push_back(index.intern_pod("pod-" + std::to_string(p)));
        size_t held = 0;
        if (many_pods) {
            const size_t prefix[8] = {512, 400, 256, 128, 64, 32, 16, 8};
            held = p < 8 ? prefix[p] : 0;
        } else {
            held = p < 2 ? blocks : blocks / (p + 1);
        }
        std::vector<int32_t> tokens = w.prompt;
        if (held == 0) {  // another prompt of the same length
            for (auto& t : tokens) t = static_cast<int32_t>(rng() % 150000);
            held = blocks;
        }
        BlockStored s;
        s.block_size = 16;
        s.block_hashes = random_keys(held, static_cast<uint32_t>(1000 + p));  // engine keys, mapped
        s.token_ids.assign(tokens.begin(), tokens.begin() + held * 16);
        EventBatch b;
        b.events.push_back(std::move(s));
        index.apply(w.candidates.back(), m, b);
    }
    for (size_t v = 0; v < variants; ++v) {
        w.variants.push_back(w.prompt);
        if (copies) continue;
        for (size_t t = (blocks - 1) * 16; t < blocks * 16; ++t) w.variants.back()[t] = static_cast<int32_t>(rng() % 150000);
    }
    w.expect_blocks = static_cast<uint32_t>(blocks);
    return w;
}

void score_cache_bench(benchmark::State& state, size_t blocks, bool many_pods) {
    const int mode = static_cast<int>(state.range(0));
    const uint32_t entries = many_pods ? 256 : 16;  // 1024 x 32 KB or 64 x 640 KB of prompts
    IndexConfig cfg{.block_size = 16};
    if (mode != 0) cfg.score_cache = ScoreCacheConfig{entries, 30000, 5};
    Index index(cfg);
    const PromptWorld w = fill_prompt_world(index, blocks, many_pods, 4 * entries, mode == 1);
    const ModelId m = index.intern_model("m");
    std::vector<PodScore> out(w.candidates.size());
    std::vector<double> ns;
    ns.reserve(1 << 16);
    size_t v = 0;
    index.score_tokens(m, w.prompt, {}, w.candidates, out);  // mode 1: the record the calls hit
    for (auto _ : state) {
        const std::vector<int32_t>& prompt = w.variants[v];
        v = (v + 1) % w.variants.size();
        const auto t0 = std::chrono::steady_clock::now();
        index.score_tokens(m, prompt, {}, w.candidates, out);
        benchmark::DoNotOptimize(out.data());
        const auto t1 = std::chrono::steady_clock::now();
        if (ns.size() < (1u << 16)) ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
    report_percentiles(state, ns);
    const uint32_t want = mode == 1 ? w.expect_blocks : w.expect_blocks - 1;
    if (out[0].blocks != want) state.SkipWithError("wrong score");
    const IndexCounters c = index.counters();
    if (mode == 1 && c.score_cache_misses != 1) state.SkipWithError("the hits missed");
    if (mode == 2 && c.score_cache_hits != 0) state.SkipWithError("the misses hit");
}
void BM_ScoreCache512x100(benchmark::State& state) { score_cache_bench(state, 512, true); }
void BM_ScoreCache10k(benchmark::State& state) { score_cache_bench(state, 10000, false); }
BENCHMARK(BM_ScoreCache512x100)->DenseRange(0, 2)->ArgName("uncached0_hit1_miss2");
BENCHMARK(BM_ScoreCache10k)->DenseRange(0, 2)->ArgName("uncached0_hit1_miss2")->Unit(benchmark::kMicrosecond);

// ---- bytes per (block, pod) entry ---------------------------------------------------------------------------------
// 100,000 keys; each held by 1 or 2 pods (1.5 on average). Heap bytes from mallinfo2 before and after.
void BM_BytesPerEntry(benchmark::State& state) {
    const int which = static_cast<int>(state.range(0));  // 0 kvcore direct, 1 baseline
    double per_entry = 0, charged = 0;
    for (auto _ : state) {
        const auto keys = random_keys(100000, 5);
        const size_t before = mallinfo2().uordblks;
        size_t entries = 0;
        if (which == 0) {
            auto index = std::make_unique<Index>(direct());
            const ModelId m = index->intern_model("m");
            const PodId a = index->intern_pod("pod-a"), b = index->intern_pod("pod-b");
            index->apply(a, m, stored_batch(keys));
            index->apply(b, m, stored_batch(std::span(keys).first(keys.size() / 2)));
            const auto c = index->counters();
            entries = c.holders;
            per_entry = double(mallinfo2().uordblks - before) / double(entries);
            charged = double(c.charged_bytes) / double(entries);
        } else {
            auto index = std::make_unique<NodeIndex>();
            index->add(keys, "pod-a", "gpu");
            index->add(std::span(keys).first(keys.size() / 2), "pod-b", "gpu");
            entries = keys.size() * 3 / 2;
            per_entry = double(mallinfo2().uordblks - before) / double(entries);
        }
    }
    state.counters["heap_bytes_per_entry"] = per_entry;
    if (which == 0) state.counters["charged_bytes_per_entry"] = charged;
}
BENCHMARK(BM_BytesPerEntry)->Arg(0)->Arg(1)->ArgName("baseline")->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
