/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/index.h - the cluster KV-block index: which pod holds which KV blocks, fed by the
 * KV event batches that vLLM engines (or kvcore pools, kvc_pool_drain_events) publish, and the scoring of
 * pods by their cached prefix of a prompt. What a router runs in place of llm-d's kv-cache-manager.
 *
 * Names. Models and pods are NUL-terminated strings (any bytes but NUL, "" allowed), interned by the
 * index: the first batch or speculative entry naming a pod makes it known; kvc_index_remove_pod forgets it.
 * At most 65535 pods and 32768 models at once (KVC_ERR_CAPACITY past them). A scoring or lookup call
 * names models too, so each new model name costs an id: a router should pass only the models it serves.
 *
 * Keys. Request keys are what the router computes from a prompt with the index's hash (algorithm, seed,
 * block size: kvc_index_options_set_hash / _set_block_size; kvc_index_request_keys); engine keys are the
 * block hashes in the engines' events. By default each pod's engine keys are mapped to request keys
 * recomputed from the tokens in its events (any engine seed, any engine block size: 1:1, many:1,
 * 1:many). In direct mode (kvc_index_options_set_engine_keys_direct: the engines hash with sha256_cbor,
 * the same seed and block size) engine keys are the request keys and ingest hashes nothing. A block whose
 * parent the index never saw (a router restarted) is indexed under its engine key at once
 * (KVC_INDEX_KEY_ENGINE) and moves to its request key when the parent arrives.
 *
 * Scores. A candidate pod's score is its run of consecutive cached blocks from the prompt's block 0,
 * each block weighted by the best tier the pod holds it in (defaults gpu 1.0, cpu 0.8, fs 0.6, obj 0.4,
 * other 0.5; speculative entries count as gpu). Unknown pods score 0. Scoring changes no entry (it marks
 * the keys it reads as recently used for the byte budget's LRU).
 *
 * Ingest. kvc_index_apply_batch decodes and applies one payload on the calling thread, whole or not at
 * all: a malformed payload is KVC_ERR_INVALID_ARGUMENT with the decoder's message (event, field, byte
 * offset) and changes nothing. The data-parallel rank is the batch's own (absent: 0). Batches of one pod
 * must be applied in the order the engine published them. With ingest threads
 * (kvc_index_options_set_ingest_threads), kvc_index_submit_batch decodes on the calling thread and
 * queues the batch on the pod's worker (pods sharded over the threads, order kept per pod).
 *
 * Redis mode (kvc_index_options_set_redis): several routers share one index in a Redis or Valkey
 * server. Each keeps the names it meets and the engine-key mapping of the pods whose batches it applies;
 * the entries live in the server, keyed by model and pod names, so any router scores what any other
 * applied (pods are known by name: a router need not have seen a pod's batches to score, look up,
 * clear or remove it). A batch reaches the server as one script (other routers see it whole or not at
 * all); scoring and lookups read keys in pipelined windows and stop early. When the server cannot be
 * reached a call fails with KVC_ERR_IO naming it, after a bounded reconnect; an applied batch that
 * fails so is kept and sent before that pod's next batch. The byte budget is then the server's
 * (maxmemory, maxmemory-policy volatile-lru or allkeys-lru) and kvc_index_options_set_byte_budget must
 * stay 0; holders expire kvc_index_options_set_redis_key_ttl_ms after their last write when that is set.
 * The entry counters (keys, holders, speculative, charged bytes, evictions, expired) read 0 in Redis
 * mode: they are the server's. Speculative TTLs run on the server's clock.
 *
 * Counters (kvc_index_counters) are the index's own figures; the index has no kvc_stats snapshot yet:
 * hits and misses of a router's scoring are per pod and per prompt, which kvc_stats' cache counters do
 * not describe, and counting them would add a shared write to every scoring call.
 *
 * Thread-safety:
 * - kvc_index_options: not thread-safe; build on one thread, then only read it.
 * - kvc_index: every call except kvc_index_destroy may run concurrently from any number of threads,
 *   with one rule: batches of the same pod are applied (kvc_index_apply_batch) by one thread at a time,
 *   in order; batches of different pods may be applied concurrently. Scoring, lookups and speculative
 *   entries run alongside ingest, and each sees a batch whole or not at all (a score from the score
 *   cache too: it is used only while no write has touched the keys it came from). kvc_index_destroy may run
 *   on any thread when no other call on the index is running; it finishes queued batches first.
 * - kvc_index_lookup_result: immutable; any number of threads may read one; it outlives its index.
 */
