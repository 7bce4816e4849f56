// SPDX-License-Identifier: Apache-2.0
// The recording overhead on a representative lookup, as a repeatable figure: run under callgrind with
// its cache simulation (command in bench/RESULTS.md), which counts instructions and simulated cache misses
// per function. Timing the same comparison on a shared VM moves by +-2 % from run to run.
//
// Alternating chunks of 4,096 lookups of one warmed LruCache go through unrecorded() and recorded(),
// so both see the same store and key stream; recorded() adds a bit per lookup and one
// kvc_recorder_record_access_bits call per 64.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "kvcore/kvcore.h"
#include "lru_workload.h"

namespace {

constexpr size_t kChunk = 4096;

[[gnu::noinline]] size_t unrecorded(LruWorkload& w) {
    size_t hits = 0;
    for (size_t i = 0; i < kChunk; ++i) hits += w.lookup();
    return hits;
}

[[gnu::noinline]] size_t recorded(LruWorkload& w, kvc_recorder* recorder) {
    size_t hits = 0;
    uint64_t bits = 0;
    for (size_t i = 0; i < kChunk; ++i) {
        const bool hit = w.lookup();
        hits += hit;
        bits |= uint64_t{hit} << (i % 64);
        if (i % 64 == 63) {
            kvc_recorder_record_access_bits(recorder, bits, 64);
            bits = 0;
        }
    }
    return hits;
}

}  // namespace

int main(int argc, char** argv) {
    const size_t chunks = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 64;
    kvc_recorder* recorder = nullptr;
    if (kvc_recorder_create(nullptr, &recorder) != KVC_OK) return 1;
    LruWorkload w;
    size_t hits[2] = {0, 0};
    for (size_t c = 0; c < chunks; ++c) {
        hits[0] += unrecorded(w);
        hits[1] += recorded(w, recorder);
    }
    kvc_stats* stats = nullptr;
    kvc_recorder_snapshot(recorder, &stats);
    std::printf("lookups per variant %zu, hit rate unrecorded %.3f recorded %.3f (recorder says %.3f)\n",
                chunks * kChunk, static_cast<double>(hits[0]) / static_cast<double>(chunks * kChunk),
                static_cast<double>(hits[1]) / static_cast<double>(chunks * kChunk), kvc_stats_hit_rate(stats));
    const bool counted = kvc_stats_lookups(stats) == chunks * kChunk && kvc_stats_hits(stats) == hits[1];
    kvc_stats_destroy(stats);
    kvc_recorder_destroy(recorder);
    return counted ? 0 : 1;
}
