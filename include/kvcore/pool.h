/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/pool.h - the paged KV block pool with prefix caching.
 *
 * A pool holds num_blocks blocks of block_size tokens (block 0 is the reserved null block). Sequences
 * are requests: create one from its prompt tokens, allocate slots for the prompt (the longest cached
 * prefix is reused), append generated tokens, fork (copy-on-write), free. Full blocks are hashed
 * (chained: parent hash, tokens, extra keys) and stay reusable after they are freed until a new
 * allocation needs them; eviction takes the lowest retention priority first, least recently freed first.
 *
 * Sequences are named by kvc_sequence_id values, not pointers: a freed id gives KVC_ERR_INVALID_STATE, an
 * id of another pool or a made-up one KVC_ERR_INVALID_ARGUMENT (or, for an id long since issued while
 * other pools also created sequences, KVC_ERR_INVALID_STATE: a pool keeps a bounded id history), never a
 * crash. No id is issued twice in a process, by any pool, so a stale id is never taken for a newer
 * sequence; ids are 40-bit stamps reserved 4,096 at a time, so after at most 2^40 - 1 sequences (forks
 * and pins included; a destroyed pool forgoes its unused reservation) in one process, creating another
 * fails with KVC_ERR_CAPACITY.
 * Every failing call leaves the pool unchanged; KVC_ERR_CAPACITY means "not enough free blocks now" (or
 * a prompt larger than the pool, or no sequence id left).
 *
 * Hashes: KVC_HASH_SHA256_CBOR is byte-exact with vLLM's sha256_cbor (events interoperate with vLLM
 * routers); KVC_HASH_XXH3 (the default) is faster. Whatever the algorithm, requests with different cache
 * salts or LoRA names never share blocks (kvcore keys its cache by a tagged isolation domain).
 *
 * Thread-safety:
 * - kvc_pool: not thread-safe. One thread (the scheduler's) drives a pool at a time; calls on different
 *   pools may run in parallel. kvc_pool_destroy may run on any thread when no other call is running.
 * - kvc_pool_options, kvc_sequence_options: not thread-safe; build on one thread, then only read them.
 * - kvc_hash_blocks: thread-safe.
 */
#ifndef KVCORE_POOL_H
#define KVCORE_POOL_H

#include "kvcore/common.h"
#include "kvcore/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_pool_options kvc_pool_options;
typedef struct kvc_sequence_options kvc_sequence_options;
typedef struct kvc_pool kvc_pool;
typedef uint64_t kvc_sequence_id;

typedef enum kvc_memory {
    KVC_MEMORY_METADATA_ONLY = 0, /* the embedder owns the KV tensors; kvcore manages block ids (default) */
    KVC_MEMORY_HOST = 1,          /* page-aligned host memory, num_blocks * bytes_per_block */
    KVC_MEMORY_DEVICE = 2         /* CUDA memory on the creating thread's current device. The CUDA runtime
                                     (libcudart.so) is loaded at first use, never linked; KVC_ERR_UNSUPPORTED
                                     with the reason where no runtime or device is usable */
} kvc_memory;

typedef enum kvc_dtype { KVC_DTYPE_F16 = 0, KVC_DTYPE_BF16 = 1, KVC_DTYPE_F32 = 2, KVC_DTYPE_FP8 = 3, KVC_DTYPE_INT8 = 4 } kvc_dtype;

typedef enum kvc_hash_algo { KVC_HASH_XXH3 = 0, KVC_HASH_SHA256_CBOR = 1 } kvc_hash_algo;

typedef enum kvc_event_encoding {
    KVC_EVENTS_ARRAY = 0, /* each event a tagged array, as vLLM published until mid-2026 */
    KVC_EVENTS_MAP = 1    /* each event a map with "type", as vLLM publishes after PR #42892 */
} kvc_event_encoding;

#define KVC_DEFAULT_PRIORITY 35 /* retention priorities run 0..100; higher stays cached longer */

/* ---- pool options (defaults: 1024 blocks of 16 tokens, 1 layer x 8 KV heads x 128 dims, f16,
 *      metadata only, xxh3 seeded "42", prefix caching on, full attention, events off, statistics on) - */
KVC_API kvc_status kvc_pool_options_create(kvc_pool_options** out);
KVC_API void kvc_pool_options_destroy(kvc_pool_options* options);
/* Includes the null block: num_blocks - 1 blocks are usable. 2..2^30. */
KVC_API kvc_status kvc_pool_options_set_num_blocks(kvc_pool_options* options, uint32_t num_blocks);
KVC_API kvc_status kvc_pool_options_set_block_size(kvc_pool_options* options, uint32_t tokens); /* 1..4096 */
KVC_API kvc_status kvc_pool_options_set_model_shape(kvc_pool_options* options, uint32_t layers, uint32_t kv_heads,
                                                    uint32_t head_dim, kvc_dtype dtype);
KVC_API kvc_status kvc_pool_options_set_memory(kvc_pool_options* options, kvc_memory memory);
KVC_API kvc_status kvc_pool_options_set_hash(kvc_pool_options* options, kvc_hash_algo algo, const char* seed);
KVC_API kvc_status kvc_pool_options_set_prefix_caching(kvc_pool_options* options, uint32_t enabled);
/* Tokens of attention window; 0 = full attention. Blocks that leave the window are freed. As in vLLM, a
 * cached prefix ends at a cached block whatever the window (a one-token window included). */
KVC_API kvc_status kvc_pool_options_set_sliding_window(kvc_pool_options* options, uint32_t tokens);
/* Record KV events; at most max_pending wait for kvc_pool_drain_events (older ones are dropped and counted).
 * medium names where the blocks live in the events ("GPU", "CPU", ...). */
KVC_API kvc_status kvc_pool_options_set_events(kvc_pool_options* options, uint32_t enabled, const char* medium,
                                               uint32_t max_pending);
/* Requests in the windowed token hit rate (default 1000). */
KVC_API kvc_status kvc_pool_options_set_window_requests(kvc_pool_options* options, uint32_t requests);
/* Keep statistics (default on). Off, the pool records nothing and pays nothing for it (vLLM's
 * --disable-log-stats): kvc_pool_snapshot fails with KVC_ERR_INVALID_STATE and
 * kvc_pool_window_token_hit_rate returns NaN. */
KVC_API kvc_status kvc_pool_options_set_statistics(kvc_pool_options* options, uint32_t enabled);
/* Which free cached block is evicted first (default KVC_EVICTION_LRU, vLLM's order). Blocks without a
 * cached hash always go first, then lower retention priorities; the policy picks within a priority.
 * Blocks are freed tail first, so among blocks with the same history a chain's tail goes before its head. */
KVC_API kvc_status kvc_pool_options_set_eviction_policy(kvc_pool_options* options, kvc_eviction_policy policy);

/* ---- sequence options: extra keys and retention ------------------------------------------------ */
KVC_API kvc_status kvc_sequence_options_create(kvc_sequence_options** out);
KVC_API void kvc_sequence_options_destroy(kvc_sequence_options* options);
KVC_API kvc_status kvc_sequence_options_set_lora_name(kvc_sequence_options* options, const char* lora_name);
/* The engine's integer id of the LoRA adapter (vLLM's lora_int_id, >= 1; 0, the default, is none), written
 * as lora_id in BlockStored events. Hashes do not use it: blocks are keyed by the LoRA name, as in vLLM. */
KVC_API kvc_status kvc_sequence_options_set_lora_id(kvc_sequence_options* options, int64_t lora_id);
KVC_API kvc_status kvc_sequence_options_set_cache_salt(kvc_sequence_options* options, const char* salt);
/* A multimodal input occupying tokens [offset, offset + length), identified by its content hash. Add in
 * increasing offset order, without overlap. Each block it overlaps hashes the pair (hash, offset - the
 * block's first token), as vLLM does since PR #36708; a block starting where the item ends does not. */
KVC_API kvc_status kvc_sequence_options_add_multimodal(kvc_sequence_options* options, const char* hash,
                                                       uint64_t offset, uint64_t length);
/* 0..100 (default 35); after duration_ms (0 = forever) freed blocks fall back to the default priority.
 * A duration whose end lies past the clock's range (up to UINT64_MAX ms) never ends. */
KVC_API kvc_status kvc_sequence_options_set_priority(kvc_sequence_options* options, uint32_t priority,
                                                     uint64_t duration_ms);

/* ---- the pool ----------------------------------------------------------------------------------- */
KVC_API kvc_status kvc_pool_create(const kvc_pool_options* options, kvc_pool** out);
KVC_API void kvc_pool_destroy(kvc_pool* pool); /* accepts NULL; frees every sequence with the pool */

/* A sequence from its prompt (n >= 1 token ids, each >= 0). options may be NULL. */
KVC_API kvc_status kvc_pool_sequence_create(kvc_pool* pool, const int32_t* tokens, size_t n,
                                            const kvc_sequence_options* options, kvc_sequence_id* out);
/* Longest cached prefix in tokens (whole blocks, at most the prompt length - 1). Changes nothing. */
KVC_API kvc_status kvc_pool_cached_prefix(kvc_pool* pool, kvc_sequence_id seq, size_t* tokens);
/* Slots for the sequence's first num_tokens tokens (prefill; call again with more for chunked prefill).
 * The first call reuses the cached prefix and reports its length in *cached_tokens (may be NULL). */
KVC_API kvc_status kvc_pool_allocate(kvc_pool* pool, kvc_sequence_id seq, size_t num_tokens, size_t* cached_tokens);
/* Appends generated tokens with their slots. Needs every earlier token allocated. */
KVC_API kvc_status kvc_pool_append(kvc_pool* pool, kvc_sequence_id seq, const int32_t* tokens, size_t n);
/* A child sharing every block (copy-on-write; see kvc_pool_drain_copies). */
KVC_API kvc_status kvc_pool_fork(kvc_pool* pool, kvc_sequence_id seq, kvc_sequence_id* child);
/* Pins the sequence's full cached blocks (a shared system prompt) until *pin is freed with
 * kvc_pool_sequence_free; a pin cannot grow. */
KVC_API kvc_status kvc_pool_pin_prefix(kvc_pool* pool, kvc_sequence_id seq, kvc_sequence_id* pin);
/* Returns its blocks, the chain's tail first (so the tail is evicted before the head). */
KVC_API kvc_status kvc_pool_sequence_free(kvc_pool* pool, kvc_sequence_id seq);

/* Tokens with slots. */
KVC_API kvc_status kvc_pool_sequence_tokens(kvc_pool* pool, kvc_sequence_id seq, size_t* tokens);
/* Block table: *count = number of blocks; blocks NULL with capacity 0 is a size query. Blocks a sliding
 * window released read as 0 (the null block). */
KVC_API kvc_status kvc_pool_block_table(kvc_pool* pool, kvc_sequence_id seq, int32_t* blocks, size_t capacity,
                                        size_t* count);
/* slots[i] = block * block_size + offset of token first + i (-1 for a released token); n <= tokens - first. */
KVC_API kvc_status kvc_pool_slot_mapping(kvc_pool* pool, kvc_sequence_id seq, size_t first, int64_t* slots, size_t n);
/* Copy-on-write copies to perform before the next forward pass, as (src, dst) block pairs in
 * pairs[2i], pairs[2i+1]. pairs NULL with capacity 0 is a size query (nothing drained); otherwise all are
 * drained when capacity_pairs is enough, else KVC_ERR_BUFFER_TOO_SMALL and nothing is drained. */
KVC_API kvc_status kvc_pool_drain_copies(kvc_pool* pool, int32_t* pairs, size_t capacity_pairs, size_t* count_pairs);

/* Raw blocks for embedders with their own block tables: all-or-nothing. */
KVC_API kvc_status kvc_pool_allocate_blocks(kvc_pool* pool, int32_t* blocks, size_t n);
/* Only blocks from kvc_pool_allocate_blocks; a double free is KVC_ERR_INVALID_STATE and frees nothing. */
KVC_API kvc_status kvc_pool_free_blocks(kvc_pool* pool, const int32_t* blocks, size_t n);

/* Forgets every cached hash (emits AllBlocksCleared); KVC_ERR_INVALID_STATE while any block is in use. */
KVC_API kvc_status kvc_pool_reset_prefix_cache(kvc_pool* pool);

/* Pending KV events as one msgpack EventBatch in vLLM's wire format: always the positional array
 * [ts (float64 seconds), events, data_parallel_rank (0)]; the encoding chooses the events' form, tagged
 * arrays or maps with "type" (current vLLM). BlockStored carries block_hashes, parent_block_hash,
 * token_ids, block_size, lora_id (nil unless set), medium, lora_name, extra_keys (per block: nil or the keys its
 * hash used), group_idx (0), kv_cache_spec_kind ("full_attention" / "sliding_window"),
 * kv_cache_spec_sliding_window (with a window); BlockRemoved carries block_hashes, medium, group_idx.
 * As vLLM's msgspec writes them, map events leave unset optional fields out; array events write every
 * field, nil when unset (locality included).
 * buf NULL with capacity 0 is a size query (nothing drained); the size depends on the pending events
 * only, so a buffer of that size takes them. A successful copy drains them; KVC_ERR_BUFFER_TOO_SMALL
 * drains nothing. KVC_ERR_INVALID_STATE when the pool was created without events. */
KVC_API kvc_status kvc_pool_drain_events(kvc_pool* pool, kvc_event_encoding encoding, uint8_t* buf, size_t capacity,
                                         size_t* length);

/* Statistics (component "pool"): hits/misses count blocks (reused / missed), tokens_queried/hit count
 * prompt tokens as vLLM does, evictions count cached blocks taken for new data, memory pressure counts
 * calls refused with KVC_ERR_CAPACITY for want of blocks (once per call), bytes_in_use = blocks in use
 * now, peak_bytes = the most blocks held at any point of any call since the pool was created (blocks a
 * sliding window gives back within the call included; not only at snapshots). */
KVC_API kvc_status kvc_pool_snapshot(kvc_pool* pool, kvc_stats** out);
/* The host or device memory (NULL for metadata only) and the bytes of one block: K and V of every layer,
 * each kvc_kv_layout_block_bytes long (kvcore/ops.h: an INT8 block holds its per-token-per-head float
 * scales after its elements), so block b of layer l starts at base + b * bytes_per_block + 2 * l * that,
 * K first, then V. */
KVC_API kvc_status kvc_pool_storage(kvc_pool* pool, void** base, uint64_t* bytes_per_block);

/* Gauges; a NULL pool reads as 0. */
KVC_API uint32_t kvc_pool_num_blocks(const kvc_pool* pool);
KVC_API uint32_t kvc_pool_num_free_blocks(const kvc_pool* pool);
KVC_API uint32_t kvc_pool_num_blocks_in_use(const kvc_pool* pool);
KVC_API uint32_t kvc_pool_num_cached_blocks(const kvc_pool* pool);
KVC_API uint64_t kvc_pool_num_sequences(const kvc_pool* pool);
/* Tokens held by blocks in use / their token capacity (0.0 with none in use). */
KVC_API double kvc_pool_memory_efficiency(const kvc_pool* pool);
/* Token hit rate over the last window_requests requests (0.0 before the first; NaN with statistics off). */
KVC_API double kvc_pool_window_token_hit_rate(const kvc_pool* pool);
KVC_API uint64_t kvc_pool_events_dropped(const kvc_pool* pool);

/* ---- hashing without a pool --------------------------------------------------------------------- */
/* One hash per full block of tokens, as published in KV events (sha256_cbor: the digest's last 8 bytes,
 * big-endian). options (may be NULL) supply the LoRA name, cache salt and multimodal keys.
 * hashes NULL with capacity 0 is a size query. */
KVC_API kvc_status kvc_hash_blocks(kvc_hash_algo algo, const char* seed, uint32_t block_size, const int32_t* tokens,
                                   size_t n, const kvc_sequence_options* options, uint64_t* hashes, size_t capacity,
                                   size_t* count);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_POOL_H */
