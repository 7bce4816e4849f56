// SPDX-License-Identifier: Apache-2.0
// Paged-attention decode: one query token per sequence over its cached context. Work is split into
// (sequence, KV head, part of at most partition_tokens tokens) tasks, so long contexts spread over threads;
// each part yields unnormalized outputs with their max and sum of exponentials, merged exactly afterwards.
// A KV head's query heads (GQA/MQA) share each dequantized block of K and V.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "ops/ops.h"
#include "ops/parallel.h"

namespace kvcore::ops {

void attention_decode(const Layout& layout, const DecodeArgs& a) {
    layout.validate();
    check_layer(layout, a.layer);
    if (a.num_q_heads == 0 || a.num_q_heads % layout.kv_heads != 0) {
        fail(KVC_ERR_INVALID_ARGUMENT, "num_q_heads " + std::to_string(a.num_q_heads) +
                                           " is not a positive multiple of kv_heads " + std::to_string(layout.kv_heads));
    }
    if (!std::isfinite(a.scale)) fail(KVC_ERR_INVALID_ARGUMENT, "scale is not finite");
    if (a.partition_tokens == 0) fail(KVC_ERR_INVALID_ARGUMENT, "partition_tokens is 0");
    (void)check_block_tables(layout, a.block_tables, a.max_blocks_per_seq, a.seq_lens, a.num_seqs);
    if (a.num_seqs == 0) return;
    check_aligned(a.query, alignof(float), "query");
    check_aligned(a.out, alignof(float), "out");
    check_aligned(a.k_cache, layout.alignment(), "k_cache");
    check_aligned(a.v_cache, layout.alignment(), "v_cache");

    const uint32_t dim = layout.head_dim, kv_heads = layout.kv_heads, group = a.num_q_heads / kv_heads;
    // Parts are whole blocks, so no block is dequantized twice.
    const uint32_t part_tokens =
        std::max<uint32_t>(1, a.partition_tokens / layout.block_size) * layout.block_size;
    std::vector<uint64_t> first_part(a.num_seqs + 1, 0);
    for (size_t s = 0; s < a.num_seqs; ++s) {
        const uint64_t parts = (uint64_t(a.seq_lens[s]) + part_tokens - 1) / part_tokens;
        first_part[s + 1] = first_part[s] + parts;
    }
    const uint64_t parts = first_part[a.num_seqs];
    // Per (part, KV head): group * dim outputs, then group maxima and group sums.
    const size_t per_piece = size_t(group) * dim + 2 * size_t(group);
    thread_local std::vector<float> partials;
    if (partials.size() < parts * kv_heads * per_piece) partials.resize(parts * kv_heads * per_piece);
    float* partial = partials.data();

    const Kernels& k = a.kernels ? *a.kernels : kernels();
    const auto* k_layer = static_cast<const unsigned char*>(a.k_cache) + a.layer * layout.layer_stride_bytes();
    const auto* v_layer = static_cast<const unsigned char*>(a.v_cache) + a.layer * layout.layer_stride_bytes();
    parallel_for(parts * kv_heads, [&](size_t task) {
        const uint64_t part = task / kv_heads;
        const auto head = uint32_t(task % kv_heads);
        const size_t s = size_t(std::upper_bound(first_part.begin(), first_part.end(), part) - first_part.begin()) - 1;
        const uint64_t begin = (part - first_part[s]) * part_tokens;
        float* piece = partial + task * per_piece;
        AttendArgs args;
        args.k_layer = k_layer;
        args.v_layer = v_layer;
        args.block_stride = layout.block_stride_bytes();
        args.scale_offset = layout.scale_offset();
        args.block_size = layout.block_size;
        args.kv_heads = kv_heads;
        args.head_dim = dim;
        args.dtype = layout.dtype;
        args.k_scale = layout.k_scale(a.layer);
        args.v_scale = layout.v_scale(a.layer);
        args.blocks = a.block_tables + s * a.max_blocks_per_seq;
        args.begin = uint32_t(begin);
        args.end = uint32_t(std::min<uint64_t>(begin + part_tokens, uint64_t(a.seq_lens[s])));
        args.kv_head = head;
        args.group = group;
        args.q = a.query + (s * a.num_q_heads + size_t(head) * group) * dim;
        args.softmax_scale = a.scale;
        args.acc = piece;
        args.row_max = piece + size_t(group) * dim;
        args.row_sum = args.row_max + group;
        k.attend(args);
    });

    // Merge the parts of each (sequence, query head): out = sum_p e^(m_p - m) acc_p / sum_p e^(m_p - m) l_p.
    parallel_for(a.num_seqs, [&](size_t s) {
        for (uint32_t head = 0; head < kv_heads; ++head) {
            for (uint32_t g = 0; g < group; ++g) {
                float* out = a.out + (s * a.num_q_heads + size_t(head) * group + g) * dim;
                std::fill(out, out + dim, 0.f);
                float m = -std::numeric_limits<float>::infinity();
                for (uint64_t p = first_part[s]; p < first_part[s + 1]; ++p) {
                    m = std::max(m, partial[(p * kv_heads + head) * per_piece + size_t(group) * dim + g]);
                }
                float denominator = 0.f;
                for (uint64_t p = first_part[s]; p < first_part[s + 1]; ++p) {
                    const float* piece = partial + (p * kv_heads + head) * per_piece;
                    const float w = std::exp(piece[size_t(group) * dim + g] - m);
                    denominator += w * piece[size_t(group) * dim + group + g];
                    const float* acc = piece + size_t(g) * dim;
                    for (uint32_t d = 0; d < dim; ++d) out[d] += w * acc[d];
                }
                if (denominator > 0.f) {
                    const float inverse = 1.f / denominator;
                    for (uint32_t d = 0; d < dim; ++d) out[d] *= inverse;
                }
            }
        }
    });
}

}  // namespace kvcore::ops
