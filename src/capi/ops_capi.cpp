// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/ops.h: argument checks, handle casts, exception translation. No logic.
#include "kvcore/ops.h"

#include "capi/guard.h"
#include "capi/ops_handles.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/parallel.h"

namespace ops = kvcore::ops;
using kvcore::capi::checked_enum;
using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::make_handle;

namespace {

// By reference: a by-value copy of an out-of-range enum is already undefined (UBSan), before the check.
ops::DType dtype_of(const kvc_dtype& dtype, const char* what) { return checked_enum<ops::DType>(dtype, KVC_DTYPE_INT8, what); }

}  // namespace

extern "C" {

kvc_status kvc_kv_layout_create(kvc_kv_layout** out) {
    return make_handle(out, [] { return new kvc_kv_layout(); });
}
void kvc_kv_layout_destroy(kvc_kv_layout* layout) { delete layout; }

kvc_status kvc_kv_layout_set_shape(kvc_kv_layout* layout, uint32_t layers, uint32_t num_blocks, uint32_t block_size,
                                   uint32_t kv_heads, uint32_t head_dim, kvc_dtype dtype) {
    return edit_validated(layout, [&](ops::Layout& c) {
        c.layers = layers;
        c.num_blocks = num_blocks;
        c.block_size = block_size;
        c.kv_heads = kv_heads;
        c.head_dim = head_dim;
        c.dtype = dtype_of(dtype, "dtype");
        c.block_stride = 0;
        c.layer_stride = 0;
        c.k_scales.clear();
        c.v_scales.clear();
    });
}

kvc_status kvc_kv_layout_set_strides(kvc_kv_layout* layout, uint64_t block_stride, uint64_t layer_stride) {
    return edit_validated(layout, [&](ops::Layout& c) {
        c.block_stride = block_stride;
        c.layer_stride = layer_stride;
    });
}

kvc_status kvc_kv_layout_set_fp8_scales(kvc_kv_layout* layout, const float* k_scales, const float* v_scales, size_t n) {
    KVC_REQUIRE_HANDLE(k_scales, "k_scales");
    KVC_REQUIRE_HANDLE(v_scales, "v_scales");
    return edit_validated(layout, [&](ops::Layout& c) {
        c.k_scales.assign(k_scales, k_scales + n);
        c.v_scales.assign(v_scales, v_scales + n);
    });
}

uint64_t kvc_kv_layout_block_bytes(const kvc_kv_layout* layout) { return layout ? layout->config.block_bytes() : 0; }

kvc_status kvc_kv_write(const kvc_kv_layout* layout, uint32_t layer, void* k_cache, void* v_cache, const void* key,
                        const void* value, kvc_dtype src_dtype, const int64_t* slots, size_t n) {
    KVC_REQUIRE_HANDLE(layout, "layout");
    return guard([&] {
        ops::write(layout->config, layer, k_cache, v_cache, key, value, dtype_of(src_dtype, "src_dtype"), slots, n);
    });
}

kvc_status kvc_kv_copy_blocks(const kvc_kv_layout* layout, void* k_cache, void* v_cache, const int32_t* pairs,
                              size_t num_pairs) {
    KVC_REQUIRE_HANDLE(layout, "layout");
    return guard([&] { ops::copy_blocks(layout->config, k_cache, v_cache, pairs, num_pairs); });
}

kvc_status kvc_kv_swap_blocks(const kvc_kv_layout* src_layout, const void* src_k, const void* src_v,
                              const kvc_kv_layout* dst_layout, void* dst_k, void* dst_v, const int32_t* pairs,
                              size_t num_pairs) {
    KVC_REQUIRE_HANDLE(src_layout, "src_layout");
    KVC_REQUIRE_HANDLE(dst_layout, "dst_layout");
    return guard([&] {
        ops::swap_blocks(src_layout->config, src_k, src_v, dst_layout->config, dst_k, dst_v, pairs, num_pairs);
    });
}

kvc_status kvc_kv_gather(const kvc_kv_layout* layout, uint32_t layer, const void* k_cache, const void* v_cache,
                         const int32_t* block_tables, size_t max_blocks_per_seq, const int32_t* seq_lens,
                         size_t num_seqs, void* out_k, void* out_v, kvc_dtype out_dtype, size_t out_capacity_tokens) {
    KVC_REQUIRE_HANDLE(layout, "layout");
    return guard([&] {
        ops::gather(layout->config, layer, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens, num_seqs, out_k,
                    out_v, dtype_of(out_dtype, "out_dtype"), out_capacity_tokens);
    });
}

kvc_status kvc_kv_attention_decode(const kvc_kv_layout* layout, uint32_t layer, const void* k_cache,
                                   const void* v_cache, const float* query, uint32_t num_q_heads,
                                   const int32_t* block_tables, size_t max_blocks_per_seq, const int32_t* seq_lens,
                                   size_t num_seqs, float scale, float* out) {
    KVC_REQUIRE_HANDLE(layout, "layout");
    return guard([&] {
        const ops::DecodeArgs args = kvcore::capi::decode_args(layer, k_cache, v_cache, query, num_q_heads,
                                                               block_tables, max_blocks_per_seq, seq_lens, num_seqs,
                                                               scale, out);
        ops::attention_decode(layout->config, args);
    });
}

kvc_status kvc_kv_set_threads(uint32_t threads) {
    return guard([&] { ops::set_threads(threads); });
}
uint32_t kvc_kv_threads(void) { return ops::threads(); }
const char* kvc_kv_isa(void) { return ops::kernels().name; }

}  // extern "C"
