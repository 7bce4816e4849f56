/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/stats.h - cache statistics: a recorder that any cache reports through, and immutable snapshots
 * with hit rates (cumulative, last N accesses, last T seconds, per layer) exported as Prometheus text or JSON.
 *
 * A recorder is usable by caches that are not built on kvcore: record hits, misses, insertions, evictions,
 * memory and token counts from any thread, take a snapshot, export it.
 *
 * Hit rate = hits / (hits + misses). With no accesses in the counted range the hit rate is 0.0; the
 * matching access count (kvc_stats_lookups, kvc_stats_window_lookups, ...) is then 0, which is how a
 * reader tells "no traffic" from "all misses".
 *
 * Counts saturate: a counter (hits, misses, insertions, evictions, tokens, memory-pressure events, per
 * layer) that would pass UINT64_MAX stays at UINT64_MAX, in the recorder and in the sums of a snapshot;
 * it never wraps to a small number. Bytes in use are a gauge and reject a change past either bound.
 *
 * Thread-safety:
 * - kvc_recorder_options: not thread-safe; build one on one thread, then it is only read.
 * - kvc_recorder: all kvc_recorder_record_* / add_bytes / set_bytes / snapshot calls may run concurrently
 *   from any number of threads. Each thread writes its own cache-line-aligned shard, so two threads
 *   recording never share a cache line. kvc_recorder_destroy must not race with other calls on the same
 *   recorder (it may run on any thread, e.g. a GC finalizer).
 * - kvc_stats: immutable; any number of threads may read one snapshot. Destroy from any thread.
 * - kvc_exposition: not thread-safe; one thread at a time (it holds copies, not references, of snapshots).
 * - A snapshot taken while other threads record is exact per counter at some instant of the call; counters
 *   are not read atomically as a group.
 */
#ifndef KVCORE_STATS_H
#define KVCORE_STATS_H

#include "kvcore/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds accepted by the option setters. */
#define KVC_STATS_DEFAULT_WINDOW_ACCESSES 1000u
#define KVC_STATS_MAX_WINDOW_ACCESSES (1u << 20)
#define KVC_STATS_DEFAULT_WINDOW_SECONDS 60u
#define KVC_STATS_MAX_WINDOW_SECONDS 86400u
#define KVC_STATS_MAX_LAYERS 4096u
#define KVC_STATS_MAX_COMPONENT_NAME 63u

/* ---- options ---------------------------------------------------------------------------------- */

typedef struct kvc_recorder_options kvc_recorder_options;

/* Defaults: component "cache", window of 1000 accesses, window of 60 seconds, no per-layer counters. */
KVC_API kvc_status kvc_recorder_options_create(kvc_recorder_options** out);
KVC_API void kvc_recorder_options_destroy(kvc_recorder_options* options);
/* The value of the `component` label in exports: 1..63 characters of [A-Za-z0-9_]. Copied. */
KVC_API kvc_status kvc_recorder_options_set_component(kvc_recorder_options* options, const char* component);
/* How many of the most recent accesses the count window holds: 1..KVC_STATS_MAX_WINDOW_ACCESSES. */
KVC_API kvc_status kvc_recorder_options_set_window_accesses(kvc_recorder_options* options, uint32_t accesses);
/* How many seconds the time window spans: 1..KVC_STATS_MAX_WINDOW_SECONDS; resolution is 1/60 of it. */
KVC_API kvc_status kvc_recorder_options_set_window_seconds(kvc_recorder_options* options, uint32_t seconds);
/* Per-layer counters for layers 0..layers-1: 0..KVC_STATS_MAX_LAYERS (0 turns them off). */
KVC_API kvc_status kvc_recorder_options_set_layers(kvc_recorder_options* options, uint32_t layers);

/* ---- recorder --------------------------------------------------------------------------------- */

typedef struct kvc_recorder kvc_recorder;
typedef struct kvc_stats kvc_stats; /* a snapshot */

/* options may be NULL for the defaults; they are copied, so the caller may destroy them at once. */
KVC_API kvc_status kvc_recorder_create(const kvc_recorder_options* options, kvc_recorder** out);
/* Accepts NULL. */
KVC_API void kvc_recorder_destroy(kvc_recorder* recorder);

