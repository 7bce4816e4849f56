// SPDX-License-Identifier: Apache-2.0
// gather: paged -> contiguous [tokens, kv_heads, head_dim]. One warp per output row (token, KV head); the
// row's sequence comes from a binary search over the sequences' first output tokens.
#include "cuda/dtype.cuh"
#include "cuda/kernel_util.cuh"
#include "cuda/launch.h"

namespace kvcore::cuda {
namespace {

constexpr unsigned kWarps = 8;

__device__ void gather_row(const unsigned char* src, unsigned char* dst, uint32_t cache_dt, uint32_t out_dt, uint32_t dim,
                           float scale, unsigned lane) {
    if (cache_dt == out_dt) {
        for (uint32_t i = lane; i < dim; i += 32) copy_elem(dt_bytes(out_dt), dst, src, i);
        return;
    }
    for (uint32_t i = lane; i < dim; i += 32) store_elem(out_dt, dst, i, load_elem(cache_dt, src, i, scale));
}

__global__ void __launch_bounds__(kWarps * 32) gather_kernel(GatherParams p) {
    const unsigned lane = threadIdx.x & 31;
    const CacheView& c = p.cache;
    const uint64_t rows = p.total_tokens * c.kv_heads;
    const uint64_t row_bytes = uint64_t(c.head_dim) * dt_bytes(c.dtype);
    const uint64_t out_row_bytes = uint64_t(c.head_dim) * dt_bytes(p.out_dtype);
    for (uint64_t r = uint64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < rows; r += uint64_t(gridDim.x) * kWarps) {
        const uint64_t token = r / c.kv_heads;
        const uint32_t head = uint32_t(r % c.kv_heads);
        const uint64_t s = owner_of(p.first_token, p.seqs.num_seqs, token);
        const uint64_t pos = token - p.first_token[s];
        const uint64_t block = uint64_t(p.seqs.blocks[p.seqs.first_block[s] + pos / c.block_size]);
        const uint64_t row = (pos % c.block_size) * c.kv_heads + head;
        const uint64_t at = block * c.block_stride + row * row_bytes;
        float k_scale = p.k_scale * 256.f, v_scale = p.v_scale * 256.f;  // FP8 (see fp8_read)
        if (c.dtype == kDtInt8) {
            const uint64_t scale_at = block * c.block_stride + c.scale_offset + row * 4;
            k_scale = *reinterpret_cast<const float*>(c.k + scale_at);
            v_scale = *reinterpret_cast<const float*>(c.v + scale_at);
        }
        gather_row(c.k + at, p.out_k + r * out_row_bytes, c.dtype, p.out_dtype, c.head_dim, k_scale, lane);
        gather_row(c.v + at, p.out_v + r * out_row_bytes, c.dtype, p.out_dtype, c.head_dim, v_scale, lane);
    }
}

}  // namespace

cudaError_t launch_gather(const GatherParams& p, cudaStream_t stream) {
    gather_kernel<<<grid_for(p.total_tokens * p.cache.kv_heads, kWarps), kWarps * 32, 0, stream>>>(p);
    return launch_status();
}

}  // namespace kvcore::cuda
