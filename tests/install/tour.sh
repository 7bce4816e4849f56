#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds and runs one language's tour program against the installed tree, with exactly the commands the
# README shows for it (the sh block after `<!-- tour-run: LANG -->`), with no LD_LIBRARY_PATH or
# MONO_PATH of ours, then checks what it printed.
# Usage: tour.sh <c|csharp|java|go> <prefix> <source dir> <work dir>
set -euo pipefail
lang="$1"; prefix="$2"; source_dir="$3"; work="$4"
case "$lang" in
  c) program=tour.c ;; csharp) program=Tour.cs ;; java) program=Tour.java ;; go) program=tour.go ;;
  *) echo "unknown language $lang"; exit 2 ;;
esac
commands=$(awk -v marker="<!-- tour-run: $lang -->" '
  $0 == marker { armed = 1; next }
  armed && /^```/ { if (inside) exit; inside = 1; next }
  inside { print }' "$source_dir/README.md")
[ -n "$commands" ] || { echo "README.md has no sh block after <!-- tour-run: $lang -->"; exit 1; }

rm -rf "$work" && mkdir -p "$work"
cp "$source_dir/examples/tour/$program" "$work/"
cd "$work"
unset LD_LIBRARY_PATH MONO_PATH PKG_CONFIG_PATH CLASSPATH
export PREFIX="$prefix"
printf '%s\n' "$commands" > commands.sh
echo "== README commands ($lang), PREFIX=$PREFIX"
cat commands.sh
set +e
bash -euo pipefail commands.sh > output.txt 2>&1
rc=$?
set -e
cat output.txt
[ "$rc" -eq 0 ] || { echo "FAIL: the README commands exited $rc"; exit 1; }
# The same run in every language: 32 of the prompt's tokens reused, the router scoring the pool's 2 cached
# blocks for its pod, attention averaging the 41 cached tokens' values, a second turn reusing the first's 30,
# one load for two calls, one scrape of the four components, a scheduler serving 2 requests of 6 new tokens in
# 6 steps (one prefill of both, then 5 decodes).
grep -q "^reused 32 of 40 prompt tokens" output.txt || { echo "FAIL: no prefix reuse"; exit 1; }
grep -q "^router: pod-a scores 2, pod-b 0$" output.txt || { echo "FAIL: no router scores"; exit 1; }
grep -q "^attention over 41 cached tokens: 20.00$" output.txt || { echo "FAIL: no attention over the pool's blocks"; exit 1; }
grep -q "^turn 2 reused 30 of 40 tokens" output.txt || { echo "FAIL: no multi-turn reuse"; exit 1; }
grep -q "^load=0.7 after 1 load for 2 calls" output.txt || { echo "FAIL: no single load"; exit 1; }
grep -Pzq 'kvcore_hits_total\{component="prefix_cache"\} 3\nkvcore_hits_total\{component="pool"\} 2\nkvcore_hits_total\{component="store"\} 1\nkvcore_hits_total\{component="metrics"\} 1\n' output.txt \
  || { echo "FAIL: not one exposition of the recorder, the pool, the store and the TTL cache"; exit 1; }
grep -q "^scheduler: 2 requests, 12 tokens, 6 steps$" output.txt || { echo "FAIL: no scheduler run"; exit 1; }
echo "tour $lang: ok"
