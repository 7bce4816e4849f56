#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's tour shows the programs in examples/tour as they are: each fenced block after a
# `<!-- tour: PATH -->` marker must equal PATH, every file in examples/tour must be shown, and each
# language has its build-and-run block (`<!-- tour-run: LANG -->`, which the tour_* tests run).
# Usage: readme_tour.sh <source dir> <work dir>
set -euo pipefail
cd "$1"
work="$2"
rm -rf "$work" && mkdir -p "$work"
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

mapfile -t shown < <(sed -n 's/^<!-- tour: \(.*\) -->$/\1/p' README.md)
for path in "${shown[@]}"; do
  awk -v marker="<!-- tour: $path -->" '
    $0 == marker { armed = 1; next }
    armed && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' README.md > "$work/block"
  if [ ! -f "$path" ]; then
    fail "README shows $path, which does not exist"
  elif ! diff -u "$path" "$work/block" > "$work/diff"; then
    fail "README's block for $path differs from the file:"; cat "$work/diff"
  fi
done
for path in examples/tour/*; do
  printf '%s\n' "${shown[@]}" | grep -qx "$path" || fail "README does not show $path"
done
for lang in c csharp java go; do
  grep -qx "<!-- tour-run: $lang -->" README.md || fail "README has no <!-- tour-run: $lang --> commands"
done
[ "$failures" -eq 0 ] && echo "readme tour: ${#shown[@]} programs match examples/tour"
exit "$((failures > 0))"
