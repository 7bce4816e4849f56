// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the kernels of cuda/.
#pragma once

#include <cuda_runtime.h>

#include <stdint.h>

namespace kvcore::cuda {

// Blocks for `items` work items at `per_block` items each; kernels loop (grid-stride), so the grid is
// capped well inside CUDA's limits.
inline unsigned grid_for(uint64_t items, uint64_t per_block, uint64_t cap = 1u << 20) {
    uint64_t blocks = (items + per_block - 1) / per_block;
    if (blocks == 0) blocks = 1;
    return unsigned(blocks < cap ? blocks : cap);
}

// The launch's own error (bad configuration), cleared so that it does not outlive this call.
inline cudaError_t launch_status() { return cudaGetLastError(); }

// Index of the sequence that holds item `i` of a prefix sum `first` (first[0] = 0, num + 1 entries,
// non-decreasing): the largest s with first[s] <= i, skipping empty sequences.
__device__ __forceinline__ uint64_t owner_of(const uint64_t* first, uint64_t num, uint64_t i) {
    uint64_t lo = 0, hi = num;  // first[lo] <= i < first[hi]
    while (hi - lo > 1) {
        const uint64_t mid = (lo + hi) / 2;
        if (first[mid] <= i) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

}  // namespace kvcore::cuda
