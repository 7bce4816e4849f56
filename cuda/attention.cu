// SPDX-License-Identifier: Apache-2.0
// Paged-attention decode. Kernel 1: one thread block per (part of <= part_tokens tokens of a sequence, KV head,
// chunk of up to GMAX of its query heads). Its 4 warps split into row groups of LP lanes; a row group takes
// every NRG-th token of the part, each lane holding 8 elements of the token's K and V rows (one 16-byte load
// for F16/BF16, 8 bytes for FP8/INT8, dequantized in registers), so every K and V row is read once for all
// the chunk's query heads (GQA/MQA). Each row group keeps an online softmax (running max, sum and output, in
// base-2 units) over its tokens, U tokens at a time; the row groups then merge in shared memory and the block
// writes the part's unnormalized output with its max and sum. Kernel 2 merges the parts of each
// (sequence, query head) by log-sum-exp and normalizes. head_dim % 8 == 0 with aligned rows takes the
// vectorized path (CONTIG: lanes own 8 consecutive elements); otherwise lanes own elements lane + 32 j.
#include <cuda_fp16.h>

#include "cuda/dtype.cuh"
#include "cuda/kernel_util.cuh"
#include "cuda/launch.h"

namespace kvcore::cuda {
namespace {

constexpr unsigned kWarps = 4, kThreads = kWarps * 32;
constexpr int kSlots = 8;                       // row elements per lane
constexpr float kLog2e = 1.4426950408889634f;  // logits are kept in base 2: exp(x) = exp2(x * log2 e)

// The lane's 8 elements of a row as floats. CONTIG: elements [first, first + 8), 8-element aligned;
// otherwise elements first + 32 j (first = lane), zero past dim. `scale`: FP8 tensor scale * 256 or INT8 row
// scale.
template <uint32_t DT, bool CONTIG>
__device__ __forceinline__ void load_row_slots(const unsigned char* row, uint32_t first, uint32_t dim, float scale,
                                               float (&x)[kSlots]) {
    if constexpr (!CONTIG) {
#pragma unroll
        for (int j = 0; j < kSlots; ++j) {
            const uint32_t i = first + 32u * j;
            x[j] = i < dim ? load_elem(DT, row, i, scale) : 0.f;
        }
    } else if constexpr (DT == kDtF32) {
        const float4* p = reinterpret_cast<const float4*>(row) + first / 4;
        const float4 a = p[0], b = p[1];
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    } else if constexpr (DT == kDtF16 || DT == kDtBF16) {
        const uint4 w = reinterpret_cast<const uint4*>(row)[first / 8];
        const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            if constexpr (DT == kDtF16) {
                __half2 h;
                memcpy(&h, &words[j], 4);
                const float2 f = __half22float2(h);
                x[2 * j] = f.x, x[2 * j + 1] = f.y;
            } else {
                x[2 * j] = __uint_as_float(words[j] << 16);
                x[2 * j + 1] = __uint_as_float(words[j] & 0xFFFF0000u);
            }
        }
    } else {  // FP8 or INT8: 8 bytes
        const uint2 w = reinterpret_cast<const uint2*>(row)[first / 8];
        const uint32_t words[2] = {w.x, w.y};
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const uint32_t v = words[j];
            if constexpr (DT == kDtFP8) {
                // Two E4M3 bytes into two binary16 lanes: the value times 2^-8 each (see dtype.cuh).
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const uint32_t pair = v >> (16 * half);
                    const uint32_t bits = ((pair & 0x80u) << 8) | ((pair & 0x7Fu) << 7) | ((pair & 0x8000u) << 16) |
                                          ((pair & 0x7F00u) << 15);
                    __half2 h;
                    memcpy(&h, &bits, 4);
                    const float2 f = __half22float2(h);
                    const int k = 4 * j + 2 * half;
                    x[k] = (pair & 0x7Fu) == 0x7Fu ? __uint_as_float(0x7FC00000u) : f.x * scale;
                    x[k + 1] = ((pair >> 8) & 0x7Fu) == 0x7Fu ? __uint_as_float(0x7FC00000u) : f.y * scale;
                }
            } else {
#pragma unroll
                for (int b = 0; b < 4; ++b) x[4 * j + b] = float(int8_t(v >> (8 * b))) * scale;
            }
        }
    }
}

