/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/index_subscriber.h - feeds a kvc_index from vLLM engines' KV events over ZeroMQ, as a router
 * does: the subscriber receives each engine's batches, decodes them and applies them to the index (on
 * the index's ingest threads when it has them, kvc_index_options_set_ingest_threads).
 *
 * Wire: vLLM's KV events, exactly 3 frames [topic, seq (8 bytes big-endian), msgpack EventBatch]; the
 * topic is kv@<pod>@<model> (llm-d's form; the pod is up to the second '@', the model the rest), which
 * names the pod and model each batch is applied for. Other topics are dropped and counted.
 *
 * Modes, usable together:
 *   bind:    kvc_index_subscriber_options_set_bind: the subscriber binds a SUB socket and the engines
 *            connect their PUB to it (vLLM connects when its endpoint names a host). Replay endpoints are
 *            given per pod (kvc_index_subscriber_options_set_pod_replay), since a bound socket cannot
 *            tell who is connected.
 *   connect: kvc_index_subscriber_options_add_engine, once per engine: one SUB socket connects to the
 *            engine's PUB, and to its replay ROUTER when one is named.
 * Per stream (an engine's topic on a socket) seqs must run 0, 1, 2, ...: a gap is filled by replay
 * (DEALER -> the engine's ROUTER, ending at seq -1) or, without one, counted lost; a seq that goes back
 * means the engine restarted, and the first batch after it is applied with an AllBlocksCleared for its
 * (pod, model, data-parallel rank) in front: the old process's cache is gone and no BlockRemoved will
 * ever say so. A batch that fails to decode or apply is counted and nothing of it is applied.
 *
 * Without ZeroMQ in the build, kvc_index_subscriber_create returns KVC_ERR_UNSUPPORTED (the options
 * work either way).
 *
 * Thread-safety:
 * - kvc_index_subscriber_options: not thread-safe; build on one thread, then only read it.
 * - kvc_index_subscriber: _start, _stop and _destroy from one thread at a time (the owner); _counters
 *   and _bound_endpoint from any thread, also while it runs. A subscriber keeps its index alive:
 *   kvc_index_destroy while subscribers of it live frees the index when the last of them is destroyed
 *   (so garbage-collected bindings may finalize them in any order). Calls on the index itself
 *   (scoring, lookups) run alongside the subscriber.
 */
#ifndef KVCORE_INDEX_SUBSCRIBER_H
#define KVCORE_INDEX_SUBSCRIBER_H

#include "kvcore/common.h"
#include "kvcore/index.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_index_subscriber_options kvc_index_subscriber_options;
typedef struct kvc_index_subscriber kvc_index_subscriber;

/* Slots of kvc_index_subscriber_counters, all counts since creation. Values never change; new ones are
 * appended before KVC_INDEX_SUBSCRIBER_COUNTER_COUNT. */
typedef enum kvc_index_subscriber_counter {
    KVC_INDEX_SUBSCRIBER_COUNTER_MESSAGES = 0,          /* well-formed live messages received */
    KVC_INDEX_SUBSCRIBER_COUNTER_DELIVERED = 1,         /* batches passed on (live and replayed) */
    KVC_INDEX_SUBSCRIBER_COUNTER_MALFORMED = 2,         /* not 3 frames, a seq not 8 bytes, bad replay frames */
    KVC_INDEX_SUBSCRIBER_COUNTER_BAD_TOPICS = 3,        /* 3 frames but not kv@<pod>@<model> */
    KVC_INDEX_SUBSCRIBER_COUNTER_GAPS = 4,              /* seq gaps seen */
    KVC_INDEX_SUBSCRIBER_COUNTER_REPLAYS_REQUESTED = 5,
    KVC_INDEX_SUBSCRIBER_COUNTER_REPLAYED_BATCHES = 6,  /* batches passed on from replay answers */
    KVC_INDEX_SUBSCRIBER_COUNTER_DUPLICATES = 7,        /* batches already passed on, skipped */
    KVC_INDEX_SUBSCRIBER_COUNTER_REPLAYS_FAILED = 8,    /* timed out or abandoned at a bound */
    KVC_INDEX_SUBSCRIBER_COUNTER_LOST_BATCHES = 9,      /* seqs never received (no replay, or incomplete) */
    KVC_INDEX_SUBSCRIBER_COUNTER_RESTARTS = 10,         /* engine restarts seen (seq went back) */
    KVC_INDEX_SUBSCRIBER_COUNTER_STREAMS_REFUSED = 11,  /* batches of topics past the stream limit */
    KVC_INDEX_SUBSCRIBER_COUNTER_BATCHES_APPLIED = 12,  /* applied, or queued on the ingest threads */
    KVC_INDEX_SUBSCRIBER_COUNTER_DECODE_FAILURES = 13,  /* payloads that are not a valid EventBatch */
    KVC_INDEX_SUBSCRIBER_COUNTER_APPLY_FAILURES = 14,   /* batches the index refused (names past its limits) */
    KVC_INDEX_SUBSCRIBER_COUNTER_RESTART_CLEARS = 15,   /* restarts whose old entries were cleared */
    KVC_INDEX_SUBSCRIBER_COUNTER_COUNT = 16
} kvc_index_subscriber_counter;

/* ---- options ----------------------------------------------------------------------------------- */

/* Defaults: no endpoint (one is needed: a bind endpoint or an engine), replay timeout 2000 ms. */
KVC_API kvc_status kvc_index_subscriber_options_create(kvc_index_subscriber_options** out);
/* Accepts NULL. */
KVC_API void kvc_index_subscriber_options_destroy(kvc_index_subscriber_options* options);
/* Bind mode: a ZeroMQ endpoint to bind, e.g. "tcp://0.0.0.0:5557" or "tcp://127.0.0.1:0" (a free port:
 * see kvc_index_subscriber_bound_endpoint); "" turns bind mode off. Copied. */
KVC_API kvc_status kvc_index_subscriber_options_set_bind(kvc_index_subscriber_options* options, const char* endpoint);
/* Connect mode: one engine's PUB endpoint, and its replay ROUTER (NULL or "": no replay). Copied. At most
 * 4096 engines. */
KVC_API kvc_status kvc_index_subscriber_options_add_engine(kvc_index_subscriber_options* options,
                                                           const char* endpoint, const char* replay_endpoint);
/* Bind mode: the replay ROUTER of the engine publishing as pod (replaces an earlier one; "" removes it). */
KVC_API kvc_status kvc_index_subscriber_options_set_pod_replay(kvc_index_subscriber_options* options,
                                                               const char* pod, const char* replay_endpoint);
/* How long a replay may stay silent before it is abandoned: 1..600000 ms. */
KVC_API kvc_status kvc_index_subscriber_options_set_replay_timeout_ms(kvc_index_subscriber_options* options,
                                                                      uint32_t timeout_ms);

/* ---- the subscriber ---------------------------------------------------------------------------- */

/* A subscriber feeding index (kept alive until the subscriber is destroyed); options are copied. Opens
 * nothing until kvc_index_subscriber_start. KVC_ERR_INVALID_ARGUMENT without any endpoint;
 * KVC_ERR_UNSUPPORTED in a build without ZeroMQ. */
KVC_API kvc_status kvc_index_subscriber_create(kvc_index* index, const kvc_index_subscriber_options* options,
                                               kvc_index_subscriber** out);
/* Accepts NULL. Stops it first. */
KVC_API void kvc_index_subscriber_destroy(kvc_index_subscriber* subscriber);
/* Opens the sockets (binding before it returns) and starts receiving on the subscriber's own thread.
 * KVC_ERR_INVALID_ARGUMENT naming an endpoint ZeroMQ refuses (a port in use, a bad address);
 * KVC_ERR_INVALID_STATE when already running. */
KVC_API kvc_status kvc_index_subscriber_start(kvc_index_subscriber* subscriber);
/* Stops receiving (within about 20 ms plus the batch being applied) and closes the sockets; a stopped
 * subscriber may be started again and goes on where each stream stopped. Stopping a stopped one is OK.
 * Batches already queued on the index's ingest threads still apply (kvc_index_flush waits for them). */
KVC_API kvc_status kvc_index_subscriber_stop(kvc_index_subscriber* subscriber);
/* The bind endpoint as bound (a port 0 resolved, e.g. "tcp://127.0.0.1:40123"), NUL-terminated, into buf;
 * *length = its length without the NUL; "" before start or without bind mode. buf NULL with capacity 0
 * is a size query; KVC_ERR_BUFFER_TOO_SMALL when capacity < length + 1. */
KVC_API kvc_status kvc_index_subscriber_bound_endpoint(const kvc_index_subscriber* subscriber, char* buf,
                                                       size_t capacity, size_t* length);
/* The counters, values[c] for each kvc_index_subscriber_counter c < capacity. values NULL with capacity 0
 * is a size query (*count = KVC_INDEX_SUBSCRIBER_COUNTER_COUNT); a smaller capacity gets the first
 * capacity counters. count may be NULL. */
KVC_API kvc_status kvc_index_subscriber_counters(const kvc_index_subscriber* subscriber, uint64_t* values,
                                                 size_t capacity, size_t* count);
/* A short lower-case name of a counter ("messages", "gaps", ...); "unknown" for other values. */
KVC_API const char* kvc_index_subscriber_counter_name(kvc_index_subscriber_counter counter);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_INDEX_SUBSCRIBER_H */
