#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Batches written by Python's msgpack (make_events.py), decoded and compared by compare_events.
# usage: python_events.sh COMPARE_EXE MAKE_EVENTS_PY WORKDIR. Exits 77 (skipped) without python3-msgpack.
set -eu
compare=$1 script=$2 work=$3
# The first python3 that has msgpack: Debian's python3-msgpack lives in /usr/bin/python3's path, which
# a pyenv or venv python3 earlier in PATH does not see.
py=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import msgpack' 2>/dev/null; then
    py=$candidate
    break
  fi
done
if [ -z "$py" ]; then
  echo "SKIPPED: no python3 with the msgpack module (Debian python3-msgpack; scripts/install-deps.sh installs it)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
"$py" "$script" "$work"
"$compare" "$work"
