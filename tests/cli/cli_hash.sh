#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# kvcore hash must print vLLM's own 25 block hashes for vLLM's own prompt, read from stdin or a file, and
# refuse bad token input with exit code 2 and a message naming file:line:column.
# Usage: cli_hash.sh <kvcore> <tests/data>
set -eu
kvcore=$1 data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
tokens=$data/vllm_tokens.txt want=$data/vllm_block_hashes.txt

"$kvcore" hash --algo sha256_cbor --seed 42 --block-size 16 < "$tokens" | diff - "$want"
"$kvcore" hash "$tokens" | diff - "$want"
"$kvcore" hash --input "$tokens" | diff - "$want"
"$kvcore" hash - < "$tokens" | diff - "$want"
# One id a line is the same prompt.
tr ' ' '\n' < "$tokens" > "$work/one_a_line"
"$kvcore" hash "$work/one_a_line" | diff - "$want"

# A partial last block is not hashed (as in vLLM), and that is said on stderr.
seq 1 20 | "$kvcore" hash > "$work/out" 2> "$work/err"
[ "$(wc -l < "$work/out")" -eq 1 ] || fail "20 tokens gave $(wc -l < "$work/out") hashes, want 1"
grep -qF "the last 4 of 20 tokens" "$work/err" || fail "partial block not reported: $(cat "$work/err")"

# Bad input: exit code 2, where it is, nothing hashed.
expect_bad() {  # input file, the name:line:column it must report, text the message must hold
  if "$kvcore" hash "$1" > "$work/out" 2> "$work/err"; then rc=0; else rc=$?; fi
  [ "$rc" -eq 2 ] || fail "$1: exit code $rc, want 2"
  [ ! -s "$work/out" ] || fail "$1: printed hashes"
  grep -qF -- "$2" "$work/err" || fail "$1: no \"$2\" in: $(cat "$work/err")"
  grep -qF -- "$3" "$work/err" || fail "$1: no \"$3\" in: $(cat "$work/err")"
}
printf '1 2 3\n4 -2 5\n' > "$work/negative"
expect_bad "$work/negative" "$work/negative:2:3:" '"-2" is not a token id'
printf '1 2 3.5\n' > "$work/fraction"
expect_bad "$work/fraction" "$work/fraction:1:5:" '"3.5" is not a token id'
printf '7 2147483648\n' > "$work/too_big"
expect_bad "$work/too_big" "$work/too_big:1:3:" '"2147483648" is not a token id'
printf '7 99999999999999999999999\n' > "$work/overflow"
expect_bad "$work/overflow" "$work/overflow:1:3:" "is not a token id"
printf '[1, 2, 3]\n' > "$work/json"
expect_bad "$work/json" "$work/json:1:1:" '"[1," is not a token id'
: > "$work/empty"
expect_bad "$work/empty" "$work/empty:" "no token ids"
expect_bad "$work" "$work:" "is a directory"
expect_bad "$work/missing" "$work/missing:" "No such file"
if echo "1 -2 3" | "$kvcore" hash > /dev/null 2> "$work/err"; then fail "negative token on stdin accepted"; fi
grep -qF "stdin:1:3:" "$work/err" || fail "stdin error without its place: $(cat "$work/err")"
echo "kvcore hash: 25 hashes match vLLM from stdin and files; bad input refused with its place"
