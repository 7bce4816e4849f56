/* SPDX-License-Identifier: Apache-2.0 */
/* kvcore/sched.h from C: an engine loop over a small pool with a fake model (next token = f(last token)),
 * every request's output checked against the model run directly; argument checks and size queries; the
 * session store under a host pool (a conversation restored after eviction, swap preemption, cancel). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kvcore/kvcore.h"

#define NUM_REQUESTS 12
#define MAX_NEW 9
#define MAX_ENTRIES 64

static int32_t model(int32_t last) { return (last * 31 + 7) % 997; }

static void options_and_errors(kvc_pool* pool) {
    kvc_sched_options* o = NULL;
    kvc_sched* s = NULL;
    kvc_sched_plan* plan = NULL;
    int32_t prompt[3] = {1, 2, 3};
    uint64_t id = 0;
    size_t count = 0;
    double v = 0;
    kvc_stats* st = NULL;
    CHECK_STATUS(kvc_sched_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_max_batch_sequences(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_sched_options_set_preemption(o, (kvc_preemption_mode)2), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_sched_options_set_preemption(o, KVC_PREEMPT_SWAP), KVC_OK);
    CHECK_STATUS(kvc_sched_create(o, pool, &s), KVC_OK);
    /* swap needs a session store, and this metadata-only pool cannot have one */
    CHECK_STATUS(kvc_sched_submit(s, 1, prompt, 3, 2, 0, NULL, NULL), KVC_ERR_INVALID_STATE);
    CHECK(strstr(kvc_last_error_message(), "kvc_sched_set_session_store") != NULL);
    {
        kvc_store* store = NULL;
        CHECK_STATUS(kvc_store_create(NULL, &store), KVC_OK);
        CHECK_STATUS(kvc_sched_set_session_store(s, store), KVC_ERR_INVALID_ARGUMENT);
        CHECK(strstr(kvc_last_error_message(), "host memory") != NULL);
        CHECK_STATUS(kvc_sched_set_session_store(NULL, store), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_sched_set_session_store(s, NULL), KVC_OK); /* detaching: nothing to check */
        kvc_store_destroy(store);
    }
    kvc_sched_destroy(s);
    s = NULL;
    CHECK_STATUS(kvc_sched_options_set_preemption(o, KVC_PREEMPT_RECOMPUTE), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_policy(o, (kvc_sched_policy)7, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_sched_options_set_max_queue(o, 1), KVC_OK);
    CHECK_STATUS(kvc_sched_create(o, NULL, &s), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_sched_create(o, pool, &s), KVC_OK);
    CHECK_STATUS(kvc_sched_set_time_us(s, 5), KVC_ERR_INVALID_STATE); /* not the manual clock */
    CHECK_STATUS(kvc_sched_submit(s, 1, prompt, 3, 2, 0, "chat-1", NULL), KVC_OK);
    CHECK_STATUS(kvc_sched_submit(s, 2, prompt, 3, 2, 0, NULL, NULL), KVC_ERR_QUEUE_FULL);
    CHECK(strcmp(kvc_status_string(KVC_ERR_QUEUE_FULL), "KVC_ERR_QUEUE_FULL") == 0);
    CHECK_STATUS(kvc_sched_submit(s, 3, NULL, 3, 2, 0, NULL, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_sched_take_output(s, 1, NULL, 0, &count, NULL), KVC_ERR_INVALID_STATE);
    CHECK_STATUS(kvc_sched_take_output(s, 77, NULL, 0, &count, NULL), KVC_ERR_NOT_FOUND);
    CHECK_STATUS(kvc_sched_plan_create(&plan), KVC_OK);
    CHECK_STATUS(kvc_sched_step(s, plan), KVC_OK);
    CHECK(kvc_sched_plan_count(plan) == 1);
    CHECK_STATUS(kvc_sched_plan_sequence(plan, 1, &id, NULL, NULL, NULL), KVC_ERR_OUT_OF_RANGE);
    CHECK_STATUS(kvc_sched_plan_tokens(plan, 0, NULL, 0, &count), KVC_OK);
    CHECK(count == 3);
    {
        int32_t one[1];
        CHECK_STATUS(kvc_sched_plan_tokens(plan, 0, one, 1, &count), KVC_ERR_BUFFER_TOO_SMALL);
    }
    CHECK_STATUS(kvc_sched_step(s, plan), KVC_ERR_INVALID_STATE);
    CHECK_STATUS(kvc_sched_cancel(s, 1), KVC_OK); /* in the pending plan: the commit drops it */
    CHECK_STATUS(kvc_sched_commit(s, plan, NULL, 0, NULL, 0), KVC_ERR_INVALID_ARGUMENT); /* it samples */
    {
        int32_t t = 5;
        CHECK_STATUS(kvc_sched_commit(s, plan, &t, 1, NULL, 0), KVC_OK);
    }
    CHECK(kvc_sched_num_running(s) == 0 && kvc_sched_num_waiting(s) == 0);
    CHECK(kvc_pool_num_blocks_in_use(pool) == 0);
    CHECK_STATUS(kvc_sched_snapshot(s, &st), KVC_OK);
    CHECK(strcmp(kvc_stats_component(st), "sched") == 0);
    CHECK_STATUS(kvc_stats_metric(st, "sched_requests_cancelled_total", &v), KVC_OK);
    CHECK(v == 1.0);
    CHECK_STATUS(kvc_stats_metric(st, "no_such_metric", &v), KVC_ERR_NOT_FOUND);
    CHECK(kvc_stats_metric_count(st) > 0 && strlen(kvc_stats_metric_name(st, 0)) > 0);
    CHECK(strcmp(kvc_stats_metric_name(st, 1000), "") == 0);
    kvc_stats_destroy(st);
    kvc_sched_plan_destroy(plan);
    kvc_sched_destroy(s);
    kvc_sched_options_destroy(o);
    CHECK(kvc_sched_plan_count(NULL) == 0 && kvc_sched_num_running(NULL) == 0);
    kvc_sched_destroy(NULL);
    kvc_sched_plan_destroy(NULL);
}

/* ---- the session store under a host pool (2 layers, 2 KV heads of 4, F32, blocks of 4) ---------------- */
#define KV_LAYERS 2
#define KV_ROW_WORDS 8 /* 2 heads x 4 dims */
#define KV_BLOCK 4
#define KV_MAX_TOKENS 64
#define KV_MAX_REQUESTS 8

typedef struct {
    int32_t tokens[KV_MAX_TOKENS]; /* prompt, then what it sampled */
    size_t n;
} kv_request;

/* The word the fake forward writes for element e of a token's K (kv 0) or V (kv 1) row in one layer. */
static uint32_t kv_word(int32_t token, size_t pos, uint32_t layer, uint32_t kv, uint32_t e) {
    uint32_t x = (uint32_t)token * 2654435761u ^ (uint32_t)pos * 40503u ^ layer * 977u ^ kv * 131u ^ e;
    x ^= x >> 15;
    x *= 0x2c1b3c6du;
    return x ^ (x >> 12);
}

static uint32_t* kv_row(kvc_pool* pool, int32_t block, size_t offset, uint32_t layer, uint32_t kv) {
    void* base = NULL;
    uint64_t bytes_per_block = 0;
    kvc_pool_storage(pool, &base, &bytes_per_block);
    return (uint32_t*)((uint8_t*)base + (uint64_t)block * bytes_per_block +
                       ((uint64_t)layer * 2 + kv) * KV_BLOCK * KV_ROW_WORDS * 4 + offset * KV_ROW_WORDS * 4);
}

/* One step of an engine over the host pool: checks that every position before an entry's first holds the
 * K/V written for its token there (what attention reads), writes the entry's K/V, samples with model().
 * Returns the positions that held wrong K/V; *restored_at gets request `watch`'s num_computed when it is
 * scheduled (else unchanged). */
static size_t kv_step(kvc_sched* s, kvc_sched_plan* plan, kvc_pool* pool, kv_request* reqs, uint64_t watch,
                      size_t* restored_at) {
    int32_t sampled[MAX_ENTRIES];
    size_t n, i, bad = 0;
    CHECK_STATUS(kvc_sched_step(s, plan), KVC_OK);
    n = kvc_sched_plan_count(plan);
    CHECK(n <= MAX_ENTRIES);
    for (i = 0; i < n && i < MAX_ENTRIES; ++i) {
        uint64_t id = 0;
        size_t num_tokens = 0, num_computed = 0, nb = 0, got = 0, pos, j;
        uint32_t samples = 0, layer, kv, e;
        int32_t blocks[KV_MAX_TOKENS / KV_BLOCK + 1];
        int64_t slots[KV_MAX_TOKENS];
        kv_request* r;
        CHECK_STATUS(kvc_sched_plan_sequence(plan, i, &id, &num_tokens, &num_computed, &samples), KVC_OK);
        CHECK(id >= 1 && id <= KV_MAX_REQUESTS);
        if (id < 1 || id > KV_MAX_REQUESTS) continue;
        r = &reqs[id - 1];
        if (id == watch) *restored_at = num_computed;
        CHECK_STATUS(kvc_sched_plan_block_table(plan, i, blocks, sizeof blocks / sizeof blocks[0], &nb), KVC_OK);
        CHECK_STATUS(kvc_sched_plan_slots(plan, i, slots, KV_MAX_TOKENS, &got), KVC_OK);
        for (pos = 0; pos < num_computed; ++pos) {
            int ok = 1;
            for (layer = 0; layer < KV_LAYERS; ++layer) {
                for (kv = 0; kv < 2; ++kv) {
                    const uint32_t* row = kv_row(pool, blocks[pos / KV_BLOCK], pos % KV_BLOCK, layer, kv);
                    for (e = 0; e < KV_ROW_WORDS; ++e) ok &= row[e] == kv_word(r->tokens[pos], pos, layer, kv, e);
                }
            }
            bad += !ok;
        }
        for (j = 0; j < num_tokens; ++j) {
            pos = num_computed + j;
            for (layer = 0; layer < KV_LAYERS; ++layer) {
                for (kv = 0; kv < 2; ++kv) {
                    uint32_t* row = kv_row(pool, (int32_t)(slots[j] / KV_BLOCK), (size_t)(slots[j] % KV_BLOCK), layer, kv);
                    for (e = 0; e < KV_ROW_WORDS; ++e) row[e] = kv_word(r->tokens[pos], pos, layer, kv, e);
                }
            }
        }
        sampled[i] = samples ? model(r->tokens[num_computed + num_tokens - 1]) : 0;
        if (samples && r->n < KV_MAX_TOKENS) r->tokens[r->n++] = sampled[i];
    }
    CHECK_STATUS(kvc_sched_commit(s, plan, sampled, n, NULL, 0), KVC_OK);
    {
        uint64_t ids[KV_MAX_REQUESTS];
        size_t count = 0, k;
        CHECK_STATUS(kvc_sched_plan_finished(plan, ids, KV_MAX_REQUESTS, &count), KVC_OK);
        for (k = 0; k < count; ++k) CHECK_STATUS(kvc_sched_take_output(s, ids[k], NULL, 0, &n, NULL), KVC_OK);
    }
    return bad;
}

static void kv_submit(kvc_sched* s, kv_request* reqs, uint64_t id, const int32_t* prompt, size_t n, uint32_t max_new,
                      uint32_t priority, const char* session) {
    CHECK_STATUS(kvc_sched_submit(s, id, prompt, n, max_new, priority, session, NULL), KVC_OK);
    memcpy(reqs[id - 1].tokens, prompt, n * sizeof(int32_t));
    reqs[id - 1].n = n;
}

static void session_store(void) {
    kvc_pool_options* po = NULL;
    kvc_pool* pool = NULL;
    kvc_store_options* so = NULL;
    kvc_store* store = NULL;
    kvc_sched_options* o = NULL;
    kvc_sched* s = NULL;
    kvc_sched_plan* plan = NULL;
    kv_request reqs[KV_MAX_REQUESTS];
    int32_t prompt[32];
    size_t i, bad = 0, restored_at = 0, k;
    int step;
    double v = 0;
    kvc_stats* st = NULL;

    memset(reqs, 0, sizeof reqs);
    CHECK_STATUS(kvc_pool_options_create(&po), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(po, 9), KVC_OK); /* 8 usable blocks of 4 */
    CHECK_STATUS(kvc_pool_options_set_block_size(po, KV_BLOCK), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_model_shape(po, KV_LAYERS, 2, 4, KVC_DTYPE_F32), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_memory(po, KVC_MEMORY_HOST), KVC_OK);
    CHECK_STATUS(kvc_pool_create(po, &pool), KVC_OK);
    CHECK_STATUS(kvc_store_options_create(&so), KVC_OK);
    CHECK_STATUS(kvc_store_options_set_max_bytes_total(so, 1u << 20), KVC_OK);
    CHECK_STATUS(kvc_store_create(so, &store), KVC_OK);
    CHECK_STATUS(kvc_sched_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_manual_clock(o, 1), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_preemption(o, KVC_PREEMPT_SWAP), KVC_OK);
    CHECK_STATUS(kvc_sched_create(o, pool, &s), KVC_OK);
    CHECK_STATUS(kvc_sched_plan_create(&plan), KVC_OK);
    CHECK_STATUS(kvc_sched_set_session_store(s, store), KVC_OK);

    /* Turn 1 of "chat" (10 tokens, 4 new): saved at finish, 13 tokens. */
    for (i = 0; i < 10; ++i) prompt[i] = (int32_t)(100 + i);
    kv_submit(s, reqs, 1, prompt, 10, 4, 0, "chat");
    for (step = 0; step < 50 && kvc_sched_num_waiting(s) + kvc_sched_num_running(s) > 0; ++step) {
        bad += kv_step(s, plan, pool, reqs, 0, &restored_at);
    }
    CHECK(reqs[0].n == 14);
    CHECK(kvc_store_num_sessions(store) == 1);
    /* Other traffic takes every block: the chat's cached blocks are evicted from the pool. */
    for (i = 0; i < 28; ++i) prompt[i] = (int32_t)(500 + i);
    kv_submit(s, reqs, 2, prompt, 28, 2, 0, NULL);
    for (step = 0; step < 50 && kvc_sched_num_waiting(s) + kvc_sched_num_running(s) > 0; ++step) {
        bad += kv_step(s, plan, pool, reqs, 0, &restored_at);
    }
    /* Turn 2: the conversation and 5 new tokens; 13 tokens come from the store. */
    memcpy(prompt, reqs[0].tokens, 14 * sizeof(int32_t));
    for (i = 14; i < 19; ++i) prompt[i] = (int32_t)(900 + i);
    kv_submit(s, reqs, 3, prompt, 19, 3, 0, "chat");
    for (step = 0; step < 50 && kvc_sched_num_waiting(s) + kvc_sched_num_running(s) > 0; ++step) {
        bad += kv_step(s, plan, pool, reqs, 3, &restored_at);
        if (step == 0) CHECK(restored_at == 13);
    }
    CHECK(reqs[2].n == 22);
    for (k = 19; k < reqs[2].n; ++k) CHECK(reqs[2].tokens[k] == model(reqs[2].tokens[k - 1]));

    /* Swap: three requests of 3 tokens growing to 15 over 8 blocks; the least important is preempted. */
    {
        uint64_t preempted[4];
        size_t count = 0, swapped = 0;
        for (i = 0; i < 3; ++i) {
            int32_t p[3];
            for (k = 0; k < 3; ++k) p[k] = (int32_t)(10 * (i + 1) + k);
            kv_submit(s, reqs, 4 + i, p, 3, 12, i == 0 ? 5 : 1, NULL);
        }
        for (step = 0; step < 100 && count == 0; ++step) {
            bad += kv_step(s, plan, pool, reqs, 0, &restored_at);
            CHECK_STATUS(kvc_sched_plan_preempted(plan, preempted, 4, &count), KVC_OK);
        }
        CHECK(count == 1);
        CHECK(kvc_store_num_sessions(store) == 2); /* the chat and the swap */
        CHECK_STATUS(kvc_sched_set_session_store(s, NULL), KVC_ERR_INVALID_STATE);
        CHECK_STATUS(kvc_sched_cancel(s, preempted[0]), KVC_OK);
        CHECK(kvc_store_num_sessions(store) == 1);
        for (step = 0; step < 200 && kvc_sched_num_waiting(s) + kvc_sched_num_running(s) > 0; ++step) {
            bad += kv_step(s, plan, pool, reqs, 0, &restored_at);
        }
        for (i = 0; i < 3; ++i) {
            const kv_request* r = &reqs[3 + i];
            if (4 + i == preempted[0]) continue;
            CHECK(r->n == 15);
            for (k = 3; k < r->n; ++k) CHECK(r->tokens[k] == model(r->tokens[k - 1]));
        }
        CHECK_STATUS(kvc_sched_snapshot(s, &st), KVC_OK);
        CHECK_STATUS(kvc_stats_metric(st, "sched_swapped_out_tokens_total", &v), KVC_OK);
        swapped = (size_t)v;
        CHECK(swapped > 0);
        kvc_stats_destroy(st);
    }
    CHECK(bad == 0);
    CHECK(kvc_store_num_sessions(store) == 1);
    CHECK_STATUS(kvc_sched_snapshot(s, &st), KVC_OK);
    CHECK_STATUS(kvc_stats_metric(st, "sched_store_restored_tokens_total", &v), KVC_OK);
    CHECK(v >= 13.0);
    CHECK_STATUS(kvc_stats_metric(st, "sched_store_saved_tokens_total", &v), KVC_OK);
    CHECK(v == 21.0); /* 13 at turn 1, then the 8 tokens turn 2 added */
    CHECK_STATUS(kvc_stats_metric(st, "sched_store_save_failures_total", &v), KVC_OK);
    CHECK(v == 0.0);
    kvc_stats_destroy(st);
    CHECK_STATUS(kvc_sched_set_session_store(s, NULL), KVC_OK);

    kvc_sched_plan_destroy(plan);
    kvc_sched_destroy(s);
    kvc_sched_options_destroy(o);
    kvc_store_destroy(store);
    kvc_store_options_destroy(so);
    kvc_pool_destroy(pool);
    kvc_pool_options_destroy(po);
}

int main(void) {
    kvc_pool_options* po = NULL;
    kvc_pool* pool = NULL;
    kvc_sched_options* o = NULL;
    kvc_sched* s = NULL;
    kvc_sched_plan* plan = NULL;
    kvc_sequence_options* keys = NULL;
    int32_t prompts[NUM_REQUESTS][12];
    size_t prompt_len[NUM_REQUESTS];
    int finished_count[NUM_REQUESTS] = {0};
    int32_t sampled[MAX_ENTRIES];
    uint8_t finished[MAX_ENTRIES];
    int step, i, r;

    CHECK_STATUS(kvc_pool_options_create(&po), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(po, 17), KVC_OK); /* 16 usable blocks of 4: preemptions */
    CHECK_STATUS(kvc_pool_options_set_block_size(po, 4), KVC_OK);
    CHECK_STATUS(kvc_pool_create(po, &pool), KVC_OK);
    options_and_errors(pool);
    session_store();

    CHECK_STATUS(kvc_sched_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_max_batch_sequences(o, 6), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_max_batch_tokens(o, 16), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_policy(o, KVC_SCHED_CACHE_AWARE, 100), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_manual_clock(o, 1), KVC_OK);
    CHECK_STATUS(kvc_sched_options_set_seed(o, 9), KVC_OK);
    CHECK_STATUS(kvc_sched_create(o, pool, &s), KVC_OK);
    CHECK_STATUS(kvc_sched_plan_create(&plan), KVC_OK);
    CHECK_STATUS(kvc_sequence_options_create(&keys), KVC_OK);
    CHECK_STATUS(kvc_sequence_options_set_cache_salt(keys, "tenant-a"), KVC_OK);

    for (r = 0; r < NUM_REQUESTS; ++r) {
        prompt_len[r] = 4 + (size_t)(r % 8);
        for (i = 0; i < (int)prompt_len[r]; ++i) prompts[r][i] = i < 4 ? i + 1 : 100 * r + i; /* a shared start */
        CHECK_STATUS(kvc_sched_submit(s, (uint64_t)(1000 + r), prompts[r], prompt_len[r], MAX_NEW, (uint32_t)(r % 3),
                                      "session", r % 2 ? keys : NULL),
                     KVC_OK);
    }
    for (step = 0; step < 500 && kvc_sched_num_waiting(s) + kvc_sched_num_running(s) > 0; ++step) {
        size_t n, count = 0;
        uint64_t ids[NUM_REQUESTS];
        CHECK_STATUS(kvc_sched_set_time_us(s, (uint64_t)step * 10), KVC_OK);
        CHECK_STATUS(kvc_sched_step(s, plan), KVC_OK);
        n = kvc_sched_plan_count(plan);
        CHECK(n <= 6 && n <= MAX_ENTRIES && kvc_sched_plan_num_tokens(plan) <= 16);
        for (i = 0; i < (int)n; ++i) {
            uint64_t id = 0;
            size_t num_tokens = 0, num_computed = 0, got = 0, nb = 0;
            uint32_t samples = 0;
            int32_t tokens[16], blocks[16];
            int64_t positions[16], slots[16];
            CHECK_STATUS(kvc_sched_plan_sequence(plan, (size_t)i, &id, &num_tokens, &num_computed, &samples), KVC_OK);
            CHECK_STATUS(kvc_sched_plan_tokens(plan, (size_t)i, tokens, 16, &got), KVC_OK);
            CHECK(got == num_tokens);
            CHECK_STATUS(kvc_sched_plan_positions(plan, (size_t)i, positions, 16, &got), KVC_OK);
            CHECK(got == num_tokens && positions[0] == (int64_t)num_computed);
            CHECK_STATUS(kvc_sched_plan_slots(plan, (size_t)i, slots, 16, &got), KVC_OK);
            CHECK_STATUS(kvc_sched_plan_block_table(plan, (size_t)i, blocks, 16, &nb), KVC_OK);
            CHECK(nb * 4 >= num_computed + num_tokens);
            CHECK(blocks[positions[got - 1] / 4] == slots[got - 1] / 4);
            sampled[i] = samples ? model(tokens[num_tokens - 1]) : 0;
            finished[i] = 0;
        }
        CHECK_STATUS(kvc_sched_commit(s, plan, sampled, n, finished, n), KVC_OK);
        CHECK_STATUS(kvc_sched_plan_finished(plan, NULL, 0, &count), KVC_OK);
        CHECK(count <= NUM_REQUESTS);
        CHECK_STATUS(kvc_sched_plan_finished(plan, ids, NUM_REQUESTS, &count), KVC_OK);
        for (i = 0; i < (int)count; ++i) {
            int32_t out[MAX_NEW];
            size_t got = 0, k;
            uint32_t reason = 99;
            char session[16];
            int32_t last;
            r = (int)(ids[i] - 1000);
            CHECK(r >= 0 && r < NUM_REQUESTS);
            if (r < 0 || r >= NUM_REQUESTS) continue;
            ++finished_count[r];
            CHECK_STATUS(kvc_sched_output_session(s, ids[i], session, sizeof session, &got), KVC_OK);
            CHECK(strcmp(session, "session") == 0);
            CHECK_STATUS(kvc_sched_take_output(s, ids[i], NULL, 0, &got, &reason), KVC_OK);
            CHECK(got == MAX_NEW && reason == KVC_SCHED_FINISH_LENGTH);
            CHECK_STATUS(kvc_sched_take_output(s, ids[i], out, MAX_NEW, &got, NULL), KVC_OK);
            last = prompts[r][prompt_len[r] - 1];
            for (k = 0; k < got; ++k) {
                last = model(last);
                CHECK(out[k] == last);
            }
            CHECK_STATUS(kvc_sched_take_output(s, ids[i], NULL, 0, &got, NULL), KVC_ERR_NOT_FOUND);
        }
    }
    for (r = 0; r < NUM_REQUESTS; ++r) CHECK(finished_count[r] == 1);
    CHECK(kvc_pool_num_blocks_in_use(pool) == 0);
    CHECK(kvc_pool_num_sequences(pool) == 0);
    {
        kvc_stats* st = NULL;
        double batch = 0;
        CHECK_STATUS(kvc_sched_snapshot(s, &st), KVC_OK);
        CHECK_STATUS(kvc_stats_metric(st, "sched_batch_size_avg", &batch), KVC_OK);
        CHECK(batch > 1.0); /* requests ran together */
        kvc_stats_destroy(st);
    }

    kvc_sequence_options_destroy(keys);
    kvc_sched_plan_destroy(plan);
    kvc_sched_destroy(s);
    kvc_sched_options_destroy(o);
    kvc_pool_destroy(pool);
    kvc_pool_options_destroy(po);
    printf("sched_api_test: %d checks, %d failures\n", checks, failures);
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
