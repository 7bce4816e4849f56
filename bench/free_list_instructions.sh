#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Instructions of the pool's free-list hot paths under LRU, counted by callgrind: a request's admission
# (kvc_pool_sequence_create + kvc_pool_allocate: prefix hits leave the free lists, evictions pop them) and
# its free (kvc_pool_sequence_free: 48 blocks back, tail first), statistics off (bench/admission_loop.c,
# 100 and 200 rounds of 32 requests, the difference divided by 3,200, so set-up cancels); and the raw path,
# kvc_pool_allocate_blocks + kvc_pool_free_blocks of 64 blocks (bench/alloc_free_loop.c, 1,000 and 2,000 rounds).
# Usage: bench/free_list_instructions.sh [build dir, default build/dev]
set -euo pipefail
build=${1:-build/dev}
loop=$build/bench/kvcore_admission_loop
raw=$build/bench/kvcore_alloc_free_loop
[[ -x $loop && -x $raw ]] || { echo "build first: cmake --build $build --target kvcore_admission_loop kvcore_alloc_free_loop" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Inclusive instructions of the functions matching $2 in the profile $1.
inclusive_ir() {
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk -v re="$2" '/libkvcore/ && $0 ~ re { gsub(",", "", $1); sum += $1 } END { print sum }'
}
for rounds in 100 200; do
    valgrind --tool=callgrind --callgrind-out-file="$work/$rounds" "$loop" 0 "$rounds" 2>/dev/null
done
for rounds in 1000 2000; do
    valgrind --tool=callgrind --callgrind-out-file="$work/raw.$rounds" "$raw" "$rounds" 2>/dev/null
done
admit=':kvc_pool_(sequence_create|allocate) '
free=':kvc_pool_sequence_free '
echo "instructions per admission: $(( ($(inclusive_ir "$work/200" "$admit") - $(inclusive_ir "$work/100" "$admit")) / 3200 ))"
echo "instructions per free (48 blocks): $(( ($(inclusive_ir "$work/200" "$free") - $(inclusive_ir "$work/100" "$free")) / 3200 ))"
raw_calls=':kvc_pool_(allocate|free)_blocks '
echo "instructions per allocate_blocks(64) + free_blocks(64): $(( ($(inclusive_ir "$work/raw.2000" "$raw_calls") - $(inclusive_ir "$work/raw.1000" "$raw_calls")) / 1000 ))"
