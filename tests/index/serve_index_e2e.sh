#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs serve_index_e2e.py with the first python3 that has msgpack and zmq: Debian's python3-msgpack and
# python3-zmq live in /usr/bin/python3's path, which a pyenv or venv python3 earlier in PATH does not see.
# usage: serve_index_e2e.sh KVCORE DATA_DIR. Exits 77 (skipped) without them.
set -eu
here=$(dirname "$0")
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import msgpack, zmq' 2>/dev/null; then
    exec "$candidate" "$here/serve_index_e2e.py" "$@"
  fi
done
echo "SKIPPED: no python3 with the msgpack and zmq modules (Debian python3-msgpack and python3-zmq;" \
     "scripts/install-deps.sh installs them)"
exit 77