/* One lookup: hit != 0 counts a hit, hit == 0 a miss. Feeds the cumulative and both windowed rates. */
KVC_API kvc_status kvc_recorder_record_access(kvc_recorder* recorder, uint32_t hit);
/* n lookups at once, in order: outcomes[i] != 0 is a hit. Counts exactly like n calls of
 * kvc_recorder_record_access, at a fraction of the cost (one call per prefix lookup instead of one per
 * block; 0.2 ns per outcome at 1,024 per call); the time window dates the whole batch to the call.
 * outcomes may be NULL only when n == 0. */
KVC_API kvc_status kvc_recorder_record_accesses(kvc_recorder* recorder, const uint8_t* outcomes, size_t n);
/* count (1..64) lookups packed in a word: bit i of `hits` is lookup i's outcome (1 = hit), oldest at bit 0;
 * bits at count and above are ignored. The cheapest way to record: the caller sets one bit per lookup
 * (hits |= (uint64_t)hit << n++) and calls once per 64. Counts exactly like count calls of
 * kvc_recorder_record_access. count 0 or above 64 is KVC_ERR_INVALID_ARGUMENT. */
KVC_API kvc_status kvc_recorder_record_access_bits(kvc_recorder* recorder, uint64_t hits, uint32_t count);
/* A prefix lookup of hits + misses blocks whose first `hits` hit and the rest missed: the outcome of
 * every lookup of chained block hashes (a prompt's cached prefix). Counts exactly like hits calls of
 * kvc_recorder_record_access(recorder, 1) then misses calls with 0, at the cost of one call whatever
 * the length; the time window dates it to the call. hits + misses above UINT64_MAX is
 * KVC_ERR_INVALID_ARGUMENT; 0 + 0 records nothing. */
KVC_API kvc_status kvc_recorder_record_prefix_lookup(kvc_recorder* recorder, uint64_t hits, uint64_t misses);
/* One lookup in one layer: counted for that layer and, like kvc_recorder_record_access, in the totals. */
KVC_API kvc_status kvc_recorder_record_layer_access(kvc_recorder* recorder, uint32_t layer, uint32_t hit);
/* Token-level lookup result: `queried` prompt tokens were looked up, `hit` of them were found (hit <= queried). */
KVC_API kvc_status kvc_recorder_record_tokens(kvc_recorder* recorder, uint64_t queried, uint64_t hit);
/* Tokens whose KV the caller actually reused instead of recomputing (may be fewer than found). */
KVC_API kvc_status kvc_recorder_record_reused_tokens(kvc_recorder* recorder, uint64_t tokens);
KVC_API kvc_status kvc_recorder_record_insertions(kvc_recorder* recorder, uint64_t count);
KVC_API kvc_status kvc_recorder_record_evictions(kvc_recorder* recorder, uint64_t count);
/* One memory-pressure event: the component refused a request because memory was short, i.e. an
 * allocation or insertion that could not fit even after evicting what it may evict (a pool's
 * KVC_ERR_CAPACITY, a store whose sessions are all held). Evictions are not pressure events: they are
 * counted by kvc_recorder_record_evictions. Every kvcore component follows this definition, so
 * kvcore_memory_pressure_events_total means the same in every scrape. */
KVC_API kvc_status kvc_recorder_record_memory_pressure(kvc_recorder* recorder);
/* Bytes in use change by delta; the peak follows. Going below zero or above UINT64_MAX is
 * KVC_ERR_INVALID_ARGUMENT and changes nothing. */
KVC_API kvc_status kvc_recorder_add_bytes(kvc_recorder* recorder, int64_t delta);
/* Bytes in use become `bytes`; the peak follows. */
KVC_API kvc_status kvc_recorder_set_bytes(kvc_recorder* recorder, uint64_t bytes);
/* An immutable snapshot of everything recorded so far; free it with kvc_stats_destroy. */
KVC_API kvc_status kvc_recorder_snapshot(const kvc_recorder* recorder, kvc_stats** out);

/* ---- snapshot --------------------------------------------------------------------------------- */

