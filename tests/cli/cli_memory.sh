#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Peak memory follows what a command uses, not its input's length or its options' bounds: simulate streams
# a trace of 3000 requests of 8192 tokens (98 MB of token ids if held at once) in a few MB (the engine:
# its queue's prompts more), and the tour's
# LRU with room for 10^8 entries but one key stays small. Usage: cli_memory.sh <kvcore> <maxrss helper>
set -eu
kvcore=$1 maxrss=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# $1: the bound in MiB; the rest: kvcore's arguments.
expect_below() {
  bound=$1
  shift
  "$maxrss" "$work/rss" "$kvcore" "$@" > "$work/out" || fail "kvcore $*: exit code $?"
  kib=$(cat "$work/rss")
  [ "$kib" -lt $((bound * 1024)) ] || fail "kvcore $*: peak RSS $((kib / 1024)) MiB, bound $bound MiB"
  echo "kvcore $*: peak RSS $((kib / 1024)) MiB (bound $bound MiB)"
}

awk 'BEGIN {
  for (i = 0; i < 3000; ++i) {
    printf "{\"timestamp\": %d, \"input_length\": 8192, \"output_length\": 1, \"hash_ids\": [0", i
    for (k = 1; k < 16; ++k) printf ", %d", i * 16 + k
    print "]}"
  }
}' > "$work/trace.jsonl"
expect_below 32 simulate --mode replay --trace "$work/trace.jsonl" --blocks 4096
grep -Eq '^  requests +3000$' "$work/out" || fail "simulate did not replay 3000 requests: $(cat "$work/out")"
expect_below 32 simulate --mode replay --trace - --blocks 4096 < "$work/trace.jsonl"
# The engine holds the prompts of its waiting requests, at most --max-queue (256) of them: 8 MiB here.
expect_below 48 simulate --trace "$work/trace.jsonl" --blocks 4096
grep -Eq '^  requests +3000$' "$work/out" || fail "the engine did not serve 3000 requests: $(cat "$work/out")"
expect_below 64 tour --lru --keys 1 --capacity 100000000 --accesses 1000 --no-prometheus
