/* SPDX-License-Identifier: Apache-2.0 */
// What one piece of work adds to another, measured in pairs: each benchmark iteration times two
// untreated chunks and two treated ones, back to back in the order ABBA or BAAB (alternating), and
// keeps the ratio of their sums; the order cancels a steady drift and any cost of being first. The
// figure is the median ratio over all iterations with its 95 % confidence interval (distribution-free:
// the order statistics n/2 -+ 0.98 sqrt(n)), so an iteration that an interrupt or a noisy neighbour hit
// moves it by one rank, not by its size. Comparing the untreated work with itself (an A/A control)
// shows the method's own bias and noise.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

// run_chunk(treated) runs one chunk of `items` items and returns the nanoseconds it took (it times
// only what is compared, so it may tidy up untimed afterwards). Sets the counters pairs, plain_ns (per
// untreated item), overhead_pct, ci95_low_pct and ci95_high_pct.
template <class RunChunk>
void measure_paired_overhead(benchmark::State& state, size_t items, RunChunk&& run_chunk) {
    std::vector<double> ratios, plain_ns;
    ratios.reserve(1 << 16);
    plain_ns.reserve(1 << 16);
    for (auto _ : state) {
        double ns[2] = {0, 0};
        const bool treated_outside = (ratios.size() & 1) != 0;
        for (int quarter = 0; quarter < 4; ++quarter) {
            const bool treated = (quarter == 0 || quarter == 3) == treated_outside;
            ns[treated] += run_chunk(treated);
        }
        ratios.push_back(ns[1] / ns[0]);
        plain_ns.push_back(ns[0] / (2.0 * static_cast<double>(items)));
    }
    if (ratios.empty()) return;
    const auto rank = [](std::vector<double>& v, double r) {
        const auto i = static_cast<size_t>(std::clamp(r, 0.0, static_cast<double>(v.size() - 1)));
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
        return v[i];
    };
    const auto n = static_cast<double>(ratios.size());
    const double half_width = 0.98 * std::sqrt(n);
    state.counters["pairs"] = n;
    state.counters["plain_ns"] = rank(plain_ns, n / 2);
    state.counters["overhead_pct"] = (rank(ratios, n / 2) - 1) * 100;
    state.counters["ci95_low_pct"] = (rank(ratios, std::floor(n / 2 - half_width)) - 1) * 100;
    state.counters["ci95_high_pct"] = (rank(ratios, std::ceil(n / 2 + half_width)) - 1) * 100;
}
