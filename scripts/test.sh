#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds everything once, and runs every test: C++, C, ABI/packaging checks,
# the CLI, the C#, Java and Go bindings against the installed tree, then the C++ and C tests again under
# UndefinedBehaviorSanitizer. Usage: scripts/test.sh [preset]   (default: dev, then ubsan; or one of
# dev, release, asan, ubsan, tsan alone)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

# Tests that skip say why on a line starting "SKIPPED:"; ctest's summary only names them, so the reasons
# are printed after it.
print_skip_reasons() {
  local log="build/$1/Testing/Temporary/LastTest.log"
  [ -f "$log" ] || return 0
  awk '/^[0-9]+\/[0-9]+ Test: / { name = $3 } /^SKIPPED:/ { print "  skipped " name ": " substr($0, 10) }' "$log"
}

run_preset() {
  local preset="$1" status=0
  cmake --preset "$preset"
  cmake --build --preset "$preset"
  ctest --preset "$preset" || status=$?
  print_skip_reasons "$preset"
  return "$status"
}

if [ $# -eq 0 ]; then
  run_preset dev
  run_preset ubsan
else
  run_preset "$1"
fi
