/* SPDX-License-Identifier: Apache-2.0 */
/* The cluster index's C API (kvcore/index.h) from plain C99: every function, NULL handles, bad enums,
 * size queries, and a kvcore pool's real KV events applied to indexes whose scores must equal the
 * pool's cached prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvcore/kvcore.h"

#include "check.h"

#define BLOCK 16u
#define PROMPT 70u  /* 4 full blocks */
#define SHARED 48u  /* prompt B shares 3 blocks with A */

static int32_t prompt_a[PROMPT], prompt_b[PROMPT];
static const char* const pod_a[] = {"pod-a"};

static void make_prompts(void) {
    size_t i;
    for (i = 0; i < PROMPT; ++i) {
        prompt_a[i] = (int32_t)(1000 + i * 7);
        prompt_b[i] = i < SHARED ? prompt_a[i] : (int32_t)(50000 + i);
    }
}

static uint64_t counter(const kvc_index* index, kvc_index_counter c) {
    uint64_t values[KVC_INDEX_COUNTER_COUNT];
    CHECK_STATUS(kvc_index_counters(index, values, KVC_INDEX_COUNTER_COUNT, NULL), KVC_OK);
    return values[c];
}

/* A pool hashing like vLLM (sha256_cbor, seed "42", 16-token blocks) with events on. */
static kvc_pool* make_pool(void) {
    kvc_pool_options* o = NULL;
    kvc_pool* pool = NULL;
    CHECK_STATUS(kvc_pool_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(o, 64), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_block_size(o, BLOCK), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_hash(o, KVC_HASH_SHA256_CBOR, "42"), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_events(o, 1, "GPU", 1024), KVC_OK);
    CHECK_STATUS(kvc_pool_create(o, &pool), KVC_OK);
    kvc_pool_options_destroy(o);
    return pool;
}

/* Runs the prompt through the pool (allocated and freed, so its full blocks stay cached). */
static void run_prompt(kvc_pool* pool, const int32_t* tokens, size_t n, const kvc_sequence_options* so) {
    kvc_sequence_id seq = 0;
    CHECK_STATUS(kvc_pool_sequence_create(pool, tokens, n, so, &seq), KVC_OK);
    CHECK_STATUS(kvc_pool_allocate(pool, seq, n, NULL), KVC_OK);
    CHECK_STATUS(kvc_pool_sequence_free(pool, seq), KVC_OK);
}

/* The pool's cached prefix of a prompt, in tokens. */
static size_t pool_cached(kvc_pool* pool, const int32_t* tokens, size_t n, const kvc_sequence_options* so) {
    kvc_sequence_id seq = 0;
    size_t cached = 0;
    CHECK_STATUS(kvc_pool_sequence_create(pool, tokens, n, so, &seq), KVC_OK);
    CHECK_STATUS(kvc_pool_cached_prefix(pool, seq, &cached), KVC_OK);
    CHECK_STATUS(kvc_pool_sequence_free(pool, seq), KVC_OK);
    return cached;
}

static uint8_t* drain(kvc_pool* pool, kvc_event_encoding encoding, size_t* length) {
    uint8_t* buf;
    CHECK_STATUS(kvc_pool_drain_events(pool, encoding, NULL, 0, length), KVC_OK);
    buf = (uint8_t*)malloc(*length);
    CHECK_STATUS(kvc_pool_drain_events(pool, encoding, buf, *length, length), KVC_OK);
    return buf;
}

static kvc_index* make_index(kvc_hash_algo algo, uint32_t block_size, uint32_t direct, uint32_t threads) {
    kvc_index_options* o = NULL;
    kvc_index* index = NULL;
    CHECK_STATUS(kvc_index_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_hash(o, algo, "42"), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_block_size(o, block_size), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_engine_keys_direct(o, direct), KVC_OK);
    if (threads != 0) CHECK_STATUS(kvc_index_options_set_ingest_threads(o, threads, 8), KVC_OK);
    CHECK_STATUS(kvc_index_create(o, &index), KVC_OK);
    kvc_index_options_destroy(o);
    return index;
}

/* Blocks pod-a's scoring finds for a prompt, with the score checked against gpu weight 1.0. */
static uint32_t scored_blocks(const kvc_index* index, const int32_t* tokens, size_t n, const kvc_sequence_options* so) {
    double score = -1;
    uint32_t blocks = 99;
    CHECK_STATUS(kvc_index_score_tokens(index, "m", tokens, n, so, pod_a, 1, &score, &blocks), KVC_OK);
    CHECK(score == (double)blocks);
    return blocks;
}