// Sum over the LP lanes of a row group (LP a power of two <= 32: xor offsets below LP stay in the group).
// The mask names the group's lanes only: row groups of one warp leave the token loop after different
// numbers of steps, and a full-warp mask would wait for lanes that never come (a hang on sm_70+).
__device__ __forceinline__ float group_sum(float x, unsigned lp, unsigned lane) {
    const unsigned mask = lp == 32 ? 0xFFFFFFFFu : ((1u << lp) - 1u) << (lane & ~(lp - 1u));
    for (unsigned offset = lp / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(mask, x, offset);
    return x;
}

template <uint32_t DT, bool CONTIG, int GMAX>
__device__ void decode_part(const DecodeParams& p, uint64_t item, uint32_t kv_head, uint32_t chunk, float* smem) {
    constexpr int U = GMAX <= 4 ? 4 : 2;  // tokens per step of a row group: their loads are in flight together
    const CacheView& c = p.cache;
    const uint32_t dim = c.head_dim;
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    // Lanes per row: CONTIG, enough 8-element chunks for the row, rounded up to a power of two.
    unsigned lp = 32;
    if constexpr (CONTIG) {
        lp = 1;
        while (lp * kSlots < dim) lp *= 2;
    }
    const unsigned rows_per_warp = 32 / lp, nrg = kWarps * rows_per_warp;
    const unsigned rg = warp * rows_per_warp + lane / lp;
    const unsigned lane_in_row = lane % lp;
    const uint32_t first = CONTIG ? lane_in_row * kSlots : lane;
    const bool active = first < dim;  // CONTIG: the row's chunk exists (idle lanes of a rounded-up group add 0)

    const uint64_t s = uint64_t(p.items[2 * item]);
    const uint64_t part = uint64_t(p.items[2 * item + 1]);
    const uint64_t len = uint64_t(p.seqs.seq_lens[s]);
    const uint64_t begin = part * p.part_tokens;
    const uint64_t end = begin + p.part_tokens < len ? begin + p.part_tokens : len;
    const int32_t* blocks = p.seqs.blocks + p.seqs.first_block[s];
    const uint32_t g0 = chunk * GMAX;
    const uint32_t gcount = p.group - g0 < uint32_t(GMAX) ? p.group - g0 : uint32_t(GMAX);
    const uint32_t q_head0 = kv_head * p.group + g0;

    // Shared memory: the chunk's queries [GMAX][dim], row groups' max and sum [nrg][GMAX], warps' outputs
    // [kWarps][GMAX][dim].
    float* q_s = smem;
    float* red_m = q_s + GMAX * dim;
    float* red_l = red_m + nrg * GMAX;
    float* red_acc = red_l + nrg * GMAX;
    const float* query = p.query + (s * p.q_heads + q_head0) * dim;
    for (uint32_t i = threadIdx.x; i < GMAX * dim; i += kThreads) q_s[i] = i / dim < gcount ? query[i] : 0.f;
    __syncthreads();

    float m[GMAX], l[GMAX], acc[GMAX][kSlots];
#pragma unroll
    for (int g = 0; g < GMAX; ++g) {
        m[g] = -INFINITY;
        l[g] = 0.f;
#pragma unroll
        for (int j = 0; j < kSlots; ++j) acc[g][j] = 0.f;
    }
    const uint64_t row_bytes = uint64_t(dim) * dt_bytes(DT);
    const float logit_scale = p.softmax_scale * kLog2e;
    const float fp8_k = p.k_scale * 256.f, fp8_v = p.v_scale * 256.f;

    for (uint64_t t0 = begin + rg; t0 < end; t0 += uint64_t(nrg) * U) {
        float kx[U][kSlots], vx[U][kSlots];
        bool valid[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const uint64_t t = t0 + uint64_t(u) * nrg;
            valid[u] = t < end;
#pragma unroll
            for (int j = 0; j < kSlots; ++j) kx[u][j] = vx[u][j] = 0.f;
            if (valid[u] && active) {
                const uint64_t block = uint64_t(blocks[t / c.block_size]);
                const uint64_t row = (t % c.block_size) * c.kv_heads + kv_head;
                const uint64_t at = block * c.block_stride + row * row_bytes;
                float ks = fp8_k, vs = fp8_v;
                if constexpr (DT == kDtInt8) {
                    const uint64_t scale_at = block * c.block_stride + c.scale_offset + row * 4;
                    ks = *reinterpret_cast<const float*>(c.k + scale_at);
                    vs = *reinterpret_cast<const float*>(c.v + scale_at);
                }
                load_row_slots<DT, CONTIG>(c.k + at, first, dim, ks, kx[u]);
                load_row_slots<DT, CONTIG>(c.v + at, first, dim, vs, vx[u]);
            }
        }
#pragma unroll
        for (int g = 0; g < GMAX; ++g) {
            // The lane's query elements, once for the U tokens.
            float qv[kSlots];
            if constexpr (CONTIG) {
                const float4* q4 = reinterpret_cast<const float4*>(q_s + g * dim + (active ? first : 0));
                const float4 a = q4[0], b = q4[1];
                qv[0] = a.x, qv[1] = a.y, qv[2] = a.z, qv[3] = a.w, qv[4] = b.x, qv[5] = b.y, qv[6] = b.z, qv[7] = b.w;
            } else {
#pragma unroll
                for (int j = 0; j < kSlots; ++j) qv[j] = first + 32u * j < dim ? q_s[g * dim + first + 32u * j] : 0.f;
            }
            float logit[U];
            float step_max = m[g];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                float partial = 0.f;  // kx is 0 on idle lanes and past dim
#pragma unroll
                for (int j = 0; j < kSlots; ++j) partial += qv[j] * kx[u][j];
                const float dot = group_sum(partial, lp, lane);
                logit[u] = valid[u] ? dot * logit_scale : -INFINITY;
                step_max = fmaxf(step_max, logit[u]);
            }
            // step_max is finite: token t0 is valid (its logit is finite for finite inputs).
            const float correction = exp2f(m[g] - step_max);  // exp2(-inf) = 0 on the first step
            float step_sum = 0.f;
            float p_u[U];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                p_u[u] = exp2f(logit[u] - step_max);
                step_sum += p_u[u];
            }
            l[g] = l[g] * correction + step_sum;
            m[g] = step_max;
#pragma unroll
            for (int j = 0; j < kSlots; ++j) {
                float a = acc[g][j] * correction;
#pragma unroll
                for (int u = 0; u < U; ++u) a += p_u[u] * vx[u][j];
                acc[g][j] = a;
            }
        }
    }

    // Merge the row groups: the part's max M and sum L per query head, outputs rescaled to M.
    if (lane_in_row == 0) {
#pragma unroll
        for (int g = 0; g < GMAX; ++g) {
            red_m[rg * GMAX + g] = m[g];
            red_l[rg * GMAX + g] = l[g];
        }
    }
    __syncthreads();
    float part_m[GMAX], part_l[GMAX];