#ifndef KVCORE_INDEX_H
#define KVCORE_INDEX_H

#include "kvcore/common.h"
#include "kvcore/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_index_options kvc_index_options;
typedef struct kvc_index kvc_index;
typedef struct kvc_index_lookup_result kvc_index_lookup_result;

/* Which keys a call means (llm-d's keyType). */
typedef enum kvc_index_key_kind {
    KVC_INDEX_KEY_REQUEST = 0, /* the index's own keys, computed from the prompt's tokens */
    KVC_INDEX_KEY_ENGINE = 1   /* an engine's block hashes, for blocks whose parent is not yet known */
} kvc_index_key_kind;

/* Where a pod holds a block: the events' medium. Values never change; new ones are appended. */
typedef enum kvc_index_tier {
    KVC_INDEX_TIER_GPU = 0,
    KVC_INDEX_TIER_CPU = 1,
    KVC_INDEX_TIER_FS = 2,
    KVC_INDEX_TIER_OBJ = 3,
    KVC_INDEX_TIER_OTHER = 4 /* a medium the decoder does not know */
} kvc_index_tier;

/* Slots of kvc_index_counters. Values never change; new ones are appended before KVC_INDEX_COUNTER_COUNT. */
typedef enum kvc_index_counter {
    KVC_INDEX_COUNTER_KEYS = 0,            /* (model, key kind, key) entries now */
    KVC_INDEX_COUNTER_HOLDERS = 1,         /* (key, pod, rank, tier) holders now */
    KVC_INDEX_COUNTER_SPECULATIVE = 2,     /* live speculative holders now */
    KVC_INDEX_COUNTER_CHARGED_BYTES = 3,   /* what the byte budget counts now */
    KVC_INDEX_COUNTER_MEMORY_BYTES = 4,    /* heap held by the entries (capacities; engine maps estimated) */
    KVC_INDEX_COUNTER_ENGINE_BLOCKS = 5,   /* engine keys mapped to request keys now */
    KVC_INDEX_COUNTER_ORPHAN_BLOCKS = 6,   /* blocks waiting for their parent now */
    KVC_INDEX_COUNTER_EVICTIONS = 7,       /* keys evicted by the byte budget, since creation */
    KVC_INDEX_COUNTER_EXPIRED = 8,         /* speculative holders expired */
    KVC_INDEX_COUNTER_BATCHES_APPLIED = 9, /* batches applied */
    KVC_INDEX_COUNTER_BATCHES_FAILED = 10, /* batches refused (malformed, or a name past the limits) */
    KVC_INDEX_COUNTER_BLOCKS_STORED = 11,
    KVC_INDEX_COUNTER_BLOCKS_REMOVED = 12,
    KVC_INDEX_COUNTER_CLEARS = 13,          /* AllBlocksCleared events and kvc_index_clear calls */
    KVC_INDEX_COUNTER_ORPHANS_HEALED = 14,  /* orphan blocks moved to their request keys */
    KVC_INDEX_COUNTER_ORPHANS_DROPPED = 15, /* orphan blocks forgotten past the per-pod bound */
    KVC_INDEX_COUNTER_UNKNOWN_EVENTS = 16,  /* events of a type the decoder does not know, skipped */
    KVC_INDEX_COUNTER_SCORE_CACHE_HITS = 17,          /* kvc_index_score_tokens answered by the score cache */
    KVC_INDEX_COUNTER_SCORE_CACHE_MISSES = 18,        /* ... scored by the index (the cache enabled) */
    KVC_INDEX_COUNTER_SCORE_CACHE_INVALIDATIONS = 19, /* misses whose cached result a write had made stale */
    KVC_INDEX_COUNTER_REDIS_ERRORS = 20,     /* Redis mode: failed server round trips (connection lost, error reply) */
    KVC_INDEX_COUNTER_REDIS_RECONNECTS = 21, /* Redis mode: connections made again after one was lost */
    KVC_INDEX_COUNTER_COUNT = 22
} kvc_index_counter;