static void test_options(void) {
    kvc_index_options* o = NULL;
    kvc_index* index = NULL;
    CHECK_STATUS(kvc_index_options_create(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_create(&o), KVC_OK);
    kvc_index_options_destroy(NULL);

    CHECK_STATUS(kvc_index_options_set_hash(NULL, KVC_HASH_XXH3, "42"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_hash(o, KVC_HASH_XXH3, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_hash(o, (kvc_hash_algo)7, "42"), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "hash algorithm") != NULL);
    CHECK_STATUS(kvc_index_options_set_block_size(NULL, 16), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_block_size(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_block_size(o, 32), KVC_OK);
    /* Direct mode needs sha256_cbor: refused with xxh3 (the default), then accepted. */
    CHECK_STATUS(kvc_index_options_set_engine_keys_direct(o, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_hash(o, KVC_HASH_SHA256_CBOR, "7"), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_engine_keys_direct(o, 1), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_engine_keys_direct(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    /* ...and the hash cannot go back to xxh3 while direct. */
    CHECK_STATUS(kvc_index_options_set_hash(o, KVC_HASH_XXH3, "7"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_shards(o, 3), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_shards(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_shards(o, 8192), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_shards(o, 4), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_shards(NULL, 4), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_byte_budget(o, 4 * 36), KVC_ERR_INVALID_ARGUMENT); /* < 37 per shard */
    CHECK_STATUS(kvc_index_options_set_byte_budget(o, 4 * 37), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_byte_budget(o, 0), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_byte_budget(NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_max_orphan_blocks(o, 10), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_max_orphan_blocks(NULL, 10), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_tier_weight(o, (kvc_index_tier)5, 1.0), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "tier") != NULL);
    CHECK_STATUS(kvc_index_options_set_tier_weight(o, KVC_INDEX_TIER_CPU, -0.5), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_tier_weight(o, KVC_INDEX_TIER_CPU, 1001.0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_tier_weight(o, KVC_INDEX_TIER_CPU, 0.25), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_tier_weight(NULL, KVC_INDEX_TIER_CPU, 0.25), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_speculative_ttl_ms(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_speculative_ttl_ms(o, KVC_INDEX_MAX_SPECULATIVE_TTL_MS + 1),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_speculative_ttl_ms(o, 500), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_speculative_ttl_ms(NULL, 500), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_ingest_threads(o, 257, 8), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_ingest_threads(o, 2, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_ingest_threads(o, 2, 8), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_ingest_threads(NULL, 2, 8), KVC_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(kvc_index_create(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_create(o, &index), KVC_OK);
    CHECK(index != NULL);
    kvc_index_destroy(index);
    index = NULL;
    CHECK_STATUS(kvc_index_create(NULL, &index), KVC_OK); /* the defaults */
    kvc_index_destroy(index);
    kvc_index_destroy(NULL);
    kvc_index_options_destroy(o);
}

static void test_null_handles(void) {
    const int32_t tokens[1] = {1};
    const uint64_t keys[1] = {1};
    double score = 0;
    size_t count = 0;
    kvc_index_lookup_result* result = (kvc_index_lookup_result*)&count; /* must be reset to NULL */
    kvc_index* index = make_index(KVC_HASH_XXH3, BLOCK, 0, 0);

    CHECK_STATUS(kvc_index_apply_batch(NULL, "p", "m", NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_apply_batch(index, NULL, "m", NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_apply_batch(index, "p", NULL, NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_apply_batch(index, "p", "m", NULL, 4), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_submit_batch(NULL, "p", "m", NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_submit_batch(index, "p", "m", NULL, 4), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_flush(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_flush(index), KVC_OK); /* nothing queued, no threads */
    CHECK_STATUS(kvc_index_request_keys(NULL, tokens, 1, NULL, NULL, 0, &count), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_request_keys(index, NULL, 1, NULL, NULL, 0, &count), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_request_keys(index, tokens, 1, NULL, NULL, 3, &count), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_tokens(NULL, "m", tokens, 1, NULL, pod_a, 1, &score, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_tokens(index, NULL, tokens, 1, NULL, pod_a, 1, &score, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_tokens(index, "m", NULL, 1, NULL, pod_a, 1, &score, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_tokens(index, "m", tokens, 1, NULL, NULL, 1, &score, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_tokens(index, "m", tokens, 1, NULL, pod_a, 1, NULL, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_keys(NULL, "m", keys, 1, KVC_INDEX_KEY_REQUEST, pod_a, 1, &score, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_keys(index, "m", NULL, 1, KVC_INDEX_KEY_REQUEST, pod_a, 1, &score, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_keys(index, "m", keys, 1, (kvc_index_key_kind)2, pod_a, 1, &score, NULL),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "key kind") != NULL);
    {
        const char* const with_null[2] = {"pod-a", NULL};
        double two[2];
        CHECK_STATUS(kvc_index_score_keys(index, "m", keys, 1, KVC_INDEX_KEY_REQUEST, with_null, 2, two, NULL),
                     KVC_ERR_INVALID_ARGUMENT);
    }
    CHECK_STATUS(kvc_index_lookup(index, "m", keys, 1, KVC_INDEX_KEY_REQUEST, NULL, 0, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_lookup(NULL, "m", keys, 1, KVC_INDEX_KEY_REQUEST, NULL, 0, &result), KVC_ERR_INVALID_ARGUMENT);
    CHECK(result == NULL);
    CHECK_STATUS(kvc_index_lookup(index, "m", keys, 1, (kvc_index_key_kind)9, NULL, 0, &result), KVC_ERR_INVALID_ARGUMENT);
    CHECK(result == NULL);
    CHECK(kvc_index_lookup_result_keys_found(NULL) == 0);
    CHECK_STATUS(kvc_index_lookup_result_holders(NULL, 0, &count), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_lookup_result_holder(NULL, 0, 0, NULL, NULL, NULL, NULL), KVC_ERR_INVALID_ARGUMENT);
    kvc_index_lookup_result_destroy(NULL);
    CHECK_STATUS(kvc_index_add_speculative(NULL, "m", keys, 1, "p", 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add_speculative(index, "m", keys, 1, NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add_speculative(index, "m", NULL, 1, "p", 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add_speculative(index, "m", keys, 1, "p", KVC_INDEX_MAX_SPECULATIVE_TTL_MS + 1),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_expire_speculative(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_clear(NULL, "p", "m", 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_clear(index, "p", NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_clear(index, "nobody", "m", 0), KVC_ERR_NOT_FOUND);
    CHECK_STATUS(kvc_index_remove_pod(NULL, "p"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_remove_pod(index, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_remove_pod(index, "nobody"), KVC_ERR_NOT_FOUND);
    CHECK_STATUS(kvc_index_counters(NULL, NULL, 0, &count), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_counters(index, NULL, 2, &count), KVC_ERR_INVALID_ARGUMENT);
    kvc_index_destroy(index);
}

static void test_names_and_counters(void) {
    kvc_index* index = make_index(KVC_HASH_XXH3, BLOCK, 0, 0);
    uint64_t values[KVC_INDEX_COUNTER_COUNT + 2];
    size_t count = 0, i;
    CHECK(strcmp(kvc_index_counter_name(KVC_INDEX_COUNTER_KEYS), "keys") == 0);
    CHECK(strcmp(kvc_index_counter_name(KVC_INDEX_COUNTER_BATCHES_FAILED), "batches_failed") == 0);
    CHECK(strcmp(kvc_index_counter_name(KVC_INDEX_COUNTER_UNKNOWN_EVENTS), "unknown_events") == 0);
    CHECK(strcmp(kvc_index_counter_name(KVC_INDEX_COUNTER_COUNT), "unknown") == 0);
    CHECK(strcmp(kvc_index_counter_name((kvc_index_counter)-1), "unknown") == 0);
    CHECK(strcmp(kvc_index_tier_name(KVC_INDEX_TIER_GPU), "gpu") == 0);
    CHECK(strcmp(kvc_index_tier_name(KVC_INDEX_TIER_OTHER), "other") == 0);
    CHECK(strcmp(kvc_index_tier_name((kvc_index_tier)5), "unknown") == 0);
    CHECK_STATUS(kvc_index_counters(index, NULL, 0, &count), KVC_OK);
    CHECK(count == KVC_INDEX_COUNTER_COUNT);
    /* A smaller buffer gets the first counters; a larger one leaves the rest untouched. */
    for (i = 0; i < KVC_INDEX_COUNTER_COUNT + 2; ++i) values[i] = 777;
    CHECK_STATUS(kvc_index_counters(index, values, 2, &count), KVC_OK);
    CHECK(values[0] == 0 && values[1] == 0 && values[2] == 777);
    CHECK_STATUS(kvc_index_counters(index, values, KVC_INDEX_COUNTER_COUNT + 2, NULL), KVC_OK);
    /* A new index holds nothing and has done nothing; only its empty tables take memory. */
    for (i = 0; i < KVC_INDEX_COUNTER_COUNT; ++i) CHECK(i == KVC_INDEX_COUNTER_MEMORY_BYTES || values[i] == 0);
    CHECK(values[KVC_INDEX_COUNTER_COUNT] == 777);
    kvc_index_destroy(index);
}

/* The end-to-end check: the pool's events -> indexes in direct and mapped modes -> scores = cached prefix. */
static void test_pool_events(void) {
    kvc_pool* pool = make_pool();
    kvc_index* direct = make_index(KVC_HASH_SHA256_CBOR, BLOCK, 1, 0);
    kvc_index* mapped = make_index(KVC_HASH_XXH3, BLOCK, 0, 0);
    kvc_index* coarse = make_index(KVC_HASH_XXH3, 2 * BLOCK, 0, 0); /* many:1 */
    kvc_sequence_options* lora = NULL;
    uint8_t* payload;
    size_t length = 0, cached, count = 0, i;
    uint64_t keys[8], hashes[8], before_keys;
    const char* const pods3[3] = {"pod-a", "pod-unknown", "pod-a"};
    double scores[3];
    uint32_t blocks[3];

    CHECK_STATUS(kvc_sequence_options_create(&lora), KVC_OK);
    CHECK_STATUS(kvc_sequence_options_set_lora_name(lora, "adapter-1"), KVC_OK);
    run_prompt(pool, prompt_a, PROMPT, NULL);
    run_prompt(pool, prompt_a, PROMPT, lora);
    payload = drain(pool, KVC_EVENTS_MAP, &length);
    CHECK(length > 0);

    /* A malformed payload (truncated; one reserved byte) applies nothing and says why. */
    CHECK_STATUS(kvc_index_apply_batch(direct, "pod-a", "m", payload, length - 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strlen(kvc_last_error_message()) > 0);
    {
        const uint8_t reserved[1] = {0xc1};
        CHECK_STATUS(kvc_index_apply_batch(direct, "pod-a", "m", reserved, 1), KVC_ERR_INVALID_ARGUMENT);
    }
    CHECK_STATUS(kvc_index_apply_batch(direct, "pod-a", "m", NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK(counter(direct, KVC_INDEX_COUNTER_KEYS) == 0);
    CHECK(counter(direct, KVC_INDEX_COUNTER_BATCHES_APPLIED) == 0);
    CHECK(counter(direct, KVC_INDEX_COUNTER_BATCHES_FAILED) == 3);
    CHECK(scored_blocks(direct, prompt_a, PROMPT, NULL) == 0);

    CHECK_STATUS(kvc_index_apply_batch(direct, "pod-a", "m", payload, length), KVC_OK);
    CHECK_STATUS(kvc_index_apply_batch(mapped, "pod-a", "m", payload, length), KVC_OK);
    CHECK_STATUS(kvc_index_apply_batch(coarse, "pod-a", "m", payload, length), KVC_OK);
    CHECK(counter(direct, KVC_INDEX_COUNTER_BATCHES_APPLIED) == 1);
    CHECK(counter(direct, KVC_INDEX_COUNTER_BLOCKS_STORED) == 8);
    CHECK(counter(direct, KVC_INDEX_COUNTER_KEYS) == 8);
    CHECK(counter(direct, KVC_INDEX_COUNTER_HOLDERS) == 8);
    CHECK(counter(mapped, KVC_INDEX_COUNTER_ENGINE_BLOCKS) == 8);
    CHECK(counter(direct, KVC_INDEX_COUNTER_CHARGED_BYTES) == 8 * 37);

    /* Scores equal the pool's cached prefix, in each mode, with and without the LoRA. */
    cached = pool_cached(pool, prompt_a, PROMPT, NULL);
    CHECK(cached == 4 * BLOCK);
    CHECK(scored_blocks(direct, prompt_a, PROMPT, NULL) == cached / BLOCK);
    CHECK(scored_blocks(mapped, prompt_a, PROMPT, NULL) == cached / BLOCK);
    CHECK(scored_blocks(coarse, prompt_a, PROMPT, NULL) == cached / (2 * BLOCK));
    cached = pool_cached(pool, prompt_b, PROMPT, NULL);
    CHECK(cached == SHARED);
    CHECK(scored_blocks(direct, prompt_b, PROMPT, NULL) == cached / BLOCK);
    CHECK(scored_blocks(mapped, prompt_b, PROMPT, NULL) == cached / BLOCK);
    CHECK(scored_blocks(coarse, prompt_b, PROMPT, NULL) == cached / (2 * BLOCK));
    cached = pool_cached(pool, prompt_b, PROMPT, lora);
    CHECK(cached == SHARED);
    CHECK(scored_blocks(direct, prompt_b, PROMPT, lora) == cached / BLOCK);
    CHECK(scored_blocks(mapped, prompt_b, PROMPT, lora) == cached / BLOCK);
    {
        kvc_sequence_options* other = NULL;
        CHECK_STATUS(kvc_sequence_options_create(&other), KVC_OK);
        CHECK_STATUS(kvc_sequence_options_set_lora_name(other, "adapter-2"), KVC_OK);
        CHECK(pool_cached(pool, prompt_a, PROMPT, other) == 0);
        CHECK(scored_blocks(direct, prompt_a, PROMPT, other) == 0);
        CHECK(scored_blocks(mapped, prompt_a, PROMPT, other) == 0);
        kvc_sequence_options_destroy(other);
    }
    /* Another model has none of it. */
    {
        double s = -1;
        CHECK_STATUS(kvc_index_score_tokens(direct, "other-model", prompt_a, PROMPT, NULL, pod_a, 1, &s, NULL), KVC_OK);
        CHECK(s == 0);
    }
    /* One score per candidate name, duplicates and unknown pods included; blocks optional. */
    CHECK_STATUS(kvc_index_score_tokens(mapped, "m", prompt_b, PROMPT, NULL, pods3, 3, scores, blocks), KVC_OK);
    CHECK(scores[0] == 3.0 && scores[1] == 0.0 && scores[2] == 3.0);
    CHECK(blocks[0] == 3 && blocks[1] == 0 && blocks[2] == 3);
    CHECK_STATUS(kvc_index_score_tokens(mapped, "m", prompt_b, PROMPT, NULL, pods3, 0, NULL, NULL), KVC_OK);

    /* Request keys: in direct mode exactly the engine's (the pool's) hashes. */
    CHECK_STATUS(kvc_index_request_keys(direct, prompt_a, PROMPT, NULL, NULL, 0, &count), KVC_OK);
    CHECK(count == 4);
    CHECK_STATUS(kvc_index_request_keys(direct, prompt_a, PROMPT, NULL, keys, 3, &count), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 4);
    CHECK_STATUS(kvc_index_request_keys(direct, prompt_a, PROMPT, NULL, keys, 8, &count), KVC_OK);
    CHECK_STATUS(kvc_hash_blocks(KVC_HASH_SHA256_CBOR, "42", BLOCK, prompt_a, PROMPT, NULL, hashes, 8, &count), KVC_OK);
    CHECK(count == 4);
    for (i = 0; i < 4; ++i) CHECK(keys[i] == hashes[i]);
    {
        const int32_t negative[2] = {1, -1};
        CHECK_STATUS(kvc_index_request_keys(direct, negative, 2, NULL, NULL, 0, &count), KVC_ERR_INVALID_ARGUMENT);
    }

    /* Scoring by keys gives what scoring by tokens does; the engine kind has none of them in direct mode. */
    CHECK_STATUS(kvc_index_score_keys(direct, "m", keys, 4, KVC_INDEX_KEY_REQUEST, pods3, 3, scores, blocks), KVC_OK);
    CHECK(scores[0] == 4.0 && blocks[0] == 4 && scores[1] == 0.0 && scores[2] == 4.0);
    CHECK_STATUS(kvc_index_score_keys(direct, "m", keys, 4, KVC_INDEX_KEY_ENGINE, pods3, 3, scores, NULL), KVC_OK);
    CHECK(scores[0] == 0.0);
    keys[2] ^= 1; /* a missing middle key ends the run */
    CHECK_STATUS(kvc_index_score_keys(direct, "m", keys, 4, KVC_INDEX_KEY_REQUEST, pods3, 1, scores, blocks), KVC_OK);
    CHECK(scores[0] == 2.0 && blocks[0] == 2);
    keys[2] ^= 1;

    /* Lookup: per key the holders, stopping at the first key without one. */
    {
        kvc_index_lookup_result* r = NULL;
        const char* pod = NULL;
        uint32_t rank = 9, spec = 9;
        kvc_index_tier tier = KVC_INDEX_TIER_OTHER;
        const char* const nobody[1] = {"nobody"};
        CHECK_STATUS(kvc_index_lookup(direct, "m", keys, 4, KVC_INDEX_KEY_REQUEST, NULL, 0, &r), KVC_OK);
        CHECK(kvc_index_lookup_result_keys_found(r) == 4);
        for (i = 0; i < 4; ++i) {
            CHECK_STATUS(kvc_index_lookup_result_holders(r, i, &count), KVC_OK);
            CHECK(count == 1);
            CHECK_STATUS(kvc_index_lookup_result_holder(r, i, 0, &pod, &rank, &tier, &spec), KVC_OK);
            CHECK(pod != NULL && strcmp(pod, "pod-a") == 0);
            CHECK(rank == 0 && tier == KVC_INDEX_TIER_GPU && spec == 0);
        }
        CHECK_STATUS(kvc_index_lookup_result_holders(r, 4, &count), KVC_ERR_OUT_OF_RANGE);
        CHECK_STATUS(kvc_index_lookup_result_holder(r, 0, 1, &pod, NULL, NULL, NULL), KVC_ERR_OUT_OF_RANGE);
        CHECK_STATUS(kvc_index_lookup_result_holder(r, 0, 0, NULL, NULL, NULL, NULL), KVC_OK);
        CHECK_STATUS(kvc_index_lookup_result_holders(r, 0, NULL), KVC_ERR_INVALID_ARGUMENT);
        kvc_index_destroy(direct); /* the result outlives its index */
        direct = NULL;
        CHECK(strcmp(pod, "pod-a") == 0);
        kvc_index_lookup_result_destroy(r);

        direct = make_index(KVC_HASH_SHA256_CBOR, BLOCK, 1, 0);
        CHECK_STATUS(kvc_index_apply_batch(direct, "pod-a", "m", payload, length), KVC_OK);
        CHECK_STATUS(kvc_index_lookup(direct, "m", keys, 4, KVC_INDEX_KEY_REQUEST, nobody, 1, &r), KVC_OK);
        CHECK(kvc_index_lookup_result_keys_found(r) == 0);
        CHECK_STATUS(kvc_index_lookup_result_holders(r, 0, &count), KVC_ERR_OUT_OF_RANGE);
        kvc_index_lookup_result_destroy(r);
        keys[1] ^= 1;
        CHECK_STATUS(kvc_index_lookup(direct, "m", keys, 4, KVC_INDEX_KEY_REQUEST, pods3, 3, &r), KVC_OK);
        CHECK(kvc_index_lookup_result_keys_found(r) == 1);
        kvc_index_lookup_result_destroy(r);
        keys[1] ^= 1;
    }

    /* Clear (AllBlocksCleared of one rank of one model), then a second pod removed whole. */
    CHECK_STATUS(kvc_index_clear(direct, "pod-a", "m", 4096), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_clear(direct, "pod-a", "m", 1), KVC_OK); /* rank 1 holds nothing */
    CHECK(scored_blocks(direct, prompt_a, PROMPT, NULL) == 4);
    CHECK_STATUS(kvc_index_clear(direct, "pod-a", "m", 0), KVC_OK);
    CHECK(scored_blocks(direct, prompt_a, PROMPT, NULL) == 0);
    CHECK(counter(direct, KVC_INDEX_COUNTER_KEYS) == 0);
    CHECK(counter(direct, KVC_INDEX_COUNTER_CLEARS) == 2);
    CHECK_STATUS(kvc_index_apply_batch(direct, "pod-c", "m", payload, length), KVC_OK);
    before_keys = counter(direct, KVC_INDEX_COUNTER_KEYS);
    CHECK(before_keys == 8);
    CHECK_STATUS(kvc_index_remove_pod(direct, "pod-c"), KVC_OK);
    CHECK(counter(direct, KVC_INDEX_COUNTER_KEYS) == 0);
    CHECK_STATUS(kvc_index_remove_pod(direct, "pod-c"), KVC_ERR_NOT_FOUND);

    free(payload);
    kvc_sequence_options_destroy(lora);
    kvc_index_destroy(direct);
    kvc_index_destroy(mapped);
    kvc_index_destroy(coarse);
    kvc_pool_destroy(pool);
}

/* Speculative entries: scored like GPU blocks, shown as speculative, gone after their TTL. */
static void test_speculative(void) {
    kvc_index_options* o = NULL;
    kvc_index* index = NULL;
    uint64_t keys[4];
    size_t count = 0;
    double score = -1;
    uint32_t spec = 9;
    clock_t start;
    kvc_index_lookup_result* r = NULL;
    const char* const pod_b[1] = {"pod-b"};

    CHECK_STATUS(kvc_index_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_speculative_ttl_ms(o, 20), KVC_OK);
    CHECK_STATUS(kvc_index_create(o, &index), KVC_OK);
    kvc_index_options_destroy(o);
    CHECK_STATUS(kvc_index_request_keys(index, prompt_a, PROMPT, NULL, keys, 4, &count), KVC_OK);
    CHECK(count == 4);
    CHECK_STATUS(kvc_index_add_speculative(index, "m", keys, 3, "pod-b", 60000), KVC_OK); /* long-lived */
    CHECK_STATUS(kvc_index_score_tokens(index, "m", prompt_a, PROMPT, NULL, pod_b, 1, &score, NULL), KVC_OK);
    CHECK(score == 3.0);
    CHECK(counter(index, KVC_INDEX_COUNTER_SPECULATIVE) == 3);
    CHECK_STATUS(kvc_index_lookup(index, "m", keys, 4, KVC_INDEX_KEY_REQUEST, NULL, 0, &r), KVC_OK);
    CHECK(kvc_index_lookup_result_keys_found(r) == 3);
    CHECK_STATUS(kvc_index_lookup_result_holder(r, 0, 0, NULL, NULL, NULL, &spec), KVC_OK);
    CHECK(spec == 1);
    kvc_index_lookup_result_destroy(r);

    /* The default TTL (20 ms) for another pod: its score drops to 0 within a bounded wait. */
    CHECK_STATUS(kvc_index_add_speculative(index, "m", keys, 2, "pod-a", 0), KVC_OK);
    CHECK_STATUS(kvc_index_score_tokens(index, "m", prompt_a, PROMPT, NULL, pod_a, 1, &score, NULL), KVC_OK);
    CHECK(score == 2.0);
    start = clock();
    while (score != 0.0 && (double)(clock() - start) / CLOCKS_PER_SEC < 5.0) {
        CHECK_STATUS(kvc_index_score_tokens(index, "m", prompt_a, PROMPT, NULL, pod_a, 1, &score, NULL), KVC_OK);
    }
    CHECK(score == 0.0);
    CHECK_STATUS(kvc_index_expire_speculative(index), KVC_OK);
    CHECK(counter(index, KVC_INDEX_COUNTER_EXPIRED) == 2);
    CHECK(counter(index, KVC_INDEX_COUNTER_SPECULATIVE) == 3);
    kvc_index_destroy(index);
}

/* Holder h of key k of a lookup: its pod, rank and tier. */
static void check_holder(const kvc_index_lookup_result* r, size_t k, size_t h, const char* pod, uint32_t rank,
                         kvc_index_tier tier) {
    const char* name = NULL;
    uint32_t got_rank = 99, spec = 9;
    kvc_index_tier got_tier = KVC_INDEX_TIER_OTHER;
    CHECK_STATUS(kvc_index_lookup_result_holder(r, k, h, &name, &got_rank, &got_tier, &spec), KVC_OK);
    CHECK(name != NULL && strcmp(name, pod) == 0);
    CHECK(got_rank == rank && got_tier == tier && spec == 0);
}

/* llm-d's Add and Evict: the key mapping by counts, eviction by engine or request key, the checks. */
static void test_add_evict(void) {
    kvc_index* index = make_index(KVC_HASH_XXH3, BLOCK, 0, 0);
    const uint64_t engine[4] = {101, 102, 103, 104}, request[4] = {201, 202, 203, 204};
    const char* const pods[2] = {"pod-a", "pod-b"};
    const char* const only_b[1] = {"pod-b"};
    const char* const nobody[1] = {"pod-z"};
    const uint32_t ranks[2] = {0, 2};
    const kvc_index_tier tiers[2] = {KVC_INDEX_TIER_GPU, KVC_INDEX_TIER_CPU};
    const kvc_index_tier bad_tier[1] = {(kvc_index_tier)7};
    const uint32_t bad_rank[1] = {4096};
    const uint32_t rank2[1] = {2};
    const kvc_index_tier cpu[1] = {KVC_INDEX_TIER_CPU};
    double scores[2];
    uint32_t blocks[2];
    size_t holders = 0;
    kvc_index_lookup_result* r = NULL;

    /* 1:1 for two holders: pod-a (rank 0, gpu) and pod-b (rank 2, cpu). */
    CHECK_STATUS(kvc_index_add(index, "m", engine, 4, request, 4, pods, ranks, tiers, 2), KVC_OK);
    CHECK(counter(index, KVC_INDEX_COUNTER_KEYS) == 4);
    CHECK(counter(index, KVC_INDEX_COUNTER_HOLDERS) == 8);
    CHECK(counter(index, KVC_INDEX_COUNTER_ENGINE_BLOCKS) == 8);
    CHECK_STATUS(kvc_index_score_keys(index, "m", request, 4, KVC_INDEX_KEY_REQUEST, pods, 2, scores, blocks), KVC_OK);
    CHECK(scores[0] == 4.0 && blocks[0] == 4 && blocks[1] == 4);
    CHECK(scores[1] > 3.19 && scores[1] < 3.21); /* cpu weighs 0.8 */
    CHECK_STATUS(kvc_index_lookup(index, "m", request, 4, KVC_INDEX_KEY_REQUEST, only_b, 1, &r), KVC_OK);
    CHECK(kvc_index_lookup_result_keys_found(r) == 4);
    CHECK_STATUS(kvc_index_lookup_result_holders(r, 3, &holders), KVC_OK);
    CHECK(holders == 1);
    check_holder(r, 3, 0, "pod-b", 2, KVC_INDEX_TIER_CPU);
    kvc_index_lookup_result_destroy(r);

    /* Engine key 103 of pod-b's (rank 2, cpu): its run stops after two blocks; pod-a keeps four. */
    CHECK_STATUS(kvc_index_evict(index, "m", 103, KVC_INDEX_KEY_ENGINE, only_b, rank2, cpu, 1), KVC_OK);
    CHECK_STATUS(kvc_index_score_keys(index, "m", request, 4, KVC_INDEX_KEY_REQUEST, pods, 2, scores, blocks), KVC_OK);
    CHECK(blocks[0] == 4 && blocks[1] == 2);
    /* The wrong rank (NULL ranks: 0) evicts nothing; request key 201 for pod-a (NULL tiers: gpu) does. */
    CHECK_STATUS(kvc_index_evict(index, "m", 101, KVC_INDEX_KEY_ENGINE, only_b, NULL, cpu, 1), KVC_OK);
    CHECK_STATUS(kvc_index_evict(index, "m", 201, KVC_INDEX_KEY_REQUEST, pods, NULL, NULL, 1), KVC_OK);
    CHECK_STATUS(kvc_index_score_keys(index, "m", request, 4, KVC_INDEX_KEY_REQUEST, pods, 2, scores, blocks), KVC_OK);
    CHECK(blocks[0] == 0 && blocks[1] == 2);
    /* Unknown pods hold nothing: evicting them succeeds and changes nothing. */
    CHECK_STATUS(kvc_index_evict(index, "m", 202, KVC_INDEX_KEY_REQUEST, nobody, NULL, NULL, 1), KVC_OK);
    CHECK(counter(index, KVC_INDEX_COUNTER_HOLDERS) == 6);

    /* Many:1 (engine blocks half the size): engine keys 2i, 2i+1 make request key i; no ranks, no tiers. */
    CHECK_STATUS(kvc_index_add(index, "m2", engine, 4, request, 2, only_b, NULL, NULL, 1), KVC_OK);
    CHECK_STATUS(kvc_index_evict(index, "m2", 104, KVC_INDEX_KEY_ENGINE, only_b, NULL, NULL, 1), KVC_OK);
    CHECK_STATUS(kvc_index_score_keys(index, "m2", request, 2, KVC_INDEX_KEY_REQUEST, only_b, 1, scores, blocks), KVC_OK);
    CHECK(blocks[0] == 1);
    /* 1:many, and request keys only (engine_keys NULL). */
    CHECK_STATUS(kvc_index_add(index, "m3", engine, 1, request, 4, only_b, NULL, NULL, 1), KVC_OK);
    CHECK_STATUS(kvc_index_add(index, "m4", NULL, 0, request, 4, only_b, NULL, NULL, 1), KVC_OK);
    CHECK_STATUS(kvc_index_evict(index, "m3", 101, KVC_INDEX_KEY_ENGINE, only_b, NULL, NULL, 1), KVC_OK);
    CHECK_STATUS(kvc_index_evict(index, "m4", 101, KVC_INDEX_KEY_ENGINE, only_b, NULL, NULL, 1), KVC_OK);
    CHECK_STATUS(kvc_index_score_keys(index, "m3", request, 4, KVC_INDEX_KEY_REQUEST, only_b, 1, scores, blocks), KVC_OK);
    CHECK(blocks[0] == 0);
    CHECK_STATUS(kvc_index_score_keys(index, "m4", request, 4, KVC_INDEX_KEY_REQUEST, only_b, 1, scores, blocks), KVC_OK);
    CHECK(blocks[0] == 4);

    /* Refused, naming nothing: bad counts, no entries, a bad rank or tier, NULL arrays, a NULL pod. */
    CHECK_STATUS(kvc_index_add(index, "m", engine, 3, request, 2, pods, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "engine keys") != NULL);
    CHECK_STATUS(kvc_index_add(index, "m", engine, 2, request, 0, nobody, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add(index, "m", engine, 2, request, 2, nobody, NULL, NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add(index, "m", engine, 2, request, 2, nobody, bad_rank, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add(index, "m", engine, 2, request, 2, nobody, NULL, bad_tier, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "tier") != NULL);
    CHECK_STATUS(kvc_index_add(index, "m", NULL, 2, request, 2, nobody, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add(index, "m", engine, 2, NULL, 2, nobody, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add(index, "m", engine, 2, request, 2, NULL, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add(NULL, "m", engine, 2, request, 2, nobody, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_add(index, NULL, engine, 2, request, 2, nobody, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    {
        const char* const with_null[2] = {"pod-z", NULL};
        const char* const with_empty[1] = {""};
        CHECK_STATUS(kvc_index_add(index, "m", engine, 2, request, 2, with_null, NULL, NULL, 2), KVC_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(kvc_index_add(index, "m", engine, 2, request, 2, with_empty, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    }
    CHECK_STATUS(kvc_index_remove_pod(index, "pod-z"), KVC_ERR_NOT_FOUND); /* never named */
    CHECK_STATUS(kvc_index_evict(index, "m", 1, KVC_INDEX_KEY_REQUEST, pods, NULL, NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_evict(index, "m", 1, (kvc_index_key_kind)5, pods, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_evict(index, "m", 1, KVC_INDEX_KEY_REQUEST, pods, bad_rank, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_evict(index, "m", 1, KVC_INDEX_KEY_REQUEST, pods, NULL, bad_tier, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_evict(NULL, "m", 1, KVC_INDEX_KEY_REQUEST, pods, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_evict(index, "m", 1, KVC_INDEX_KEY_REQUEST, NULL, NULL, NULL, 1), KVC_ERR_INVALID_ARGUMENT);

    /* A routing decision is withdrawn without touching confirmed holders. */
    CHECK_STATUS(kvc_index_add_speculative(index, "m5", request, 2, "pod-a", 60000), KVC_OK);
    CHECK_STATUS(kvc_index_add(index, "m5", NULL, 0, request, 1, pods, NULL, NULL, 1), KVC_OK);
    CHECK_STATUS(kvc_index_remove_speculative(index, "m5", request, 2, "pod-a"), KVC_OK);
    CHECK_STATUS(kvc_index_remove_speculative(index, "m5", request, 2, "pod-z"), KVC_OK);
    CHECK_STATUS(kvc_index_remove_speculative(index, "m5", NULL, 2, "pod-a"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_score_keys(index, "m5", request, 2, KVC_INDEX_KEY_REQUEST, pods, 1, scores, blocks), KVC_OK);
    CHECK(blocks[0] == 1);
    CHECK(counter(index, KVC_INDEX_COUNTER_SPECULATIVE) == 0);
    CHECK_STATUS(kvc_index_evict(index, "m5", 201, KVC_INDEX_KEY_REQUEST, pods, NULL, NULL, 1), KVC_OK);

    /* Removing the pod drops its holders and its mapping. */
    CHECK_STATUS(kvc_index_remove_pod(index, "pod-b"), KVC_OK);
    CHECK(counter(index, KVC_INDEX_COUNTER_ENGINE_BLOCKS) == 4); /* pod-a's: a request-key evict keeps them */
    CHECK_STATUS(kvc_index_remove_pod(index, "pod-a"), KVC_OK);
    CHECK(counter(index, KVC_INDEX_COUNTER_KEYS) == 0);
    CHECK(counter(index, KVC_INDEX_COUNTER_ENGINE_BLOCKS) == 0);
    kvc_index_destroy(index);
}

/* The score cache: its option, its counters, results equal to the uncached path's, and a write that
 * touches the prompt (a clear of the pod) making the cached result stale. */
static void test_score_cache(void) {
    kvc_index_options* o = NULL;
    kvc_index* index = NULL;
    kvc_pool* pool = make_pool();
    uint8_t* payload;
    size_t length = 0, count = 0, i;
    uint64_t keys[4];
    const char* const pods[3] = {"pod-b", "pod-a", "pod-unknown"};
    double cached[3], uncached[3];
    uint32_t cached_blocks[3], uncached_blocks[3];

    CHECK(strcmp(kvc_index_counter_name(KVC_INDEX_COUNTER_SCORE_CACHE_HITS), "score_cache_hits") == 0);
    CHECK(strcmp(kvc_index_counter_name(KVC_INDEX_COUNTER_SCORE_CACHE_MISSES), "score_cache_misses") == 0);
    CHECK(strcmp(kvc_index_counter_name(KVC_INDEX_COUNTER_SCORE_CACHE_INVALIDATIONS), "score_cache_invalidations") == 0);
    CHECK_STATUS(kvc_index_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_score_cache(NULL, 16, 1000, 4), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_score_cache(o, 16, 0, 4), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "TTL") != NULL);
    CHECK_STATUS(kvc_index_options_set_score_cache(o, 16, 1000, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_score_cache(o, 16, 1000, 65), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_score_cache(o, 0, 0, 0), KVC_OK); /* off: the rest unchecked */
    CHECK_STATUS(kvc_index_options_set_score_cache(o, 16, 60000, 4), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_hash(o, KVC_HASH_SHA256_CBOR, "42"), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_engine_keys_direct(o, 1), KVC_OK);
    CHECK_STATUS(kvc_index_create(o, &index), KVC_OK);
    kvc_index_options_destroy(o);

    run_prompt(pool, prompt_a, PROMPT, NULL);
    payload = drain(pool, KVC_EVENTS_ARRAY, &length);
    CHECK_STATUS(kvc_index_apply_batch(index, "pod-a", "m", payload, length), KVC_OK);
    free(payload);
    CHECK_STATUS(kvc_index_request_keys(index, prompt_a, PROMPT, NULL, keys, 4, &count), KVC_OK);
    CHECK_STATUS(kvc_index_add_speculative(index, "m", keys, 2, "pod-b", 60000), KVC_OK);
    CHECK_STATUS(kvc_index_score_keys(index, "m", keys, 4, KVC_INDEX_KEY_REQUEST, pods, 3, uncached, uncached_blocks),
                 KVC_OK);
    CHECK(uncached_blocks[0] == 2 && uncached_blocks[1] == 4 && uncached_blocks[2] == 0);
    for (i = 0; i < 2; ++i) {
        CHECK_STATUS(kvc_index_score_tokens(index, "m", prompt_a, PROMPT, NULL, pods, 3, cached, cached_blocks), KVC_OK);
        CHECK(memcmp(cached, uncached, sizeof cached) == 0);
        CHECK(memcmp(cached_blocks, uncached_blocks, sizeof cached_blocks) == 0);
    }
    CHECK(counter(index, KVC_INDEX_COUNTER_SCORE_CACHE_MISSES) == 1);
    CHECK(counter(index, KVC_INDEX_COUNTER_SCORE_CACHE_HITS) == 1);
    CHECK(counter(index, KVC_INDEX_COUNTER_SCORE_CACHE_INVALIDATIONS) == 0);

    CHECK_STATUS(kvc_index_clear(index, "pod-a", "m", 0), KVC_OK);
    CHECK_STATUS(kvc_index_score_tokens(index, "m", prompt_a, PROMPT, NULL, pods, 3, cached, cached_blocks), KVC_OK);
    CHECK(cached_blocks[0] == 2 && cached_blocks[1] == 0 && cached[1] == 0.0);
    CHECK(counter(index, KVC_INDEX_COUNTER_SCORE_CACHE_MISSES) == 2);
    CHECK(counter(index, KVC_INDEX_COUNTER_SCORE_CACHE_INVALIDATIONS) == 1);
    kvc_index_destroy(index);
    kvc_pool_destroy(pool);
}

/* Ingest threads: submitted batches apply after a flush; malformed ones are refused at once. */
static void test_submit(void) {
    kvc_pool* pool = make_pool();
    kvc_index* plain = make_index(KVC_HASH_XXH3, BLOCK, 0, 0);
    kvc_index* threaded = make_index(KVC_HASH_XXH3, BLOCK, 0, 2);
    uint8_t* payload;
    size_t length = 0;
    const char* names[4] = {"pod-a", "pod-b", "pod-c", "pod-d"};
    double scores[4];
    size_t i;

    run_prompt(pool, prompt_a, PROMPT, NULL);
    payload = drain(pool, KVC_EVENTS_ARRAY, &length);
    CHECK_STATUS(kvc_index_submit_batch(plain, "pod-a", "m", payload, length), KVC_ERR_INVALID_STATE);
    CHECK_STATUS(kvc_index_submit_batch(threaded, "pod-a", "m", payload, length - 2), KVC_ERR_INVALID_ARGUMENT);
    for (i = 0; i < 4; ++i) CHECK_STATUS(kvc_index_submit_batch(threaded, names[i], "m", payload, length), KVC_OK);
    CHECK_STATUS(kvc_index_flush(threaded), KVC_OK);
    CHECK_STATUS(kvc_index_score_tokens(threaded, "m", prompt_b, PROMPT, NULL, names, 4, scores, NULL), KVC_OK);
    for (i = 0; i < 4; ++i) CHECK(scores[i] == 3.0);
    CHECK(counter(threaded, KVC_INDEX_COUNTER_BATCHES_APPLIED) == 4);
    CHECK(counter(threaded, KVC_INDEX_COUNTER_BATCHES_FAILED) == 1);
    /* A clear goes through the pod's queue; remove_pod flushes first. */
    CHECK_STATUS(kvc_index_clear(threaded, "pod-a", "m", 0), KVC_OK);
    CHECK_STATUS(kvc_index_remove_pod(threaded, "pod-b"), KVC_OK);
    CHECK_STATUS(kvc_index_score_tokens(threaded, "m", prompt_b, PROMPT, NULL, names, 4, scores, NULL), KVC_OK);
    CHECK(scores[0] == 0.0 && scores[1] == 0.0 && scores[2] == 3.0 && scores[3] == 3.0);
    /* Queued batches are applied before destroy returns (nothing to observe after, but nothing leaks or hangs). */
    CHECK_STATUS(kvc_index_submit_batch(threaded, "pod-e", "m", payload, length), KVC_OK);
    free(payload);
    kvc_index_destroy(plain);
    kvc_index_destroy(threaded);
    kvc_pool_destroy(pool);
}

/* Redis mode's options without a server: the url's syntax, a refused connection naming the server,
 * and a build without Redis saying so. */
static void test_redis_options(void) {
    kvc_index_options* o = NULL;
    kvc_index* index = NULL;
    kvc_status st;
    CHECK_STATUS(kvc_index_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_redis(NULL, "redis://127.0.0.1:1"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_redis(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_redis_key_prefix(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_redis_key_ttl_ms(o, (uint64_t)1 << 41), KVC_ERR_INVALID_ARGUMENT);
    st = kvc_index_options_set_redis(o, "redis://127.0.0.1:1");
    if (st == KVC_ERR_UNSUPPORTED) {
        CHECK(strstr(kvc_last_error_message(), "without Redis") != NULL);
        kvc_index_options_destroy(o);
        return;
    }
    CHECK_STATUS(st, KVC_OK);
    CHECK_STATUS(kvc_index_options_set_redis(o, "http://127.0.0.1:6379"), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "http://127.0.0.1:6379") != NULL);
    CHECK_STATUS(kvc_index_options_set_redis(o, "redis://"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_redis(o, "redis://host:0"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_redis(o, "redis://host:99999"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_redis(o, "redis://host/db"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_redis(o, "unix://relative.sock"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_index_options_set_redis(o, "rediss://host"), KVC_ERR_UNSUPPORTED);
    /* The budget is the server's in Redis mode. */
    CHECK_STATUS(kvc_index_options_set_byte_budget(o, 1u << 20), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "maxmemory") != NULL);
    CHECK_STATUS(kvc_index_options_set_redis_key_ttl_ms(o, 60000), KVC_OK);
    CHECK_STATUS(kvc_index_options_set_redis_key_prefix(o, "router-a:"), KVC_OK);
    /* The last accepted url stays; nothing listens on port 1. */
    CHECK_STATUS(kvc_index_create(o, &index), KVC_ERR_IO);
    CHECK(index == NULL);
    CHECK(strstr(kvc_last_error_message(), "127.0.0.1:1") != NULL);
    CHECK_STATUS(kvc_index_options_set_redis(o, ""), KVC_OK);
    CHECK_STATUS(kvc_index_create(o, &index), KVC_OK);
    CHECK(counter(index, KVC_INDEX_COUNTER_REDIS_ERRORS) == 0);
    CHECK(strcmp(kvc_index_counter_name(KVC_INDEX_COUNTER_REDIS_RECONNECTS), "redis_reconnects") == 0);
    kvc_index_destroy(index);
    kvc_index_options_destroy(o);
}

int main(void) {
    make_prompts();
    test_options();
    test_null_handles();
    test_names_and_counters();
    test_pool_events();
    test_speculative();
    test_add_evict();
    test_score_cache();
    test_submit();
    test_redis_options();
    if (failures != 0) {
        fprintf(stderr, "c_api_index: %d checks failed\n", failures);
        return 1;
    }
    printf("c_api_index: all checks passed\n");
    return 0;
}
