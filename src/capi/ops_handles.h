// SPDX-License-Identifier: Apache-2.0
// The layout handle of kvcore/ops.h, shared by the CPU shims (ops_capi.cpp) and the CUDA ones (cuda/).
#pragma once

#include "kvcore/ops.h"
#include "ops/layout.h"
#include "ops/ops.h"

struct kvc_kv_layout {
    kvcore::ops::Layout config;
};

namespace kvcore::capi {

// The arguments of kvc_kv_attention_decode and kvc_kv_cuda_attention_decode, as the kernels take them.
inline ops::DecodeArgs decode_args(uint32_t layer, const void* k_cache, const void* v_cache, const float* query,
                                   uint32_t num_q_heads, const int32_t* block_tables, size_t max_blocks_per_seq,
                                   const int32_t* seq_lens, size_t num_seqs, float scale, float* out) {
    ops::DecodeArgs args;
    args.layer = layer;
    args.k_cache = k_cache;
    args.v_cache = v_cache;
    args.query = query;
    args.num_q_heads = num_q_heads;
    args.block_tables = block_tables;
    args.max_blocks_per_seq = max_blocks_per_seq;
    args.seq_lens = seq_lens;
    args.num_seqs = num_seqs;
    args.scale = scale;
    args.out = out;
    return args;
}

}  // namespace kvcore::capi
