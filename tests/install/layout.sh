#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The installed tree holds what the README promises, and each binding's native library finds
# libkvcore.so.0 in <prefix>/lib through its own RUNPATH, with no LD_LIBRARY_PATH.
# Usage: layout.sh <prefix> <libdir name> <datadir name> [csharp] [java] [go]
set -euo pipefail
unset LD_LIBRARY_PATH
prefix="$1"; libdir="$prefix/$2"; datadir="$prefix/$3"; shift 3
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
need() { [ -e "$1" ] || fail "missing $1"; }

need "$libdir/libkvcore.so.0"
need "$libdir/pkgconfig/kvcore.pc"
PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --libs kvcore | grep -q -- "-Wl,-rpath," || fail "kvcore.pc gives no rpath"

# A wrapper's libkvcore.so.0 must resolve to the one in this prefix's libdir.
resolves_core() {
  local found
  found=$(ldd "$1" | awk '$1 == "libkvcore.so.0" { print $3 }')
  if [ -z "$found" ] || [ "$found" = "not" ] || [ "$(realpath "$found")" != "$(realpath "$libdir/libkvcore.so.0")" ]; then
    fail "$1: libkvcore.so.0 => ${found:-nothing} ($(readelf -d "$1" | grep -o 'runpath: .*' || echo 'no runpath'))"
  fi
}

for binding in "$@"; do
  case "$binding" in
    csharp)
      for f in Kvcore.dll Kvcore.dll.config libkvcore_csharp.so; do need "$libdir/kvcore/csharp/$f"; done
      resolves_core "$libdir/kvcore/csharp/libkvcore_csharp.so"
      need "$datadir/kvcore/nuget/Kvcore.$(pkg-config --modversion "$libdir/pkgconfig/kvcore.pc").nupkg" ;;
    java)
      need "$datadir/java/kvcore.jar"; need "$datadir/java/kvcore.pom"
      need "$libdir/kvcore/java/libkvcore_java.so"
      resolves_core "$libdir/kvcore/java/libkvcore_java.so" ;;
    go)
      need "$datadir/kvcore/go/go.mod"
      grep -q "^module github.com/kvcore/kvcore/bindings/go$" "$datadir/kvcore/go/go.mod" || fail "go.mod module path"
      tests=$(find "$datadir/kvcore/go" -name '*_test.go')
      [ -z "$tests" ] || fail "test files installed: $tests" ;;
    *) fail "unknown binding $binding" ;;
  esac
done
[ "$failures" -eq 0 ] && echo "install layout: ok ($*)"
exit "$((failures > 0))"