#define KVC_INDEX_DEFAULT_SPECULATIVE_TTL_MS 2000u
/* Upper bound of the speculative TTL (one hour). */
#define KVC_INDEX_MAX_SPECULATIVE_TTL_MS 3600000u

/* ---- options ----------------------------------------------------------------------------------- */

/* Defaults: request keys by xxh3 seeded "42" over blocks of 16 tokens, engine keys mapped (not direct),
 * 32 shards, no byte budget, 65536 orphan blocks kept per (pod, rank, model), default tier weights,
 * speculative TTL 2 s, no ingest threads, no score cache. Setters reject a bad value with KVC_ERR_INVALID_ARGUMENT and
 * change nothing. Consistency (direct mode needs sha256_cbor; a budget of at least 37 bytes per shard) is
 * checked by each setter against the values already set. */
KVC_API kvc_status kvc_index_options_create(kvc_index_options** out);
/* Accepts NULL. */
KVC_API void kvc_index_options_destroy(kvc_index_options* options);
/* The hash of request keys. Use the engines' algorithm and seed (vLLM: sha256_cbor, its PYTHONHASHSEED-like
 * seed) when direct mode is wanted; otherwise any. seed is copied. */
KVC_API kvc_status kvc_index_options_set_hash(kvc_index_options* options, kvc_hash_algo algo, const char* seed);
/* Tokens per request key: 1..1048576. */
KVC_API kvc_status kvc_index_options_set_block_size(kvc_index_options* options, uint32_t tokens);
/* enabled != 0: the engines hash exactly as the index (sha256_cbor, same seed and block size), so their
 * keys are used as request keys directly. Events of another block size are still mapped. */
KVC_API kvc_status kvc_index_options_set_engine_keys_direct(kvc_index_options* options, uint32_t enabled);
/* A power of two, 1..4096: more shards, less contention between ingest and scoring. */
KVC_API kvc_status kvc_index_options_set_shards(kvc_index_options* options, uint32_t shards);
/* Bytes the entries may take (0 = unbounded), split evenly between the shards; past it the least recently
 * used keys are evicted. Each key counts 37 bytes, each pod-set slot beyond a key's first holder 4. */
KVC_API kvc_status kvc_index_options_set_byte_budget(kvc_index_options* options, uint64_t bytes);
/* Blocks with an unknown parent kept per (pod, rank, model) for healing; the oldest go first. */
KVC_API kvc_status kvc_index_options_set_max_orphan_blocks(kvc_index_options* options, uint32_t blocks);
/* The weight of a block held in tier: finite, 0..1000. */
KVC_API kvc_status kvc_index_options_set_tier_weight(kvc_index_options* options, kvc_index_tier tier, double weight);
/* Default lifetime of speculative entries: 1..KVC_INDEX_MAX_SPECULATIVE_TTL_MS. */
KVC_API kvc_status kvc_index_options_set_speculative_ttl_ms(kvc_index_options* options, uint64_t ttl_ms);
/* The prefix-to-pods score cache of kvc_index_score_tokens (off by default: max_entries 0). A repeated
 * prompt (the same model, tokens, LoRA name, cache salt and multimodal items) with the same candidate
 * list (in the same order) and tier weights is answered without hashing or looking up its blocks. Its
 * results always equal the uncached ones: any write touching the keys that decided them (a stored,
 * removed, cleared, evicted or speculative block; a removed pod) or a speculative entry's expiry makes
 * them stale, and a stale result is computed again. max_entries: prompts kept (LRU), 0..4294967295;
 * ttl_ms: 1..1000000000000, a result's lifetime; max_pod_sets_per_prompt: 1..64 candidate lists kept
 * per prompt (the oldest goes). With max_entries 0 the other two are not checked. */
