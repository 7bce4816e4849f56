// SPDX-License-Identifier: Apache-2.0
// Pool benchmarks. Pool operations go through libkvcore.so's C API (what an embedder pays, call
// included); hashing is measured on the C++ hasher with the C API's cost per call amortised away.
// Anchors in the same run: an empty exported call, a vector free list, std::unordered_map lookups, and
// OpenSSL's one-shot SHA256 over the same bytes.
#include <benchmark/benchmark.h>

#define OPENSSL_SUPPRESS_DEPRECATED  // the low-level SHA-256 calls kvcore uses
#include <openssl/sha.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <chrono>
#include <memory>
#include <random>
#include <numeric>
#include <unordered_map>
#include <vector>

#include "kvcore/kvcore.h"
#include "paired_overhead.h"
#include "time_per_item.h"
#include "pool/block_hash.h"

namespace {

kvc_pool* make_pool(uint32_t blocks, uint32_t block_size = 16, bool statistics = true) {
    kvc_pool_options* o = nullptr;
    kvc_pool* pool = nullptr;
    kvc_pool_options_create(&o);
    kvc_pool_options_set_num_blocks(o, blocks);
    kvc_pool_options_set_block_size(o, block_size);
    kvc_pool_options_set_statistics(o, statistics ? 1 : 0);
    kvc_pool_create(o, &pool);
    kvc_pool_options_destroy(o);
    return pool;
}

// ---- allocate + free -------------------------------------------------------------------------------

void BM_Anchor_VectorFreeList(benchmark::State& state) {
    std::vector<int32_t> free_list(4096);
    std::iota(free_list.begin(), free_list.end(), 1);
    for (auto _ : state) {
        const int32_t b = free_list.back();
        free_list.pop_back();
        benchmark::DoNotOptimize(b);
        free_list.push_back(b);
    }
    report_time_per_item(state, "ns_per_block", 1);
}
BENCHMARK(BM_Anchor_VectorFreeList);

void BM_AllocateFree_OneBlock(benchmark::State& state) {
    kvc_pool* pool = make_pool(4096);
    // Warm: every block has been through the lists once.
    std::vector<int32_t> all(4095);
    kvc_pool_allocate_blocks(pool, all.data(), all.size());
    kvc_pool_free_blocks(pool, all.data(), all.size());
    int32_t b = 0;
    for (auto _ : state) {
        kvc_pool_allocate_blocks(pool, &b, 1);
        kvc_pool_free_blocks(pool, &b, 1);
    }
    report_time_per_item(state, "ns_per_block", 1);
    kvc_pool_destroy(pool);
}
BENCHMARK(BM_AllocateFree_OneBlock);

void BM_AllocateFree_Batch(benchmark::State& state) {
    kvc_pool* pool = make_pool(4096);
    std::vector<int32_t> blocks(static_cast<size_t>(state.range(0)));
    for (auto _ : state) {
        kvc_pool_allocate_blocks(pool, blocks.data(), blocks.size());
        kvc_pool_free_blocks(pool, blocks.data(), blocks.size());
    }
    report_time_per_item(state, "ns_per_block", state.range(0));
    kvc_pool_destroy(pool);
}
BENCHMARK(BM_AllocateFree_Batch)->Arg(16)->Arg(64)->Arg(256);

// ---- cached-prefix lookup (hashes computed at sequence creation, excluded) ------------------------

constexpr int kPrefixBlocks = 128;

void BM_CachedPrefixLookup(benchmark::State& state) {
    kvc_pool* pool = make_pool(1 << 16);
    // Many cached prefixes, so the map is realistically full: 256 prompts of 128 blocks.
    std::vector<int32_t> prompt(kPrefixBlocks * 16 + 1);
    kvc_sequence_id probe = 0;
    for (int p = 0; p < 256; ++p) {
        for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(p * 100000 + i);
        kvc_sequence_id s = 0;
        kvc_pool_sequence_create(pool, prompt.data(), prompt.size(), nullptr, &s);
        kvc_pool_allocate(pool, s, prompt.size(), nullptr);
        kvc_pool_sequence_free(pool, s);
    }
    kvc_pool_sequence_create(pool, prompt.data(), prompt.size(), nullptr, &probe);
    size_t cached = 0;
    for (auto _ : state) {
        kvc_pool_cached_prefix(pool, probe, &cached);
        benchmark::DoNotOptimize(cached);
    }
    if (cached != kPrefixBlocks * 16) state.SkipWithError("the prefix was not cached");
    report_time_per_item(state, "ns_per_block", kPrefixBlocks);
    kvc_pool_destroy(pool);
}
BENCHMARK(BM_CachedPrefixLookup);

void BM_Anchor_UnorderedMapLookup(benchmark::State& state) {
    std::unordered_map<uint64_t, int32_t> map;
    std::vector<uint64_t> keys;
    for (int i = 0; i < 256 * kPrefixBlocks; ++i) {
        const uint64_t k = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
        map[k] = i;
        if (i >= 255 * kPrefixBlocks) keys.push_back(k);
    }
    for (auto _ : state) {
        int found = 0;
        for (uint64_t k : keys) found += map.find(k) != map.end();
        benchmark::DoNotOptimize(found);
    }
    report_time_per_item(state, "ns_per_block", kPrefixBlocks);
}
BENCHMARK(BM_Anchor_UnorderedMapLookup);

// ---- what statistics cost the pool's own lookup (issue #2's < 1 %) -------------------------------
// A request's admission: hash its prompt, find the longest cached prefix, take those blocks and new
// ones for the rest (evicting the least recently used cached blocks), register its full blocks. This is
// an inference engine's KV cache lookup (vLLM's get_computed_blocks + allocate_slots), and the one the
// pool records statistics in. Chat-shaped requests: one of 8 system prompts of 512 tokens, then a new
// user turn of 256, so 2/3 of each prompt's 48 blocks hit. xxh3, the cheaper hash, so the lookup is not
// padded by hashing. A chunk builds 32 prompts (untimed), admits them (timed) and frees them (untimed).
class AdmissionStream {
public:
    static constexpr size_t kRequests = 32, kSystemTokens = 512, kTurnTokens = 256;

