// SPDX-License-Identifier: Apache-2.0
// copy_blocks: every (pair, layer, K/V) block copy of a call in one launch. A thread block copies one block
// of one layer and tensor with the widest word that the bases, strides and block size allow (16 bytes for
// any usual shape), four words in flight per thread.
#include "cuda/kernel_util.cuh"
#include "cuda/launch.h"

namespace kvcore::cuda {
namespace {

constexpr unsigned kThreads = 256;

template <typename Word>
__global__ void __launch_bounds__(kThreads) copy_kernel(CopyParams p) {
    const uint64_t words = p.block_bytes / sizeof(Word);
    const uint64_t items = 2 * p.num_pairs;  // (pair, tensor)
    for (uint64_t layer = blockIdx.y; layer < p.layers; layer += gridDim.y) {
        for (uint64_t item = blockIdx.x; item < items; item += gridDim.x) {
            unsigned char* base = ((item & 1) ? p.v : p.k) + layer * p.layer_stride;
            const uint64_t pair = item >> 1;
            const Word* __restrict__ src = reinterpret_cast<const Word*>(base + uint64_t(p.pairs[2 * pair]) * p.block_stride);
            Word* __restrict__ dst = reinterpret_cast<Word*>(base + uint64_t(p.pairs[2 * pair + 1]) * p.block_stride);
            uint64_t i = threadIdx.x;
            for (; i + 3 * kThreads < words; i += 4 * kThreads) {
                const Word a = src[i], b = src[i + kThreads], c = src[i + 2 * kThreads], d = src[i + 3 * kThreads];
                dst[i] = a;
                dst[i + kThreads] = b;
                dst[i + 2 * kThreads] = c;
                dst[i + 3 * kThreads] = d;
            }
            for (; i < words; i += kThreads) dst[i] = src[i];
        }
    }
}

template <typename Word>
cudaError_t launch(const CopyParams& p, cudaStream_t stream) {
    const dim3 grid(grid_for(2 * p.num_pairs, 1), unsigned(p.layers < 65535 ? p.layers : 65535));
    copy_kernel<Word><<<grid, kThreads, 0, stream>>>(p);
    return launch_status();
}

}  // namespace

cudaError_t launch_copy_blocks(const CopyParams& p, cudaStream_t stream) {
    const uint64_t all = reinterpret_cast<uintptr_t>(p.k) | reinterpret_cast<uintptr_t>(p.v) | p.block_stride |
                         p.layer_stride | p.block_bytes;
    if (all % 16 == 0) return launch<uint4>(p, stream);
    if (all % 8 == 0) return launch<uint2>(p, stream);
    if (all % 4 == 0) return launch<uint32_t>(p, stream);
    if (all % 2 == 0) return launch<uint16_t>(p, stream);
    return launch<uint8_t>(p, stream);
}

}  // namespace kvcore::cuda
