#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kvcore demo, the main job, on a small workload: every request served under both routings, KV events
# published and all indexed, routing by the index reusing more of the prompts than round-robin, the same
# decisions on a second run, metrics written as Prometheus text and JSON, a Mooncake trace accepted and a
# bad one refused. Usage: cli_demo.sh <kvcore>
set -eu
kvcore=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect() {  # an extended regular expression that some line of $work/out must match
  grep -Eq -- "$1" "$work/out" || fail "no line matches /$1/ in:
$(cat "$work/out")"
}
# A row's cells: the value under round-robin ($2 = 1) or kv-aware ($2 = 2), digits only.
cell() { grep -E "^$1 " "$work/out" | sed -E 's/  +/|/g' | cut -d'|' -f$(($2 + 1)) | tr -dc '0-9.'; }

small="--replicas 2 --tenants 2 --chats 3 --turns 3 --blocks 64"
"$kvcore" demo $small --metrics-dir "$work/m" > "$work/out" 2> "$work/err" || fail "demo: exit code $?: $(cat "$work/err")"
expect '^kvcore [0-9.]+ demo: 2 engine replicas serving 2 tenants x 3 chats x 3 turns \(18 requests\)$'
expect '^ +round-robin +kv-aware$'
expect '^requests served +18 +18$'
# Every batch each pool published reached the index over ZeroMQ.
grep -E '^KV event batches published / indexed' "$work/out" | awk '{ if ($7 != $9 || $10 != $12 || $7 == 0) exit 1 }' ||
  fail "published and indexed batches differ: $(grep -E '^KV event' "$work/out")"
rr=$(cell "prefix cache hit rate \\(tokens\\)" 1)
kv=$(cell "prefix cache hit rate \\(tokens\\)" 2)
awk -v rr="$rr" -v kv="$kv" 'BEGIN { exit !(kv > rr) }' || fail "kv-aware hit rate $kv % is not above round-robin's $rr %"
expect '^time to first token, p50 +[0-9.]+ ms +[0-9.]+ ms$'
# The session stores gave back history the pools had evicted; without them more is computed.
restored=$(cell "prompt tokens restored from session stores" 2)
[ "${restored:-0}" -gt 0 ] || fail "nothing restored from the session stores: $(grep restored "$work/out")"
prefill=$(cell "prefill tokens computed" 2 | tr -d ,)
expect '^KV-aware routing against round-robin: prefix hit rate [0-9.]+ % -> [0-9.]+ %; prefill tokens [0-9.]+x fewer'
grep -q '^kvcore demo: round-robin: 18 of 18 requests done' "$work/err" || fail "no progress on stderr: $(cat "$work/err")"

# The same decisions again: every count is a function of the workload and the routing, not of timing.
decisions='^(requests|prompt tokens|prefix cache|prefill tokens|tokens generated  |preemptions|KV event|scheduler steps)'
grep -E "$decisions" "$work/out" > "$work/first"
"$kvcore" demo $small --metrics-dir "$work/m2" --no-progress > "$work/out" 2> "$work/err"
[ ! -s "$work/err" ] || fail "--no-progress still wrote: $(cat "$work/err")"
grep -E "$decisions" "$work/out" | diff "$work/first" - || fail "a second run decided differently"

"$kvcore" demo $small --store-mib 0 --routing kv-aware --metrics-dir "$work/m4" --no-progress > "$work/out"
without=$(grep -E '^prefill tokens computed' "$work/out" | awk '{ gsub(",", "", $4); print $4 }')
[ "$without" -gt "$prefill" ] || fail "without session stores $without prefill tokens, with them $prefill"

# Metrics: one Prometheus family header per metric, each replica's pool, scheduler and store labelled.
prom=$work/m/metrics.prom
[ -s "$prom" ] && [ -s "$work/m/metrics.json" ] || fail "metrics files missing: $(ls -l "$work/m")"
grep -q '^kvcore_hits_total{run="kv-aware",replica="replica-1",component="pool"} [0-9]' "$prom" || fail "no labelled pool hits"
grep -q '^kvcore_sched_requests_finished_total{run="round-robin",replica="replica-0",component="sched"} [0-9]' "$prom" ||
  fail "no labelled scheduler metric: $(grep sched_requests "$prom" | head -3)"
grep -q '^kvcore_demo_prefix_hit_rate{run="kv-aware"} 0\.[0-9]' "$prom" || fail "no demo summary gauge"
dups=$(grep '^# TYPE' "$prom" | sort | uniq -d)
[ -z "$dups" ] || fail "metric families declared twice: $dups"
if grep -v '^#' "$prom" | grep -Evq '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (NaN|[+-]Inf)$'; then
  fail "lines that are not Prometheus samples: $(grep -v '^#' "$prom" | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ' | head -3)"
fi
if command -v python3 > /dev/null; then
  python3 - "$work/m/metrics.json" <<'EOF' || fail "metrics.json"
import json, sys
doc = json.load(open(sys.argv[1]))
for run in ("round-robin", "kv-aware"):
    r = doc["runs"][run]
    assert r["summary"]["requests"] == 18, r["summary"]
    assert len(r["replicas"]) == 2 and r["replicas"][0]["sched"]["component"] == "sched", r["replicas"][0].keys()
assert doc["runs"]["kv-aware"]["summary"]["prefix_hit_rate"] > doc["runs"]["round-robin"]["summary"]["prefix_hit_rate"]
EOF
fi

# A Mooncake-format trace: records sharing hash ids share prompt blocks (each 512-token block one of 16 here).
awk 'BEGIN { for (i = 0; i < 6; ++i) printf "{\"timestamp\": %d, \"input_length\": 600, \"output_length\": 9, \"hash_ids\": [1, %d]}\n", i * 100, 10 + i % 2 }' > "$work/trace.jsonl"
"$kvcore" demo --trace "$work/trace.jsonl" --replicas 2 --blocks 128 --metrics-dir "$work/m3" --no-progress > "$work/out" ||
  fail "--trace: exit code $?"
expect '^kvcore [0-9.]+ demo: 2 engine replicas serving 6 requests of '
expect '^requests served +6 +6$'
expect '^tokens generated +54 +54$'
# A bad record is named, with exit code 2; a pool too small for the longest request is refused up front.
printf '{"input_length": 5}\n' > "$work/bad.jsonl"
if "$kvcore" demo --trace "$work/bad.jsonl" --no-progress > "$work/out" 2> "$work/err"; then rc=0; else rc=$?; fi
[ "$rc" -eq 2 ] && grep -q 'bad.jsonl:1: "hash_ids" is missing' "$work/err" || fail "bad trace: exit code $rc: $(cat "$work/err")"
# 8192 tokens, 16 blocks of the trace: 256 tokens here, more than 15 blocks of 16 hold.
awk 'BEGIN { printf "{\"input_length\": 8192, \"output_length\": 4, \"hash_ids\": [0"; for (i = 1; i < 16; ++i) printf ", %d", i; print "]}" }' > "$work/long.jsonl"
if "$kvcore" demo --trace "$work/long.jsonl" --blocks 16 --no-progress > "$work/out" 2> "$work/err"; then rc=0; else rc=$?; fi
[ "$rc" -eq 1 ] && grep -q 'needs --blocks' "$work/err" || fail "small pool: exit code $rc: $(cat "$work/err")"
echo "kvcore demo: every request served under both routings, events indexed, kv-aware above round-robin, metrics written"