/* Getters never fail: a NULL snapshot reads as 0 (and "" for strings). */
KVC_API void kvc_stats_destroy(kvc_stats* stats);
KVC_API const char* kvc_stats_component(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_hits(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_misses(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_lookups(const kvc_stats* stats); /* hits + misses */
KVC_API double kvc_stats_hit_rate(const kvc_stats* stats);   /* cumulative */
KVC_API uint64_t kvc_stats_insertions(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_evictions(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_memory_pressure_events(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_bytes_in_use(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_peak_bytes(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_tokens_queried(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_tokens_hit(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_tokens_reused(const kvc_stats* stats);
KVC_API double kvc_stats_token_hit_rate(const kvc_stats* stats); /* tokens_hit / tokens_queried */
/* Counts of caches that load values (the TTL cache; 0 for components that do not, whose Prometheus text
 * leaves these families out; JSON always has them). A negative hit found a cached failure: it is neither
 * a hit nor a miss, so the hit rate leaves it out. Loads are backend loads started, load failures those
 * that failed, expirations the entries removed because their time ran out. */
KVC_API uint64_t kvc_stats_negative_hits(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_loads(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_load_failures(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_expirations(const kvc_stats* stats);

/* The count window: the last window_size accesses. See the thread-safety note above for several threads. */
KVC_API uint32_t kvc_stats_window_size(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_window_lookups(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_window_hits(const kvc_stats* stats);
KVC_API double kvc_stats_window_hit_rate(const kvc_stats* stats);
/* The time window: accesses in the last window_seconds (at a resolution of window_seconds / 60). Each
 * recording thread reads the clock once per 256 of its accesses (a batch call counts once), and every
 * snapshot marks the time as well. So the window is exact to that resolution at any access rate when
 * snapshots come at least once per window (a Prometheus scrape); without them, up to 255 accesses per
 * recording thread may be dated to an earlier time. */
KVC_API uint32_t kvc_stats_window_seconds(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_time_window_lookups(const kvc_stats* stats);
KVC_API uint64_t kvc_stats_time_window_hits(const kvc_stats* stats);
KVC_API double kvc_stats_time_window_hit_rate(const kvc_stats* stats);

/* Per layer; layer >= kvc_stats_layers() is KVC_ERR_OUT_OF_RANGE. */
KVC_API uint32_t kvc_stats_layers(const kvc_stats* stats);
KVC_API kvc_status kvc_stats_layer_counts(const kvc_stats* stats, uint32_t layer, uint64_t* hits, uint64_t* misses);
KVC_API kvc_status kvc_stats_layer_hit_rate(const kvc_stats* stats, uint32_t layer, double* out);

/* A component's own metrics (the scheduler's average batch size, queue depth, ...; none for the caches), by
 * name: kvc_stats_metric gives the value, KVC_ERR_NOT_FOUND for a name the snapshot lacks. count and name
 * (i < count; "" otherwise, and for NULL) list them. Exported as kvcore_<name>{component=...} and in JSON
 * under "metrics". */
KVC_API uint32_t kvc_stats_metric_count(const kvc_stats* stats);
KVC_API const char* kvc_stats_metric_name(const kvc_stats* stats, uint32_t i);
KVC_API kvc_status kvc_stats_metric(const kvc_stats* stats, const char* name, double* value);

/*
 * Exports write a NUL-terminated text into buf (capacity bytes). *length (if not NULL) receives the text's
 * length without the NUL, also when the buffer is too small: call with buf = NULL, capacity = 0 to size it.
 * A too-small buffer gives KVC_ERR_BUFFER_TOO_SMALL and is left untouched.
 */
/* Prometheus text exposition format 0.0.4: kvcore_* metrics with a component label (and layer labels). */
KVC_API kvc_status kvc_stats_to_prometheus(const kvc_stats* stats, char* buf, size_t capacity, size_t* length);
/* One JSON object with every counter and rate. */
KVC_API kvc_status kvc_stats_to_json(const kvc_stats* stats, char* buf, size_t capacity, size_t* length);

/* ---- one exposition for several components ------------------------------------------------------ */

/* Several snapshots (a pool's, a session store's, ...) as one Prometheus text, for one scrape endpoint:
 * each metric family's # HELP and # TYPE once, then every snapshot's samples. Joining the texts of
 * kvc_stats_to_prometheus instead would repeat them, which Prometheus rejects. */
typedef struct kvc_exposition kvc_exposition;
KVC_API kvc_status kvc_exposition_create(kvc_exposition** out);
/* Accepts NULL. */
KVC_API void kvc_exposition_destroy(kvc_exposition* exposition);
/* Adds a copy of the snapshot (the caller may destroy it at once). A snapshot whose component is already
 * in the exposition is KVC_ERR_INVALID_ARGUMENT: the two would write the same series. */
KVC_API kvc_status kvc_exposition_add(kvc_exposition* exposition, const kvc_stats* stats);
/* Snapshots in the order they were added; written like the exports above. */
KVC_API kvc_status kvc_exposition_to_prometheus(const kvc_exposition* exposition, char* buf, size_t capacity,
                                                size_t* length);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_STATS_H */
