#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the build into a scratch prefix, then builds a consumer against it twice: with
# `pkg-config --cflags --libs kvcore` and with CMake's find_package(kvcore).
set -euo pipefail
build_dir="$1"
work="$2"
# The build's own C flags (sanitizer presets): a consumer of an instrumented library is instrumented too.
extra_cflags="${3:-}"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$work" && mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libkvcore.so' | head -n 1)")

# Neither consumer is told where libkvcore.so is at run time: kvcore.pc's rpath and the imported
# target's location (CMake's build rpath) must say it.
unset LD_LIBRARY_PATH
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -Wall -Wextra -Werror $extra_cflags "$here/consumer.c" -o "$work/consumer_pc" \
   $(pkg-config --cflags --libs kvcore)
"$work/consumer_pc"

cmake -S "$here" -B "$work/cmake_build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_C_FLAGS="$extra_cflags" -DCMAKE_EXE_LINKER_FLAGS="$extra_cflags" >/dev/null
cmake --build "$work/cmake_build" >/dev/null
"$work/cmake_build/consumer"
echo "consumer: 2 passed, 0 failed"
