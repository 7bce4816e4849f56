/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/ops.h - KV cache kernels on the CPU: write new tokens into their slots, copy blocks (copy-on-write),
 * swap blocks between two memories, gather paged -> contiguous, paged-attention decode.
 *
 * Layout. For each layer, K and V are each [num_blocks, block_size, num_kv_heads, head_dim] in the element
 * type: block b, token t of the block (slot b * block_size + t), head h, element d sits at
 *     base + layer * layer_stride + b * block_stride + ((t * num_kv_heads + h) * head_dim + d) * element_bytes
 * where base is the K (or V) pointer handed to the call. The strides are in bytes; by default block_stride
 * is kvc_kv_layout_block_bytes (blocks packed) and layer_stride is num_blocks * block_stride (layers
 * packed: one K region and one V region for all layers). kvcore's host pool (kvc_pool_storage) keeps all
 * layers of a block together, K then V: describe it with block_stride = bytes_per_block,
 * layer_stride = 2 * kvc_kv_layout_block_bytes, V = K + kvc_kv_layout_block_bytes.
 *
 * Element types (kvc_dtype from pool.h):
 * - KVC_DTYPE_F32, KVC_DTYPE_F16 (IEEE binary16), KVC_DTYPE_BF16: stored as is.
 * - KVC_DTYPE_FP8: E4M3 ("fn": no infinities, 0x7F/0xFF are NaN, largest 448) with one scale per layer for
 *   K and one for V: stored value = e4m3(x / scale), read value = e4m3 * scale. The scales live in the
 *   layout (kvc_kv_layout_set_fp8_scales copies them), not in the cache memory; default 1.0.
 * - KVC_DTYPE_INT8: symmetric, one float32 scale per token per head, stored in the block itself after its
 *   elements: block b's scale of token t, head h is the float at
 *       base + layer * layer_stride + b * block_stride + scale_offset + (t * num_kv_heads + h) * 4
 *   with scale_offset = block_size * num_kv_heads * head_dim rounded up to a multiple of 4. Copies and swaps
 *   therefore move scales with their blocks. Per row (token, head): m = max|x|, stored
 *   q = round_half_even(x * (127 / m)) in -127..127 and s = m / 127 (0 for an all-zero row, read back as
 *   0); read value = q * s.
 * Conversions to F16, BF16 and FP8 round to nearest even; FP8 saturates to +-448, NaN stays NaN.
 *
 * Source and output tensors of the calls are dense row-major in the type named by the call.
 *
 * Bad input: every call checks all of its arguments (ids, lengths, shapes, dtypes, pointer alignment to
 * the element size, and 4 bytes for INT8 scales) before it writes anything; a failing call writes nothing.
 * Pointers are trusted to address the memory the layout describes (kvcore cannot check their extent).
 * Status: KVC_ERR_INVALID_ARGUMENT for NULL, misaligned or mismatched arguments, KVC_ERR_OUT_OF_RANGE for
 * slot, block, layer or length values past their bounds; the message names the first offender.
 *
 * Threads: the kernels split their work over a process-wide pool of worker threads, one per core by default
 * (kvc_kv_set_threads). Calls from several threads may run at once on different output memory; a call that
 * finds the pool busy runs on its own thread alone.
 *
 * Thread-safety:
 * - kvc_kv_layout: not thread-safe while it is being set; once built, any number of threads may read it
 *   (pass it to the calls below) at once. kvc_kv_layout_destroy when no call uses it.
 * - kvc_kv_write, kvc_kv_copy_blocks, kvc_kv_swap_blocks, kvc_kv_gather, kvc_kv_attention_decode:
 *   thread-safe when their output memory does not overlap another running call's memory.
 * - kvc_kv_set_threads, kvc_kv_threads: thread-safe.
 */
#ifndef KVCORE_OPS_H
#define KVCORE_OPS_H

#include "kvcore/common.h"
#include "kvcore/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_kv_layout kvc_kv_layout;

/* ---- the layout: shape, element type, strides, FP8 scales (defaults: 1 layer, 1024 blocks of 16 tokens,
 *      8 KV heads x 128 dims, f16, packed strides, FP8 scales 1.0) ------------------------------------- */
KVC_API kvc_status kvc_kv_layout_create(kvc_kv_layout** out);
KVC_API void kvc_kv_layout_destroy(kvc_kv_layout* layout); /* accepts NULL */
/* layers 1..65536, num_blocks 1..2^31-1, block_size 1..4096, kv_heads 1..4096, head_dim 1..4096. Resets
 * the strides to packed and the FP8 scales to 1.0. */
KVC_API kvc_status kvc_kv_layout_set_shape(kvc_kv_layout* layout, uint32_t layers, uint32_t num_blocks,
                                           uint32_t block_size, uint32_t kv_heads, uint32_t head_dim, kvc_dtype dtype);
