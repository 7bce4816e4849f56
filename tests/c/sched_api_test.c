/* SPDX-License-Identifier: Apache-2.0 */
/* kvcore/sched.h from C: an engine loop over a small pool with a fake model (next token = f(last token)),
 * every request's output checked against the model run directly; argument checks and size queries. */
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
    CHECK_STATUS(kvc_sched_options_set_preemption(o, KVC_PREEMPT_SWAP), KVC_ERR_UNSUPPORTED);
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
