// SPDX-License-Identifier: Apache-2.0
// The inner loops of the CPU KV kernels, compiled three times from one source (ops/kernels_impl.h): for
// plain x86-64 (or any other target), for AVX2+FMA+F16C and for AVX-512. The table for the running CPU is
// chosen once, at first use (__builtin_cpu_supports); KVCORE_OPS_ISA=generic|avx2|avx512 forces a lower one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pool/pool.h"

namespace kvcore::ops {

using DType = pool::DType;

// One (sequence, token range) piece of decode attention over every KV head: the unnormalized output of each
// query head, with its running max and sum of exponentials, merged later (log-sum-exp). All heads of a
// block are read together, so the block's memory streams in order.
struct AttendArgs {
    const unsigned char* k_layer = nullptr;  // layer bases
    const unsigned char* v_layer = nullptr;
    uint64_t block_stride = 0;
    uint64_t scale_offset = 0;  // INT8: where a block's scales start
    uint32_t block_size = 0, kv_heads = 0, head_dim = 0;
    DType dtype = DType::kF32;
    float k_scale = 1.f, v_scale = 1.f;  // FP8 per-tensor scales
    const int32_t* blocks = nullptr;     // the sequence's block table
    uint32_t begin = 0, end = 0;         // tokens [begin, end), end > begin
    uint32_t group = 0;                  // query heads per KV head; query head = kv_head * group + g
    const float* q = nullptr;            // [kv_heads * group, head_dim]
    float softmax_scale = 1.f;
    float* acc = nullptr;      // [kv_heads * group, head_dim], written
    float* row_max = nullptr;  // [kv_heads * group], written
    float* row_sum = nullptr;  // [kv_heads * group], written
};

struct Kernels {
    const char* name;
    // dst[i] = element i of src read as dtype, times scale (FP8: the tensor scale; INT8: the row scale;
    // otherwise ignored).
    void (*load_row)(DType dtype, const void* src, float scale, float* dst, size_t n);
    // Writes src as dtype. FP8 divides by fp8_scale first; INT8 computes the row's scale into *int8_scale.
    void (*store_row)(DType dtype, const float* src, float fp8_scale, void* dst, float* int8_scale, size_t n);
    void (*attend)(const AttendArgs& args);
};

const Kernels& kernels() noexcept;
// For tests and benchmarks: the table of one instruction set, or nullptr when the CPU lacks it.
const Kernels* kernels_for(const char* isa) noexcept;

namespace isa_generic { const Kernels& table() noexcept; }
namespace isa_avx2 { const Kernels& table() noexcept; }
namespace isa_avx512 { const Kernels& table() noexcept; }

}  // namespace kvcore::ops
