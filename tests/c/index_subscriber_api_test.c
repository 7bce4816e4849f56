/* SPDX-License-Identifier: Apache-2.0 */
/* The index subscriber's C API (kvcore/index_subscriber.h) from plain C99: argument checks, options,
 * size queries, and a kvcore pool's KV events sent by a plain libzmq PUB (the engine's side, written here
 * with ZeroMQ's own C API) to the subscriber, which must apply them so the index scores the pool's
 * prompt. Every wait has a deadline. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "kvcore/kvcore.h"

#include "check.h"
#include "wait.h"

#define BLOCK 16u
#define PROMPT 80u /* 5 full blocks */
#define DEADLINE_MS 15000

static void test_arguments(void) {
    kvc_index_subscriber_options* o = NULL;
    kvc_index_subscriber* s = (kvc_index_subscriber*)&o; /* must be set to NULL on failure */
    kvc_index* index = NULL;
    size_t count = 0;
    uint64_t values[3];
    int c;

    CHECK_STATUS(kvc_index_subscriber_options_create(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_options_set_bind(NULL, "tcp://127.0.0.1:0"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_set_bind(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_add_engine(o, NULL, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_add_engine(o, "", NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_set_pod_replay(o, NULL, "tcp://127.0.0.1:1"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_set_pod_replay(o, "pod", NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_set_pod_replay(o, "pod", "tcp://127.0.0.1:1"), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_options_set_pod_replay(o, "pod", ""), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_options_set_replay_timeout_ms(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_set_replay_timeout_ms(o, 600001), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_options_set_replay_timeout_ms(o, 500), KVC_OK);

    CHECK_STATUS(kvc_index_create(NULL, &index), KVC_OK);
    /* No endpoint at all: refused at create. */
    CHECK_STATUS(kvc_index_subscriber_create(index, o, &s), KVC_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_STATUS(kvc_index_subscriber_create(NULL, o, &s), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_create(index, NULL, &s), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_create(index, o, NULL), KVC_ERR_INVALID_ARGUMENT);
    /* An endpoint ZeroMQ refuses: refused at start, naming it. */
    CHECK_STATUS(kvc_index_subscriber_options_set_bind(o, "nonsense://x"), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_create(index, o, &s), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_start(s), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "nonsense://x") != NULL);
    kvc_index_subscriber_destroy(s);
    /* Connect mode to an engine that is not there yet (ZeroMQ connects when it comes): starts, stops. */
    CHECK_STATUS(kvc_index_subscriber_options_set_bind(o, ""), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_options_add_engine(o, "tcp://127.0.0.1:1", NULL), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_create(index, o, &s), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_start(s), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_start(s), KVC_ERR_INVALID_STATE);
    CHECK_STATUS(kvc_index_subscriber_bound_endpoint(s, NULL, 0, &count), KVC_OK);
    CHECK(count == 0); /* no bind mode */
    CHECK_STATUS(kvc_index_subscriber_stop(s), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_stop(s), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_counters(s, NULL, 0, &count), KVC_OK);
    CHECK(count == KVC_INDEX_SUBSCRIBER_COUNTER_COUNT);
    CHECK_STATUS(kvc_index_subscriber_counters(s, NULL, 3, &count), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_counters(s, values, 3, NULL), KVC_OK); /* an older caller's capacity */
    CHECK_STATUS(kvc_index_subscriber_counters(NULL, values, 3, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_start(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_stop(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_subscriber_bound_endpoint(NULL, NULL, 0, &count), KVC_ERR_INVALID_ARGUMENT);
    kvc_index_subscriber_destroy(s);
    kvc_index_subscriber_destroy(NULL);
    kvc_index_subscriber_options_destroy(o);
    kvc_index_subscriber_options_destroy(NULL);
    kvc_index_destroy(index);

    for (c = 0; c < KVC_INDEX_SUBSCRIBER_COUNTER_COUNT; ++c) {
        const char* name = kvc_index_subscriber_counter_name((kvc_index_subscriber_counter)c);
        CHECK(name != NULL && strcmp(name, "unknown") != 0);
    }
    CHECK(strcmp(kvc_index_subscriber_counter_name(KVC_INDEX_SUBSCRIBER_COUNTER_GAPS), "gaps") == 0);
    CHECK(strcmp(kvc_index_subscriber_counter_name(KVC_INDEX_SUBSCRIBER_COUNTER_COUNT), "unknown") == 0);
}

/* A kvcore pool as the engine, its events sent over a libzmq PUB connected to the subscriber (bind mode),
 * on an index with ingest threads. */
static void test_pool_to_index(void) {
    kvc_pool_options* po = NULL;
    kvc_pool* pool = NULL;
    kvc_index_options* io = NULL;
    kvc_index* index = NULL;
    kvc_index_subscriber_options* so = NULL;
    kvc_index_subscriber* s = NULL;
    int32_t prompt[PROMPT];
    kvc_sequence_id seq = 0;
    uint8_t* payload;
    size_t length = 0, n = 0;
    char endpoint[256], small[4];
    void* context;
    void* pub;
    const char* const pods[] = {"engine-0", "engine-1"};
    double scores[2];
    uint32_t blocks[2] = {0, 0};
    double deadline;
    int subscribed = 0;
    uint8_t seq_frame[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const char* topic = "kv@engine-0@my/model";
    const int linger = 0;
    size_t i;

    for (i = 0; i < PROMPT; ++i) prompt[i] = (int32_t)(300 + 11 * i);
    CHECK_STATUS(kvc_pool_options_create(&po), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(po, 32), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_block_size(po, BLOCK), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_hash(po, KVC_HASH_SHA256_CBOR, "42"), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_events(po, 1, "GPU", 1024), KVC_OK);
    CHECK_STATUS(kvc_pool_create(po, &pool), KVC_OK);
    kvc_pool_options_destroy(po);
    CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, PROMPT, NULL, &seq), KVC_OK);
    CHECK_STATUS(kvc_pool_allocate(pool, seq, PROMPT, NULL), KVC_OK);
    CHECK_STATUS(kvc_pool_sequence_free(pool, seq), KVC_OK);
    CHECK_STATUS(kvc_pool_drain_events(pool, KVC_EVENTS_MAP, NULL, 0, &length), KVC_OK);
    payload = (uint8_t*)malloc(length);
    CHECK_STATUS(kvc_pool_drain_events(pool, KVC_EVENTS_MAP, payload, length, &length), KVC_OK);

    CHECK_STATUS(kvc_index_options_create(&io), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_hash(io, KVC_HASH_SHA256_CBOR, "42"), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_engine_keys_direct(io, 1), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_ingest_threads(io, 2, 16), KVC_OK);
    CHECK_STATUS(kvc_index_create(io, &index), KVC_OK);
    kvc_index_options_destroy(io);
    CHECK_STATUS(kvc_index_subscriber_options_create(&so), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_options_set_bind(so, "tcp://127.0.0.1:0"), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_create(index, so, &s), KVC_OK);
    kvc_index_subscriber_options_destroy(so);
    CHECK_STATUS(kvc_index_subscriber_bound_endpoint(s, NULL, 0, &n), KVC_OK);
    CHECK(n == 0); /* not started */
    CHECK_STATUS(kvc_index_subscriber_start(s), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_bound_endpoint(s, NULL, 0, &n), KVC_OK);
    CHECK(n > strlen("tcp://127.0.0.1:") && n < sizeof endpoint);
    CHECK_STATUS(kvc_index_subscriber_bound_endpoint(s, small, sizeof small, &n), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(kvc_index_subscriber_bound_endpoint(s, endpoint, sizeof endpoint, &n), KVC_OK);
    CHECK(strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0 && strcmp(endpoint, "tcp://127.0.0.1:0") != 0);

    /* The engine: an XPUB (a PUB on the wire that reports subscriptions) connecting to the router. */
    context = zmq_ctx_new();
    pub = zmq_socket(context, ZMQ_XPUB);
    CHECK(pub != NULL);
    CHECK(zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger) == 0);
    CHECK(zmq_connect(pub, endpoint) == 0);
    deadline = now_ms() + DEADLINE_MS;
    while (!subscribed && now_ms() < deadline) {
        zmq_pollitem_t item;
        item.socket = pub;
        item.fd = 0;
        item.events = ZMQ_POLLIN;
        item.revents = 0;
        if (zmq_poll(&item, 1, 50) > 0) {
            uint8_t msg[64];
            const int got = zmq_recv(pub, msg, sizeof msg, ZMQ_DONTWAIT);
            subscribed = got >= 1 && msg[0] == 1;
        }
    }
    CHECK(subscribed);
    CHECK(zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE) == (int)strlen(topic));
    CHECK(zmq_send(pub, seq_frame, 8, ZMQ_SNDMORE) == 8);
    CHECK(zmq_send(pub, payload, length, 0) == (int)length);

    deadline = now_ms() + DEADLINE_MS;
    while (blocks[0] != PROMPT / BLOCK && now_ms() < deadline) {
        sleep_ms(2);
        CHECK_STATUS(kvc_index_flush(index), KVC_OK);
        CHECK_STATUS(kvc_index_score_tokens(index, "my/model", prompt, PROMPT, NULL, pods, 2, scores, blocks), KVC_OK);
    }
    CHECK(blocks[0] == PROMPT / BLOCK);
    CHECK(scores[0] == (double)(PROMPT / BLOCK));
    CHECK(blocks[1] == 0 && scores[1] == 0.0);
    CHECK(sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_MESSAGES) == 1);
    CHECK(sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_BATCHES_APPLIED) == 1);
    CHECK(sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_DECODE_FAILURES) == 0);

    /* A payload that is not an EventBatch: counted by the subscriber and by the index, nothing applied. */
    seq_frame[7] = 1;
    CHECK(zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE) == (int)strlen(topic));
    CHECK(zmq_send(pub, seq_frame, 8, ZMQ_SNDMORE) == 8);
    CHECK(zmq_send(pub, "\xc1", 1, 0) == 1);
    deadline = now_ms() + DEADLINE_MS;
    while (sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_DECODE_FAILURES) == 0 && now_ms() < deadline) sleep_ms(2);
    CHECK(sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_DECODE_FAILURES) == 1);
    {
        uint64_t values[KVC_INDEX_COUNTER_COUNT];
        CHECK_STATUS(kvc_index_counters(index, values, KVC_INDEX_COUNTER_COUNT, NULL), KVC_OK);
        CHECK(values[KVC_INDEX_COUNTER_BATCHES_FAILED] == 1);
        CHECK(values[KVC_INDEX_COUNTER_BLOCKS_STORED] == PROMPT / BLOCK);
    }

    /* The index destroyed first (as a garbage collector may): the subscriber keeps it alive and goes on
       applying batches until it is destroyed itself, which frees the index. */
    kvc_index_destroy(index);
    seq_frame[7] = 2;
    CHECK(zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE) == (int)strlen(topic));
    CHECK(zmq_send(pub, seq_frame, 8, ZMQ_SNDMORE) == 8);
    CHECK(zmq_send(pub, payload, length, 0) == (int)length);
    deadline = now_ms() + DEADLINE_MS;
    while (sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_BATCHES_APPLIED) < 2 && now_ms() < deadline) sleep_ms(2);
    CHECK(sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_BATCHES_APPLIED) == 2);

    zmq_close(pub);
    zmq_ctx_term(context);
    kvc_index_subscriber_destroy(s);
    kvc_pool_destroy(pool);
    free(payload);
}

int main(void) {
    test_arguments();
    test_pool_to_index();
    if (failures != 0) {
        fprintf(stderr, "c_api_index_subscriber: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("c_api_index_subscriber: all %d checks passed\n", checks);
    return 0;
}
