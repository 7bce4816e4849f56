#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The installed NuGet package as a Mono app uses it: the files of lib/net45/ and
# runtimes/<rid>/native/ beside app.exe in an empty folder, then `mono app.exe` with no LD_LIBRARY_PATH
# and no MONO_PATH (Kvcore.dll.config and the wrapper's $ORIGIN RUNPATH must do the rest).
# Usage: nupkg.sh <prefix> <datadir name> <source dir> <work dir>
set -euo pipefail
prefix="$1"; datadir="$prefix/$2"; source_dir="$3"; work="$4"
unset LD_LIBRARY_PATH MONO_PATH
nupkg=$(ls "$datadir"/kvcore/nuget/Kvcore.*.nupkg)
rm -rf "$work" && mkdir -p "$work/unpacked" "$work/app"
(cd "$work/unpacked" && cmake -E tar xf "$nupkg")
rid=$(cd "$work/unpacked/runtimes" && echo *)  # the one platform packed, e.g. linux-x64

failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
version=${nupkg##*/Kvcore.}; version=${version%.nupkg}
grep -q "<id>Kvcore</id>" "$work/unpacked/Kvcore.nuspec" || fail "nuspec id"
grep -q "<version>$version</version>" "$work/unpacked/Kvcore.nuspec" || fail "nuspec version is not $version"
[ -f "$work/unpacked/[Content_Types].xml" ] || fail "no [Content_Types].xml"
for f in lib/net45/Kvcore.dll lib/net45/Kvcore.dll.config \
         "runtimes/$rid/native/libkvcore_csharp.so" "runtimes/$rid/native/libkvcore.so.0"; do
  [ -f "$work/unpacked/$f" ] || fail "package lacks $f"
done
# Nothing of this machine's build tree is shipped: the wrapper looks for libkvcore.so.0 beside itself.
runpath=$(readelf -d "$work/unpacked/runtimes/$rid/native/libkvcore_csharp.so" | grep -o 'runpath: \[.*\]' || true)
[ "$runpath" = 'runpath: [$ORIGIN]' ] || fail "wrapper ${runpath:-has no runpath}"
[ "$failures" -eq 0 ] || exit 1

cp "$work/unpacked/lib/net45/"* "$work/unpacked/runtimes/$rid/native/"* "$work/app/"
cp "$source_dir/examples/tour/Tour.cs" "$work/app/"
cd "$work/app"
mcs -nologo -r:Kvcore.dll -out:app.exe Tour.cs
rm Tour.cs
mono app.exe | tee output.txt
grep -q "^reused 32 of 40 prompt tokens" output.txt
grep -q 'kvcore_hits_total{component="pool"} 2' output.txt
echo "nupkg: ok"
