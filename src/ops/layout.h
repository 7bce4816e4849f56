// SPDX-License-Identifier: Apache-2.0
// The KV cache layout the CPU (and later CUDA) kernels address: per layer, K and V as
// [num_blocks, block_size, kv_heads, head_dim], with byte strides between blocks and layers; INT8 blocks end
// with their per-token-per-head float scales (see include/kvcore/ops.h for the formulas).
#pragma once

#include <cstdint>
#include <vector>

#include "ops/kernels.h"

namespace kvcore::ops {

struct Layout {
    uint32_t layers = 1, num_blocks = 1024, block_size = 16, kv_heads = 8, head_dim = 128;
    DType dtype = DType::kF16;
    uint64_t block_stride = 0;  // bytes; 0: packed (block_bytes())
    uint64_t layer_stride = 0;  // bytes; 0: packed (num_blocks * block stride)
    std::vector<float> k_scales, v_scales;  // FP8, one per layer; empty: 1.0

    // Throws kvcore::Error (KVC_ERR_INVALID_ARGUMENT / KVC_ERR_OUT_OF_RANGE) naming the first bad field.
    void validate() const;

    [[nodiscard]] uint32_t element_bytes() const noexcept { return pool::dtype_bytes(dtype); }
    [[nodiscard]] uint64_t row_elements() const noexcept { return head_dim; }
    [[nodiscard]] uint64_t elements_per_block() const noexcept { return uint64_t(block_size) * kv_heads * head_dim; }
    // INT8: where a block's scales start (elements rounded up to 4 bytes); otherwise the data's end.
    [[nodiscard]] uint64_t scale_offset() const noexcept {
        return dtype == DType::kInt8 ? pool::int8_scale_offset(block_size, kv_heads, head_dim)
                                     : elements_per_block() * element_bytes();
    }
    // The pool's block of one tensor of one layer: kvcore's pools and these kernels agree on it.
    [[nodiscard]] uint64_t block_bytes() const noexcept {
        return pool::tensor_block_bytes(block_size, kv_heads, head_dim, dtype);
    }
    [[nodiscard]] uint64_t block_stride_bytes() const noexcept { return block_stride ? block_stride : block_bytes(); }
    [[nodiscard]] uint64_t layer_stride_bytes() const noexcept {
        return layer_stride ? layer_stride : uint64_t(num_blocks) * block_stride_bytes();
    }
    [[nodiscard]] uint64_t num_slots() const noexcept { return uint64_t(num_blocks) * block_size; }
    [[nodiscard]] float k_scale(uint32_t layer) const noexcept { return k_scales.empty() ? 1.f : k_scales[layer]; }
    [[nodiscard]] float v_scale(uint32_t layer) const noexcept { return v_scales.empty() ? 1.f : v_scales[layer]; }
    // Byte offsets from the K (or V) base of (layer, block, token in block, head): its row, its INT8 scale.
    [[nodiscard]] uint64_t row_offset(uint32_t layer, uint32_t block, uint32_t token, uint32_t head) const noexcept {
        return layer * layer_stride_bytes() + block * block_stride_bytes() +
               (uint64_t(token) * kv_heads + head) * head_dim * element_bytes();
    }
    [[nodiscard]] uint64_t scale_offset(uint32_t layer, uint32_t block, uint32_t token, uint32_t head) const noexcept {
        return layer * layer_stride_bytes() + block * block_stride_bytes() + scale_offset() +
               (uint64_t(token) * kv_heads + head) * 4;
    }
    // The pointer alignment every base and stride needs: the element size, 4 bytes with INT8 scales.
    [[nodiscard]] uint32_t alignment() const noexcept { return dtype == DType::kInt8 ? 4 : element_bytes(); }
};

}  // namespace kvcore::ops
