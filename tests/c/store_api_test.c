/* SPDX-License-Identifier: Apache-2.0 */
/* The session store's C API (kvcore/store.h) from plain C99: every function, NULL handles, bad enums,
 * size queries, leases outliving their store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcore/kvcore.h"

#include "check.h"

/* 2 layers x 2 KV heads x 4 dims of f32, 16-token blocks: 2048 bytes a block, rows of 32 bytes. */
#define LAYERS 2u
#define HEADS 2u
#define DIM 4u
#define ROW_FLOATS (HEADS * DIM)
#define BLOCK_BYTES 2048u

static void fill_rows(float* rows, const int32_t* tokens, size_t first, size_t n, uint32_t layer, uint32_t kv) {
    size_t t, i;
    for (t = 0; t < n; ++t) {
        for (i = 0; i < ROW_FLOATS; ++i) {
            rows[t * ROW_FLOATS + i] = (float)tokens[first + t] * 1000.0f + (float)(first + t) + (float)layer * 0.5f +
                                       (float)kv * 0.25f + (float)i * 0.001f;
        }
    }
}

/* begin_turn + write K/V for the tokens not reused + commit; returns reused. */
static size_t run_turn(kvc_session* s, const int32_t* tokens, size_t n) {
    size_t reused = 0;
    uint32_t layer;
    float* k = (float*)malloc((n + 1) * ROW_FLOATS * sizeof(float));
    float* v = (float*)malloc((n + 1) * ROW_FLOATS * sizeof(float));
    CHECK_STATUS(kvc_session_begin_turn(s, tokens, n, &reused), KVC_OK);
    for (layer = 0; layer < LAYERS; ++layer) {
        fill_rows(k, tokens, reused, n - reused, layer, 0);
        fill_rows(v, tokens, reused, n - reused, layer, 1);
        CHECK_STATUS(kvc_session_write_kv(s, layer, reused, n - reused, k, v), KVC_OK);
    }
    CHECK_STATUS(kvc_session_commit(s), KVC_OK);
    free(k);
    free(v);
    return reused;
}

static kvc_store* make_store(uint32_t max_sessions, uint64_t max_bytes) {
    kvc_store_options* o = NULL;
    kvc_store* store = NULL;
    CHECK_STATUS(kvc_store_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_max_sessions(o, max_sessions), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_max_bytes_total(o, max_bytes), KVC_OK);
    CHECK_STATUS(kvc_store_create(o, &store), KVC_OK);
    kvc_store_options_destroy(o);
    return store;
}

static kvc_session* get(kvc_store* store, const char* id, uint32_t* created) {
    kvc_session* s = NULL;
    CHECK_STATUS(kvc_store_get_or_create(store, id, LAYERS, HEADS, DIM, KVC_DTYPE_F32, 0, &s, created), KVC_OK);
    return s;
}