/* Bytes between blocks and between layers; 0 picks the packed value. block_stride must be at least
 * kvc_kv_layout_block_bytes and a multiple of the element size (4 for INT8); layer_stride likewise, and at
 * least num_blocks * block_stride unless the layers interleave inside blocks (layer_stride < block_stride,
 * then layers * layer_stride <= block_stride). */
KVC_API kvc_status kvc_kv_layout_set_strides(kvc_kv_layout* layout, uint64_t block_stride, uint64_t layer_stride);
/* One K and one V scale per layer (n == layers; finite, > 0). Copied. Only FP8 layouts read them. */
KVC_API kvc_status kvc_kv_layout_set_fp8_scales(kvc_kv_layout* layout, const float* k_scales,
                                                const float* v_scales, size_t n);
/* Bytes of one block of K (or V) of one layer, INT8 scales included; 0 for NULL. */
KVC_API uint64_t kvc_kv_layout_block_bytes(const kvc_kv_layout* layout);

/* ---- operations ------------------------------------------------------------------------------------ */
/* k_cache and v_cache are the K and V bases of layer 0 (see the layout formula) in every call. */

/* Writes token i's key[i] and value[i] ([n, kv_heads, head_dim] in src_dtype: F32, F16 or BF16) of one
 * layer into slot slots[i] (block * block_size + offset), converting or quantizing to the cache's type.
 * slots[i] == -1 skips token i. Slots must be distinct (else KVC_ERR_INVALID_ARGUMENT). */
KVC_API kvc_status kvc_kv_write(const kvc_kv_layout* layout, uint32_t layer, void* k_cache, void* v_cache,
                                const void* key, const void* value, kvc_dtype src_dtype, const int64_t* slots,
                                size_t n);

/* Copies block pairs[2i] to block pairs[2i+1] in every layer, K and V (the copy-on-write pairs of
 * kvc_pool_drain_copies). Destinations must be distinct and must not be sources. */
KVC_API kvc_status kvc_kv_copy_blocks(const kvc_kv_layout* layout, void* k_cache, void* v_cache,
                                      const int32_t* pairs, size_t num_pairs);

/* Copies block pairs[2i] of the source memory to block pairs[2i+1] of the destination memory (another
 * buffer: host <-> host here), every layer, K and V. The two layouts must agree on layers, block_size,
 * kv_heads, head_dim and dtype (num_blocks and strides may differ); destinations must be distinct.
 * Pairs whose source and destination both advance by one are merged into one copy per run (packed
 * strides), so a swap of n contiguous blocks costs one copy per layer and tensor, not n. */
KVC_API kvc_status kvc_kv_swap_blocks(const kvc_kv_layout* src_layout, const void* src_k, const void* src_v,
                                      const kvc_kv_layout* dst_layout, void* dst_k, void* dst_v,
                                      const int32_t* pairs, size_t num_pairs);

/* Copies sequence s's first seq_lens[s] tokens of one layer, read through its block table
 * block_tables[s * max_blocks_per_seq ...], to out_k and out_v as [tokens, kv_heads, head_dim] in out_dtype
 * (F32, F16 or BF16), sequences one after the other. The sum of seq_lens must be <= out_capacity_tokens. */
KVC_API kvc_status kvc_kv_gather(const kvc_kv_layout* layout, uint32_t layer, const void* k_cache,
                                 const void* v_cache, const int32_t* block_tables, size_t max_blocks_per_seq,
                                 const int32_t* seq_lens, size_t num_seqs, void* out_k, void* out_v,
                                 kvc_dtype out_dtype, size_t out_capacity_tokens);

/* Decode attention of one layer: for each sequence s and query head h (num_q_heads a multiple of
 * kv_heads; query head h reads KV head h / (num_q_heads / kv_heads): MHA, GQA, MQA),
 *     out[s, h] = sum_t softmax_t(scale * q[s, h] . K[t]) V[t]   over t < seq_lens[s],
 * with query and out float32 [num_seqs, num_q_heads, head_dim]. Long contexts are split into parts of
 * 512 tokens computed in parallel and merged exactly (log-sum-exp). FP8 and INT8 caches are dequantized
 * on the fly. A sequence of length 0 gives zeros. scale must be finite. */
KVC_API kvc_status kvc_kv_attention_decode(const kvc_kv_layout* layout, uint32_t layer, const void* k_cache,
                                           const void* v_cache, const float* query, uint32_t num_q_heads,
                                           const int32_t* block_tables, size_t max_blocks_per_seq,
                                           const int32_t* seq_lens, size_t num_seqs, float scale, float* out);

/* Worker threads for the calls above: 0 = one per core (the default), 1 = the calling thread alone,
 * at most 1024. Waits for running calls to finish. */
KVC_API kvc_status kvc_kv_set_threads(uint32_t threads);
/* Threads the calls use now. */
KVC_API uint32_t kvc_kv_threads(void);
/* The vector instruction set the CPU kernels chose at run time: "avx512", "avx2" or "generic". */
KVC_API const char* kvc_kv_isa(void);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_OPS_H */
