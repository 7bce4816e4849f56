// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/ops_cuda.h in a build with CUDA: device check first (KVC_ERR_UNSUPPORTED with the reason,
// whatever the arguments), then handle checks, then the host side in cuda/ops_cuda.cpp. No logic.
#include "kvcore/ops_cuda.h"

#include "capi/guard.h"
#include "capi/ops_handles.h"
#include "cuda/ops_cuda.h"

namespace ops = kvcore::ops;
namespace kcuda = kvcore::cuda;
using kvcore::capi::checked_enum;
using kvcore::capi::guard;

namespace {

ops::DType dtype_of(const kvc_dtype& dtype, const char* what) { return checked_enum<ops::DType>(dtype, KVC_DTYPE_INT8, what); }

cudaStream_t stream_of(void* stream) { return static_cast<cudaStream_t>(stream); }

}  // namespace

extern "C" {

kvc_status kvc_kv_cuda_probe(void) {
    return guard([] { kcuda::probe(); });
}

uint32_t kvc_kv_cuda_available(void) { return kvc_kv_cuda_probe() == KVC_OK ? 1u : 0u; }

kvc_status kvc_kv_cuda_write(const kvc_kv_layout* layout, uint32_t layer, void* k_cache, void* v_cache, const void* key,
                             const void* value, kvc_dtype src_dtype, const int64_t* slots, size_t n, void* stream) {
    return guard([&] {
        kcuda::probe();
        if (layout == nullptr) kvcore::fail(KVC_ERR_INVALID_ARGUMENT, "layout is NULL");
        kcuda::write(layout->config, layer, k_cache, v_cache, key, value, dtype_of(src_dtype, "src_dtype"), slots, n,
                     stream_of(stream));
    });
}

kvc_status kvc_kv_cuda_copy_blocks(const kvc_kv_layout* layout, void* k_cache, void* v_cache, const int32_t* pairs,
                                   size_t num_pairs, void* stream) {
    return guard([&] {
        kcuda::probe();
        if (layout == nullptr) kvcore::fail(KVC_ERR_INVALID_ARGUMENT, "layout is NULL");
        kcuda::copy_blocks(layout->config, k_cache, v_cache, pairs, num_pairs, stream_of(stream));
    });
}

kvc_status kvc_kv_cuda_swap_blocks(const kvc_kv_layout* src_layout, const void* src_k, const void* src_v,
                                   const kvc_kv_layout* dst_layout, void* dst_k, void* dst_v, const int32_t* pairs,
                                   size_t num_pairs, void* stream) {
    return guard([&] {
        kcuda::probe();
        if (src_layout == nullptr) kvcore::fail(KVC_ERR_INVALID_ARGUMENT, "src_layout is NULL");
        if (dst_layout == nullptr) kvcore::fail(KVC_ERR_INVALID_ARGUMENT, "dst_layout is NULL");
        kcuda::swap_blocks(src_layout->config, src_k, src_v, dst_layout->config, dst_k, dst_v, pairs, num_pairs,
                           stream_of(stream));
    });
}

kvc_status kvc_kv_cuda_gather(const kvc_kv_layout* layout, uint32_t layer, const void* k_cache, const void* v_cache,
                              const int32_t* block_tables, size_t max_blocks_per_seq, const int32_t* seq_lens,
                              size_t num_seqs, void* out_k, void* out_v, kvc_dtype out_dtype, size_t out_capacity_tokens,
                              void* stream) {
    return guard([&] {
        kcuda::probe();
        if (layout == nullptr) kvcore::fail(KVC_ERR_INVALID_ARGUMENT, "layout is NULL");
        kcuda::gather(layout->config, layer, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens, num_seqs,
                      out_k, out_v, dtype_of(out_dtype, "out_dtype"), out_capacity_tokens, stream_of(stream));
    });
}

kvc_status kvc_kv_cuda_attention_decode(const kvc_kv_layout* layout, uint32_t layer, const void* k_cache,
                                        const void* v_cache, const float* query, uint32_t num_q_heads,
                                        const int32_t* block_tables, size_t max_blocks_per_seq, const int32_t* seq_lens,
                                        size_t num_seqs, float scale, float* out, void* stream) {
    return guard([&] {
        kcuda::probe();
        if (layout == nullptr) kvcore::fail(KVC_ERR_INVALID_ARGUMENT, "layout is NULL");
        const ops::DecodeArgs args = kvcore::capi::decode_args(layer, k_cache, v_cache, query, num_q_heads,
                                                               block_tables, max_blocks_per_seq, seq_lens, num_seqs,
                                                               scale, out);
        kcuda::attention_decode(layout->config, args, stream_of(stream));
    });
}

}  // extern "C"
