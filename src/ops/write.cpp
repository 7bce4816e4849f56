// SPDX-License-Identifier: Apache-2.0
// write: new tokens' K and V into their slots, converted or quantized to the cache's type.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "ops/ops.h"
#include "ops/parallel.h"

namespace kvcore::ops {

void check_write(const Layout& layout, uint32_t layer, const void* k_cache, const void* v_cache, const void* key,
                 const void* value, DType src_dtype, const int64_t* slots, size_t n) {
    layout.validate();
    check_layer(layout, layer);
    check_source_dtype(src_dtype, "src_dtype");
    if (n == 0) return;
    check_aligned(k_cache, layout.alignment(), "k_cache");
    check_aligned(v_cache, layout.alignment(), "v_cache");
    check_aligned(key, pool::dtype_bytes(src_dtype), "key");
    check_aligned(value, pool::dtype_bytes(src_dtype), "value");
    if (slots == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, "slots is NULL");
    std::vector<int64_t> used;
    used.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        if (slots[i] == -1) continue;
        if (slots[i] < 0 || uint64_t(slots[i]) >= layout.num_slots()) {
            fail(KVC_ERR_OUT_OF_RANGE, "slots[" + std::to_string(i) + "] = " + std::to_string(slots[i]) +
                                           " is not a slot (-1 or 0.." + std::to_string(layout.num_slots() - 1) + ")");
        }
        used.push_back(slots[i]);
    }
    std::sort(used.begin(), used.end());
    if (auto dup = std::adjacent_find(used.begin(), used.end()); dup != used.end()) {
        fail(KVC_ERR_INVALID_ARGUMENT, "slot " + std::to_string(*dup) + " is written twice");
    }
}

void write(const Layout& layout, uint32_t layer, void* k_cache, void* v_cache, const void* key, const void* value,
           DType src_dtype, const int64_t* slots, size_t n) {
    check_write(layout, layer, k_cache, v_cache, key, value, src_dtype, slots, n);
    if (n == 0) return;

    const Kernels& k = kernels();
    const uint32_t dim = layout.head_dim, heads = layout.kv_heads;
    const size_t src_row_bytes = size_t(dim) * pool::dtype_bytes(src_dtype);
    const bool same_type = src_dtype == layout.dtype;
    const float k_scale = layout.k_scale(layer), v_scale = layout.v_scale(layer);
    auto* k_base = static_cast<unsigned char*>(k_cache);
    auto* v_base = static_cast<unsigned char*>(v_cache);
    // Tokens in chunks: one task per 16 tokens keeps the hand-out cost small next to the copying.
    constexpr size_t kChunk = 16;
    parallel_for((n + kChunk - 1) / kChunk, [&](size_t task) {
        thread_local std::vector<float> row;
        if (row.size() < dim) row.resize(dim);
        const size_t end = std::min(n, (task + 1) * kChunk);
        for (size_t i = task * kChunk; i < end; ++i) {
            if (slots[i] < 0) continue;
            const auto block = uint32_t(uint64_t(slots[i]) / layout.block_size);
            const auto offset = uint32_t(uint64_t(slots[i]) % layout.block_size);
            for (uint32_t h = 0; h < heads; ++h) {
                const size_t src_offset = (i * heads + h) * src_row_bytes;
                const uint64_t dst_offset = layout.row_offset(layer, block, offset, h);
                const uint64_t scale_at = layout.dtype == DType::kInt8 ? layout.scale_offset(layer, block, offset, h) : 0;
                auto put = [&](const void* src, unsigned char* base, float fp8_scale) {
                    if (same_type) {
                        std::memcpy(base + dst_offset, static_cast<const unsigned char*>(src) + src_offset, src_row_bytes);
                        return;
                    }
                    k.load_row(src_dtype, static_cast<const unsigned char*>(src) + src_offset, 1.f, row.data(), dim);
                    float int8_scale = 0.f;
                    k.store_row(layout.dtype, row.data(), fp8_scale, base + dst_offset, &int8_scale, dim);
                    if (layout.dtype == DType::kInt8) std::memcpy(base + scale_at, &int8_scale, sizeof int8_scale);
                };
                put(key, k_base, k_scale);
                put(value, v_base, v_scale);
            }
        }
    });
}

}  // namespace kvcore::ops
