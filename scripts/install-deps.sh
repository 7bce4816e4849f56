#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs, from Debian's packages, everything kvcore builds, tests and binds with.
# Idempotent: when every package is present it only runs dpkg queries (well under a second).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config            # toolchain
  libgtest-dev libgmock-dev libbenchmark-dev valgrind     # tests and benchmarks
  python3-msgpack python3-zmq                             # KV event batches and engines apart from kvcore (tests/index)
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev      # the kvcore CLI (serve-index's HTTP)
  libssl-dev libxxhash-dev libmimalloc-dev                # hashing, allocator
  libopenblas-dev                                         # sgemm for the reference decoder (src/model)
  libmsgpack-cxx-dev libzmq3-dev cppzmq-dev               # KV events, ZeroMQ
  libhiredis-dev redis-server                             # Redis/Valkey index backend
  swig                                                    # bindings generator
  mono-mcs mono-runtime                                   # C# binding
  openjdk-17-jdk-headless                                 # Java binding
  golang-go                                               # Go binding
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
