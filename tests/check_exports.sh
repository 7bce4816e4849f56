#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libkvcore.so must export the C API (kvc_*) and nothing else.
set -euo pipefail
lib="$1"
symbols=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
stray=$(echo "$symbols" | grep -v '^kvc_' | grep -v '^KVCORE_0$' || true)
count=$(echo "$symbols" | grep -c '^kvc_' || true)
if [ -n "$stray" ]; then
  echo "exports: symbols other than kvc_* leave $lib:"
  echo "$stray"
  echo "exports: 0 passed, 1 failed"
  exit 1
fi
if [ "$count" -lt 10 ]; then
  echo "exports: only $count kvc_* symbols found in $lib"
  echo "exports: 0 passed, 1 failed"
  exit 1
fi
echo "exports: $count kvc_* symbols and nothing else"
echo "exports: 1 passed, 0 failed"