KVC_API kvc_status kvc_index_options_set_score_cache(kvc_index_options* options, uint32_t max_entries, uint64_t ttl_ms,
                                                     uint32_t max_pod_sets_per_prompt);
/* Redis mode: url is redis://[[user]:password@]host[:port][/db] (valkey:// alike; host may be [ipv6]) or
 * unix:///path/to/socket[?db=N]; "" goes back to entries in this process. Copied; checked for syntax
 * here (KVC_ERR_INVALID_ARGUMENT), connected to by kvc_index_create (KVC_ERR_IO when it cannot).
 * KVC_ERR_UNSUPPORTED in a build without Redis (KVCORE_REDIS=OFF) and for rediss:// (no TLS). */
KVC_API kvc_status kvc_index_options_set_redis(kvc_index_options* options, const char* url);
/* Redis mode: a holder expires ttl_ms after its last write (0, the default: never by time), and keys
 * no write refreshes leave the server. At most 2^40 ms. */
KVC_API kvc_status kvc_index_options_set_redis_key_ttl_ms(kvc_index_options* options, uint64_t ttl_ms);
/* Redis mode: what every key of the index in the server starts with (default "kvc:"); routers that share
 * an index use the same prefix, different indexes in one server different ones. Copied. */
KVC_API kvc_status kvc_index_options_set_redis_key_prefix(kvc_index_options* options, const char* prefix);
/* threads 0..256 (0, the default: no workers, kvc_index_submit_batch is KVC_ERR_INVALID_STATE);
 * queue_capacity >= 1 batches per worker. */
KVC_API kvc_status kvc_index_options_set_ingest_threads(kvc_index_options* options, uint32_t threads,
                                                        uint32_t queue_capacity);

/* ---- the index --------------------------------------------------------------------------------- */

/* options may be NULL for the defaults; they are copied. */
KVC_API kvc_status kvc_index_create(const kvc_index_options* options, kvc_index** out);
/* Accepts NULL. Applies the batches still queued, joins the ingest threads, frees everything; with
 * subscribers still feeding it (kvcore/index_subscriber.h), that happens when the last one is destroyed. */
KVC_API void kvc_index_destroy(kvc_index* index);

/* Decodes one vLLM EventBatch (msgpack, n bytes; every encoding vLLM uses) published by pod for model,
 * and applies it whole; see "Ingest" above. KVC_ERR_INVALID_ARGUMENT for a malformed payload (nothing
 * applied, counted as failed), KVC_ERR_CAPACITY for a pod or model past the limits. */
KVC_API kvc_status kvc_index_apply_batch(kvc_index* index, const char* pod, const char* model, const uint8_t* payload,
                                         size_t n);
/* As kvc_index_apply_batch, but applied on the pod's ingest thread: a malformed payload is refused here;
 * a batch that fails to apply later is counted (KVC_INDEX_COUNTER_BATCHES_FAILED). Waits while the
 * worker's queue is full. KVC_ERR_INVALID_STATE without ingest threads. */
KVC_API kvc_status kvc_index_submit_batch(kvc_index* index, const char* pod, const char* model, const uint8_t* payload,
                                          size_t n);
/* Waits until every batch submitted before the call is applied (immediate without ingest threads). */
KVC_API kvc_status kvc_index_flush(kvc_index* index);

/* The request keys of a prompt: one per full block of the index's block size, chained, with the extra
 * keys of seq_options (LoRA name, cache salt, multimodal items; NULL for none). keys NULL with capacity 0
 * is a size query; *count receives the number of keys also when capacity is too small
 * (KVC_ERR_BUFFER_TOO_SMALL). tokens: n ids >= 0 (NULL only when n == 0). */
