#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds a consumer against it twice: with
# `pkg-config --cflags --libs kvcore` and with CMake's find_package(kvcore).
set -euo pipefail
build_dir="$1"
work="$2"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$work" && mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libkvcore.so' | head -n 1)")

export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -Wall -Wextra -Werror "$here/consumer.c" -o "$work/consumer_pc" \
   $(pkg-config --cflags --libs kvcore) -Wl,-rpath,"$libdir"
"$work/consumer_pc"

cmake -S "$here" -B "$work/cmake_build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$work/cmake_build" >/dev/null
"$work/cmake_build/consumer"
echo "consumer: 2 passed, 0 failed"
