/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/ops_cuda.h - the CUDA twins of kvcore/ops.h: write, copy blocks, swap blocks, gather and
 * paged-attention decode on a CUDA device, with the same layout object (kvc_kv_layout), the same element
 * types, the same formulas and the same checks and statuses as the CPU calls.
 *
 * Memory. The caches (k_cache, v_cache), key/value, query and out are device memory of the calling
 * thread's current device (cudaMalloc'd, or managed); one side of a swap may instead be pinned host memory
 * (cudaHostAlloc / cudaHostRegister). Memory that CUDA says is pageable host memory is refused
 * (KVC_ERR_INVALID_ARGUMENT), as is device memory of another device. The index arrays (slots, pairs,
 * block_tables, seq_lens) are HOST arrays: kvcore checks them on the host, exactly as the CPU calls do,
 * before anything is queued, so a failing call queues nothing and writes nothing.
 *
 * Streams and lifetimes. Every call takes a trailing `void* stream` holding a cudaStream_t (NULL: the
 * legacy default stream) and is asynchronous on it: the work is queued and the call returns. The host
 * arrays may be reused or freed as soon as the call returns (they are copied). The index data travels in
 * stream-ordered memory (cudaMallocAsync / cudaFreeAsync on the call's stream, from the device's default
 * memory pool), so nothing has to be synchronized and nothing is kept between calls. Device buffers must
 * stay valid until the stream has run the work. Results are read after a synchronization of the stream.
 *
 * Results against the CPU calls: write, copy, swap and gather produce the same bytes as kvc_kv_write,
 * kvc_kv_copy_blocks, kvc_kv_swap_blocks and kvc_kv_gather (F16/BF16/FP8 conversions round to nearest
 * even with the same recipes, INT8 scales are computed with the same IEEE operations; NaNs stay NaN but
 * their payloads may differ). Decode attention agrees with kvc_kv_attention_decode to float rounding (the
 * order of sums and the exponential differ). Decode attention supports head_dim up to 256 (any value;
 * multiples of 8 whose rows start on 8-element boundaries take the vectorized path); a larger head_dim is
 * KVC_ERR_UNSUPPORTED.
 *
 * Statuses: those of the CPU calls for bad input; KVC_ERR_UNSUPPORTED when kvcore was built without CUDA
 * ("built without CUDA") or no usable device is present (the message names the CUDA error); for a CUDA
 * runtime failure while queueing work (a launch or copy refused), KVC_ERR_NO_MEMORY for
 * cudaErrorMemoryAllocation and KVC_ERR_IO otherwise, with cudaGetErrorString's text in the message. A
 * runtime failure after some work was queued may leave that work done. Errors that happen later on the
 * device surface at the caller's next synchronization, as with any CUDA work.
 *
 * Thread-safety: every function may be called from any thread at once (the layout is only read), as long
 * as calls whose output memory overlaps are ordered on one stream by the caller.
 */
#ifndef KVCORE_OPS_CUDA_H
#define KVCORE_OPS_CUDA_H

#include "kvcore/common.h"
#include "kvcore/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* KVC_OK when this build has CUDA and the calling thread's current device can run kvcore's kernels
 * (compute capability 8.0 or later); otherwise KVC_ERR_UNSUPPORTED with the reason in
 * kvc_last_error_message(). Thread-safe. */
KVC_API kvc_status kvc_kv_cuda_probe(void);
/* 1 when kvc_kv_cuda_probe() would return KVC_OK, else 0 (the reason is then the last error message). */
KVC_API uint32_t kvc_kv_cuda_available(void);

/* kvc_kv_write on the device: key and value [n, kv_heads, head_dim] in src_dtype (F32, F16, BF16),
 * slots a host array (-1 skips). */
KVC_API kvc_status kvc_kv_cuda_write(const kvc_kv_layout* layout, uint32_t layer, void* k_cache, void* v_cache,
                                     const void* key, const void* value, kvc_dtype src_dtype, const int64_t* slots,
                                     size_t n, void* stream);

/* kvc_kv_copy_blocks on the device: every (pair, layer, K/V) in one kernel launch. pairs: host array. */
KVC_API kvc_status kvc_kv_cuda_copy_blocks(const kvc_kv_layout* layout, void* k_cache, void* v_cache,
                                           const int32_t* pairs, size_t num_pairs, void* stream);

/* kvc_kv_swap_blocks between device memory and pinned host memory (either direction) or between two
 * device buffers: runs of consecutive blocks become one cudaMemcpyAsync (or cudaMemcpy2DAsync over the
 * layers or the blocks when strides are not packed) each. pairs: host array. */
KVC_API kvc_status kvc_kv_cuda_swap_blocks(const kvc_kv_layout* src_layout, const void* src_k, const void* src_v,
                                           const kvc_kv_layout* dst_layout, void* dst_k, void* dst_v,
                                           const int32_t* pairs, size_t num_pairs, void* stream);

/* kvc_kv_gather on the device: out_k and out_v device memory; block_tables and seq_lens host arrays. */
KVC_API kvc_status kvc_kv_cuda_gather(const kvc_kv_layout* layout, uint32_t layer, const void* k_cache,
                                      const void* v_cache, const int32_t* block_tables, size_t max_blocks_per_seq,
                                      const int32_t* seq_lens, size_t num_seqs, void* out_k, void* out_v,
                                      kvc_dtype out_dtype, size_t out_capacity_tokens, void* stream);

/* kvc_kv_attention_decode on the device: query and out float32 device memory [num_seqs, num_q_heads,
 * head_dim]; block_tables and seq_lens host arrays. One thread block per (sequence, part of 512 tokens,
 * KV head, up to 8 of its query heads), which share each K and V load (GQA/MQA); a second kernel merges
 * the parts (log-sum-exp). */
KVC_API kvc_status kvc_kv_cuda_attention_decode(const kvc_kv_layout* layout, uint32_t layer, const void* k_cache,
                                                const void* v_cache, const float* query, uint32_t num_q_heads,
                                                const int32_t* block_tables, size_t max_blocks_per_seq,
                                                const int32_t* seq_lens, size_t num_seqs, float scale, float* out,
                                                void* stream);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_OPS_CUDA_H */
