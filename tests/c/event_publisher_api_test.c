/* SPDX-License-Identifier: Apache-2.0 */
/* The event publisher's C API (kvcore/event_publisher.h) from plain C99: argument checks, options, the
 * topic helper, size queries; then a kvcore engine (a pool publishing its events) and a kvcore router (a
 * subscriber in connect mode with the engine's replay endpoint, feeding an index) end to end on loopback,
 * and a second router that joins late and gets the engine's history by replay. Every wait has a deadline. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvcore/kvcore.h"

#include "check.h"
#include "wait.h"

#define BLOCK 16u
#define PROMPT 80u /* 5 full blocks */
#define DEADLINE_MS 10000
#define HEARTBEAT_MS 100

static uint64_t pub_counter(const kvc_event_publisher* p, kvc_event_publisher_counter c) {
    uint64_t values[KVC_EVENT_PUBLISHER_COUNTER_COUNT];
    CHECK_STATUS(kvc_event_publisher_counters(p, values, KVC_EVENT_PUBLISHER_COUNTER_COUNT, NULL), KVC_OK);
    return values[c];
}

static void test_arguments(void) {
    kvc_event_publisher_options* o = NULL;
    kvc_event_publisher* p = (kvc_event_publisher*)&o; /* must be set to NULL on failure */
    char topic[64], small[4];
    size_t n = 0, count = 0;
    uint64_t values[2], seq = 77;
    uint32_t events = 9;
    kvc_pool* pool = NULL;
    int c;

    CHECK_STATUS(kvc_event_publisher_options_create(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_options_set_endpoint(NULL, "tcp://127.0.0.1:0", 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_set_endpoint(o, NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_set_endpoint(o, "", 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_set_endpoint(o, "tcp://127.0.0.1:0", 2), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_set_replay_endpoint(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_set_topic(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_set_buffer_steps(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_set_buffer_steps(o, 10000001), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_options_set_buffer_steps(o, 8), KVC_OK);

    /* The topic helper: a size query, a short buffer, and what the subscriber parses back. */
    CHECK_STATUS(kvc_event_publisher_topic("engine-0", "org/model@v2", NULL, 0, &n), KVC_OK);
    CHECK(n == strlen("kv@engine-0@org/model@v2"));
    CHECK_STATUS(kvc_event_publisher_topic("engine-0", "m", small, sizeof small, &n), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(kvc_event_publisher_topic("engine-0", "org/model@v2", topic, sizeof topic, NULL), KVC_OK);
    CHECK(strcmp(topic, "kv@engine-0@org/model@v2") == 0);
    CHECK_STATUS(kvc_event_publisher_topic("", "m", topic, sizeof topic, &n), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_topic("a@b", "m", topic, sizeof topic, &n), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_topic("pod", "", topic, sizeof topic, &n), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_topic(NULL, "m", topic, sizeof topic, &n), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_topic("pod", "m", NULL, 4, &n), KVC_ERR_INVALID_ARGUMENT);

    /* Endpoints ZeroMQ refuses: create fails, naming the endpoint, and *out stays NULL. */
    CHECK_STATUS(kvc_event_publisher_options_set_endpoint(o, "nonsense://x", 0), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_create(o, &p), KVC_ERR_INVALID_ARGUMENT);
    CHECK(p == NULL);
    CHECK(strstr(kvc_last_error_message(), "nonsense://x") != NULL);
    CHECK_STATUS(kvc_event_publisher_options_set_endpoint(o, "tcp://127.0.0.1:0", 0), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_options_set_replay_endpoint(o, "tcp://nowhere.invalid:x"), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_create(o, &p), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "replay") != NULL);
    CHECK_STATUS(kvc_event_publisher_options_set_replay_endpoint(o, ""), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_create(NULL, &p), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_create(o, NULL), KVC_ERR_INVALID_ARGUMENT);

    /* A publisher without replay: endpoints, publish, counters. */
    CHECK_STATUS(kvc_event_publisher_create(o, &p), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_endpoint(p, NULL, 0, &n), KVC_OK);
    CHECK(n > strlen("tcp://127.0.0.1:"));
    CHECK_STATUS(kvc_event_publisher_endpoint(p, small, sizeof small, &n), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(kvc_event_publisher_endpoint(p, topic, sizeof topic, NULL), KVC_OK);
    CHECK(strncmp(topic, "tcp://127.0.0.1:", 16) == 0 && strcmp(topic, "tcp://127.0.0.1:0") != 0);
    CHECK_STATUS(kvc_event_publisher_replay_endpoint(p, topic, sizeof topic, &n), KVC_OK);
    CHECK(n == 0 && topic[0] == '\0');
    CHECK_STATUS(kvc_event_publisher_publish(p, NULL, 3, &seq), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_publish(NULL, (const uint8_t*)"x", 1, &seq), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_publish(p, (const uint8_t*)"\x93", 1, &seq), KVC_OK);
    CHECK(seq == 0);
    CHECK_STATUS(kvc_event_publisher_publish(p, (const uint8_t*)"\x93", 1, NULL), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_publish(p, (const uint8_t*)"\x93", 1, &seq), KVC_OK);
    CHECK(seq == 2);
    CHECK_STATUS(kvc_event_publisher_counters(p, NULL, 0, &count), KVC_OK);
    CHECK(count == KVC_EVENT_PUBLISHER_COUNTER_COUNT);
    CHECK_STATUS(kvc_event_publisher_counters(p, NULL, 2, &count), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_counters(p, values, 2, NULL), KVC_OK); /* an older caller's capacity */
    CHECK(values[KVC_EVENT_PUBLISHER_COUNTER_PUBLISHED] == 3 && values[KVC_EVENT_PUBLISHER_COUNTER_REPLAY_REQUESTS] == 0);
    CHECK_STATUS(kvc_event_publisher_counters(NULL, values, 2, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_endpoint(NULL, NULL, 0, &n), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_replay_endpoint(NULL, NULL, 0, &n), KVC_ERR_INVALID_ARGUMENT);

    /* publish_pool: a pool with events off is refused; NULLs are refused; a bad encoding is refused. */
    CHECK_STATUS(kvc_pool_create(NULL, &pool), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_publish_pool(p, NULL, KVC_EVENTS_MAP, &seq, &events), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_publish_pool(NULL, pool, KVC_EVENTS_MAP, &seq, &events), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_event_publisher_publish_pool(p, pool, KVC_EVENTS_MAP, &seq, &events), KVC_ERR_INVALID_STATE);
    CHECK_STATUS(kvc_event_publisher_publish_pool(p, pool, (kvc_event_encoding)7, &seq, &events), KVC_ERR_INVALID_ARGUMENT);
    CHECK(pub_counter(p, KVC_EVENT_PUBLISHER_COUNTER_PUBLISHED) == 3);
    kvc_pool_destroy(pool);

    kvc_event_publisher_destroy(p);
    kvc_event_publisher_destroy(NULL);
    kvc_event_publisher_options_destroy(o);
    kvc_event_publisher_options_destroy(NULL);

    for (c = 0; c < KVC_EVENT_PUBLISHER_COUNTER_COUNT; ++c) {
        const char* name = kvc_event_publisher_counter_name((kvc_event_publisher_counter)c);
        CHECK(name != NULL && strcmp(name, "unknown") != 0);
    }
    CHECK(strcmp(kvc_event_publisher_counter_name(KVC_EVENT_PUBLISHER_COUNTER_REPLAY_REQUESTS), "replay_requests") == 0);
    CHECK(strcmp(kvc_event_publisher_counter_name(KVC_EVENT_PUBLISHER_COUNTER_COUNT), "unknown") == 0);
}

/* A router: an index with direct sha256_cbor keys, fed by a subscriber connected to the engine. */
static void start_router(const char* endpoint, const char* replay, kvc_index** index, kvc_index_subscriber** s) {
    kvc_index_options* io = NULL;
    kvc_index_subscriber_options* so = NULL;
    CHECK_STATUS(kvc_index_options_create(&io), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_hash(io, KVC_HASH_SHA256_CBOR, "42"), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_engine_keys_direct(io, 1), KVC_OK);
    CHECK_STATUS(kvc_index_create(io, index), KVC_OK);
    kvc_index_options_destroy(io);
    CHECK_STATUS(kvc_index_subscriber_options_create(&so), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_options_add_engine(so, endpoint, replay), KVC_OK);
    CHECK_STATUS(kvc_index_subscriber_create(*index, so, s), KVC_OK);
    kvc_index_subscriber_options_destroy(so);
    CHECK_STATUS(kvc_index_subscriber_start(*s), KVC_OK);
}

/* Waits until the router scores engine-0 with the prompt's blocks. ZeroMQ's PUB drops what it sends
 * before a subscriber's connection is up; so while waiting the engine publishes empty batches (a real
 * engine's idle steps): the first one the router sees shows it the seqs it missed, and it asks replay. */
static void wait_for_score(kvc_event_publisher* p, kvc_pool* pool, kvc_index* index, const int32_t* prompt,
                           double* scores, uint32_t* blocks) {
    const char* const pods[] = {"engine-0", "engine-1"};
    const double deadline = now_ms() + DEADLINE_MS;
    double beat = now_ms() + HEARTBEAT_MS;
    uint8_t empty[64];
    size_t n = 0;
    blocks[0] = 0;
    while (blocks[0] != PROMPT / BLOCK && now_ms() < deadline) {
        sleep_ms(2);
        CHECK_STATUS(kvc_index_score_tokens(index, "model", prompt, PROMPT, NULL, pods, 2, scores, blocks), KVC_OK);
        if (now_ms() > beat) {
            CHECK_STATUS(kvc_pool_drain_events(pool, KVC_EVENTS_MAP, empty, sizeof empty, &n), KVC_OK);
            CHECK_STATUS(kvc_event_publisher_publish(p, empty, n, NULL), KVC_OK);
            beat = now_ms() + HEARTBEAT_MS;
        }
    }
}

static void test_engine_to_router(void) {
    kvc_pool_options* po = NULL;
    kvc_pool* pool = NULL;
    kvc_event_publisher_options* o = NULL;
    kvc_event_publisher* p = NULL;
    kvc_index* index = NULL;
    kvc_index* late_index = NULL;
    kvc_index_subscriber* s = NULL;
    kvc_index_subscriber* late = NULL;
    int32_t prompt[PROMPT];
    kvc_sequence_id sid = 0;
    char topic[64], endpoint[128], replay[128];
    double scores[2];
    uint32_t blocks[2], events = 99;
    uint64_t seq = 99;
    size_t i, n = 0;

    for (i = 0; i < PROMPT; ++i) prompt[i] = (int32_t)(500 + 7 * i);
    CHECK_STATUS(kvc_pool_options_create(&po), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(po, 32), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_block_size(po, BLOCK), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_hash(po, KVC_HASH_SHA256_CBOR, "42"), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_events(po, 1, "GPU", 1024), KVC_OK);
    CHECK_STATUS(kvc_pool_create(po, &pool), KVC_OK);
    kvc_pool_options_destroy(po);

    /* The engine's publisher, bound on free ports, with llm-d's topic. */
    CHECK_STATUS(kvc_event_publisher_topic("engine-0", "model", topic, sizeof topic, NULL), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_options_set_endpoint(o, "tcp://127.0.0.1:0", 0), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_options_set_replay_endpoint(o, "tcp://127.0.0.1:0"), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_options_set_topic(o, topic), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_create(o, &p), KVC_OK);
    kvc_event_publisher_options_destroy(o);
    CHECK_STATUS(kvc_event_publisher_endpoint(p, endpoint, sizeof endpoint, NULL), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_replay_endpoint(p, replay, sizeof replay, &n), KVC_OK);
    CHECK(n > strlen("tcp://127.0.0.1:") && strcmp(replay, endpoint) != 0);

    /* Nothing pending: nothing sent, no seq used, seq untouched. */
    CHECK_STATUS(kvc_event_publisher_publish_pool(p, pool, KVC_EVENTS_MAP, &seq, &events), KVC_OK);
    CHECK(events == 0 && seq == 99);
    CHECK(pub_counter(p, KVC_EVENT_PUBLISHER_COUNTER_PUBLISHED) == 0);

    start_router(endpoint, replay, &index, &s);
    CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, PROMPT, NULL, &sid), KVC_OK);
    CHECK_STATUS(kvc_pool_allocate(pool, sid, PROMPT, NULL), KVC_OK);
    CHECK_STATUS(kvc_event_publisher_publish_pool(p, pool, KVC_EVENTS_MAP, &seq, &events), KVC_OK);
    CHECK(seq == 0 && events >= 1);
    /* Drained: a second call sends nothing. */
    CHECK_STATUS(kvc_event_publisher_publish_pool(p, pool, KVC_EVENTS_MAP, &seq, &events), KVC_OK);
    CHECK(events == 0 && seq == 0);

    wait_for_score(p, pool, index, prompt, scores, blocks);
    CHECK(blocks[0] == PROMPT / BLOCK && scores[0] == (double)(PROMPT / BLOCK));
    CHECK(blocks[1] == 0 && scores[1] == 0.0);
    CHECK(sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_DECODE_FAILURES) == 0);
    CHECK(sub_counter(s, KVC_INDEX_SUBSCRIBER_COUNTER_LOST_BATCHES) == 0);

    /* A router that joins late missed seq 0 for sure: the replay ROUTER gives it the history. */
    start_router(endpoint, replay, &late_index, &late);
    wait_for_score(p, pool, late_index, prompt, scores, blocks);
    CHECK(blocks[0] == PROMPT / BLOCK && blocks[1] == 0);
    CHECK(sub_counter(late, KVC_INDEX_SUBSCRIBER_COUNTER_REPLAYS_REQUESTED) >= 1);
    CHECK(sub_counter(late, KVC_INDEX_SUBSCRIBER_COUNTER_REPLAYED_BATCHES) >= 1);
    CHECK(sub_counter(late, KVC_INDEX_SUBSCRIBER_COUNTER_LOST_BATCHES) == 0);
    CHECK(pub_counter(p, KVC_EVENT_PUBLISHER_COUNTER_REPLAY_REQUESTS) >= 1);
    CHECK(pub_counter(p, KVC_EVENT_PUBLISHER_COUNTER_REPLAYED_BATCHES) >= 1);

    /* The index destroyed before its subscriber (as a garbage collector may): no crash. */
    kvc_index_destroy(index);
    kvc_index_destroy(late_index);
    kvc_index_subscriber_destroy(s);
    kvc_index_subscriber_destroy(late);
    kvc_event_publisher_destroy(p);
    CHECK_STATUS(kvc_pool_sequence_free(pool, sid), KVC_OK);
    kvc_pool_destroy(pool);
}

int main(void) {
    test_arguments();
    test_engine_to_router();
    if (failures != 0) {
        fprintf(stderr, "c_api_event_publisher: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("c_api_event_publisher: all %d checks passed\n", checks);
    return 0;
}
