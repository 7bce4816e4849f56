#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The one prepared run on a CUDA machine (issue 14): configure for sm_90 with only what the CUDA kernels need,
# build their library, tests and benchmark (-j16), run the `gpu`-labelled ctests and the C API test of
# kvcore/ops_cuda.h, then kvcore_ops_cuda_bench, and write logs and figures to $OUT (or $KVCORE_GPU_OUT,
# default build/gpu-out): env.txt, configure.log, build.log, ctest.log, bench.txt, bench.json, figures.md.
#
# The device machine has CUDA, CMake and ninja but maybe not the core's build dependencies (OpenSSL and
# xxhash for the library, GoogleTest and nlohmann-json for the tests, Google Benchmark for bench/) and no
# package registry. So, here first:
#     scripts/gpu-check.sh --pack-deps      # copies them from this machine into build/gpu-deps (~10 MB)
# and carry build/gpu-deps along; the run then prefers it (CMAKE_PREFIX_PATH) over whatever is installed.
# Exit status: 0 when the build, the tests (passed or skipped) and the benchmark succeed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
deps="$root/build/gpu-deps"

if [ "${1:-}" = "--pack-deps" ]; then
  set -e
  rm -rf "$deps"
  mkdir -p "$deps/include" "$deps/lib/x86_64-linux-gnu/cmake" "$deps/share/cmake"
  arch=/usr/lib/x86_64-linux-gnu
  cp -rL /usr/include/openssl "$deps/include/"
  cp -L /usr/include/x86_64-linux-gnu/openssl/* "$deps/include/openssl/"
  cp -L "$arch/libcrypto.so.3" "$deps/lib/"
  cp -L "$arch/libcrypto.so.3" "$deps/lib/libcrypto.so"
  cp -L /usr/include/xxhash.h "$deps/include/"
  cp -rL /usr/include/gtest /usr/include/gmock /usr/include/nlohmann /usr/include/benchmark "$deps/include/"
  cp -L "$arch"/libgtest*.a "$arch"/libgmock*.a "$arch"/libbenchmark_main.a "$arch/libbenchmark.so.1.7.1" \
    "$deps/lib/x86_64-linux-gnu/"
  cp -L "$arch/libbenchmark.so.1.7.1" "$deps/lib/x86_64-linux-gnu/libbenchmark.so.1debian"
  cp -rL "$arch/cmake/GTest" "$arch/cmake/benchmark" "$deps/lib/x86_64-linux-gnu/cmake/"
  if [ -d /usr/share/cmake/nlohmann_json ]; then
    cp -rL /usr/share/cmake/nlohmann_json "$deps/share/cmake/"
  else
    cp -rL "$arch/cmake/nlohmann_json" "$deps/lib/x86_64-linux-gnu/cmake/"
  fi
  du -sh "$deps"
  exit 0
fi

out="${OUT:-${KVCORE_GPU_OUT:-$root/build/gpu-out}}"
build="${KVCORE_GPU_BUILD:-$root/build/gpu}"
mkdir -p "$out"
status=0
step() { echo "== $*" | tee -a "$out/env.txt"; }

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1 || true
  nvcc --version 2>&1 | tail -2 || /usr/local/cuda/bin/nvcc --version 2>&1 | tail -2
  cmake --version | head -1
  g++ --version | head -1
  nproc
} > "$out/env.txt" 2>&1

nvcc_path=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
prefix_args=()
if [ -d "$deps" ]; then
  prefix_args=(-DCMAKE_PREFIX_PATH="$deps" -DOPENSSL_ROOT_DIR="$deps" -DXXHASH_INCLUDE_DIR="$deps/include")
  step "using carried dependencies in $deps"
fi
step configure
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc_path" \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DKVCORE_CUDA=ON -DKVCORE_BINDINGS=OFF -DKVCORE_REDIS=OFF -DKVCORE_ZMQ=OFF \
  -DKVCORE_CLI=OFF -DKVCORE_MIMALLOC=OFF -DKVCORE_TESTS=ON -DKVCORE_BENCH=ON "${prefix_args[@]}" \
  > "$out/configure.log" 2>&1 || { echo "configure failed: see configure.log" | tee -a "$out/env.txt"; exit 1; }

step build
cmake --build "$build" -j"${KVCORE_GPU_JOBS:-16}" --target kvcore kvcore_cuda kvcore_gpu_ops_cuda_test kvcore_gpu_device_pool_test \
  kvcore_c_api_ops_cuda_test kvcore_ops_cuda_bench > "$out/build.log" 2>&1 ||
  { echo "build failed: see build.log" | tee -a "$out/env.txt"; exit 1; }

step ctest
ctest --test-dir "$build" -L gpu --output-on-failure > "$out/ctest.log" 2>&1 || status=1
ctest --test-dir "$build" -R "^c_api_ops_cuda$" --output-on-failure >> "$out/ctest.log" 2>&1 || status=1
tail -5 "$out/ctest.log" | tee -a "$out/env.txt"

step bench
timeout 300 "$build/bench/kvcore_ops_cuda_bench" "$out/bench.json" > "$out/bench.txt" 2>&1 || status=1
tail -20 "$out/bench.txt" | tee -a "$out/env.txt"

# figures.md: the bench's JSON as a table (python3 is on the device image; skipped quietly elsewhere).
if command -v python3 > /dev/null && [ -s "$out/bench.json" ]; then
  python3 - "$out/bench.json" > "$out/figures.md" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| operation | us | GB/s | anchor | anchor us | anchor/op | % HBM peak | % memcpy | host us |")
print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    print("| {} | {:.1f} | {:.1f} | {} | {} | {} | {} | {} | {} |".format(
        r["op"], r["us"], r["GBps"], r.get("anchor", ""),
        "{:.1f}".format(r["anchor_us"]) if "anchor_us" in r else "",
        "{:.3f}".format(r["ratio"]) if "ratio" in r else "",
        r.get("pct_hbm_peak", ""), r.get("pct_memcpy", ""), r.get("host_us", "")))
EOF
fi
echo "gpu-check: status $status; results in $out"
exit $status