static void test_options(void) {
    kvc_store_options* o = NULL;
    kvc_store* store = NULL;
    CHECK_STATUS(kvc_store_options_create(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_create(&o), KVC_OK);
    /* NULL options */
    CHECK_STATUS(kvc_store_options_set_enabled(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_max_tokens_per_session(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_max_sessions(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_max_bytes_total(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_max_bytes_per_session(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_eviction_policy(NULL, KVC_EVICTION_LRU), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_persist_across_requests(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_prefix_sharing(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_block_size(NULL, 16), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_memory(NULL, KVC_MEMORY_HOST), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_component(NULL, "x"), KVC_ERR_INVALID_ARGUMENT);
    /* bad values, each rejected without changing the options */
    CHECK_STATUS(kvc_store_options_set_max_tokens_per_session(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_max_tokens_per_session(o, KVC_STORE_MAX_TOKENS_PER_SESSION + 1),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_max_sessions(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_max_bytes_total(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_block_size(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_block_size(o, 4097), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_eviction_policy(o, (kvc_eviction_policy)99), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "eviction policy") != NULL);
    CHECK_STATUS(kvc_store_options_set_eviction_policy(o, (kvc_eviction_policy)-1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_memory(o, (kvc_memory)7), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_memory(o, KVC_MEMORY_METADATA_ONLY), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_component(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_component(o, "has space"), KVC_ERR_INVALID_ARGUMENT);
    /* good values */
    CHECK_STATUS(kvc_store_options_set_enabled(o, 1), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_max_tokens_per_session(o, 4096), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_max_sessions(o, 4), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_max_bytes_total(o, 64u * BLOCK_BYTES), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_max_bytes_per_session(o, 0), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_eviction_policy(o, KVC_EVICTION_LRU), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_persist_across_requests(o, 1), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_prefix_sharing(o, 1), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_block_size(o, 16), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_memory(o, KVC_MEMORY_HOST), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_component(o, "chat_store"), KVC_OK);
    CHECK_STATUS(kvc_store_create(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_create(o, &store), KVC_OK);
    {
        kvc_stats* stats = NULL;
        CHECK_STATUS(kvc_store_snapshot(store, &stats), KVC_OK);
        CHECK(strcmp(kvc_stats_component(stats), "chat_store") == 0);
        kvc_stats_destroy(stats);
    }
    kvc_store_destroy(store);
    /* Every offered policy builds; an unknown value is refused by the setter. */
    CHECK_STATUS(kvc_store_options_set_eviction_policy(o, (kvc_eviction_policy)3), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_options_set_eviction_policy(o, KVC_EVICTION_ARC), KVC_OK);
    store = NULL;
    CHECK_STATUS(kvc_store_create(o, &store), KVC_OK);
    kvc_store_destroy(store);
    kvc_store_options_destroy(o);
    kvc_store_options_destroy(NULL);
    /* NULL options: the defaults */
    CHECK_STATUS(kvc_store_create(NULL, &store), KVC_OK);
    CHECK(kvc_store_num_sessions(store) == 0);
    kvc_store_destroy(store);
    kvc_store_destroy(NULL);
}

static void test_store_calls(void) {
    kvc_store* store = make_store(2, 8u * BLOCK_BYTES);
    kvc_session* s = NULL;
    kvc_session* other = NULL;
    uint32_t created = 7;
    kvc_stats* stats = NULL;
    char id[KVC_STORE_MAX_SESSION_ID + 2];

    /* NULL handles and arguments */
    CHECK_STATUS(kvc_store_get_or_create(NULL, "a", LAYERS, HEADS, DIM, KVC_DTYPE_F32, 0, &s, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_get_or_create(store, NULL, LAYERS, HEADS, DIM, KVC_DTYPE_F32, 0, &s, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_get_or_create(store, "a", LAYERS, HEADS, DIM, KVC_DTYPE_F32, 0, NULL, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_get_or_create(store, "a", LAYERS, HEADS, DIM, (kvc_dtype)42, 0, &s, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK_STATUS(kvc_store_get_or_create(store, "", LAYERS, HEADS, DIM, KVC_DTYPE_F32, 0, &s, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    CHECK_STATUS(kvc_store_get_or_create(store, id, LAYERS, HEADS, DIM, KVC_DTYPE_F32, 0, &s, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_get_or_create(store, "a", 0, HEADS, DIM, KVC_DTYPE_F32, 0, &s, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_get_or_create(store, "a", LAYERS, HEADS, DIM, KVC_DTYPE_F32, 4097, &s, NULL),
                 KVC_ERR_CAPACITY);
    CHECK_STATUS(kvc_store_try_get(NULL, "a", &s), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_try_get(store, NULL, &s), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_try_get(store, "a", NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_remove(NULL, "a"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_remove(store, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_clear(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_snapshot(NULL, &stats), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_store_snapshot(store, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK(kvc_store_num_sessions(NULL) == 0);
    CHECK(kvc_store_bytes_in_use(NULL) == 0);
    CHECK(kvc_store_peak_bytes(NULL) == 0);
    kvc_session_release(NULL);

    /* miss, create, hit */
    CHECK_STATUS(kvc_store_try_get(store, "a", &s), KVC_ERR_NOT_FOUND);
    CHECK(s == NULL);
    s = get(store, "a", &created);
    CHECK(created == 1);
    other = get(store, "a", &created);
    CHECK(created == 0);
    {
        kvc_session* wrong = NULL;
        CHECK_STATUS(kvc_store_get_or_create(store, "a", LAYERS, HEADS, 8, KVC_DTYPE_F32, 0, &wrong, NULL),
                     KVC_ERR_INVALID_STATE); /* another shape */
        CHECK(wrong == NULL);
    }
    kvc_session_release(other);
    CHECK(kvc_store_num_sessions(store) == 1);
    CHECK_STATUS(kvc_store_try_get(store, "a", &other), KVC_OK);
    kvc_session_release(other);
    CHECK_STATUS(kvc_store_snapshot(store, &stats), KVC_OK);
    CHECK(kvc_stats_hits(stats) == 2);
    CHECK(kvc_stats_misses(stats) == 2);
    CHECK(kvc_stats_insertions(stats) == 1);
    kvc_stats_destroy(stats);

    /* the session's calls */
    {
        int32_t tokens[40];
        int32_t blocks[8];
        size_t i, n = 0, committed = 0, count = 0, bytes = 0, max_tokens = 0, length = 0;
        float k[40 * ROW_FLOATS], v[40 * ROW_FLOATS], expect[40 * ROW_FLOATS];
        void* base = NULL;
        uint64_t bytes_per_block = 0;
        uint32_t block_size = 0;
        char name[8];
        for (i = 0; i < 40; ++i) tokens[i] = (int32_t)(i + 1);
        CHECK_STATUS(kvc_session_begin_turn(NULL, tokens, 40, NULL), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_begin_turn(s, NULL, 40, NULL), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_append_tokens(s, tokens, 1), KVC_ERR_INVALID_STATE); /* no turn yet */
        CHECK(run_turn(s, tokens, 30) == 0);
        CHECK_STATUS(kvc_session_tokens(NULL, &n, NULL), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_tokens(s, &n, &committed), KVC_OK);
        CHECK(n == 30 && committed == 30);
        CHECK_STATUS(kvc_session_append_tokens(NULL, tokens, 1), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_append_tokens(s, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_append_tokens(s, tokens, 0), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_append_tokens(s, tokens + 30, 2), KVC_OK);
        CHECK_STATUS(kvc_session_tokens(s, &n, &committed), KVC_OK);
        CHECK(n == 32 && committed == 30);
        CHECK_STATUS(kvc_session_write_kv(NULL, 0, 30, 2, k, v), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_write_kv(s, 0, 30, 2, NULL, v), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_write_kv(s, LAYERS, 30, 2, k, v), KVC_ERR_OUT_OF_RANGE);
        CHECK_STATUS(kvc_session_write_kv(s, 0, 29, 2, k, v), KVC_ERR_OUT_OF_RANGE); /* committed */
        CHECK_STATUS(kvc_session_write_kv(s, 0, 31, 2, k, v), KVC_ERR_OUT_OF_RANGE); /* past the end */
        /* read: size query, too small, NULL, then the rows written by run_turn */
        CHECK_STATUS(kvc_session_read_kv(NULL, 0, 0, 30, NULL, NULL, 0, &bytes), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_read_kv(s, 0, 0, 30, NULL, NULL, 0, &bytes), KVC_OK);
        CHECK(bytes == 30 * ROW_FLOATS * sizeof(float));
        CHECK_STATUS(kvc_session_read_kv(s, 0, 0, 30, k, v, bytes - 1, NULL), KVC_ERR_BUFFER_TOO_SMALL);
        CHECK_STATUS(kvc_session_read_kv(s, 0, 0, 30, k, NULL, bytes, NULL), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_read_kv(s, 0, 0, 33, k, v, sizeof k, NULL), KVC_ERR_OUT_OF_RANGE);
        CHECK_STATUS(kvc_session_read_kv(s, 1, 0, 30, k, v, sizeof k, &bytes), KVC_OK);
        fill_rows(expect, tokens, 0, 30, 1, 0);
        CHECK(memcmp(k, expect, 30 * ROW_FLOATS * sizeof(float)) == 0);
        fill_rows(expect, tokens, 0, 30, 1, 1);
        CHECK(memcmp(v, expect, 30 * ROW_FLOATS * sizeof(float)) == 0);
        CHECK_STATUS(kvc_session_commit(NULL), KVC_ERR_INVALID_ARGUMENT);
        /* a next turn sharing 20 tokens */
        tokens[20] = 999;
        CHECK(run_turn(s, tokens, 25) == 20);
        CHECK_STATUS(kvc_store_snapshot(store, &stats), KVC_OK);
        CHECK(kvc_stats_tokens_reused(stats) == 20);
        CHECK(kvc_stats_bytes_in_use(stats) == 2 * BLOCK_BYTES);
        kvc_stats_destroy(stats);
        CHECK(kvc_store_bytes_in_use(store) == 2 * BLOCK_BYTES);
        CHECK(kvc_store_peak_bytes(store) == 2 * BLOCK_BYTES);
        /* over a bound: fails at once */
        CHECK_STATUS(kvc_session_begin_turn(s, tokens, 40, NULL), KVC_OK);
        {
            int32_t big[200];
            for (i = 0; i < 200; ++i) big[i] = (int32_t)i;
            CHECK_STATUS(kvc_session_begin_turn(s, big, 200, NULL), KVC_ERR_CAPACITY);
            CHECK(strstr(kvc_last_error_message(), "max bytes total") != NULL);
            big[3] = -5;
            CHECK_STATUS(kvc_session_begin_turn(s, big, 10, NULL), KVC_ERR_INVALID_ARGUMENT);
        }
        /* block table, storage, id, max tokens */
        CHECK_STATUS(kvc_session_block_table(NULL, NULL, 0, &count), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_block_table(s, NULL, 0, &count), KVC_OK);
        CHECK(count == 3);
        CHECK_STATUS(kvc_session_block_table(s, NULL, 3, &count), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_block_table(s, blocks, 2, &count), KVC_ERR_BUFFER_TOO_SMALL);
        CHECK_STATUS(kvc_session_block_table(s, blocks, 8, &count), KVC_OK);
        CHECK(blocks[0] > 0 && blocks[1] > 0 && blocks[2] > 0);
        CHECK_STATUS(kvc_session_storage(NULL, &base, NULL, NULL), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_storage(s, &base, &bytes_per_block, &block_size), KVC_OK);
        CHECK(base != NULL && bytes_per_block == BLOCK_BYTES && block_size == 16);
        {
            /* the documented layout: token 5's V of layer 1 sits at [layer 1][V][offset 5] of block 0 */
            const float* row = (const float*)((const char*)base + (uint64_t)blocks[0] * bytes_per_block +
                                              ((1 * 2 + 1) * block_size + 5) * ROW_FLOATS * sizeof(float));
            fill_rows(expect, tokens, 5, 1, 1, 1);
            CHECK(memcmp(row, expect, ROW_FLOATS * sizeof(float)) == 0);
        }
        CHECK_STATUS(kvc_session_id(NULL, NULL, 0, &length), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_id(s, NULL, 0, &length), KVC_OK);
        CHECK(length == 1);
        CHECK_STATUS(kvc_session_id(s, name, 1, &length), KVC_ERR_BUFFER_TOO_SMALL);
        CHECK_STATUS(kvc_session_id(s, name, sizeof name, &length), KVC_OK);
        CHECK(strcmp(name, "a") == 0);
        CHECK_STATUS(kvc_session_max_tokens(NULL, &max_tokens), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_max_tokens(s, NULL), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_session_max_tokens(s, &max_tokens), KVC_OK);
        CHECK(max_tokens == 4096);
    }

    /* remove / clear while held: detached, freed at release */
    CHECK_STATUS(kvc_store_remove(store, "nope"), KVC_ERR_NOT_FOUND);
    CHECK_STATUS(kvc_store_remove(store, "a"), KVC_OK);
    CHECK(kvc_store_num_sessions(store) == 0);
    CHECK(kvc_store_bytes_in_use(store) == 3 * BLOCK_BYTES);
    kvc_session_release(s);
    CHECK(kvc_store_bytes_in_use(store) == 0);
    s = get(store, "b", NULL);
    CHECK_STATUS(kvc_store_clear(store), KVC_OK);
    CHECK(kvc_store_num_sessions(store) == 0);
    kvc_session_release(s);

    /* every session held: the next one is refused with one memory-pressure event */
    s = get(store, "c", NULL);
    other = get(store, "d", NULL);
    {
        kvc_session* third = NULL;
        CHECK_STATUS(kvc_store_get_or_create(store, "e", LAYERS, HEADS, DIM, KVC_DTYPE_F32, 0, &third, NULL),
                     KVC_ERR_CAPACITY);
        CHECK(third == NULL);
    }
    CHECK_STATUS(kvc_store_snapshot(store, &stats), KVC_OK);
    CHECK(kvc_stats_memory_pressure_events(stats) == 1);
    kvc_stats_destroy(stats);
    kvc_session_release(other);
    /* a lease outlives its store */
    kvc_store_destroy(store);
    {
        int32_t tokens[3] = {1, 2, 3};
        CHECK(run_turn(s, tokens, 3) == 0);
    }
    kvc_session_release(s);
}

int main(void) {
    test_options();
    test_store_calls();
    if (failures != 0) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("store C API: all checks passed\n");
    return 0;
}
