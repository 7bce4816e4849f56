#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kvcore simulate: a good trace gives its summary (as text, as JSON, from a file or stdin), every record
# counted; every bad input is refused with exit code 2, no summary, and a message naming file:line and the
# field, never a C++ internal. Usage: cli_simulate.sh <kvcore> <tests/data> <tests/cli/bad_traces>
set -eu
kvcore=$1 data=$2 bad=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
trace=$data/mooncake_head.jsonl

# Most checks below are of the one-at-a-time replay (its figures are exact); the engine's come at the end.
mode=replay
run() {
  if "$kvcore" simulate --mode "$mode" "$@" > "$work/out" 2> "$work/err"; then rc=0; else rc=$?; fi
}

run --trace "$trace" --blocks 4096
[ "$rc" -eq 0 ] || fail "good trace: exit code $rc: $(cat "$work/err")"
grep -Eq '^  requests +300$' "$work/out" || fail "not 300 requests: $(cat "$work/out")"
# 4269971 is the sum of the trace's input_length: no request was cut short or dropped.
grep -Eq '^  token hit rate +[1-9][0-9]*\.[0-9]+ % \([0-9]+ of 4269971 prompt tokens\)' "$work/out" ||
  fail "token hit rate line: $(cat "$work/out")"
# Progress is for terminals only.
[ ! -s "$work/err" ] || fail "stderr is not a terminal, yet: $(cat "$work/err")"
grep -E 'hit rate|evictions|cached' "$work/out" > "$work/figures"

# On a terminal, a long run reports progress on stderr. `script` gives it one; the trace comes through a
# FIFO with a pause, so the run outlasts the first report's delay (1 s) whatever the machine's speed.
mkfifo "$work/fifo"
{ cat "$trace"; sleep 1.2; sed 's/"timestamp": [0-9]*/"timestamp": 999999/' "$trace"; } > "$work/fifo" &
script -qec "'$kvcore' simulate --trace '$work/fifo'" /dev/null < /dev/null > "$work/tty" || fail "on a terminal: exit code $?"
wait
grep -q "kvcore simulate: [0-9]* requests, [0-9.]* MB read" "$work/tty" || fail "no progress on a terminal: $(cat "$work/tty")"
grep -Eq '^  requests +600' "$work/tty" || fail "on a terminal: not 600 requests: $(cat "$work/tty")"

# The same figures from stdin.
if "$kvcore" simulate --mode replay --trace - --blocks 4096 < "$trace" > "$work/stdin_out"; then :; else fail "stdin: exit code $?"; fi
grep -E 'hit rate|evictions|cached' "$work/stdin_out" | diff "$work/figures" - || fail "stdin gave other figures"

# Blank lines and CRLF line ends change nothing.
head -n 100 "$trace" | sed 's/$/\r/' > "$work/crlf"
printf '\n  \n' >> "$work/crlf"
tail -n 200 "$trace" >> "$work/crlf"
run --trace "$work/crlf" --blocks 4096
[ "$rc" -eq 0 ] || fail "CRLF and blank lines: exit code $rc: $(cat "$work/err")"
grep -E 'hit rate|evictions|cached' "$work/out" | diff "$work/figures" - || fail "CRLF and blank lines changed figures"

# JSON: the run's figures and the pool's snapshot.
run --trace "$trace" --blocks 4096 --json
[ "$rc" -eq 0 ] || fail "--json: exit code $rc"
for field in '"requests": 300' '"prompt_tokens": 4269971' '"tokens_queried": 4269971' '"component": "pool"' \
             '"requests_longer_than_pool": 0' '"window_token_hit_rate": 0.' '"max_rss_bytes": ' '"evictions": '; do
  grep -qF "$field" "$work/out" || fail "--json lacks $field: $(cat "$work/out")"
done
if [ "$(head -c 1 "$work/out")" != "{" ] || [ "$(tail -n 1 "$work/out")" != "}" ]; then fail "--json is not one object"; fi
if command -v python3 > /dev/null; then python3 -m json.tool "$work/out" > /dev/null || fail "--json is not JSON"; fi

# A request longer than the whole pool is counted, not silently skipped.
run --trace "$trace" --blocks 8
grep -Eq '^  requests longer than the pool +[1-9]' "$work/out" || fail "no count of requests longer than the pool"

