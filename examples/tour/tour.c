/* SPDX-License-Identifier: Apache-2.0 */
/* kvcore from C: a recorder, a pool that reuses a cached prefix, a router's index scoring pods by the pool's
 * KV events, attention over the pool's blocks, a chat session kept between turns, a TTL cache that loads
 * once, one Prometheus scrape, a continuous-batching scheduler. */
#include <stdio.h>
#include <stdlib.h>

#include <kvcore/kvcore.h>

/* Every fallible call returns a kvc_status; kvc_last_error_message() says why it failed. */
#define CHECK(call) do { kvc_status s_ = (call); if (s_ != KVC_OK) { \
    fprintf(stderr, "%s: %s\n", kvc_status_string(s_), kvc_last_error_message()); exit(1); } } while (0)

/* A TTL cache loader: called once for concurrent misses of a key; anything but KVC_OK is a cached failure. */
static kvc_status load_metrics(void* user, const char* ns, const char* key, kvc_ttl_value* out) {
    (void)ns, (void)key;
    ++*(int*)user;
    return kvc_ttl_value_set(out, (const uint8_t*)"load=0.7", 8);
}

int main(void) {
    kvc_recorder_options* options = NULL;
    CHECK(kvc_recorder_options_create(&options));
    CHECK(kvc_recorder_options_set_component(options, "prefix_cache"));
    kvc_recorder* recorder = NULL;
    CHECK(kvc_recorder_create(options, &recorder));
    kvc_recorder_options_destroy(options);
    CHECK(kvc_recorder_record_access(recorder, 1));           /* a hit */
    CHECK(kvc_recorder_record_access_bits(recorder, 0x5, 3)); /* 3 lookups in one call: hit, miss, hit */

    kvc_pool_options* pool_options = NULL;                    /* defaults: 1024 blocks of 16 tokens */
    CHECK(kvc_pool_options_create(&pool_options));
    CHECK(kvc_pool_options_set_events(pool_options, 1, "GPU", 1024)); /* publish KV events, as vLLM does */
    kvc_pool* pool = NULL;
    CHECK(kvc_pool_create(pool_options, &pool));
    kvc_pool_options_destroy(pool_options);
    int32_t prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = 1000 + i;
    kvc_sequence_id first, second;
    size_t cached = 0, blocks = 0;
    CHECK(kvc_pool_sequence_create(pool, prompt, 40, NULL, &first));
    CHECK(kvc_pool_allocate(pool, first, 40, &cached));
    CHECK(kvc_pool_sequence_create(pool, prompt, 40, NULL, &second));
    CHECK(kvc_pool_allocate(pool, second, 40, &cached));     /* shares the first's 2 full blocks */
    const int32_t next_token = 42;
    CHECK(kvc_pool_append(pool, second, &next_token, 1));     /* decode: a slot for the new token */
    int32_t table[8];
    CHECK(kvc_pool_block_table(pool, second, table, 8, &blocks));
    printf("reused %zu of 40 prompt tokens; block table [%d, %d, %d]\n", cached, table[0], table[1], table[2]);

    /* A router's index fed by the engine's events (in process here; over ZeroMQ: kvc_index_subscriber). */
    size_t batch_length = 0;
    CHECK(kvc_pool_drain_events(pool, KVC_EVENTS_MAP, NULL, 0, &batch_length)); /* size, then drain */
    uint8_t* batch = malloc(batch_length);
    if (batch == NULL) return 1;
    CHECK(kvc_pool_drain_events(pool, KVC_EVENTS_MAP, batch, batch_length, &batch_length));
    kvc_index* index = NULL;                                  /* NULL options: keys from the events' tokens */
    CHECK(kvc_index_create(NULL, &index));
    CHECK(kvc_index_apply_batch(index, "pod-a", "llama", batch, batch_length));
    free(batch);
    const char* pods[] = {"pod-a", "pod-b"};
    double scores[2];
    CHECK(kvc_index_score_tokens(index, "llama", prompt, 40, NULL, pods, 2, scores, NULL));
    printf("router: pod-a scores %.0f, pod-b %.0f\n", scores[0], scores[1]);
    kvc_index_destroy(index);

    /* The engine's kernels over a K/V cache laid out as the pool's blocks (1 layer, 1 KV head of 4 dims, f32;
     * on a GPU: kvcore/ops_cuda.h): each token's K/V into its slot, then decode attention over the block table. */
    kvc_kv_layout* layout = NULL;
    CHECK(kvc_kv_layout_create(&layout));
    CHECK(kvc_kv_layout_set_shape(layout, 1, 1024, 16, 1, 4, KVC_DTYPE_F32));
    float* k_cache = calloc(1024 * 16 * 4, sizeof(float));
    float* v_cache = calloc(1024 * 16 * 4, sizeof(float));
    if (k_cache == NULL || v_cache == NULL) return 1;
    int64_t slots[41];
    float keys[41 * 4] = {0}, values[41 * 4];                 /* equal keys: every token weighs the same */
    for (int i = 0; i < 41 * 4; i++) values[i] = (float)(i / 4);  /* token t's value is t */
    CHECK(kvc_pool_slot_mapping(pool, second, 0, slots, 41));
    CHECK(kvc_kv_write(layout, 0, k_cache, v_cache, keys, values, KVC_DTYPE_F32, slots, 41));
    const float query[4] = {1, 1, 1, 1};
    const int32_t tokens = 41;
    float attended[4];
    CHECK(kvc_kv_attention_decode(layout, 0, k_cache, v_cache, query, 1, table, blocks, &tokens, 1, 0.5f, attended));
    printf("attention over 41 cached tokens: %.2f\n", attended[0]);
    kvc_kv_layout_destroy(layout);
    free(k_cache);
    free(v_cache);

    kvc_store* store = NULL;                                  /* NULL options: SmallMind's defaults */
    CHECK(kvc_store_create(NULL, &store));
    size_t reused = 0;
    for (int turn = 1; turn <= 2; turn++) {                   /* turn 2 carries the whole conversation */
        kvc_session* chat = NULL;                             /* a lease: never evicted while held */
        CHECK(kvc_store_get_or_create(store, "chat-1", 2, 2, 4, KVC_DTYPE_F32, 0, &chat, NULL));
        CHECK(kvc_session_begin_turn(chat, prompt, turn == 1 ? 30 : 40, &reused));
        float rows[40 * 2 * 4] = {0};                         /* the model's K/V for the new tokens */
        for (uint32_t layer = 0; layer < 2; layer++)
            CHECK(kvc_session_write_kv(chat, layer, reused, turn == 1 ? 30 : 10, rows, rows));
        CHECK(kvc_session_commit(chat));
        kvc_session_release(chat);
    }
    printf("turn 2 reused %zu of 40 tokens\n", reused);

    kvc_ttl_options* ttl_options = NULL;
    CHECK(kvc_ttl_options_create(&ttl_options));
    CHECK(kvc_ttl_options_set_component(ttl_options, "metrics"));
    kvc_ttl_cache* cache = NULL;
    CHECK(kvc_ttl_create(ttl_options, &cache));
    kvc_ttl_options_destroy(ttl_options);
    int loads = 0;
    uint8_t value[16];
    size_t length = 0;
    uint32_t valid = 0;
    for (int i = 0; i < 2; i++)
        CHECK(kvc_ttl_get_or_load(cache, "prod", "llama-7b", load_metrics, &loads, value, sizeof value, &length, &valid));
    printf("%.*s after %d load for 2 calls\n", (int)length, (const char*)value, loads);

    kvc_stats *recorded = NULL, *pooled = NULL, *stored = NULL, *cached_metrics = NULL;
    kvc_exposition* scrape = NULL;                            /* each # HELP / # TYPE once for both */
    CHECK(kvc_recorder_snapshot(recorder, &recorded));
    CHECK(kvc_pool_snapshot(pool, &pooled));
    CHECK(kvc_exposition_create(&scrape));
    CHECK(kvc_exposition_add(scrape, recorded));
    CHECK(kvc_exposition_add(scrape, pooled));
    CHECK(kvc_store_snapshot(store, &stored));
    CHECK(kvc_exposition_add(scrape, stored));
    CHECK(kvc_ttl_snapshot(cache, &cached_metrics));
    CHECK(kvc_exposition_add(scrape, cached_metrics));
    size_t n = 0;
    CHECK(kvc_exposition_to_prometheus(scrape, NULL, 0, &n)); /* size query, then fill n + 1 bytes */
    char* text = malloc(n + 1);
    if (text == NULL) return 1;
    CHECK(kvc_exposition_to_prometheus(scrape, text, n + 1, NULL));
    fputs(text, stdout);
    free(text);

    /* Continuous batching over the pool: two requests served to completion, a fake model sampling each token. */
    kvc_sched* sched = NULL;                                  /* NULL options: FIFO, up to 256 sequences a step */
    kvc_sched_plan* plan = NULL;
    CHECK(kvc_sched_create(NULL, pool, &sched));
    CHECK(kvc_sched_plan_create(&plan));
    CHECK(kvc_sched_submit(sched, 1, prompt, 40, 6, 0, "chat-1", NULL));
    CHECK(kvc_sched_submit(sched, 2, prompt, 20, 6, 0, NULL, NULL));
    size_t generated = 0, steps = 0;
    for (; kvc_sched_num_waiting(sched) + kvc_sched_num_running(sched) > 0; steps++) {
        CHECK(kvc_sched_step(sched, plan));                   /* the model runs over the batch here */
        int32_t sampled[2] = {0, 0};
        int64_t positions[64];
        uint32_t samples = 0;
        for (size_t i = 0; i < kvc_sched_plan_count(plan); i++) {
            CHECK(kvc_sched_plan_sequence(plan, i, NULL, NULL, NULL, &samples));
            CHECK(kvc_sched_plan_positions(plan, i, positions, 64, &n));
            if (samples) sampled[i] = (int32_t)(positions[n - 1] * 7 % 50);  /* a fake sampler */
        }
        CHECK(kvc_sched_commit(sched, plan, sampled, kvc_sched_plan_count(plan), NULL, 0));
        uint64_t done[2];
        int32_t out[6];
        CHECK(kvc_sched_plan_finished(plan, done, 2, &n));
        for (size_t i = 0; i < n; i++) {
            size_t count = 0;
            CHECK(kvc_sched_take_output(sched, done[i], out, 6, &count, NULL));
            generated += count;
        }
    }
    printf("scheduler: 2 requests, %zu tokens, %zu steps\n", generated, steps);
    kvc_sched_plan_destroy(plan);
    kvc_sched_destroy(sched);                                 /* before its pool */
    kvc_exposition_destroy(scrape);
    kvc_stats_destroy(pooled);
    kvc_stats_destroy(recorded);
    kvc_stats_destroy(stored);
    kvc_stats_destroy(cached_metrics);
    kvc_ttl_destroy(cache);
    kvc_store_destroy(store);
    kvc_pool_destroy(pool);                                   /* frees its sequences too */
    kvc_recorder_destroy(recorder);
    return 0;
}
