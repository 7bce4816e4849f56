#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source, build and script file of kvcore carries its licence as an SPDX line, and LICENSE is the
# Apache-2.0 text. Usage: check_spdx.sh <source dir>
set -euo pipefail
cd "$1"
grep -q "Apache License" LICENSE && grep -q "Version 2.0, January 2004" LICENSE || { echo "LICENSE is not Apache-2.0"; exit 1; }
if [ -d .git ] && command -v git >/dev/null; then
  mapfile -t files < <(git ls-files)
else
  mapfile -t files < <(find . -path ./build -prune -o -type f -print | sed 's|^\./||')
fi
missing=0
for f in "${files[@]}"; do
  case "$f" in
    *.c|*.h|*.cc|*.cpp|*.hpp|*.cu|*.cuh|*.cs|*.java|*.go|*.i|*.sh|*.cmake|*.in|*CMakeLists.txt|*.map|.ci/*) ;;
    *) continue ;;
  esac
  [ -f "$f" ] || continue
  if ! head -5 "$f" | grep -q "SPDX-License-Identifier: Apache-2.0"; then
    echo "no SPDX line in the first 5 lines: $f"; missing=1
  fi
done
[ "$missing" -eq 0 ] && echo "SPDX: ${#files[@]} files checked"
exit "$missing"
