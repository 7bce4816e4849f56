#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Instructions a request's admission (kvc_pool_sequence_create + kvc_pool_allocate) executes with the
# pool's statistics off and on, counted by callgrind: repeatable where timings on a shared machine are
# not. Runs bench/admission_loop.c for 100 and 200 rounds of 32 requests and takes the difference, so
# set-up and tear-down cancel. Usage: bench/admission_instructions.sh [build dir, default build/dev]
set -euo pipefail
build=${1:-build/dev}
loop=$build/bench/kvcore_admission_loop
[[ -x $loop ]] || { echo "build $loop first: cmake --build $build --target kvcore_admission_loop" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Inclusive instructions of the two admission calls in one callgrind profile.
admission_ir() {
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk '/libkvcore/ && /:kvc_pool_(sequence_create|allocate) / { gsub(",", "", $1); sum += $1 } END { print sum }'
}

declare -A per_admission
for statistics in 0 1; do
    for rounds in 100 200; do
        valgrind --tool=callgrind --callgrind-out-file="$work/$statistics.$rounds" "$loop" "$statistics" "$rounds" 2>/dev/null
    done
    per_admission[$statistics]=$(( ($(admission_ir "$work/$statistics.200") - $(admission_ir "$work/$statistics.100")) / 3200 ))
done
off=${per_admission[0]} on=${per_admission[1]}
awk -v off="$off" -v on="$on" 'BEGIN {
    printf "instructions per admission: statistics off %d, on %d, difference %+d (%.2f %%)\n", off, on, on - off, 100 * (on - off) / off }'
