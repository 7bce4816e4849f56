/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/event_publisher.h - publishes a kvcore engine's KV events over ZeroMQ exactly as a vLLM engine
 * does, so any router that reads vLLM's events (kvcore's own kvc_index_subscriber, llm-d's) indexes a
 * kvcore pool's blocks.
 *
 * Wire (vLLM's ZmqEventPublisher): a PUB socket sends each batch as 3 frames [topic, seq (8 bytes
 * big-endian, 0, 1, 2, ...), msgpack EventBatch]; a ROUTER answers replay requests [seq (8 bytes)] with
 * every kept batch from that seq as [seq, payload] frames, then [seq -1, ""] to end. The last
 * buffer_steps batches are kept for replay.
 *
 * Topic: llm-d's form is kv@<pod>@<model> (kvc_event_publisher_topic builds it): a kvcore router and
 * llm-d take the pod (up to the second '@') and the model (the rest) from it. vLLM's default is "".
 *
 * Typical engine loop: after each scheduler step, kvc_event_publisher_publish_pool(publisher, pool, ...)
 * drains the pool's pending events (kvc_pool_options_set_events) and sends them as one batch.
 *
 * Without ZeroMQ in the build, kvc_event_publisher_create returns KVC_ERR_UNSUPPORTED (the options and
 * kvc_event_publisher_topic work either way).
 *
 * Thread-safety:
 * - kvc_event_publisher_options: not thread-safe; build on one thread, then only read it.
 * - kvc_event_publisher: _publish, _publish_pool, the endpoint getters and _counters from any thread
 *   (publishes are serialized, so seqs follow the order of the calls); _publish_pool also uses the pool,
 *   which is not thread-safe: call it on the pool's thread. _destroy when no other call is running.
 *   Replay requests are answered on the publisher's own thread, started by _create, joined by _destroy.
 */
#ifndef KVCORE_EVENT_PUBLISHER_H
#define KVCORE_EVENT_PUBLISHER_H

#include "kvcore/common.h"
#include "kvcore/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_event_publisher_options kvc_event_publisher_options;
typedef struct kvc_event_publisher kvc_event_publisher;

/* Slots of kvc_event_publisher_counters, all counts since creation. Values never change; new ones are
 * appended before KVC_EVENT_PUBLISHER_COUNTER_COUNT. */
typedef enum kvc_event_publisher_counter {
    KVC_EVENT_PUBLISHER_COUNTER_PUBLISHED = 0,            /* batches sent (= the next seq) */
    KVC_EVENT_PUBLISHER_COUNTER_REPLAY_REQUESTS = 1,      /* well-formed replay requests answered */
    KVC_EVENT_PUBLISHER_COUNTER_REPLAYED_BATCHES = 2,     /* batches sent in replay answers */
    KVC_EVENT_PUBLISHER_COUNTER_BAD_REPLAY_REQUESTS = 3,  /* requests that are not one 8-byte seq */
    KVC_EVENT_PUBLISHER_COUNTER_REPLAYS_ABANDONED = 4,    /* the client vanished or stopped reading */
    KVC_EVENT_PUBLISHER_COUNTER_COUNT = 5
} kvc_event_publisher_counter;

/* ---- options ----------------------------------------------------------------------------------- */

/* Defaults as vLLM's: endpoint "tcp://" "*:5557" (every interface, port 5557; written in two pieces here
 * only because C comments cannot hold a slash before a star) bound, no replay endpoint, topic "",
 * buffer_steps 10000. */
KVC_API kvc_status kvc_event_publisher_options_create(kvc_event_publisher_options** out);
/* Accepts NULL. */
KVC_API void kvc_event_publisher_options_destroy(kvc_event_publisher_options* options);
/* Where the PUB socket goes: connect 0 binds it ("tcp://0.0.0.0:5557", "tcp://127.0.0.1:0" for a free port:
 * see kvc_event_publisher_endpoint); connect 1 connects it to a router that binds (the subscriber's bind
 * mode). Not "". Copied. */
KVC_API kvc_status kvc_event_publisher_options_set_endpoint(kvc_event_publisher_options* options,
                                                            const char* endpoint, uint32_t connect);