# Bad input. $1: trace, $2: the "name:line:" the message must start its place with, $3: what it must say.
expect_bad() {
  run --trace "$1"
  [ "$rc" -eq 2 ] || fail "$1: exit code $rc, want 2 (stderr: $(cat "$work/err"))"
  [ ! -s "$work/out" ] || fail "$1: printed a summary: $(cat "$work/out")"
  grep -qF -- "kvcore simulate: $2" "$work/err" || fail "$1: no \"$2\" in: $(cat "$work/err")"
  grep -qF -- "$3" "$work/err" || fail "$1: no \"$3\" in: $(cat "$work/err")"
  if grep -Eq 'vector::|json\.exception|what\(\)|terminate|basic_string' "$work/err"; then
    fail "$1: C++ internals in: $(cat "$work/err")"
  fi
}
while read -r name line what; do
  expect_bad "$bad/$name.jsonl" "$bad/$name.jsonl:$line: " "$what"
done <<'CASES'
negative_hash_id 2 "hash_ids"[1]: -1 is not an integer in 0..2147483647
huge_hash_id 1 "hash_ids"[1]: 2147483648 is not an integer
overflowing_hash_id 1 "hash_ids"[1]:
fractional_hash_id 1 "hash_ids"[1]: 1.5 is not an integer
string_hash_id 1 "hash_ids"[1]: "1" is not an integer
fractional_length 1 "input_length": 600.5 is not an integer in 1..4194304
zero_length 1 "input_length": 0 is not an integer in 1..4194304
negative_length 1 "input_length": -512 is not an integer
huge_length 1 "input_length": 18446744073709551615 is not an integer
length_over_bound 1 "input_length": 4194305 is not an integer
string_length 1 "input_length": "600" is not an integer
too_few_hash_ids 1 "hash_ids" has 1 entries; input_length 600 needs 2
too_many_hash_ids 1 "hash_ids" has 3 entries; input_length 600 needs 2
missing_length 1 "input_length" is missing
missing_hash_ids 1 "hash_ids" is missing
hash_ids_not_array 1 "hash_ids": 7 is not an array
negative_output_length 1 "output_length": -1 is not an integer
negative_timestamp 1 "timestamp": -5 is not a non-negative number
timestamp_going_back 2 "timestamp": 9 is earlier than the record before it
truncated_record 3 not valid JSON
not_an_object 1 not a JSON object
csv_header 1 not valid JSON
two_records_on_a_line 1 not valid JSON
number_overflow 1 a number is out of range
CASES

if "$kvcore" simulate --trace - < "$bad/negative_hash_id.jsonl" > "$work/out" 2> "$work/err"; then rc=0; else rc=$?; fi
if [ "$rc" -ne 2 ] || ! grep -qF 'stdin:2: "hash_ids"[1]' "$work/err"; then fail "stdin: exit code $rc: $(cat "$work/err")"; fi
expect_bad "$work" "$work: " "is a directory"
expect_bad "$work/missing" "$work/missing: " "No such file"
: > "$work/empty"
expect_bad "$work/empty" "$work/empty: " "no trace records"
printf '\n\n  \n' > "$work/blank"
expect_bad "$work/blank" "$work/blank: " "no trace records"
# A line longer than any record (1 MiB) is refused before it is held whole.
{ head -n 2 "$trace"; head -c 1100000 /dev/zero | tr '\0' ' '; echo; } > "$work/long"
expect_bad "$work/long" "$work/long:3: " "line longer than 1048576 bytes"
# --policy: LRU is the default and gives today's figures exactly; opt (the offline optimum) is the
# ceiling: no policy reuses more blocks, and it reuses more than LRU.
block_hits() { sed -n 's/^  block hit rate *[0-9.]* % (\([0-9]*\) reused.*/\1/p' "$work/out"; }
for blocks in 256 1000 4096; do
  run --trace "$trace" --blocks "$blocks" --policy opt
  [ "$rc" -eq 0 ] || fail "--policy opt: exit code $rc: $(cat "$work/err")"
  grep -q 'the ceiling' "$work/out" || fail "opt is not printed as the ceiling: $(cat "$work/out")"
  opt=$(block_hits)
  for policy in lru s3fifo sieve arc wtinylfu; do
    run --trace "$trace" --blocks "$blocks" --policy "$policy"
    [ "$rc" -eq 0 ] || fail "--policy $policy: exit code $rc: $(cat "$work/err")"
    hits=$(block_hits)
    [ -n "$hits" ] && [ "$hits" -le "$opt" ] || fail "$policy reused $hits blocks at --blocks $blocks, over opt's $opt"
    [ "$policy" != lru ] || [ "$hits" -lt "$opt" ] || fail "opt ($opt) is no better than LRU ($hits) at --blocks $blocks"
  done
