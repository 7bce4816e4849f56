#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SmallMind's documented C# snippets ("Configuration", "Using KV Cache", "Monitoring" in seed 001) must
# compile and run against kvcore with only two edits: their `using` lines become `using Kvcore;`, and the
# `model.*` fields they read become numbers. The snippets are read from the seed at test time (not copied
# into kvcore); without ../shared the test is skipped (77) and SmallMindCompat.cs, written to the same
# shapes, still runs.
# usage: smallmind_snippets.sh SEEDS_DIR BUILD_DIR(with Kvcore.dll) WORK_DIR MCS MONO
set -euo pipefail
seeds="$1" out="$2" work="$3" mcs="$4" mono="$5"
seed=$(ls "$seeds"/001_*.txt 2>/dev/null | head -1 || true)
if [ -z "$seed" ]; then
  echo "SKIPPED: SmallMind's seed document (001_*.txt) is not in $seeds"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"

# The first ```csharp block after the first heading named $1.
snippet() {
  awk -v heading="### $1" '
    $0 == heading && !seen { seen = 1; next }
    seen && !inside && /^```csharp/ { inside = 1; next }
    inside && /^```/ { exit }
    inside { print }
  ' "$seed"
}
edit() {
  grep -v '^using ' | sed -e 's/model\.NumLayers/4/g' -e 's/model\.NumHeads/8/g' -e 's/model\.EmbedDim/128/g'
}
configuration=$(snippet "Configuration" | edit)
using_cache=$(snippet "Using KV Cache" | edit)
monitoring=$(snippet "Monitoring" | edit)
for part in configuration using_cache monitoring; do
  if [ -z "${!part}" ]; then
    echo "smallmind_snippets: no C# block found for $part in $seed"
    exit 1
  fi
done
if grep -q 'model\.' <<<"$configuration$using_cache$monitoring"; then
  echo "smallmind_snippets: a model.* field this test does not replace:"
  grep -o 'model\.[A-Za-z]*' <<<"$configuration$using_cache$monitoring" | sort -u
  exit 1
fi

# Each snippet in its own method (two of them declare cacheStore); Monitoring reads the store that
# "Using KV Cache" filled.
cat >"$work/Snippets.cs" <<CS
using System;
using Kvcore;

static class Snippets {
  static void Configuration() {
$configuration
    cacheStore.Dispose();
  }

  static LruKvCacheStore UsingKvCache() {
$using_cache
    return cacheStore;
  }

  static void Monitoring(LruKvCacheStore cacheStore) {
$monitoring
  }

  static void Main() {
    Configuration();
    var cacheStore = UsingKvCache();
    Monitoring(cacheStore);
    cacheStore.Dispose();
  }
}
CS
"$mcs" -nologo -r:"$out/Kvcore.dll" -out:"$work/Snippets.exe" "$work/Snippets.cs"
cp "$out/Kvcore.dll" "$out/Kvcore.dll.config" "$work/"
"$mono" "$work/Snippets.exe" | tee "$work/output.txt"
grep -q '^Sessions: 1$' "$work/output.txt"
echo "smallmind_snippets: 1 passed, 0 failed"
