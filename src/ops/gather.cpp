// SPDX-License-Identifier: Apache-2.0
// gather: paged K/V of a batch of sequences -> contiguous [tokens, kv_heads, head_dim], sequences in order.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "ops/ops.h"
#include "ops/parallel.h"

namespace kvcore::ops {

uint64_t check_gather(const Layout& layout, uint32_t layer, const void* k_cache, const void* v_cache,
                      const int32_t* block_tables, size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs,
                      const void* out_k, const void* out_v, DType out_dtype, size_t out_capacity_tokens) {
    layout.validate();
    check_layer(layout, layer);
    check_source_dtype(out_dtype, "out_dtype");
    const uint64_t total = check_block_tables(layout, block_tables, max_blocks_per_seq, seq_lens, num_seqs);
    if (total > out_capacity_tokens) {
        fail(KVC_ERR_BUFFER_TOO_SMALL, "the sequences hold " + std::to_string(total) + " tokens, the output room for " +
                                           std::to_string(out_capacity_tokens));
    }
    if (total == 0) return 0;
    check_aligned(k_cache, layout.alignment(), "k_cache");
    check_aligned(v_cache, layout.alignment(), "v_cache");
    check_aligned(out_k, pool::dtype_bytes(out_dtype), "out_k");
    check_aligned(out_v, pool::dtype_bytes(out_dtype), "out_v");
    return total;
}

void gather(const Layout& layout, uint32_t layer, const void* k_cache, const void* v_cache, const int32_t* block_tables,
            size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs, void* out_k, void* out_v,
            DType out_dtype, size_t out_capacity_tokens) {
    if (check_gather(layout, layer, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens, num_seqs, out_k, out_v,
                     out_dtype, out_capacity_tokens) == 0) {
        return;
    }

    // One task per (sequence, block): first output token of each sequence from a prefix sum.
    std::vector<uint64_t> first_token(num_seqs + 1, 0);
    std::vector<uint64_t> first_task(num_seqs + 1, 0);
    for (size_t s = 0; s < num_seqs; ++s) {
        first_token[s + 1] = first_token[s] + uint64_t(seq_lens[s]);
        first_task[s + 1] = first_task[s] + (uint64_t(seq_lens[s]) + layout.block_size - 1) / layout.block_size;
    }
    const Kernels& k = kernels();
    const uint32_t dim = layout.head_dim, heads = layout.kv_heads;
    const size_t out_row_bytes = size_t(dim) * pool::dtype_bytes(out_dtype);
    const bool same_type = out_dtype == layout.dtype;
    const float k_scale = layout.k_scale(layer), v_scale = layout.v_scale(layer);
    const auto* k_base = static_cast<const unsigned char*>(k_cache);
    const auto* v_base = static_cast<const unsigned char*>(v_cache);
    parallel_for(first_task[num_seqs], [&](size_t task) {
        thread_local std::vector<float> row;
        if (row.size() < dim) row.resize(dim);
        const size_t s = size_t(std::upper_bound(first_task.begin(), first_task.end(), task) - first_task.begin()) - 1;
        const uint64_t b = task - first_task[s];
        const auto block = uint32_t(block_tables[s * max_blocks_per_seq + b]);
        const uint64_t token0 = b * layout.block_size;
        const uint64_t count = std::min<uint64_t>(layout.block_size, uint64_t(seq_lens[s]) - token0);
        for (uint32_t t = 0; t < count; ++t) {
            const uint64_t out_token = first_token[s] + token0 + t;
            for (uint32_t h = 0; h < heads; ++h) {
                const uint64_t src = layout.row_offset(layer, block, t, h);
                const uint64_t dst = (out_token * heads + h) * out_row_bytes;
                auto take = [&](const unsigned char* base, void* out, float tensor_scale) {
                    auto* o = static_cast<unsigned char*>(out) + dst;
                    if (same_type) {
                        std::memcpy(o, base + src, out_row_bytes);
                        return;
                    }
                    float scale = tensor_scale;
                    if (layout.dtype == DType::kInt8) {
                        std::memcpy(&scale, base + layout.scale_offset(layer, block, t, h), sizeof scale);
                    }
                    if (out_dtype == DType::kF32) {
                        k.load_row(layout.dtype, base + src, scale, reinterpret_cast<float*>(o), dim);
                        return;
                    }
                    k.load_row(layout.dtype, base + src, scale, row.data(), dim);
                    k.store_row(out_dtype, row.data(), 1.f, o, nullptr, dim);
                };
                take(k_base, out_k, k_scale);
                take(v_base, out_v, v_scale);
            }
        }
    });
}

}  // namespace kvcore::ops
