#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kvcore's command line: --version, the exit codes and every default in --help, and usage errors that
# exit 1 and say what was wrong. Usage: cli_usage.sh <kvcore>
set -eu
kvcore=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Runs kvcore with the given arguments; $rc, $work/out and $work/err hold what it did.
run() {
  if "$kvcore" "$@" > "$work/out" 2> "$work/err"; then rc=0; else rc=$?; fi
}
# A usage error: exit code 1 and a message on stderr that contains $1.
expect_usage() {
  want=$1
  shift
  run "$@"
  [ "$rc" -eq 1 ] || fail "kvcore $*: exit code $rc, want 1"
  grep -qF -- "$want" "$work/err" || fail "kvcore $*: no \"$want\" in: $(cat "$work/err")"
}

run --version
[ "$rc" -eq 0 ] || fail "--version: exit code $rc"
"$kvcore" version > "$work/version"
cmp -s "$work/out" "$work/version" || fail "--version printed \"$(cat "$work/out")\", version \"$(cat "$work/version")\""

run --help
[ "$rc" -eq 0 ] || fail "--help: exit code $rc"
for code in "0 ok" "1 usage error" "2 bad input or data"; do
  grep -qF "$code" "$work/out" || fail "--help does not document exit code \"$code\""
done

# Every option that takes a value shows its default ("=VALUE"), says it has none, or is REQUIRED.
for sub in demo tour hash serve-index simulate; do
  "$kvcore" "$sub" --help > "$work/help"
  options=$(grep -Ec '^ +(-[a-z],)?--[a-z-]+ [A-Z]+' "$work/help") || true
  [ "$options" -ge 4 ] || fail "$sub --help: only $options options with values found"
  if grep -E '^ +(-[a-z],)?--[a-z-]+ [A-Z]+' "$work/help" | grep -Ev '=|REQUIRED|default: ' > "$work/bare"; then
    fail "$sub --help: options without their default: $(cat "$work/bare")"
  fi
done
grep -qF "input_length: an integer in 1..4194304" "$work/help" || fail "simulate --help does not state its bounds"

expect_usage '"frobnicate"' frobnicate
expect_usage "subcommand is required"
expect_usage "--frob" tour --frob
expect_usage "--chats" tour --chats 0
expect_usage "--keys requires --lru" tour --keys 5
expect_usage "--blocks 10 is too few" tour --blocks 10
expect_usage "--trace is required" simulate
expect_usage "--block-size" simulate --trace - --block-size 0
expect_usage "--algo" hash --algo md5
expect_usage "give --zmq-bind or at least one --engine" serve-index
expect_usage "--hash" serve-index --zmq-bind tcp://127.0.0.1:0 --hash md5
expect_usage "--engine-keys" serve-index --zmq-bind tcp://127.0.0.1:0 --engine-keys sometimes
expect_usage "HOST:PORT" serve-index --zmq-bind tcp://127.0.0.1:0 --http localhost
expect_usage "POD=ENDPOINT" serve-index --zmq-bind tcp://127.0.0.1:0 --pod-replay tcp://x
echo "kvcore usage: --version, exit codes, defaults and usage errors as documented"