#pragma unroll
    for (int g = 0; g < GMAX; ++g) {
        float mx = -INFINITY;
        for (unsigned r = 0; r < nrg; ++r) mx = fmaxf(mx, red_m[r * GMAX + g]);
        float sum = 0.f;
        for (unsigned r = 0; r < nrg; ++r) {
            const float mr = red_m[r * GMAX + g];
            if (mr != -INFINITY) sum += red_l[r * GMAX + g] * exp2f(mr - mx);
        }
        part_m[g] = mx;
        part_l[g] = sum;
        const float w = m[g] == -INFINITY ? 0.f : exp2f(m[g] - mx);
#pragma unroll
        for (int j = 0; j < kSlots; ++j) {
            float a = acc[g][j] * w;
            for (unsigned offset = lp; offset < 32; offset *= 2) a += __shfl_xor_sync(0xFFFFFFFFu, a, offset);
            acc[g][j] = a;
        }
    }
    if (lane < lp) {  // the warp's first row group holds the warp's sum
#pragma unroll
        for (int g = 0; g < GMAX; ++g) {
#pragma unroll
            for (int j = 0; j < kSlots; ++j) {
                const uint32_t i = CONTIG ? first + j : first + 32u * j;
                if (i < dim) red_acc[(warp * GMAX + g) * dim + i] = acc[g][j];
            }
        }
    }
    __syncthreads();
    const uint64_t out_head0 = item * p.q_heads + q_head0;
    for (uint32_t i = threadIdx.x; i < gcount * dim; i += kThreads) {
        const uint32_t g = i / dim, d = i % dim;
        float sum = 0.f;
        for (unsigned w = 0; w < kWarps; ++w) sum += red_acc[(w * GMAX + g) * dim + d];
        p.part_acc[(out_head0 + g) * dim + d] = sum;
    }
#pragma unroll
    for (int g = 0; g < GMAX; ++g) {
        if (threadIdx.x == unsigned(g) && uint32_t(g) < gcount) {
            p.part_max[out_head0 + g] = part_m[g];
            p.part_sum[out_head0 + g] = part_l[g];
        }
    }
    __syncthreads();  // shared memory is reused by the block's next work item
}