done
# Today's LRU figures (before policies existed), with --policy lru and without --policy.
for args in "--blocks 1000" "--blocks 1000 --policy lru"; do
  # shellcheck disable=SC2086
  run --trace "$trace" $args
  grep -Eq '^  block hit rate +3\.65 % \(299 reused, 7891 missed\)$' "$work/out" || fail "LRU changed ($args): $(cat "$work/out")"
done
run --trace "$trace" --blocks 4096 --policy lru
grep -Eq '^  block hit rate +5\.45 % \(446 reused, 7744 missed\)$' "$work/out" || fail "LRU changed at 4096: $(cat "$work/out")"
run --trace "$trace" --policy opt --json
[ "$rc" -eq 0 ] && grep -qF '"policy": "opt"' "$work/out" || fail "--policy opt --json: $(cat "$work/out")"
if command -v python3 > /dev/null; then python3 -m json.tool "$work/out" > /dev/null || fail "opt's --json is not JSON"; fi
# An unknown policy is a usage error that names it.
run --trace "$trace" --policy fifo
[ "$rc" -eq 1 ] || fail "unknown policy: exit code $rc, want 1"
grep -q 'fifo' "$work/err" || fail "unknown policy not named: $(cat "$work/err")"
[ ! -s "$work/out" ] || fail "unknown policy printed a summary"

# The engine (the default mode): requests overlap at their timestamps and decode their output_length
# tokens (the trace's 113079 in all), batched by the scheduler; the same run gives the same figures.
mode=engine
run --trace "$trace" --blocks 4096
[ "$rc" -eq 0 ] || fail "engine: exit code $rc: $(cat "$work/err")"
grep -q 'served by an engine' "$work/out" || fail "engine: no header: $(cat "$work/out")"
grep -Eq '^  requests +300$' "$work/out" || fail "engine: not 300 requests: $(cat "$work/out")"
grep -Eq '^  token hit rate +[1-9][0-9]*\.[0-9]+ % \([0-9]+ of [0-9]+ prompt tokens admitted\)' "$work/out" ||
  fail "engine: token hit rate: $(cat "$work/out")"
grep -Eq '^  tokens generated +113079 ' "$work/out" || fail "engine: not every output token: $(cat "$work/out")"
grep -Eq '^  time to first token +p50 [0-9.]+ s, p99 [0-9.]+ s$' "$work/out" || fail "engine: no TTFT: $(cat "$work/out")"
grep -Eq '^  steps +[1-9][0-9]*, [0-9.]+ sequences a step' "$work/out" || fail "engine: no steps: $(cat "$work/out")"
"$kvcore" simulate --trace "$trace" --blocks 4096 > "$work/again"
grep -Ev '^  (time \(|peak)' "$work/out" > "$work/a"
grep -Ev '^  (time \(|peak)' "$work/again" > "$work/b"
diff "$work/a" "$work/b" > /dev/null || fail "engine: two runs differ: $(diff "$work/a" "$work/b")"
# A smaller pool and batch: evictions, and (prompts of up to 16 blocks against 40) preemptions or waits.
run --trace "$trace" --blocks 40 --max-batch 8 --max-queue 4
[ "$rc" -eq 0 ] || fail "engine, small: exit code $rc: $(cat "$work/err")"
grep -Eq '^  evictions +[1-9]' "$work/out" || fail "engine, small: no evictions: $(cat "$work/out")"
grep -Eq '^  waits on a full queue +[1-9]' "$work/out" || fail "engine, small: the queue bound never held: $(cat "$work/out")"
run --trace "$trace" --blocks 4096 --json
[ "$rc" -eq 0 ] || fail "engine --json: exit code $rc"
for field in '"mode": "engine"' '"requests": 300' '"generated_tokens": 113079' '"ttft_seconds_p99": ' '"component": "sched"' \
             '"component": "pool"'; do
  grep -qF "$field" "$work/out" || fail "engine --json lacks $field: $(cat "$work/out")"
done
if command -v python3 > /dev/null; then python3 -m json.tool "$work/out" > /dev/null || fail "engine --json is not JSON"; fi
run --trace "$trace" --policy opt
[ "$rc" -eq 1 ] && grep -q 'needs --mode replay' "$work/err" || fail "opt in engine mode: exit code $rc: $(cat "$work/err")"

echo "kvcore simulate: summaries as text and JSON, from files and stdin; every saved bad trace refused; every policy at or under opt, LRU unchanged; the engine serves every request and token"
