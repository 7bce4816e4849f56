// SPDX-License-Identifier: Apache-2.0
// Cost of recording into a kvc_recorder, against anchors measured in the same run:
// - a plain add and a relaxed atomic fetch_add (what a naive counter pays),
// - the same atomic shared by two threads (what a naive recorder pays under concurrency),
// - a representative cache lookup (an LRU map of KV entries) with and without recording, against one
//   plain in-memory increment per lookup (the cheapest statistic there is) measured the same way.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "kvcore/kvcore.h"
#include "lru_workload.h"
#include "paired_overhead.h"
#include "time_per_item.h"

namespace {

kvc_recorder* make_recorder(uint32_t layers) {
    kvc_recorder_options* options = nullptr;
    kvc_recorder* recorder = nullptr;
    if (kvc_recorder_options_create(&options) != KVC_OK || kvc_recorder_options_set_layers(options, layers) != KVC_OK ||
        kvc_recorder_create(options, &recorder) != KVC_OK) {
        std::abort();
    }
    kvc_recorder_options_destroy(options);
    return recorder;
}

// ---- anchors -------------------------------------------------------------------------------------

void BM_Anchor_PlainAdd(benchmark::State& state) {
    uint64_t counter = 0;
    uint32_t i = 0;
    for (auto _ : state) {
        counter += (++i & 1);
        benchmark::DoNotOptimize(counter);
    }
}
BENCHMARK(BM_Anchor_PlainAdd);

void BM_Anchor_AtomicFetchAdd(benchmark::State& state) {
    static std::atomic<uint64_t> counter{0};
    uint32_t i = 0;
    for (auto _ : state) counter.fetch_add(++i & 1, std::memory_order_relaxed);
}
BENCHMARK(BM_Anchor_AtomicFetchAdd);

// The floor for any C API call: an exported function that does nothing but return a constant.
void BM_Anchor_EmptyApiCall(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(kvc_version_number());
}
BENCHMARK(BM_Anchor_EmptyApiCall);
BENCHMARK(BM_Anchor_AtomicFetchAdd)->Threads(2)->UseRealTime();

// ---- recording -----------------------------------------------------------------------------------

void BM_RecordAccess(benchmark::State& state) {
    static kvc_recorder* recorder = make_recorder(0);
    uint32_t i = 0;
    for (auto _ : state) kvc_recorder_record_access(recorder, ++i & 1);
    if (state.thread_index() == 0) state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordAccess);
// Two threads recording into one recorder: per-thread time should match one thread (no false sharing).
BENCHMARK(BM_RecordAccess)->Threads(2)->UseRealTime();

// The batch call, as a prefix lookup would make it: one call per range(0) block outcomes.
void BM_RecordAccesses(benchmark::State& state) {
    static kvc_recorder* recorder = make_recorder(0);
    std::vector<uint8_t> outcomes(static_cast<size_t>(state.range(0)));
    for (size_t i = 0; i < outcomes.size(); ++i) outcomes[i] = i % 3 != 0;
    for (auto _ : state) {
        kvc_recorder_record_accesses(recorder, outcomes.data(), outcomes.size());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    report_time_per_item(state, "ns_per_access", state.range(0));
}
BENCHMARK(BM_RecordAccesses)->Arg(4)->Arg(16)->Arg(64)->Arg(1024);

// A bit per access, `count` accesses per call.
void BM_RecordAccessBits(benchmark::State& state) {
    static kvc_recorder* recorder = make_recorder(0);
    const auto count = static_cast<uint32_t>(state.range(0));
    uint64_t hits = 0x6db6db6db6db6db6ull;  // 2 hits in 3, like the byte batches
    for (auto _ : state) {
        kvc_recorder_record_access_bits(recorder, hits, count);
        hits = hits << 1 | hits >> 63;
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    report_time_per_item(state, "ns_per_access", state.range(0));
}
BENCHMARK(BM_RecordAccessBits)->Arg(16)->Arg(64);

// One prefix lookup of `blocks` blocks per call, 2/3 of them hit (a chat turn over a cached system
// prompt): 48 blocks is a 768-token prompt at block size 16, 2,048 a 32k-token one.
void BM_RecordPrefixLookup(benchmark::State& state) {
    static kvc_recorder* recorder = make_recorder(0);
    const auto blocks = static_cast<uint64_t>(state.range(0));
    for (auto _ : state) {
        kvc_recorder_record_prefix_lookup(recorder, blocks * 2 / 3, blocks - blocks * 2 / 3);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    report_time_per_item(state, "ns_per_access", state.range(0));
}
BENCHMARK(BM_RecordPrefixLookup)->Arg(48)->Arg(2048);

void BM_RecordLayerAccess(benchmark::State& state) {
    static kvc_recorder* recorder = make_recorder(32);
    uint32_t i = 0;
    for (auto _ : state) {
        ++i;
        kvc_recorder_record_layer_access(recorder, i & 31, i & 1);
    }
}
BENCHMARK(BM_RecordLayerAccess);

void BM_RecordTokens(benchmark::State& state) {
    static kvc_recorder* recorder = make_recorder(0);
    for (auto _ : state) kvc_recorder_record_tokens(recorder, 512, 256);
}
BENCHMARK(BM_RecordTokens);

void BM_Snapshot(benchmark::State& state) {
    kvc_recorder* recorder = make_recorder(32);
    for (int i = 0; i < 1000; ++i) kvc_recorder_record_layer_access(recorder, i & 31, i & 1);
    for (auto _ : state) {
        kvc_stats* stats = nullptr;
        kvc_recorder_snapshot(recorder, &stats);
        benchmark::DoNotOptimize(kvc_stats_hit_rate(stats));
        kvc_stats_destroy(stats);
    }
    kvc_recorder_destroy(recorder);
}
BENCHMARK(BM_Snapshot);

// ---- a representative cache lookup -------------------------------------------------------------
// SmallMind-style LRU store (bench/lru_workload.h). Every variant shares one warmed store and one key
// stream, so they touch the same memory layout.

enum class After {
    kNothing,
    kPlainCounter,   // anchor: the cheapest statistic, one non-atomic increment of a hit or miss count
    kEmptyApiCall,   // anchor: any exported call after each lookup
    kRecord,         // kvc_recorder_record_access per lookup
    kRecordBatched,  // kvc_recorder_record_accesses per 16 lookups, as a 16-block prefix lookup
    kRecordBits,     // kvc_recorder_record_access_bits per 64 lookups
    // The parts of kRecordBits, to see where its cost goes:
    kFlushCounterOnly,  // the caller's count to 64
    kBitsNoCall,        // the caller's bit per lookup and its count, no call
    kCallNoBits,        // the count and one call per 64, no bit per lookup
};

LruWorkload& shared_store() {
    static LruWorkload shared;
    return shared;
}

// What a caller keeps between lookups to record them in batches.
struct Pending {
    static constexpr size_t kPrefixBlocks = 16;
    uint8_t outcomes[kPrefixBlocks];
    size_t batched = 0;
    uint64_t bits = 0;
    unsigned nbits = 0;
    uint64_t plain_counts[2] = {0, 0};
};

// n lookups of the shared store's key stream, each followed by kAfter.
template <After kAfter>
[[gnu::always_inline]] inline void lookup_loop(kvc_recorder* recorder, Pending& p, size_t n) {
    LruWorkload& store = shared_store();
    uint64_t bits = p.bits;  // in registers, as a caller would keep them
    unsigned nbits = p.nbits;
    for (size_t k = 0; k < n; ++k) {
        const bool hit = store.lookup();
        if constexpr (kAfter == After::kRecord) kvc_recorder_record_access(recorder, hit);
        if constexpr (kAfter == After::kEmptyApiCall) benchmark::DoNotOptimize(kvc_version_number() + hit);
        if constexpr (kAfter == After::kRecordBatched) {
            // A prefix lookup of kPrefixBlocks blocks reports its outcomes in one call.
            p.outcomes[p.batched++] = hit;
            if (p.batched == Pending::kPrefixBlocks) {
                kvc_recorder_record_accesses(recorder, p.outcomes, Pending::kPrefixBlocks);
                p.batched = 0;
            }
        }
        if constexpr (kAfter == After::kRecordBits) {
            // The cheapest path: a bit per lookup, one call per 64.
            bits |= uint64_t{hit} << nbits;
            if (++nbits == 64) {
                kvc_recorder_record_access_bits(recorder, bits, 64);
                bits = 0;
                nbits = 0;
            }
        }
        if constexpr (kAfter == After::kPlainCounter) ++p.plain_counts[hit];
        if constexpr (kAfter == After::kFlushCounterOnly) {
            if (++nbits == 64) {
                benchmark::DoNotOptimize(nbits);
                nbits = 0;
            }
        }
        if constexpr (kAfter == After::kBitsNoCall) {
            bits |= uint64_t{hit} << nbits;
            if (++nbits == 64) {
                benchmark::DoNotOptimize(bits);
                bits = 0;
                nbits = 0;
            }
        }
        if constexpr (kAfter == After::kCallNoBits) {
            if (++nbits == 64) {
                kvc_recorder_record_access_bits(recorder, 0x6db6db6db6db6db6ull, 64);
                nbits = 0;
            }
        }
        benchmark::DoNotOptimize(hit);
    }
    p.bits = bits;
    p.nbits = nbits;
}

// The same loop, the lookup inlined into it, at kLayouts different code addresses. Where a loop sits
// decides its alignment and how its branches (the lookup's hard-to-predict hit-or-miss branch among
// them) share predictor entries: single copies of loops differing only in that measured from -3 % to
// +2.5 % apart, which swamps a 1 % effect. Drawing a layout at random for every timed chunk averages it
// out, the approach of Curtsinger and Berger's STABILIZER (ASPLOS 2013). Each copy is its own function
// and starts with kShift * 4 bytes of padding that is jumped over, never executed.
constexpr size_t kLayouts = 16;
using ChunkFn = void (*)(kvc_recorder*, Pending&, size_t);

template <After kAfter, int kShift>
[[gnu::noinline, gnu::flatten]] void lookup_chunk_at(kvc_recorder* recorder, Pending& p, size_t n) {
#if defined(__x86_64__)
    if constexpr (kShift > 0) asm volatile("jmp 1f\n\t.skip %c0, 0x90\n1:" : : "i"(kShift * 4));  // .skip 0 warns
#endif
    lookup_loop<kAfter>(recorder, p, n);
}

template <After kAfter, size_t... kShifts>
constexpr std::array<ChunkFn, kLayouts> make_layouts(std::index_sequence<kShifts...>) {
    return {&lookup_chunk_at<kAfter, static_cast<int>(kShifts)>...};
}
template <After kAfter>
constexpr std::array<ChunkFn, kLayouts> kChunkLayouts = make_layouts<kAfter>(std::make_index_sequence<kLayouts>());

template <After kAfter>
void BM_CacheLookup(benchmark::State& state) {
    static kvc_recorder* recorder = make_recorder(0);
    Pending pending;
    for (auto _ : state) kChunkLayouts<kAfter>[0](recorder, pending, 1);
}
BENCHMARK(BM_CacheLookup<After::kNothing>)->Name("BM_CacheLookup/unrecorded");
BENCHMARK(BM_CacheLookup<After::kPlainCounter>)->Name("BM_CacheLookup/anchor_plain_counter");
// Separates the cost of any call after the lookup from the cost of recording.
BENCHMARK(BM_CacheLookup<After::kEmptyApiCall>)->Name("BM_CacheLookup/empty_api_call");
BENCHMARK(BM_CacheLookup<After::kRecord>)->Name("BM_CacheLookup/recorded");
BENCHMARK(BM_CacheLookup<After::kRecordBatched>)->Name("BM_CacheLookup/recorded_per_16_block_prefix");
BENCHMARK(BM_CacheLookup<After::kRecordBits>)->Name("BM_CacheLookup/recorded_bits_per_64");

// The overhead, paired (bench/paired_overhead.h): chunks of 4,096 plain lookups against chunks of
// 4,096 followed by kAfter, over the same store and key stream, each chunk through a layout drawn at
// random. kNothing against itself (A/A) shows the method's own bias and noise.
template <After kAfter>
void BM_LookupOverhead(benchmark::State& state) {
    static kvc_recorder* recorder = make_recorder(0);
    constexpr size_t kChunk = 4096;
    shared_store();  // built and warmed before the first timed chunk
    Pending pending;
    static unsigned runs = 0;
    std::mt19937 rng(++runs);  // fresh layout draws for each repetition
    measure_paired_overhead(state, kChunk, [&](bool recorded) {
        const ChunkFn chunk = (recorded ? kChunkLayouts<kAfter> : kChunkLayouts<After::kNothing>)[rng() % kLayouts];
        const auto start = std::chrono::steady_clock::now();
        chunk(recorder, pending, kChunk);
        return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    });
}
BENCHMARK(BM_LookupOverhead<After::kNothing>)->Name("BM_LookupOverhead/a_a_control");
BENCHMARK(BM_LookupOverhead<After::kPlainCounter>)->Name("BM_LookupOverhead/anchor_plain_counter");
BENCHMARK(BM_LookupOverhead<After::kEmptyApiCall>)->Name("BM_LookupOverhead/empty_api_call");
BENCHMARK(BM_LookupOverhead<After::kRecord>)->Name("BM_LookupOverhead/recorded");
BENCHMARK(BM_LookupOverhead<After::kRecordBatched>)->Name("BM_LookupOverhead/recorded_per_16_block_prefix");
BENCHMARK(BM_LookupOverhead<After::kRecordBits>)->Name("BM_LookupOverhead/recorded_bits_per_64");
BENCHMARK(BM_LookupOverhead<After::kFlushCounterOnly>)->Name("BM_LookupOverhead/part_flush_counter");
BENCHMARK(BM_LookupOverhead<After::kBitsNoCall>)->Name("BM_LookupOverhead/part_bits_no_call");
BENCHMARK(BM_LookupOverhead<After::kCallNoBits>)->Name("BM_LookupOverhead/part_call_no_bits");

}  // namespace

BENCHMARK_MAIN();
