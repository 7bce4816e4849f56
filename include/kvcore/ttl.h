/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/ttl.h - a TTL cache of byte strings keyed by (namespace, key), with negative caching, single-flight
 * loads, a size bound with eviction and statistics that join one Prometheus scrape.
 *
 * Built for what llm-d WVA's ModelMetricsCache does (controllers cache per-model metrics so that ten
 * autoscalers of one model issue one backend query, not ten), without its defects:
 * - Keys are two separate strings, never joined: ("a:b", "c") and ("a", "b:c") are two entries.
 * - A value is a byte string plus a valid flag. A valid entry lives ttl_ms; an invalid one (a failed load,
 *   or kvc_ttl_set with valid = 0) lives negative_ttl_ms and is served as a cached failure: OK with
 *   *valid = 0, which a caller tells apart from a miss (KVC_ERR_NOT_FOUND). So a failing backend is asked
 *   again only after the negative TTL, not on every call.
 * - kvc_ttl_size counts live entries only; expired ones awaiting cleanup are not counted.
 * - kvc_ttl_get_all returns deep copies: later sets, clears and destroys do not change them.
 * - Concurrent misses of one key load it once (single flight): see "Loads" below.
 * - A size bound (max_entries) with eviction through a kvc_eviction_policy.
 *
 * Namespaces and keys are NUL-terminated strings of any other bytes (UTF-8 or not), "" allowed. Values are
 * any bytes; an empty value is allowed. Everything passed in is copied.
 *
 * Expiry: an entry written at time t (by the cache's clock, see kvc_ttl_options_set_clock) is live while
 * now < t + ttl (t + negative_ttl for an invalid entry) and expired from then on. An expired entry is a
 * miss, is never returned, and is removed by the first lookup or write of its key, by kvc_ttl_cleanup or
 * by the background cleanup thread, whichever comes first; each removal of an expired entry counts one
 * expiration. The default clock is CLOCK_MONOTONIC_COARSE (read once per call; resolution of a few ms).
 *
 * Loads (get-or-load, single flight):
 * - Two-phase, no callback (what the bindings use): kvc_ttl_begin_load either returns the cached value or
 *   cached failure, or waits for another thread's load of the same key and returns its result, or hands
 *   the caller a kvc_ttl_ticket meaning "you load it". The caller then loads and calls
 *   kvc_ttl_ticket_finish with the value (valid = 1) or a failure (valid = 0), which stores it like
 *   kvc_ttl_set and wakes every waiter with that result. Destroying a ticket that was not finished counts
 *   as a failed load with an empty value, so waiters never hang on a loader that threw or gave up.
 * - One call, with a C callback: kvc_ttl_get_or_load runs the loader on the calling thread when it gets the
 *   ticket; it is built on the two-phase calls. A loader returning anything but KVC_OK is a failed load.
 * - While a thread holds the unfinished ticket for a key, kvc_ttl_begin_load / kvc_ttl_get_or_load of that
 *   key from the same thread return KVC_ERR_INVALID_STATE instead of waiting for itself forever.
 *   kvc_ttl_get and kvc_ttl_set never wait: during a load, get is a miss (or the old value if it is live).
 *   "Thread" is the OS thread: a runtime that runs many tasks on one OS thread (Go goroutines, Java virtual
 *   threads) keeps the task that holds a ticket on its own thread until it finishes (the Go binding locks
 *   the goroutine to its thread), or another task there would read as that thread.
 *
 * Size bound: max_entries (default 10000; 0 = unbounded) bounds the entries stored, live or expired but not
 * yet removed. The bound is exact: the number of stored entries (hence kvc_ttl_size) never exceeds it, and
 * an entry is evicted only when a new key is written while the bound is reached: one victim per new key,
 * chosen by the eviction policy. Keys are spread over shards (16; one shard when max_entries < 1024) and
 * the policy orders the entries of each shard: the victim is the policy's choice in the new key's shard, or
 * in another shard when that one is empty. A victim that had already expired counts as an expiration,
 * otherwise as an eviction.
 *
 * Statistics (kvc_ttl_snapshot, component "ttl" by default, through kvcore's stats recorder so they join
 * one kvc_exposition scrape): every kvc_ttl_get, kvc_ttl_begin_load and kvc_ttl_get_or_load call counts
 * that succeeds counts exactly one of hit (a live valid entry), negative hit (a live invalid entry) or miss (no live entry; this
 * includes a call that waited for another thread's load, and a call that got a ticket). A size query (buf
 * NULL, capacity 0) is a call like any other. Loads = tickets handed out; load failures = tickets finished
 * with valid = 0 or destroyed unfinished. Insertions = new keys stored; evictions and expirations as above
 * (invalidate and clear count neither). Hit rate = hits / (hits + misses); negative hits are counted apart
 * (kvc_stats_negative_hits). Bytes in use = the namespace + key + value bytes of the stored entries.
 *
 * Thread-safety:
 * - kvc_ttl_options: not thread-safe; build on one thread, then only read it.
 * - kvc_ttl_cache: every call except kvc_ttl_destroy may run concurrently from any number of threads.
 *   kvc_ttl_destroy may run on any thread (e.g. a GC finalizer) but must not race with other calls on the
 *   same cache; it joins the background cleanup thread. Tickets may outlive their cache: finishing or
 *   destroying one afterwards is safe and changes nothing observable.
 * - kvc_ttl_ticket: one thread at a time (it may be handed to another thread); finish at most once, then
 *   destroy. kvc_ttl_ticket_destroy accepts NULL and may run on any thread.
 * - kvc_ttl_entries: immutable; any number of threads may read one. Destroy from any thread.
 * - kvc_ttl_value: valid only inside the loader call that received it, on that thread.
 * - The clock callback is called from any thread that calls into the cache (and the cleanup thread), so
 *   it must be thread-safe.
 */
#ifndef KVCORE_TTL_H
#define KVCORE_TTL_H

#include "kvcore/common.h"
#include "kvcore/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KVC_TTL_DEFAULT_TTL_MS 30000u
#define KVC_TTL_DEFAULT_NEGATIVE_TTL_MS 5000u
#define KVC_TTL_DEFAULT_MAX_ENTRIES 10000u
/* Upper bound of ttl_ms and negative_ttl_ms (about 31 years). */
#define KVC_TTL_MAX_MS 1000000000000ull
/* Upper bound of cleanup_interval_ms (one day). */
#define KVC_TTL_MAX_CLEANUP_INTERVAL_MS 86400000u

typedef struct kvc_ttl_options kvc_ttl_options;
typedef struct kvc_ttl_cache kvc_ttl_cache;
typedef struct kvc_ttl_ticket kvc_ttl_ticket;
typedef struct kvc_ttl_entries kvc_ttl_entries;
typedef struct kvc_ttl_value kvc_ttl_value;

/* Nanoseconds on a monotonic clock of the caller's choice (tests pass a fake one). Must be thread-safe. */
typedef uint64_t (*kvc_ttl_clock)(void* user);

/* ---- options ---------------------------------------------------------------------------------- */

/* Defaults: ttl 30 s, negative ttl 5 s, max entries 10000, LRU, no cleanup thread, coarse monotonic
 * clock, component "ttl". Setters reject a bad value with KVC_ERR_INVALID_ARGUMENT and change nothing. */
KVC_API kvc_status kvc_ttl_options_create(kvc_ttl_options** out);
/* Accepts NULL. */
KVC_API void kvc_ttl_options_destroy(kvc_ttl_options* options);
/* How long a valid entry lives: 1..KVC_TTL_MAX_MS. */
KVC_API kvc_status kvc_ttl_options_set_ttl_ms(kvc_ttl_options* options, uint64_t ttl_ms);
/* How long an invalid entry (a cached failure) lives: 1..KVC_TTL_MAX_MS; shorter than the TTL in most uses. */
KVC_API kvc_status kvc_ttl_options_set_negative_ttl_ms(kvc_ttl_options* options, uint64_t negative_ttl_ms);
/* The most entries stored at once; 0 = unbounded. */
KVC_API kvc_status kvc_ttl_options_set_max_entries(kvc_ttl_options* options, uint64_t max_entries);
/* Which entry a full cache evicts (default KVC_EVICTION_LRU; an unbounded cache evicts nothing). An unknown
 * value is KVC_ERR_INVALID_ARGUMENT. */
KVC_API kvc_status kvc_ttl_options_set_eviction_policy(kvc_ttl_options* options, kvc_eviction_policy policy);
/* A background thread removes expired entries every interval_ms (1..KVC_TTL_MAX_CLEANUP_INTERVAL_MS); 0 = no
 * thread (the default): expired entries are removed by lookups, writes and kvc_ttl_cleanup. */
KVC_API kvc_status kvc_ttl_options_set_cleanup_interval_ms(kvc_ttl_options* options, uint64_t interval_ms);
/* The clock expiry is measured on; clock NULL restores the default. user is passed to every call. */
KVC_API kvc_status kvc_ttl_options_set_clock(kvc_ttl_options* options, kvc_ttl_clock clock, void* user);
/* The `component` label of the cache's statistics: 1..63 characters of [A-Za-z0-9_]. Copied. */
KVC_API kvc_status kvc_ttl_options_set_component(kvc_ttl_options* options, const char* component);

/* ---- cache ------------------------------------------------------------------------------------ */

/* options may be NULL for the defaults; they are copied. */
KVC_API kvc_status kvc_ttl_create(const kvc_ttl_options* options, kvc_ttl_cache** out);
/* Accepts NULL. Joins the cleanup thread; see the thread-safety note. */
KVC_API void kvc_ttl_destroy(kvc_ttl_cache* cache);

/* Stores value (n bytes; value may be NULL only when n == 0) under (ns, key), replacing any entry and
 * restarting its time to live: ttl for valid != 0, negative ttl for valid == 0 (a cached failure). */
KVC_API kvc_status kvc_ttl_set(kvc_ttl_cache* cache, const char* ns, const char* key, const uint8_t* value,
                               size_t n, uint32_t valid);
/*
 * Looks (ns, key) up. Hit: KVC_OK, the value in buf, *valid = 1. Negative hit: KVC_OK, *valid = 0, the
 * failure's bytes (often none) in buf. Miss or expired: KVC_ERR_NOT_FOUND, *len = 0.
 * *len (if not NULL) receives the value's length also when buf is too small; buf NULL with capacity 0 is a
 * size query (KVC_OK). A too-small buf is KVC_ERR_BUFFER_TOO_SMALL, left untouched; *valid is set and the
 * entry stays cached. valid may be NULL.
 */
KVC_API kvc_status kvc_ttl_get(kvc_ttl_cache* cache, const char* ns, const char* key, uint8_t* buf,
                               size_t capacity, size_t* len, uint32_t* valid);
/* kvc_ttl_get with the entry copied into a one-entry kvc_ttl_entries that the library allocates (read it
 * with the kvc_ttl_entries_* getters, free it with kvc_ttl_entries_destroy): for callers that cannot size a
 * buffer beforehand, such as the bindings. One lookup, counted once. Miss: KVC_ERR_NOT_FOUND, *out NULL. */
KVC_API kvc_status kvc_ttl_get_entry(kvc_ttl_cache* cache, const char* ns, const char* key, kvc_ttl_entries** out);
/* Removes (ns, key); KVC_ERR_NOT_FOUND when no live entry was there (an expired one is still removed). */
KVC_API kvc_status kvc_ttl_invalidate(kvc_ttl_cache* cache, const char* ns, const char* key);
/* Removes every entry. Loads in flight continue and store their results when finished. */
KVC_API kvc_status kvc_ttl_clear(kvc_ttl_cache* cache);
/* Live (unexpired) entries now; NULL reads 0. Costs one pass over the entries. */
KVC_API uint64_t kvc_ttl_size(const kvc_ttl_cache* cache);
/* Removes every expired entry; *removed (if not NULL) receives how many. */
KVC_API kvc_status kvc_ttl_cleanup(kvc_ttl_cache* cache, uint64_t* removed);
/* A deep copy of every live entry, sorted by (namespace, key); free it with kvc_ttl_entries_destroy. */
KVC_API kvc_status kvc_ttl_get_all(kvc_ttl_cache* cache, kvc_ttl_entries** out);
/* The cache's statistics (see above); free with kvc_stats_destroy. */
KVC_API kvc_status kvc_ttl_snapshot(const kvc_ttl_cache* cache, kvc_stats** out);

/* ---- loads: two-phase ------------------------------------------------------------------------- */

/*
 * Get-or-load without a callback. *ticket is set to NULL unless the caller must load:
 * - a live entry: as kvc_ttl_get (hit or negative hit), *ticket = NULL;
 * - another thread is loading the key: waits for it and returns its result like a hit (*valid = its
 *   valid flag), *ticket = NULL;
 * - otherwise (miss): KVC_OK, *len = 0, *valid = 0 and *ticket = a new ticket: the caller loads the value
 *   and calls kvc_ttl_ticket_finish, then kvc_ttl_ticket_destroy. Other threads' calls for the key wait.
 * Buffers as kvc_ttl_get (KVC_ERR_BUFFER_TOO_SMALL leaves the value cached: read it with kvc_ttl_get).
 * ticket must not be NULL. KVC_ERR_INVALID_STATE when this thread holds the unfinished ticket of the key.
 */
KVC_API kvc_status kvc_ttl_begin_load(kvc_ttl_cache* cache, const char* ns, const char* key, uint8_t* buf,
                                      size_t capacity, size_t* len, uint32_t* valid, kvc_ttl_ticket** ticket);
/* kvc_ttl_begin_load with the result (a live entry, or another thread's load) copied into a one-entry
 * kvc_ttl_entries, *ticket NULL; or, when the caller must load, *out NULL and *ticket set. A result handed
 * over by another thread's load carries the times of an entry written at this call. */
KVC_API kvc_status kvc_ttl_begin_load_entry(kvc_ttl_cache* cache, const char* ns, const char* key,
                                            kvc_ttl_entries** out, kvc_ttl_ticket** ticket);
/* Ends the load: stores value like kvc_ttl_set(valid) and hands it to every waiter. valid == 0 is a failed
 * load (cached for the negative ttl; value may carry an error text or be empty). A second finish is
 * KVC_ERR_INVALID_STATE and changes nothing. */
KVC_API kvc_status kvc_ttl_ticket_finish(kvc_ttl_ticket* ticket, const uint8_t* value, size_t n, uint32_t valid);
/* Accepts NULL. An unfinished ticket is first finished as a failed load with an empty value. */
KVC_API void kvc_ttl_ticket_destroy(kvc_ttl_ticket* ticket);

/* ---- loads: one call with a C loader ---------------------------------------------------------- */

/* Called on the calling thread when kvc_ttl_get_or_load must load (ns, key). It sets the value with
 * kvc_ttl_value_set (not calling it = empty value) and returns KVC_OK; any other status is a failed load,
 * whose value (if set) is cached as the failure's bytes. It must not call the cache for the same key, and
 * must not throw or longjmp out (a C++ loader catches and returns a status). */
typedef kvc_status (*kvc_ttl_loader)(void* user, const char* ns, const char* key, kvc_ttl_value* out);
/* The loader's result: a copy of n bytes (value may be NULL only when n == 0); a second call replaces it. */
KVC_API kvc_status kvc_ttl_value_set(kvc_ttl_value* out, const uint8_t* value, size_t n);
/* kvc_ttl_begin_load, then, when it hands out a ticket, the loader and kvc_ttl_ticket_finish. Returns the
 * value as kvc_ttl_get: KVC_OK with *valid = 1 for a value, KVC_OK with *valid = 0 for a failure (cached,
 * fresh from this loader, or another thread's). Never KVC_ERR_NOT_FOUND. */
KVC_API kvc_status kvc_ttl_get_or_load(kvc_ttl_cache* cache, const char* ns, const char* key, kvc_ttl_loader loader,
                                       void* user, uint8_t* buf, size_t capacity, size_t* len, uint32_t* valid);

/* ---- entries (kvc_ttl_get_all) ------------------------------------------------------------------ */

/* Accepts NULL. */
KVC_API void kvc_ttl_entries_destroy(kvc_ttl_entries* entries);
/* How many entries the copy holds; NULL reads 0. */
KVC_API size_t kvc_ttl_entries_count(const kvc_ttl_entries* entries);
/* Entry index's namespace / key as a NUL-terminated string in buf; *len (if not NULL) receives the length
 * without the NUL, also when buf is too small; buf NULL with capacity 0 is a size query. index >= count is
 * KVC_ERR_OUT_OF_RANGE. */
KVC_API kvc_status kvc_ttl_entries_namespace(const kvc_ttl_entries* entries, size_t index, char* buf,
                                             size_t capacity, size_t* len);
KVC_API kvc_status kvc_ttl_entries_key(const kvc_ttl_entries* entries, size_t index, char* buf, size_t capacity,
                                       size_t* len);
/* Entry index's value bytes (no NUL added) and valid flag; buffers as kvc_ttl_get. */
KVC_API kvc_status kvc_ttl_entries_value(const kvc_ttl_entries* entries, size_t index, uint8_t* buf,
                                         size_t capacity, size_t* len, uint32_t* valid);
/* When the copy was taken: ms since entry index was written, and ms left until it expires (>= 1). Either
 * pointer may be NULL. */
KVC_API kvc_status kvc_ttl_entries_times(const kvc_ttl_entries* entries, size_t index, uint64_t* age_ms,
                                         uint64_t* expires_in_ms);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_TTL_H */