KVC_API kvc_status kvc_index_request_keys(const kvc_index* index, const int32_t* tokens, size_t n,
                                          const kvc_sequence_options* seq_options, uint64_t* keys, size_t capacity,
                                          size_t* count);

/* Scores num_pods candidate pods (names; duplicates allowed) for a prompt of model: scores[i] is pods[i]'s
 * weighted run of cached blocks, blocks[i] (blocks may be NULL) the run's length in blocks. Unknown pods
 * get 0. The prompt is hashed as kvc_index_request_keys does. */
KVC_API kvc_status kvc_index_score_tokens(const kvc_index* index, const char* model, const int32_t* tokens, size_t n,
                                          const kvc_sequence_options* seq_options, const char* const* pods,
                                          size_t num_pods, double* scores, uint32_t* blocks);
/* The same with the prompt's keys already computed (request keys; or engine keys of orphan blocks). */
KVC_API kvc_status kvc_index_score_keys(const kvc_index* index, const char* model, const uint64_t* keys, size_t n,
                                        kvc_index_key_kind kind, const char* const* pods, size_t num_pods,
                                        double* scores, uint32_t* blocks);

/* llm-d's Lookup: for keys[0..n) in order, the holders of each among the pod filter (num_pods == 0: every
 * pod), stopping at the first key that none holds. The result is a copy: read it with the getters below,
 * free it with kvc_index_lookup_result_destroy. Unknown filter pods hold nothing. */
KVC_API kvc_status kvc_index_lookup(const kvc_index* index, const char* model, const uint64_t* keys, size_t n,
                                    kvc_index_key_kind kind, const char* const* pods, size_t num_pods,
                                    kvc_index_lookup_result** out);
/* Accepts NULL. */
KVC_API void kvc_index_lookup_result_destroy(kvc_index_lookup_result* result);
/* How many leading keys have a holder (a NULL result reads as 0). */
KVC_API size_t kvc_index_lookup_result_keys_found(const kvc_index_lookup_result* result);
/* The number of holders of key key_index (< keys_found; else KVC_ERR_OUT_OF_RANGE). */
KVC_API kvc_status kvc_index_lookup_result_holders(const kvc_index_lookup_result* result, size_t key_index,
                                                   size_t* count);
/* Holder h of key key_index: its pod's name (owned by the result, valid until it is destroyed), data-parallel
 * rank, tier and whether it is speculative (1) or from an event (0). Any output may be NULL. */
KVC_API kvc_status kvc_index_lookup_result_holder(const kvc_index_lookup_result* result, size_t key_index, size_t h,
                                                  const char** pod, uint32_t* rank, kvc_index_tier* tier,
                                                  uint32_t* speculative);

/* A routing decision: pod is taken to hold model's request keys[0..n) (rank 0, gpu) for ttl_ms
 * (0: the options' speculative TTL; else 1..KVC_INDEX_MAX_SPECULATIVE_TTL_MS), or until the pod's own event
 * for a key arrives. Bridges the time between routing a request and the engine's event. */
KVC_API kvc_status kvc_index_add_speculative(kvc_index* index, const char* model, const uint64_t* keys, size_t n,
                                             const char* pod, uint64_t ttl_ms);
/* llm-d's Add: each of num_entries holders (pods[i] with data-parallel rank ranks[i] in tier tiers[i];
 * ranks NULL: all 0; tiers NULL: all KVC_INDEX_TIER_GPU) holds each of model's request keys, and each
 * holder's pod maps the engine keys to them, so that kvc_index_evict can name a block by engine key. The
 * mapping, by the counts (E = num_engine_keys, R = num_request_keys >= 1):
 *   E == 0        none: request keys only (llm-d's nil engineKeys; engine_keys may be NULL);
 *   E == R        1:1, engine_keys[i] -> request_keys[i];
 *   E == k * R    many:1 (engine blocks k times smaller), engine_keys[i] -> request_keys[i / k];
 *   R == k * E    1:many (engine blocks k times larger), engine_keys[i] -> request_keys[i*k .. i*k+k-1];
 *   otherwise     KVC_ERR_INVALID_ARGUMENT.
 * The mapping is kept per (pod, rank, model), apart from the one the pod's events build, and goes with
 * kvc_index_clear and kvc_index_remove_pod; an engine key added again keeps its earlier request keys
 * too. Names new pods. num_request_keys or num_entries 0, an empty pod name, a rank over 4095 or an
 * unknown tier: KVC_ERR_INVALID_ARGUMENT, nothing changed. Runs on the calling thread (not queued behind
 * submitted batches; kvc_index_flush first to order it after them); each (pod, rank)'s share is applied
 * whole, under that pod's batch lock, so readers may see one pod's share before the next one's. */