/* Where the replay ROUTER binds ("tcp://0.0.0.0:5558", "tcp://127.0.0.1:0"); "" (the default): no replay. */
KVC_API kvc_status kvc_event_publisher_options_set_replay_endpoint(kvc_event_publisher_options* options,
                                                                   const char* endpoint);
/* The first frame of every message: kv@<pod>@<model> for llm-d and kvcore routers. Copied. */
KVC_API kvc_status kvc_event_publisher_options_set_topic(kvc_event_publisher_options* options, const char* topic);
/* Batches kept for replay: 1..10000000. */
KVC_API kvc_status kvc_event_publisher_options_set_buffer_steps(kvc_event_publisher_options* options,
                                                                uint32_t steps);

/* llm-d's topic "kv@<pod>@<model>", NUL-terminated, into buf; *length = its length without the NUL. buf
 * NULL with capacity 0 is a size query; KVC_ERR_BUFFER_TOO_SMALL when capacity < length + 1.
 * KVC_ERR_INVALID_ARGUMENT when pod is "" or contains '@' (the model may contain '@'). Thread-safe. */
KVC_API kvc_status kvc_event_publisher_topic(const char* pod, const char* model, char* buf, size_t capacity,
                                             size_t* length);

/* ---- the publisher ----------------------------------------------------------------------------- */

/* Binds (or connects) the PUB socket and binds the replay ROUTER before it returns; options are copied.
 * KVC_ERR_INVALID_ARGUMENT naming an endpoint ZeroMQ refuses (a port in use, a bad address);
 * KVC_ERR_UNSUPPORTED in a build without ZeroMQ. */
KVC_API kvc_status kvc_event_publisher_create(const kvc_event_publisher_options* options,
                                              kvc_event_publisher** out);
/* Accepts NULL. Waits up to 250 ms for queued messages to leave, stops answering replays. */
KVC_API void kvc_event_publisher_destroy(kvc_event_publisher* publisher);
/* Sends one msgpack EventBatch (payload[0..n), not checked) as the next seq, written to *seq (may be
 * NULL), and keeps it for replay. Never blocks on a slow subscriber: its gap is for replay to fill. */
KVC_API kvc_status kvc_event_publisher_publish(kvc_event_publisher* publisher, const uint8_t* payload, size_t n,
                                               uint64_t* seq);
/* Drains the pool's pending events (kvc_pool_drain_events with encoding) and publishes them as one
 * batch. *events (may be NULL) = the number of events published; with none pending it is 0, nothing is
 * sent and no seq is used, and *seq (may be NULL) is left as it was; otherwise *seq = the batch's seq.
 * The events stay pending when publishing fails. KVC_ERR_INVALID_STATE when the pool has events off. */
KVC_API kvc_status kvc_event_publisher_publish_pool(kvc_event_publisher* publisher, kvc_pool* pool,
                                                    kvc_event_encoding encoding, uint64_t* seq, uint32_t* events);
/* The PUB endpoint as bound (a port 0 resolved, e.g. "tcp://127.0.0.1:40123"; a connect endpoint as
 * given), NUL-terminated, into buf; *length = its length without the NUL. buf NULL with capacity 0 is a
 * size query; KVC_ERR_BUFFER_TOO_SMALL when capacity < length + 1. */
KVC_API kvc_status kvc_event_publisher_endpoint(const kvc_event_publisher* publisher, char* buf, size_t capacity,
                                                size_t* length);
/* The replay ROUTER's endpoint as bound, the same way; "" without replay. */
KVC_API kvc_status kvc_event_publisher_replay_endpoint(const kvc_event_publisher* publisher, char* buf,
                                                       size_t capacity, size_t* length);
/* The counters, values[c] for each kvc_event_publisher_counter c < capacity. values NULL with capacity 0
 * is a size query (*count = KVC_EVENT_PUBLISHER_COUNTER_COUNT); a smaller capacity gets the first
 * capacity counters. count may be NULL. */
KVC_API kvc_status kvc_event_publisher_counters(const kvc_event_publisher* publisher, uint64_t* values,
                                                size_t capacity, size_t* count);
/* A short lower-case name of a counter ("published", "replay_requests", ...); "unknown" for other values. */
KVC_API const char* kvc_event_publisher_counter_name(kvc_event_publisher_counter counter);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_EVENT_PUBLISHER_H */
