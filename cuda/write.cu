// SPDX-License-Identifier: Apache-2.0
// write: new tokens' K and V into their slots. One warp per (token, KV head) row: the row's lanes stride over
// head_dim, so INT8's per-row maximum is one warp reduction; rows of the same type move as raw 16-byte words.
#include "cuda/dtype.cuh"
#include "cuda/kernel_util.cuh"
#include "cuda/launch.h"

namespace kvcore::cuda {
namespace {

constexpr unsigned kWarps = 8;

__device__ __forceinline__ float warp_max(float x) {
    for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xFFFFFFFFu, x, offset));
    return x;
}

// One row: src (head_dim elements of src_dtype) -> dst (of the cache's type); INT8 also writes its scale.
__device__ void write_row(const unsigned char* src, unsigned char* dst, float* int8_scale, uint32_t src_dt, uint32_t dst_dt,
                          uint32_t dim, float fp8_scale, unsigned lane) {
    if (src_dt == dst_dt) {  // the CPU copies these bytes unchanged; so do we
        const uint32_t bytes = dim * dt_bytes(src_dt);
        if (bytes % 16 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 16 == 0) {
            for (uint32_t i = lane; i < bytes / 16; i += 32) {
                reinterpret_cast<uint4*>(dst)[i] = reinterpret_cast<const uint4*>(src)[i];
            }
        } else {
            for (uint32_t i = lane; i < dim; i += 32) copy_elem(dt_bytes(src_dt), dst, src, i);
        }
        return;
    }
    if (dst_dt == kDtInt8) {
        // The CPU's order of operations: m = max|x| (NaN ignored, as std::max from 0 ignores it),
        // inverse = 127 / m, q = rint(x * inverse), scale = m / 127.
        float m = 0.f;
        for (uint32_t i = lane; i < dim; i += 32) m = fmaxf(m, fabsf(load_elem(src_dt, src, i, 1.f)));
        m = warp_max(m);
        const float inverse = m > 0.f ? 127.f / m : 0.f;
        for (uint32_t i = lane; i < dim; i += 32) {
            reinterpret_cast<int8_t*>(dst)[i] = quantize_int8(load_elem(src_dt, src, i, 1.f), inverse);
        }
        if (lane == 0) *int8_scale = m / 127.f;
        return;
    }
    for (uint32_t i = lane; i < dim; i += 32) {
        float x = load_elem(src_dt, src, i, 1.f);
        if (dst_dt == kDtFP8) x = x / fp8_scale;  // IEEE division (nvcc's default -prec-div=true), as the CPU
        store_elem(dst_dt, dst, i, x);
    }
}

__global__ void __launch_bounds__(kWarps * 32) write_kernel(WriteParams p) {
    const unsigned lane = threadIdx.x & 31;
    const CacheView& c = p.cache;
    const uint64_t rows = p.n * c.kv_heads;
    const uint64_t src_row_bytes = uint64_t(c.head_dim) * dt_bytes(p.src_dtype);
    const uint64_t dst_row_bytes = uint64_t(c.head_dim) * dt_bytes(c.dtype);
    for (uint64_t r = uint64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < rows; r += uint64_t(gridDim.x) * kWarps) {
        const uint64_t token = r / c.kv_heads;
        const int64_t slot = p.slots[token];
        if (slot < 0) continue;  // -1: skipped (the host refused every other negative value)
        const uint64_t block = uint64_t(slot) / c.block_size;
        const uint64_t row = (uint64_t(slot) % c.block_size) * c.kv_heads + r % c.kv_heads;
        const uint64_t at = block * c.block_stride + row * dst_row_bytes;
        const uint64_t scale_at = block * c.block_stride + c.scale_offset + row * 4;
        write_row(p.key + r * src_row_bytes, c.k + at, reinterpret_cast<float*>(c.k + scale_at), p.src_dtype, c.dtype,
                  c.head_dim, p.k_scale, lane);
        write_row(p.value + r * src_row_bytes, c.v + at, reinterpret_cast<float*>(c.v + scale_at), p.src_dtype, c.dtype,
                  c.head_dim, p.v_scale, lane);
    }
}

}  // namespace

cudaError_t launch_write(const WriteParams& p, cudaStream_t stream) {
    write_kernel<<<grid_for(p.n * p.cache.kv_heads, kWarps), kWarps * 32, 0, stream>>>(p);
    return launch_status();
}

}  // namespace kvcore::cuda