    explicit AdmissionStream(bool statistics) : pool_(make_pool(4096, 16, statistics)) {
        for (int warm = 0; warm < 16; ++warm) admit_chunk();  // fill the cache: admissions evict
    }
    ~AdmissionStream() { kvc_pool_destroy(pool_); }
    AdmissionStream(const AdmissionStream&) = delete;
    AdmissionStream& operator=(const AdmissionStream&) = delete;

    double admit_chunk() {
        for (std::vector<int32_t>& prompt : prompts_) build_prompt(prompt);  // the caller's work: untimed
        kvc_sequence_id seqs[kRequests];
        const auto start = std::chrono::steady_clock::now();
        for (size_t i = 0; i < kRequests; ++i) {
            if (kvc_pool_sequence_create(pool_, prompts_[i].data(), prompts_[i].size(), nullptr, &seqs[i]) != KVC_OK ||
                kvc_pool_allocate(pool_, seqs[i], prompts_[i].size(), nullptr) != KVC_OK) {
                std::abort();
            }
        }
        const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
        for (kvc_sequence_id seq : seqs) kvc_pool_sequence_free(pool_, seq);
        return ns;
    }

private:
    void build_prompt(std::vector<int32_t>& prompt) {
        const uint64_t r = request_++;
        for (size_t i = 0; i < kSystemTokens; ++i) prompt[i] = static_cast<int32_t>((r % 8) * 1000 + i);
        for (size_t i = 0; i < kTurnTokens; ++i) {
            prompt[kSystemTokens + i] = static_cast<int32_t>((r * kTurnTokens + i) * 7919 % 151000);  // a real vocab's range
        }
    }