KVC_API kvc_status kvc_index_add(kvc_index* index, const char* model, const uint64_t* engine_keys,
                                 size_t num_engine_keys, const uint64_t* request_keys, size_t num_request_keys,
                                 const char* const* pods, const uint32_t* ranks, const kvc_index_tier* tiers,
                                 size_t num_entries);
/* llm-d's Evict: removes the num_entries holders (as in kvc_index_add) from one of model's keys.
 * KVC_INDEX_KEY_REQUEST: key is a request key. KVC_INDEX_KEY_ENGINE: each holder's pod resolves key
 * through kvc_index_add's mapping (the holder leaves every request key it maps to; the mapping goes when
 * no tier of it is left), or else through the mapping its events built, exactly as the engine's own
 * BlockRemoved would. A pod's speculative holder counts as (rank 0, gpu). Unknown pods and holders that
 * hold nothing are ignored (llm-d's Evict of a missing key succeeds); num_entries 0 is
 * KVC_ERR_INVALID_ARGUMENT. Applied like kvc_index_add. */
KVC_API kvc_status kvc_index_evict(kvc_index* index, const char* model, uint64_t key, kvc_index_key_kind kind,
                                   const char* const* pods, const uint32_t* ranks, const kvc_index_tier* tiers,
                                   size_t num_entries);
/* Withdraws a routing decision (the request was cancelled or went elsewhere): pod's speculative holders
 * of model's request keys[0..n) go; its confirmed holders stay. An unknown pod holds nothing: KVC_OK. */
KVC_API kvc_status kvc_index_remove_speculative(kvc_index* index, const char* model, const uint64_t* keys, size_t n,
                                                const char* pod);
/* Removes expired speculative holders now (scoring ignores them from their expiry anyway). */
KVC_API kvc_status kvc_index_expire_speculative(kvc_index* index);

/* What the engine's AllBlocksCleared does: removes every entry of (pod, model, data-parallel rank).
 * KVC_ERR_NOT_FOUND for an unknown pod. Ordered with that pod's batches like one of them. */
KVC_API kvc_status kvc_index_clear(kvc_index* index, const char* pod, const char* model, uint32_t rank);
/* llm-d's Clear(pod), for a pod that is gone: removes all its entries (every model, rank and tier) and
 * its engine-key state, and forgets its name. KVC_ERR_NOT_FOUND for an unknown pod. Must not race with
 * that pod's batches (queued ones are flushed first). */
KVC_API kvc_status kvc_index_remove_pod(kvc_index* index, const char* pod);

/* The counters, values[c] for each kvc_index_counter c < capacity, read together. values NULL with
 * capacity 0 is a size query (*count = KVC_INDEX_COUNTER_COUNT); a smaller capacity gets the first
 * capacity counters (so a caller built against an older header keeps working). count may be NULL. */
KVC_API kvc_status kvc_index_counters(const kvc_index* index, uint64_t* values, size_t capacity, size_t* count);
/* A short lower-case name of a counter ("keys", "batches_applied", ...); "unknown" for other values. */
KVC_API const char* kvc_index_counter_name(kvc_index_counter counter);
/* "gpu", "cpu", "fs", "obj", "other"; "unknown" for other values. */
KVC_API const char* kvc_index_tier_name(kvc_index_tier tier);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_INDEX_H */
