/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/store.h - the session store: sessions that keep their KV between requests, so that a chat's next
 * turn computes only its new tokens (SmallMind's LruKvCacheStore, with every option doing what it says).
 *
 * A store holds sessions named by id strings. Each session is a sequence of a paged block pool (one pool
 * per distinct model shape, created on first use) over host memory, so:
 * - memory counts the pool blocks actually in use, not reserved capacity: a session allowed 2,048 tokens
 *   that holds 10 uses one block. A block that several sessions share (a common system prompt, with
 *   prefix sharing on) counts once;
 * - bounds (tokens per session, bytes per session, bytes in total, sessions) are checked before anything
 *   is allocated or evicted. A request that cannot fit even after evicting every idle session fails at
 *   once with KVC_ERR_CAPACITY, a message saying which bound, one memory-pressure event in the stats, and
 *   the store exactly as it was (nothing is evicted for a request that fails anyway).
 *
 * Leases. kvc_store_get_or_create and kvc_store_try_get return a kvc_session: a lease on the session that
 * the caller ends with kvc_session_release (any thread; NULL is fine, so GC finalizers may call it). While
 * at least one lease is held the session is never evicted and its blocks are never recycled: eviction
 * skips it, and when only held sessions are left to evict the request fails with KVC_ERR_CAPACITY.
 * kvc_store_remove / kvc_store_clear of a held session detach it (its id is free for a new session at
 * once; the detached session keeps working for its holders and is freed at its last release).
 * kvc_store_destroy while leases are held is safe: the store's core lives until the last lease ends.
 *
 * A turn (multi-turn reuse):
 *   kvc_store_get_or_create(store, "chat-42", layers, kv_heads, head_dim, dtype, 2048, &s, &created);
 *   kvc_session_begin_turn(s, conversation, n, &reused);   reused = tokens whose K/V are already there
 *   for each layer: kvc_session_write_kv(s, layer, reused, k, v, n - reused);   (the caller's forward)
 *   kvc_session_commit(s);                                  K/V written: full blocks become shareable
 *   decode: kvc_session_append_tokens(s, &next, 1); write_kv for that token; commit
 *   kvc_session_release(s);
 * begin_turn takes the whole conversation; it keeps exactly the longest common prefix of the conversation
 * and the session's committed tokens, drops the rest, and slots the new tokens. reused is that prefix
 * (the stats' reused tokens count exactly it; all n when the conversation adds nothing), or, for a session
 * holding nothing (or sharing no first token with it), the conversation's longest prefix of full blocks that
 * sessions committed (prefix sharing on; never the last token). With device memory the kept prefix is cut
 * to a block boundary (a shared block cannot be copied there before it is written into).
 *
 * Block layout (KVC_MEMORY_HOST and KVC_MEMORY_DEVICE), for zero-copy kernels: block b starts at
 * base + b * bytes_per_block (kvc_session_storage). Inside a block, elements of the session's dtype are
 * laid out as [layer][kv: 0 = K, 1 = V][token in block: 0..block_size-1][kv_head][head_dim], so
 * token t of the session sits in block table entry t / block_size at offset t % block_size. The rows
 * kvc_session_write_kv / kvc_session_read_kv take are [token][kv_head][head_dim] of one layer. This is
 * the pool's layout that the kernels of kvcore/ops.h address: each (layer, kv) part of a block is
 * kvc_kv_layout_block_bytes long, so an INT8 part ends with its per-token-per-head float scales, which
 * kvc_session_write_kv / kvc_session_read_kv do not touch (kvc_kv_write fills them).
 *
 * SmallMind names (the C# binding's), defaults, and what each option does:
 *   Enabled = true                   kvc_store_options_set_enabled: off, nothing is kept between leases:
 *                                    every get_or_create creates a private session (a miss), try_get
 *                                    always misses, and a session is freed at its release.
 *   MaxTokensPerSession = 4096       kvc_store_options_set_max_tokens_per_session: a session never holds
 *                                    more tokens (get_or_create's max_tokens may only lower it).
 *   MaxSessions = 1000               kvc_store_options_set_max_sessions: creating one more evicts an idle
 *                                    session (policy order); with every session held, KVC_ERR_CAPACITY.
 *   MaxBytesTotal = 1 GiB            kvc_store_options_set_max_bytes_total: blocks in use, all sessions.
 *   MaxBytesPerSession = 0           kvc_store_options_set_max_bytes_per_session: one session's blocks
 *                                    (shared ones included); 0 = only MaxBytesTotal bounds a session.
 *   Policy = KvEvictionPolicy.LRU    kvc_store_options_set_eviction_policy: which idle session goes.
 *   PersistAcrossRequests = true     kvc_store_options_set_persist_across_requests: off, a session is
 *                                    removed when its last lease is released (it lives for one request).
 *   EnablePrefixSharing = true       kvc_store_options_set_prefix_sharing: sessions share the blocks of a
 *                                    common prefix (counted once); off, every session's blocks are its own.
 *   BlockSize = 16                   kvc_store_options_set_block_size: tokens per pool block.
 *   Memory = Host                    kvc_store_options_set_memory: KVC_MEMORY_HOST or KVC_MEMORY_DEVICE.
 *   StatsComponent = "store"         kvc_store_options_set_component: the stats' component label.
 *
 * Statistics (kvc_store_snapshot, component "store" by default): hits / misses = session lookups
 * (get_or_create finding the session, try_get finding it or not), insertions = sessions created,
 * evictions = sessions evicted to make room (not removes, not sessions ended by persist-across-requests
 * off), bytes_in_use / peak_bytes = bytes of blocks in use now / at most, tokens_reused = begin_turn's
 * reused tokens, memory_pressure_events = requests refused with KVC_ERR_CAPACITY because evicting every
 * idle session would not make room (bytes or sessions; once per call). A request that exceeds a bound by
 * itself (more tokens than its session's max tokens, more bytes than a byte bound) fails with
 * KVC_ERR_CAPACITY and records nothing. Sessions now: kvc_store_num_sessions.
 *
 * Thread-safety:
 * - kvc_store: thread-safe. Any number of threads may call any kvc_store_* function on one store at once
 *   (one mutex inside; the K/V copies of write_kv / read_kv run outside it). kvc_store_destroy may run on
 *   any thread, but not concurrently with other calls on the same store handle.
 * - kvc_session: one thread at a time per lease (calls on different leases may run in parallel, also on
 *   the same store). Two leases on one session (two gets of one id) must not be used at the same time.
 *   kvc_session_release may run on any thread once no other call on that lease runs.
 * - kvc_store_options: not thread-safe; build on one thread, then only read it.
 */
#ifndef KVCORE_STORE_H
#define KVCORE_STORE_H

#include "kvcore/common.h"
#include "kvcore/pool.h"
#include "kvcore/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_store_options kvc_store_options;
typedef struct kvc_store kvc_store;
typedef struct kvc_session kvc_session; /* a lease on one session */

/* Defaults of the options (SmallMind's where it has one). */
#define KVC_STORE_DEFAULT_MAX_TOKENS_PER_SESSION 4096u
#define KVC_STORE_DEFAULT_MAX_SESSIONS 1000u
#define KVC_STORE_DEFAULT_MAX_BYTES_TOTAL (1024ull * 1024ull * 1024ull)
#define KVC_STORE_DEFAULT_BLOCK_SIZE 16u
/* Bounds accepted by the setters. */
#define KVC_STORE_MAX_TOKENS_PER_SESSION (1u << 24)
#define KVC_STORE_MAX_SESSIONS (1u << 22)
#define KVC_STORE_MAX_SESSION_ID 1024u /* bytes of a session id (1..1024, no NUL inside) */

/* ---- options ---------------------------------------------------------------------------------- */

/* Defaults: enabled, 4096 tokens per session, 1000 sessions, 1 GiB in total, no per-session byte bound,
 * LRU, persist across requests, prefix sharing on, blocks of 16 tokens, host memory, component "store". */
KVC_API kvc_status kvc_store_options_create(kvc_store_options** out);
/* Accepts NULL. */
KVC_API void kvc_store_options_destroy(kvc_store_options* options);
/* Enabled (default 1). 0: nothing is kept between leases (see above). */
KVC_API kvc_status kvc_store_options_set_enabled(kvc_store_options* options, uint32_t enabled);
/* MaxTokensPerSession: 1..KVC_STORE_MAX_TOKENS_PER_SESSION (default 4096). */
KVC_API kvc_status kvc_store_options_set_max_tokens_per_session(kvc_store_options* options, uint32_t tokens);
/* MaxSessions: 1..KVC_STORE_MAX_SESSIONS (default 1000). */
KVC_API kvc_status kvc_store_options_set_max_sessions(kvc_store_options* options, uint32_t sessions);
/* MaxBytesTotal: >= 1 (default 1 GiB). Bytes of pool blocks in use over all sessions. */
KVC_API kvc_status kvc_store_options_set_max_bytes_total(kvc_store_options* options, uint64_t bytes);
/* MaxBytesPerSession: bytes of one session's blocks; 0 (the default) = no bound of its own. */
KVC_API kvc_status kvc_store_options_set_max_bytes_per_session(kvc_store_options* options, uint64_t bytes);
/* Policy: which idle session goes first (default KVC_EVICTION_LRU). An unknown value is
 * KVC_ERR_INVALID_ARGUMENT. */
KVC_API kvc_status kvc_store_options_set_eviction_policy(kvc_store_options* options, kvc_eviction_policy policy);
/* PersistAcrossRequests (default 1). 0: a session is removed at its last release. */
KVC_API kvc_status kvc_store_options_set_persist_across_requests(kvc_store_options* options, uint32_t persist);
/* EnablePrefixSharing (default 1). 0: sessions never share blocks (SmallMind's isolated sessions). */
KVC_API kvc_status kvc_store_options_set_prefix_sharing(kvc_store_options* options, uint32_t enabled);
/* BlockSize: tokens per block, 1..4096 (default 16). */
KVC_API kvc_status kvc_store_options_set_block_size(kvc_store_options* options, uint32_t tokens);
/* Memory: KVC_MEMORY_HOST (default) or KVC_MEMORY_DEVICE (CUDA; the first session of a shape fails with
 * KVC_ERR_UNSUPPORTED where no device is usable; write_kv / read_kv are host-only, use the storage).
 * KVC_MEMORY_METADATA_ONLY and unknown values are KVC_ERR_INVALID_ARGUMENT. */
KVC_API kvc_status kvc_store_options_set_memory(kvc_store_options* options, kvc_memory memory);
/* The stats' component label: 1..63 characters of [A-Za-z0-9_] (default "store"). Copied. */
KVC_API kvc_status kvc_store_options_set_component(kvc_store_options* options, const char* component);

/* ---- the store -------------------------------------------------------------------------------- */

/* options may be NULL for the defaults; they are copied. */
KVC_API kvc_status kvc_store_create(const kvc_store_options* options, kvc_store** out);
/* Accepts NULL. Sessions not held are freed; held ones live until their release. */
KVC_API void kvc_store_destroy(kvc_store* store);

/*
 * GetOrCreate: a lease on session `id` (a NUL-terminated string of 1..KVC_STORE_MAX_SESSION_ID bytes),
 * created empty if absent. *created (may be NULL) is 1 when it was created (a miss), 0 when found (a hit).
 * The shape is the model's: layers, KV heads, head dim, dtype (each >= 1, as kvc_pool_options_set_model_shape).
 * max_tokens: the session's token bound, 1..MaxTokensPerSession, or 0 for MaxTokensPerSession; a hit sets
 * it anew (KVC_ERR_INVALID_STATE if the session holds more tokens). Errors: KVC_ERR_INVALID_STATE when the
 * session exists with another shape; KVC_ERR_CAPACITY when max_tokens exceeds MaxTokensPerSession, when one
 * block of the shape exceeds a byte bound, when the store already serves 8 other model shapes (one pool
 * each), or when a new session would pass MaxSessions and every session is held. Creating may evict one
 * idle session (MaxSessions).
 */
KVC_API kvc_status kvc_store_get_or_create(kvc_store* store, const char* id, uint32_t layers, uint32_t kv_heads,
                                           uint32_t head_dim, kvc_dtype dtype, uint32_t max_tokens, kvc_session** out,
                                           uint32_t* created);
/* TryGet: a lease on an existing session; KVC_ERR_NOT_FOUND (*out NULL) when absent, counted as a miss. */
KVC_API kvc_status kvc_store_try_get(kvc_store* store, const char* id, kvc_session** out);
/* Remove: KVC_ERR_NOT_FOUND when absent. An idle session is freed now, a held one detached. */
KVC_API kvc_status kvc_store_remove(kvc_store* store, const char* id);
/* Removes every session (held ones are detached). */
KVC_API kvc_status kvc_store_clear(kvc_store* store);
/* GetStats: a snapshot of the store's statistics (see above); free it with kvc_stats_destroy. */
KVC_API kvc_status kvc_store_snapshot(kvc_store* store, kvc_stats** out);

/* Gauges; a NULL store reads as 0. */
KVC_API uint64_t kvc_store_num_sessions(const kvc_store* store);   /* CurrentSessions: sessions with an id */
KVC_API uint64_t kvc_store_bytes_in_use(const kvc_store* store);   /* CurrentBytes */
KVC_API uint64_t kvc_store_peak_bytes(const kvc_store* store);     /* PeakBytes */

/* ---- a session (through its lease) ------------------------------------------------------------- */

/* Ends the lease. Accepts NULL; any thread. */
KVC_API void kvc_session_release(kvc_session* session);

/* Starts a turn with the whole conversation (n >= 0 token ids, each >= 0): keeps the longest common prefix
 * with the session's committed tokens, drops the rest, slots the new tokens; *reused (may be NULL) = tokens
 * whose K/V are present (write K/V for [reused, n)). Bounds are checked first (KVC_ERR_CAPACITY, nothing
 * changed); idle sessions may be evicted to make room. n == 0 empties the session. */
KVC_API kvc_status kvc_session_begin_turn(kvc_session* session, const int32_t* tokens, size_t n, size_t* reused);
/* Adds n >= 1 generated tokens with slots (decode). KVC_ERR_INVALID_STATE on a session holding no tokens
 * (begin a turn first). Bounds as begin_turn. */
KVC_API kvc_status kvc_session_append_tokens(kvc_session* session, const int32_t* tokens, size_t n);
/* Writes K and V rows of one layer for tokens [first, first + n): keys and values each hold
 * n * kv_heads * head_dim elements of the dtype ([token][kv_head][head_dim]). Only uncommitted tokens may be
 * written (committed K/V may be shared): KVC_ERR_OUT_OF_RANGE outside [committed, tokens), layer past the
 * shape. KVC_ERR_UNSUPPORTED for device memory. */
KVC_API kvc_status kvc_session_write_kv(kvc_session* session, uint32_t layer, size_t first, size_t n,
                                        const void* keys, const void* values);
/* Reads K and V rows of one layer for tokens [first, first + n) into keys and values (capacity bytes each).
 * *bytes = n * kv_heads * head_dim * dtype size; keys and values NULL with capacity 0 is a size query;
 * KVC_ERR_BUFFER_TOO_SMALL when capacity is less. KVC_ERR_UNSUPPORTED for device memory. */
KVC_API kvc_status kvc_session_read_kv(kvc_session* session, uint32_t layer, size_t first, size_t n, void* keys,
                                       void* values, size_t capacity, size_t* bytes);
/* Marks every token's K/V written (all layers): they become reusable by later turns, and, with prefix
 * sharing on, the full blocks become shareable by other sessions. */
KVC_API kvc_status kvc_session_commit(kvc_session* session);

/* Tokens with slots, and of them the committed ones (either pointer may be NULL). */
KVC_API kvc_status kvc_session_tokens(kvc_session* session, size_t* tokens, size_t* committed);
/* The session's token bound (get_or_create's max_tokens or MaxTokensPerSession). */
KVC_API kvc_status kvc_session_max_tokens(kvc_session* session, size_t* max_tokens);
/* The id, NUL-terminated, into buf; *length = its length without the NUL. buf NULL with capacity 0 is a
 * size query; KVC_ERR_BUFFER_TOO_SMALL when capacity < length + 1. */
KVC_API kvc_status kvc_session_id(kvc_session* session, char* buf, size_t capacity, size_t* length);
/* Block table: *count = blocks; blocks NULL with capacity 0 is a size query. */
KVC_API kvc_status kvc_session_block_table(kvc_session* session, int32_t* blocks, size_t capacity, size_t* count);
/* The storage of the session's pool (host or device pointer), the bytes of one block and the block size in
 * tokens; layout at the top of this header. Valid while the lease is held. Any pointer may be NULL. */
KVC_API kvc_status kvc_session_storage(kvc_session* session, void** base, uint64_t* bytes_per_block,
                                       uint32_t* block_size);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_STORE_H */
