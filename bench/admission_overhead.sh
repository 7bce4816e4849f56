#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the pool's statistics cost a request's admission in time: BM_AdmissionStatsOverhead (statistics
# on vs off) and its A/A control, RUNS runs of 10 repetitions each, randomly interleaved, pinned to one
# core. Each repetition gives a median ratio over its own pairs of pools; this prints the median over
# all repetitions with its 95 % confidence interval (distribution-free order statistics), so that one
# repetition's placement of pools or a noisy neighbour moves the figure by one rank only.
# Usage: bench/admission_overhead.sh [runs, default 3] [build dir, default build/dev]
set -euo pipefail
runs=${1:-3}
build=${2:-build/dev}
bench=$build/bench/kvcore_pool_bench
[[ -x $bench ]] || { echo "build $bench first: cmake --build $build --target kvcore_pool_bench" >&2; exit 2; }
pin=()
command -v taskset >/dev/null && pin=(taskset -c "$(($(nproc) - 1))")
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for ((run = 0; run < runs; ++run)); do
    "${pin[@]}" "$bench" --benchmark_filter=AdmissionStatsOverhead --benchmark_repetitions=10 \
        --benchmark_enable_random_interleaving=true --benchmark_min_time=0.5 2>/dev/null |
        grep -E '^BM_AdmissionStatsOverhead/[a-z_]+ ' >>"$out"
done
for arm in statistics a_a_control; do
    grep "/$arm " "$out" | grep -o 'overhead_pct=[-0-9.e+]*' | cut -d= -f2 | sort -g |
        awk -v arm="$arm" '{ v[NR] = $1 } END {
            n = NR; half = 0.98 * sqrt(n)
            lo = int(n / 2 - half); hi = int(n / 2 + half + 0.999); if (lo < 1) lo = 1; if (hi > n) hi = n
            printf "%-12s %d repetitions: median %+.2f %% [95 %% CI %+.2f, %+.2f]\n", arm, n, (v[int((n + 1) / 2)] + v[int(n / 2) + 1]) / 2, v[lo], v[hi] }'
done
