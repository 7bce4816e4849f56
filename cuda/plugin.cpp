// SPDX-License-Identifier: Apache-2.0
// The plugin libkvcore_cuda.so: the kernels (cuda/*.cu) and the CUDA runtime entry points libkvcore uses,
// handed over as one table (cuda/runtime.h explains why libkvcore does not link CUDA itself).
#include <cuda_runtime_api.h>

#include "cuda/runtime.h"

namespace {

// Through lambdas: some runtime entry points are overloaded or templated in C++ and have no unique address.
const kvcore::cuda::Runtime kTable = {
    kvcore::cuda::kPluginAbi,
    uint32_t(sizeof(kvcore::cuda::DecodeParams)),
    [](int* n) { return cudaGetDeviceCount(n); },
    [](int* d) { return cudaGetDevice(d); },
    [](int* v, cudaDeviceAttr a, int d) { return cudaDeviceGetAttribute(v, a, d); },
    [](cudaPointerAttributes* a, const void* p) { return cudaPointerGetAttributes(a, p); },
    [](void** p, size_t n, cudaStream_t s) { return cudaMallocAsync(p, n, s); },
    [](void* p, cudaStream_t s) { return cudaFreeAsync(p, s); },
    [](void* d, const void* s, size_t n, cudaMemcpyKind k, cudaStream_t st) { return cudaMemcpyAsync(d, s, n, k, st); },
    [](void* d, size_t dp, const void* s, size_t sp, size_t w, size_t h, cudaMemcpyKind k, cudaStream_t st) {
        return cudaMemcpy2DAsync(d, dp, s, sp, w, h, k, st);
    },
    [] { return cudaGetLastError(); },
    [](cudaError_t e) { return cudaGetErrorName(e); },
    [](cudaError_t e) { return cudaGetErrorString(e); },
    &kvcore::cuda::launch_write,
    &kvcore::cuda::launch_copy_blocks,
    &kvcore::cuda::launch_gather,
    &kvcore::cuda::launch_attention_decode,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const kvcore::cuda::Runtime* kvcore_cuda_plugin_runtime() {
    return &kTable;
}