    kvc_pool* pool_;
    std::vector<std::vector<int32_t>> prompts_ =
        std::vector<std::vector<int32_t>>(kRequests, std::vector<int32_t>(kSystemTokens + kTurnTokens));
    uint64_t request_ = 0;
};

// Where a pool's memory lies shifts its admission time by a few tenths of a per cent either way (A/A:
// two pools, both keeping statistics), and a run's pools lie where they happen to, so the benchmark
// keeps kPairs pairs of pools and every iteration draws one pair at random: the median ratio averages
// over 16 placements per run (with 4, the A/A median of a run still strayed by up to 0.4 %). The
// untreated pool of a pair keeps no statistics, unless kControl (A/A, the method's own bias and noise).
template <bool kControl>
void BM_AdmissionStatsOverhead(benchmark::State& state) {
    constexpr size_t kPairs = 16;
    std::vector<std::unique_ptr<AdmissionStream>> untreated, treated;
    for (size_t i = 0; i < kPairs; ++i) {  // which of a pair is allocated first alternates
        if (i % 2 == 1) treated.push_back(std::make_unique<AdmissionStream>(true));
        untreated.push_back(std::make_unique<AdmissionStream>(kControl));
        if (i % 2 == 0) treated.push_back(std::make_unique<AdmissionStream>(true));
    }
    static unsigned runs = 0;
    std::mt19937 rng(++runs);
    size_t pair = 0;
    int chunks_in_iteration = 0;
    measure_paired_overhead(state, AdmissionStream::kRequests, [&](bool with_stats) {
        if (chunks_in_iteration++ % 4 == 0) pair = rng() % kPairs;  // an iteration runs 4 chunks
        return (with_stats ? treated : untreated)[pair]->admit_chunk();
    });
}
BENCHMARK(BM_AdmissionStatsOverhead<true>)->Name("BM_AdmissionStatsOverhead/a_a_control");
BENCHMARK(BM_AdmissionStatsOverhead<false>)->Name("BM_AdmissionStatsOverhead/statistics");

// ---- hashing ------------------------------------------------------------------------------------

std::vector<int32_t> hash_tokens() {
    std::vector<int32_t> t(4096);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>((i * 7919) % 151000);  // a real vocab range
    return t;
}

void BM_HashBlocks(benchmark::State& state) {
    const auto algo = static_cast<kvcore::pool::HashAlgo>(state.range(0));
    const kvcore::pool::BlockHasher hasher(algo, "42");
    const auto tokens = hash_tokens();
    for (auto _ : state) benchmark::DoNotOptimize(hasher.hash_blocks(tokens, 16, {}));
    state.SetLabel(kvcore::pool::hash_algo_name(algo));
    report_time_per_item(state, "ns_per_token", static_cast<int64_t>(tokens.size()));
}
BENCHMARK(BM_HashBlocks)->Arg(1)->Arg(0);

// OpenSSL's SHA-256 (the same Init/Update/Final calls) over 80 bytes, the size of one 16-token block's
// CBOR: the floor for sha256_cbor on this CPU.
void BM_Anchor_Sha256Of80Bytes(benchmark::State& state) {
    unsigned char in[80] = {1}, out[32];
    for (auto _ : state) {
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, in, sizeof in);
        SHA256_Final(out, &ctx);
        benchmark::DoNotOptimize(out);
    }
    report_time_per_item(state, "ns_per_token", 16);
}
BENCHMARK(BM_Anchor_Sha256Of80Bytes);

// xxh3-128 over 88 bytes (parent 16 + keys 8 + 16 tokens): the floor for kvcore's fast hash.
void BM_Anchor_Xxh3Of88Bytes(benchmark::State& state) {
    unsigned char in[88] = {1};
    for (auto _ : state) {
        benchmark::DoNotOptimize(in);
        benchmark::DoNotOptimize(XXH3_128bits(in, sizeof in));
    }
    report_time_per_item(state, "ns_per_token", 16);
}
BENCHMARK(BM_Anchor_Xxh3Of88Bytes);

// ---- a scheduler step: one token appended to each of 1,000 running sequences ---------------------

void BM_DecodeStep1000(benchmark::State& state) {
    constexpr int kSequences = 1000, kStepsPerRound = 256;
    kvc_pool* pool = make_pool(1 << 16);
    std::vector<kvc_sequence_id> seqs(kSequences);
    std::vector<int32_t> prompt(100);
    auto admit = [&] {
        for (int s = 0; s < kSequences; ++s) {
            for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(s * 1000 + i);
            kvc_pool_sequence_create(pool, prompt.data(), prompt.size(), nullptr, &seqs[s]);
            kvc_pool_allocate(pool, seqs[s], prompt.size(), nullptr);
        }
    };
    admit();
    int step = 0;
    for (auto _ : state) {
        for (int s = 0; s < kSequences; ++s) {
            const int32_t token = step + s;
            if (kvc_pool_append(pool, seqs[s], &token, 1) != KVC_OK) state.SkipWithError(kvc_last_error_message());
        }
        if (++step == kStepsPerRound) {  // keep the pool from filling: start a new batch
            state.PauseTiming();
            for (auto s : seqs) kvc_pool_sequence_free(pool, s);
            admit();
            step = 0;
            state.ResumeTiming();
        }
    }
    report_time_per_item(state, "us_per_step", 1);
    kvc_pool_destroy(pool);
}
BENCHMARK(BM_DecodeStep1000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