template <uint32_t DT, bool CONTIG, int GMAX>
__global__ void __launch_bounds__(kThreads) decode_kernel(DecodeParams p) {
    extern __shared__ float smem[];
    const uint32_t chunks = (p.group + GMAX - 1) / GMAX;
    const uint64_t heads = uint64_t(p.cache.kv_heads) * chunks;
    for (uint64_t item = blockIdx.x; item < p.num_items; item += gridDim.x) {
        for (uint64_t y = blockIdx.y; y < heads; y += gridDim.y) {
            decode_part<DT, CONTIG, GMAX>(p, item, uint32_t(y / chunks), uint32_t(y % chunks), smem);
        }
    }
}

// out[s, h] = sum_parts 2^(m_p - M) acc_p / sum_parts 2^(m_p - M) l_p; zeros for a sequence without tokens.
__global__ void __launch_bounds__(kThreads) merge_kernel(DecodeParams p) {
    const uint32_t dim = p.cache.head_dim;
    for (uint64_t s = blockIdx.x; s < p.seqs.num_seqs; s += gridDim.x) {
        const uint64_t i0 = p.first_item[s], i1 = p.first_item[s + 1];
        for (uint64_t h = blockIdx.y; h < p.q_heads; h += gridDim.y) {
            float mx = -INFINITY;
            for (uint64_t i = i0; i < i1; ++i) mx = fmaxf(mx, p.part_max[i * p.q_heads + h]);
            float denominator = 0.f;
            for (uint64_t i = i0; i < i1; ++i) {
                const float mi = p.part_max[i * p.q_heads + h];
                if (mi != -INFINITY) denominator += exp2f(mi - mx) * p.part_sum[i * p.q_heads + h];
            }
            const float inverse = denominator > 0.f ? 1.f / denominator : 1.f;
            for (uint32_t d = threadIdx.x; d < dim; d += kThreads) {
                float o = 0.f;
                for (uint64_t i = i0; i < i1; ++i) {
                    const float mi = p.part_max[i * p.q_heads + h];
                    if (mi != -INFINITY) o += exp2f(mi - mx) * p.part_acc[(i * p.q_heads + h) * dim + d];
                }
                p.out[(s * p.q_heads + h) * dim + d] = o * inverse;
            }
        }
    }
}

template <uint32_t DT, bool CONTIG, int GMAX>
cudaError_t launch_decode(const DecodeParams& p, cudaStream_t stream) {
    const uint32_t dim = p.cache.head_dim;
    unsigned lp = 32;
    if (CONTIG) {
        lp = 1;
        while (lp * kSlots < dim) lp *= 2;
    }
    const unsigned nrg = kWarps * (32 / lp);
    const size_t smem = sizeof(float) * (size_t(GMAX) * dim + 2u * nrg * GMAX + size_t(kWarps) * GMAX * dim);
    if (smem > 48 * 1024) {
        const cudaError_t err = cudaFuncSetAttribute(decode_kernel<DT, CONTIG, GMAX>,
                                                     cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        if (err != cudaSuccess) return err;
    }
    const uint64_t heads = uint64_t(p.cache.kv_heads) * ((p.group + GMAX - 1) / GMAX);
    const dim3 grid(grid_for(p.num_items, 1), unsigned(heads < 65535 ? heads : 65535));
    decode_kernel<DT, CONTIG, GMAX><<<grid, kThreads, smem, stream>>>(p);
    return launch_status();
}

template <uint32_t DT>
cudaError_t launch_for_type(const DecodeParams& p, cudaStream_t stream) {
    if (!p.vectorized) return launch_decode<DT, false, 8>(p, stream);  // the generic path: correctness first
    if (p.group <= 1) return launch_decode<DT, true, 1>(p, stream);
    if (p.group <= 2) return launch_decode<DT, true, 2>(p, stream);
    if (p.group <= 4) return launch_decode<DT, true, 4>(p, stream);
    return launch_decode<DT, true, 8>(p, stream);
}

}  // namespace

cudaError_t launch_attention_decode(const DecodeParams& p, cudaStream_t stream) {
    if (p.num_items != 0) {
        cudaError_t err = cudaSuccess;
        switch (p.cache.dtype) {
            case kDtF32: err = launch_for_type<kDtF32>(p, stream); break;
            case kDtF16: err = launch_for_type<kDtF16>(p, stream); break;
            case kDtBF16: err = launch_for_type<kDtBF16>(p, stream); break;
            case kDtFP8: err = launch_for_type<kDtFP8>(p, stream); break;
            default: err = launch_for_type<kDtInt8>(p, stream); break;
        }
        if (err != cudaSuccess) return err;
    }
    const dim3 grid(grid_for(p.seqs.num_seqs, 1), unsigned(p.q_heads < 65535 ? p.q_heads : 65535));
    merge_kernel<<<grid, kThreads, 0, stream>>>(p);
    return launch_status();
}

}  // namespace kvcore::cuda
