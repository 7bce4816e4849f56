/* SPDX-License-Identifier: Apache-2.0 */
// A benchmark's time per item as a counter (e.g. ns_per_token), for benchmarks whose iteration handles
// many items: Google Benchmark's rate counter, inverted.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

// Sets counter `name` to the time per item, an iteration handling `items_per_iteration` items.
inline void report_time_per_item(benchmark::State& state, const char* name, int64_t items_per_iteration) {
    state.counters[name] = benchmark::Counter(static_cast<double>(state.iterations() * items_per_iteration),
                                              benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
