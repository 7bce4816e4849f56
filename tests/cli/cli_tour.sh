#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kvcore tour shows the pool's job: multi-turn chats with prefix reuse per turn, windowed and cumulative
# hit rates that differ, a block table, a slot mapping, a copy-on-write copy, vLLM's block hashes (the
# same `kvcore hash` prints), the KV events decoded in both encodings, one Prometheus scrape; it is
# deterministic, and its optional LRU part counts evictions, not memory pressure. Usage: cli_tour.sh <kvcore>
set -eu
kvcore=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect() {  # an extended regular expression that some line of $work/out must match
  grep -Eq -- "$1" "$work/out" || fail "no line matches /$1/ in:
$(cat "$work/out")"
}

"$kvcore" tour > "$work/out" || fail "tour: exit code $?"
"$kvcore" tour > "$work/again"
cmp -s "$work/out" "$work/again" || fail "two runs printed different text"
lines=$(wc -l < "$work/out")
[ "$lines" -le 75 ] || fail "$lines lines of output; keep it readable"

expect '^kvcore [0-9.]+ tour: a paged KV block pool serving 3 chats of 4 turns$'
expect 'sha256_cbor hashes seeded "42"'
# Turn 1 of chat A reuses nothing, chat B reuses the shared system prompt, later turns their history.
expect '^ +1 +A +56 +0 +56 +0\.0 % +0\.0 %$'
expect '^ +1 +B +56 +32 +24 '
expect '^ +4 +C +236 +208 +28 '
# On the last row the window (last 3 requests) sees the later, better turns; the cumulative rate lags.
awk '$1 == 4 && $2 == "C" { if ($6 + 0 <= $8 + 0) exit 1 }' "$work/out" || fail "windowed hit rate is not above the cumulative one"
expect '^chat A, turn 5: 296 prompt tokens, 272 reused from the cache, 24 computed$'
expect '^  block table \(19 blocks\)  ([0-9]+ ){18}[0-9]+$'
expect '^  slot mapping of its 24 new tokens \(slot = block x 16 \+ offset\): [0-9]+'
expect 'shares all 19 blocks; the last, [0-9]+, holds 8 of 16 tokens$'
expect 'kvc_pool_drain_copies, src -> dst\): [0-9]+ -> [0-9]+$'
expect '^  the block tables now end in [0-9]+ \(sample 1\) and [0-9]+ \(sample 2\)$'
expect '^  BlockStored [1-9][0-9]* \([1-9][0-9]* blocks\), BlockRemoved [1-9][0-9]* \([1-9][0-9]* blocks evicted\), AllBlocksCleared 1$'
expect '^  18 of 18 appear in the pool.s BlockStored events$'
expect '^# TYPE kvcore_hits_total counter$'
expect '^kvcore_hits_total\{component="pool"\} [1-9][0-9]*$'
expect '^kvcore_hit_rate\{component="pool",window="cumulative"\} 0\.[0-9]+$'

# The first hash printed is the one `kvcore hash` gives for the first block: the system prompt's first
# 16 tokens, ids 1000..1015.
first=$(seq 1000 1015 | "$kvcore" hash --algo sha256_cbor --seed 42 --block-size 16)
expect "^  18 full blocks: $first, "

# The map encoding decodes to the same events.
grep -E '^  BlockStored ' "$work/out" > "$work/array_events"
"$kvcore" tour --events map --no-prometheus > "$work/out"
expect 'map events\), decoded:$'
grep -E '^  BlockStored ' "$work/out" | diff "$work/array_events" - || fail "map events decode to other counts"
if grep -q '^# TYPE' "$work/out"; then fail "--no-prometheus printed the scrape"; fi

# Other sizes: one row per request, and a pool too small for the longest chat is a usage error.
"$kvcore" tour --chats 2 --turns 2 --blocks 16 --no-prometheus > "$work/out"
[ "$(grep -Ec '^ +[12] +[AB] +[0-9]+ ' "$work/out")" -eq 4 ] || fail "--chats 2 --turns 2: not 4 rows"

# The LRU part: evictions counted as evictions; memory pressure (refused requests) stays 0.
"$kvcore" tour --lru --accesses 20000 --keys 2000 --capacity 500 > "$work/out"
expect '^  insertions [1-9][0-9]*, evictions [1-9][0-9]*, memory pressure events 0$'
expect '^kvcore_evictions_total\{component="tour_lru"\} [1-9][0-9]*$'
expect '^kvcore_memory_pressure_events_total\{component="tour_lru"\} 0$'
expect '^kvcore_hits_total\{component="pool"\} [0-9]+$'
echo "kvcore tour: $lines lines, the pool's job shown and checked"
