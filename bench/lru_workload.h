/* SPDX-License-Identifier: Apache-2.0 */
// The representative lookup both recording-overhead benchmarks measure (kvcore_stats_bench and
// kvcore_lookup_overhead): a warmed LruCache of 64 Ki entries and a stream of 1 Mi keys drawn from
// 96 Ki, so that about 2/3 of lookups hit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "lru_cache.h"

struct LruWorkload {
    std::vector<uint64_t> keys = std::vector<uint64_t>(1 << 20);  // a power of two: the stream wraps by mask
    LruCache cache{64 * 1024};
    size_t next = 0;

    LruWorkload() {
        std::mt19937_64 rng(7);
        std::uniform_int_distribution<uint64_t> dist(0, 96 * 1024 - 1);
        for (auto& k : keys) k = dist(rng) * 0x9E3779B97F4A7C15ull;
        for (uint64_t k : keys) cache.access(k);
    }
    bool lookup() { return cache.access(keys[next++ & (keys.size() - 1)]); }
};
