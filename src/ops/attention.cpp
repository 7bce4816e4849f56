// SPDX-License-Identifier: Apache-2.0
// Paged-attention decode: one query token per sequence over its cached context. Work is split into
// (sequence, part of at most partition_tokens tokens) tasks, so long contexts spread over threads; a task
// reads every KV head of its blocks, so each block's memory streams in order;
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

void check_attention_decode(const Layout& layout, const DecodeArgs& a) {
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
}

void attention_decode(const Layout& layout, const DecodeArgs& a) {
    check_attention_decode(layout, a);
    if (a.num_seqs == 0) return;

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
    // Per part: every query head's dim outputs, then their maxima, then their sums.
    const size_t q_heads = a.num_q_heads;
    const size_t per_piece = q_heads * dim + 2 * q_heads;
    thread_local std::vector<float> partials;
    if (partials.size() < parts * per_piece) partials.resize(parts * per_piece);
    float* partial = partials.data();

    const Kernels& k = a.kernels ? *a.kernels : kernels();
    const auto* k_layer = static_cast<const unsigned char*>(a.k_cache) + a.layer * layout.layer_stride_bytes();
    const auto* v_layer = static_cast<const unsigned char*>(a.v_cache) + a.layer * layout.layer_stride_bytes();
    parallel_for(parts, [&](size_t part) {
        const size_t s = size_t(std::upper_bound(first_part.begin(), first_part.end(), part) - first_part.begin()) - 1;
        const uint64_t begin = (part - first_part[s]) * part_tokens;
        float* piece = partial + part * per_piece;
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
        args.group = group;
        args.q = a.query + s * q_heads * dim;
        args.softmax_scale = a.scale;
        args.acc = piece;
        args.row_max = piece + q_heads * dim;
        args.row_sum = args.row_max + q_heads;
        k.attend(args);
    });

    // Merge the parts of each (sequence, query head): out = sum_p e^(m_p - m) acc_p / sum_p e^(m_p - m) l_p.
    parallel_for(a.num_seqs, [&](size_t s) {
        for (size_t h = 0; h < q_heads; ++h) {
            float* out = a.out + (s * q_heads + h) * dim;
            std::fill(out, out + dim, 0.f);
            float m = -std::numeric_limits<float>::infinity();
            for (uint64_t p = first_part[s]; p < first_part[s + 1]; ++p) {
                m = std::max(m, partial[p * per_piece + q_heads * dim + h]);
            }
            float denominator = 0.f;
            for (uint64_t p = first_part[s]; p < first_part[s + 1]; ++p) {
                const float* piece = partial + p * per_piece;
                const float w = std::exp(piece[q_heads * dim + h] - m);
                denominator += w * piece[q_heads * dim + q_heads + h];
                const float* acc = piece + h * dim;
                for (uint32_t d = 0; d < dim; ++d) out[d] += w * acc[d];
            }
            if (denominator > 0.f) {
                const float inverse = 1.f / denominator;
                for (uint32_t d = 0; d < dim; ++d) out[d] *= inverse;
            }
        }
    });
}

}  // namespace kvcore::ops
