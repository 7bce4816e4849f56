#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the build into a fresh scratch prefix: the tree the install tests use.
# Usage: install.sh <build dir> <prefix>
set -euo pipefail
build_dir="$1"
prefix="$2"
rm -rf "$prefix"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
echo "installed into $prefix"
