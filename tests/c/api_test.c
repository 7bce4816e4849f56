/* SPDX-License-Identifier: Apache-2.0 */
/* A plain-C test of the public API: what a C embedder sees, error paths included. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcore/kvcore.h"

#include "check.h"

static void test_version_and_status(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", KVC_VERSION_MAJOR, KVC_VERSION_MINOR, KVC_VERSION_PATCH);
    CHECK(kvc_version_number() == KVC_VERSION_NUMBER);
    CHECK(strcmp(kvc_version_string(), expected) == 0);
    CHECK(strcmp(kvc_status_string(KVC_OK), "KVC_OK") == 0);
    CHECK(strcmp(kvc_status_string(KVC_ERR_CAPACITY), "KVC_ERR_CAPACITY") == 0);
    CHECK(strcmp(kvc_status_string((kvc_status)999), "KVC_ERR_UNKNOWN") == 0);
    CHECK(kvc_last_error_message() != NULL);
}

static void test_bad_input(void) {
    kvc_recorder_options* options = NULL;
    kvc_recorder* recorder = NULL;
    kvc_stats* stats = NULL;
    uint64_t hits = 0;
    double rate = 0;

    CHECK_STATUS(kvc_recorder_create(NULL, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "out is NULL") != NULL);
    CHECK_STATUS(kvc_recorder_record_access(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_record_accesses(NULL, NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "recorder is NULL") != NULL);
    CHECK_STATUS(kvc_recorder_snapshot(NULL, &stats), KVC_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(kvc_recorder_options_create(&options), KVC_OK);
    CHECK_STATUS(kvc_recorder_options_set_window_accesses(options, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "window_accesses") != NULL);
    CHECK_STATUS(kvc_recorder_options_set_window_seconds(options, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_options_set_layers(options, KVC_STATS_MAX_LAYERS + 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_options_set_component(options, "bad-name"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_options_set_component(options, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_options_set_layers(options, 2), KVC_OK);

    CHECK_STATUS(kvc_recorder_create(options, &recorder), KVC_OK);
    kvc_recorder_options_destroy(options); /* the recorder keeps its own copy */
    CHECK_STATUS(kvc_recorder_record_layer_access(recorder, 2, 1), KVC_ERR_OUT_OF_RANGE);
    CHECK(strstr(kvc_last_error_message(), "layer 2 is out of range") != NULL);
    CHECK_STATUS(kvc_recorder_record_tokens(recorder, 3, 4), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_add_bytes(recorder, -1), KVC_ERR_INVALID_ARGUMENT);

    /* failed calls changed nothing */
    CHECK_STATUS(kvc_recorder_snapshot(recorder, &stats), KVC_OK);
    CHECK(kvc_stats_lookups(stats) == 0);
    CHECK(kvc_stats_tokens_queried(stats) == 0);
    CHECK(kvc_stats_bytes_in_use(stats) == 0);
    CHECK_STATUS(kvc_stats_layer_counts(stats, 5, &hits, NULL), KVC_ERR_OUT_OF_RANGE);
    CHECK_STATUS(kvc_stats_layer_hit_rate(stats, 0, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_stats_layer_hit_rate(stats, 0, &rate), KVC_OK);
    CHECK(rate == 0.0);

    /* NULL snapshot getters read as zero; destroy accepts NULL */
    CHECK(kvc_stats_hits(NULL) == 0);
    CHECK(strcmp(kvc_stats_component(NULL), "") == 0);
    kvc_stats_destroy(NULL);
    kvc_recorder_destroy(NULL);
    kvc_recorder_options_destroy(NULL);

    kvc_stats_destroy(stats);
    kvc_recorder_destroy(recorder);
}

static void test_recording_and_export(void) {
    kvc_recorder* recorder = NULL;
    kvc_stats* stats = NULL;
    size_t length = 0;
    char small[8];
    char* text;
    int i;
    uint8_t hits[500];

    CHECK_STATUS(kvc_recorder_create(NULL, &recorder), KVC_OK);
    memset(hits, 1, sizeof hits);
    for (i = 0; i < 1000; ++i) CHECK_STATUS(kvc_recorder_record_access(recorder, 0), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_accesses(recorder, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_record_accesses(recorder, hits, 0), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_accesses(recorder, hits, sizeof hits - 64), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_access_bits(recorder, UINT64_MAX, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "count must be 1..64") != NULL);
    CHECK_STATUS(kvc_recorder_record_access_bits(recorder, UINT64_MAX, 65), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_record_access_bits(NULL, UINT64_MAX, 64), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_record_access_bits(recorder, UINT64_MAX, 64), KVC_OK); /* the last 64 hits */
    CHECK_STATUS(kvc_recorder_record_insertions(recorder, 3), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_evictions(recorder, 2), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_memory_pressure(recorder), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_tokens(recorder, 64, 48), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_reused_tokens(recorder, 47), KVC_OK);
    CHECK_STATUS(kvc_recorder_add_bytes(recorder, 4096), KVC_OK);
    CHECK_STATUS(kvc_recorder_set_bytes(recorder, 1024), KVC_OK);
    CHECK_STATUS(kvc_recorder_snapshot(recorder, &stats), KVC_OK);

    CHECK(strcmp(kvc_stats_component(stats), "cache") == 0);
    CHECK(kvc_stats_hits(stats) == 500);
    CHECK(kvc_stats_misses(stats) == 1000);
    CHECK(kvc_stats_lookups(stats) == 1500);
    CHECK(fabs(kvc_stats_hit_rate(stats) - 1.0 / 3.0) < 1e-12);
    CHECK(kvc_stats_window_size(stats) == 1000);
    CHECK(kvc_stats_window_lookups(stats) == 1000);
    CHECK(kvc_stats_window_hits(stats) == 500);
    CHECK(kvc_stats_window_hit_rate(stats) == 0.5);
    CHECK(kvc_stats_window_seconds(stats) == 60);
    CHECK(kvc_stats_time_window_lookups(stats) == 1500);
    CHECK(kvc_stats_time_window_hits(stats) == 500);
    CHECK(kvc_stats_insertions(stats) == 3);
    CHECK(kvc_stats_evictions(stats) == 2);
    CHECK(kvc_stats_memory_pressure_events(stats) == 1);
    CHECK(kvc_stats_tokens_queried(stats) == 64);
    CHECK(kvc_stats_tokens_hit(stats) == 48);
    CHECK(kvc_stats_tokens_reused(stats) == 47);
    CHECK(kvc_stats_token_hit_rate(stats) == 0.75);
    CHECK(kvc_stats_bytes_in_use(stats) == 1024);
    CHECK(kvc_stats_peak_bytes(stats) == 4096);
    CHECK(kvc_stats_layers(stats) == 0);

    /* size query, too-small buffer left untouched, then a real export */
    CHECK_STATUS(kvc_stats_to_prometheus(stats, NULL, 0, &length), KVC_OK);
    CHECK(length > 100);
    memset(small, 'x', sizeof small);
    CHECK_STATUS(kvc_stats_to_prometheus(stats, small, sizeof small, NULL), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK(small[0] == 'x');
    CHECK_STATUS(kvc_stats_to_prometheus(stats, NULL, 10, NULL), KVC_ERR_INVALID_ARGUMENT);
    text = (char*)malloc(length + 1);
    CHECK_STATUS(kvc_stats_to_prometheus(stats, text, length + 1, NULL), KVC_OK);
    CHECK(strlen(text) == length);
    CHECK(strstr(text, "kvcore_misses_total{component=\"cache\"} 1000\n") != NULL);
    free(text);

    CHECK_STATUS(kvc_stats_to_json(stats, NULL, 0, &length), KVC_OK);
    text = (char*)malloc(length + 1);
    CHECK_STATUS(kvc_stats_to_json(stats, text, length + 1, &length), KVC_OK);
    CHECK(text[0] == '{' && text[length - 1] == '}');
    CHECK(strstr(text, "\"hits\":500") != NULL);
    free(text);

    kvc_stats_destroy(stats);
    kvc_recorder_destroy(recorder);
}

/* Counts the occurrences of needle in text. */
static int count_of(const char* text, const char* needle) {
    int n = 0;
    for (const char* at = strstr(text, needle); at != NULL; at = strstr(at + 1, needle)) ++n;
    return n;
}

static kvc_stats* snapshot_of(const char* component, uint32_t hits, uint32_t misses) {
    kvc_recorder_options* options = NULL;
    kvc_recorder* recorder = NULL;
    kvc_stats* stats = NULL;
    uint32_t i;
    CHECK_STATUS(kvc_recorder_options_create(&options), KVC_OK);
    CHECK_STATUS(kvc_recorder_options_set_component(options, component), KVC_OK);
    CHECK_STATUS(kvc_recorder_create(options, &recorder), KVC_OK);
    for (i = 0; i < hits + misses; ++i) CHECK_STATUS(kvc_recorder_record_access(recorder, i < hits), KVC_OK);
    CHECK_STATUS(kvc_recorder_snapshot(recorder, &stats), KVC_OK);
    kvc_recorder_destroy(recorder);
    kvc_recorder_options_destroy(options);
    return stats;
}

static void test_exposition(void) {
    kvc_exposition* exposition = NULL;
    kvc_stats* pool = snapshot_of("pool", 3, 1);
    kvc_stats* store = snapshot_of("store", 0, 2);
    kvc_stats* pool_again = snapshot_of("pool", 1, 0);
    size_t length = 0;
    char* text;

    CHECK_STATUS(kvc_exposition_create(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_exposition_create(&exposition), KVC_OK);
    CHECK_STATUS(kvc_exposition_add(NULL, pool), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_exposition_add(exposition, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_exposition_add(exposition, pool), KVC_OK);
    CHECK_STATUS(kvc_exposition_add(exposition, store), KVC_OK);
    CHECK_STATUS(kvc_exposition_add(exposition, pool_again), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "\"pool\" is already") != NULL);
    kvc_stats_destroy(pool); /* the exposition holds copies */
    kvc_stats_destroy(store);
    kvc_stats_destroy(pool_again);

    CHECK_STATUS(kvc_exposition_to_prometheus(NULL, NULL, 0, &length), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_exposition_to_prometheus(exposition, NULL, 0, &length), KVC_OK);
    text = (char*)malloc(length + 1);
    CHECK_STATUS(kvc_exposition_to_prometheus(exposition, text, length, NULL), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(kvc_exposition_to_prometheus(exposition, text, length + 1, NULL), KVC_OK);
    CHECK(strlen(text) == length);
    CHECK(count_of(text, "# HELP kvcore_hits_total ") == 1);
    CHECK(count_of(text, "# TYPE kvcore_hit_rate gauge") == 1);
    CHECK(strstr(text, "kvcore_hits_total{component=\"pool\"} 3\nkvcore_hits_total{component=\"store\"} 0\n") != NULL);
    CHECK(strstr(text, "kvcore_misses_total{component=\"store\"} 2\n") != NULL);
    free(text);
    kvc_exposition_destroy(exposition);
    kvc_exposition_destroy(NULL);
}

static void test_pool(void) {
    kvc_pool_options* options = NULL;
    kvc_sequence_options* salted = NULL;
    kvc_pool* pool = NULL;
    kvc_sequence_id a = 0, b = 0, child = 0;
    int32_t prompt[10];
    int32_t table[8];
    int32_t pairs[4];
    int64_t slots[10];
    uint64_t hashes[4];
    uint8_t* events;
    size_t n = 0, cached = 0, length = 0;
    int32_t bad = -1, one = 7;
    int i;

    for (i = 0; i < 10; ++i) prompt[i] = 100 + i;
    CHECK_STATUS(kvc_pool_options_create(&options), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(options, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "num_blocks") != NULL);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(options, 9), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_block_size(options, 4), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_hash(options, KVC_HASH_SHA256_CBOR, "42"), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_events(options, 1, "GPU", 1000), KVC_OK);
    CHECK_STATUS(kvc_pool_create(options, &pool), KVC_OK);
    kvc_pool_options_destroy(options);

    CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, 10, NULL, &a), KVC_OK);
    CHECK_STATUS(kvc_pool_allocate(pool, a, 10, &cached), KVC_OK);
    CHECK(cached == 0);
    CHECK_STATUS(kvc_pool_block_table(pool, a, NULL, 0, &n), KVC_OK);
    CHECK(n == 3);
    CHECK_STATUS(kvc_pool_block_table(pool, a, table, 2, &n), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(kvc_pool_block_table(pool, a, table, 8, &n), KVC_OK);
    CHECK_STATUS(kvc_pool_slot_mapping(pool, a, 0, slots, 10), KVC_OK);
    CHECK(slots[5] == (int64_t)table[1] * 4 + 1);
    CHECK_STATUS(kvc_pool_slot_mapping(pool, a, 5, slots, 6), KVC_ERR_OUT_OF_RANGE);

    /* the same prompt hits 2 blocks; a salted one hits none */
    CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, 10, NULL, &b), KVC_OK);
    CHECK_STATUS(kvc_pool_cached_prefix(pool, b, &cached), KVC_OK);
    CHECK(cached == 8);
    CHECK_STATUS(kvc_sequence_options_create(&salted), KVC_OK);
    CHECK_STATUS(kvc_sequence_options_set_cache_salt(salted, "tenant-1"), KVC_OK);
    CHECK_STATUS(kvc_sequence_options_set_lora_id(salted, -1), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "lora_id must be >= 0") != NULL);
    CHECK_STATUS(kvc_sequence_options_set_lora_id(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_sequence_options_set_lora_id(salted, 0), KVC_OK); /* none, as by default */
    CHECK_STATUS(kvc_sequence_options_set_priority(salted, 101, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_pool_sequence_free(pool, b), KVC_OK);
    CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, 10, salted, &b), KVC_OK);
    CHECK_STATUS(kvc_pool_cached_prefix(pool, b, &cached), KVC_OK);
    CHECK(cached == 0);
    CHECK_STATUS(kvc_pool_sequence_free(pool, b), KVC_OK);
    CHECK_STATUS(kvc_pool_sequence_free(pool, b), KVC_ERR_INVALID_STATE);
    kvc_sequence_options_destroy(salted);

    /* fork, then a write into the shared half-full block asks for a copy */
    CHECK_STATUS(kvc_pool_fork(pool, a, &child), KVC_OK);
    CHECK_STATUS(kvc_pool_append(pool, child, &one, 1), KVC_OK);
    CHECK_STATUS(kvc_pool_drain_copies(pool, NULL, 0, &n), KVC_OK);
    CHECK(n == 1);
    CHECK_STATUS(kvc_pool_drain_copies(pool, pairs, 2, &n), KVC_OK);
    CHECK(pairs[0] == table[2] && pairs[1] != table[2]);
    CHECK_STATUS(kvc_pool_append(pool, child, &bad, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_pool_append(pool, child, NULL, 1), KVC_ERR_INVALID_ARGUMENT);

    /* events: size query, too small, drained */
    CHECK_STATUS(kvc_pool_drain_events(pool, KVC_EVENTS_MAP, NULL, 0, &length), KVC_OK);
    CHECK(length > 20);
    events = (uint8_t*)malloc(length);
    CHECK_STATUS(kvc_pool_drain_events(pool, KVC_EVENTS_MAP, events, length - 1, &length), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(kvc_pool_drain_events(pool, KVC_EVENTS_MAP, events, length, &length), KVC_OK);
    /* vLLM's EventBatch stays a positional array [ts, events, data_parallel_rank] in map encoding too
     * (only the events are maps), and ts is always a float64 (0xcb) */
    CHECK(events[0] == 0x93);
    CHECK(events[1] == 0xcb);
    free(events);

    CHECK(kvc_pool_num_blocks(pool) == 9);
    CHECK(kvc_pool_num_blocks_in_use(pool) == 4);
    CHECK(kvc_pool_num_sequences(pool) == 2);
    CHECK(kvc_pool_memory_efficiency(pool) > 0.6);
    CHECK_STATUS(kvc_pool_reset_prefix_cache(pool), KVC_ERR_INVALID_STATE);
    CHECK_STATUS(kvc_pool_sequence_free(pool, a), KVC_OK);
    CHECK_STATUS(kvc_pool_sequence_free(pool, child), KVC_OK);
    CHECK(kvc_pool_num_free_blocks(pool) == 8);
    CHECK_STATUS(kvc_pool_sequence_free(NULL, a), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_pool_sequence_free(pool, 12345), KVC_ERR_INVALID_ARGUMENT);
    kvc_pool_destroy(pool);
    kvc_pool_destroy(NULL);

    /* hashing without a pool */
    CHECK_STATUS(kvc_hash_blocks(KVC_HASH_SHA256_CBOR, "42", 4, prompt, 10, NULL, NULL, 0, &n), KVC_OK);
    CHECK(n == 2);
    CHECK_STATUS(kvc_hash_blocks(KVC_HASH_SHA256_CBOR, "42", 4, prompt, 10, NULL, hashes, 4, &n), KVC_OK);
    CHECK(hashes[0] != hashes[1]);
    CHECK_STATUS(kvc_hash_blocks(KVC_HASH_XXH3, "42", 0, prompt, 10, NULL, hashes, 4, &n), KVC_ERR_INVALID_ARGUMENT);
}

/* Device memory: a pool on the current CUDA device where one is usable; elsewhere a clear refusal that
 * changes nothing. Both outcomes are checked, whichever this machine gives. */
/* A prefix lookup counts like its hits then its misses; a pool without statistics refuses snapshots. */
static void test_prefix_lookup_and_pool_without_statistics(void) {
    kvc_recorder_options* ro = NULL;
    kvc_recorder* recorder = NULL;
    kvc_stats* stats = NULL;
    kvc_pool_options* po = NULL;
    kvc_pool* pool = NULL;
    kvc_sequence_id seq = 0;
    int32_t prompt[10];
    size_t cached = 1;
    int i;

    CHECK_STATUS(kvc_recorder_options_create(&ro), KVC_OK);
    CHECK_STATUS(kvc_recorder_options_set_window_accesses(ro, 100), KVC_OK);
    CHECK_STATUS(kvc_recorder_create(ro, &recorder), KVC_OK);
    kvc_recorder_options_destroy(ro);
    CHECK_STATUS(kvc_recorder_record_prefix_lookup(recorder, 30, 40), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_prefix_lookup(recorder, 50, 10), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_prefix_lookup(recorder, 0, 0), KVC_OK);
    CHECK_STATUS(kvc_recorder_record_prefix_lookup(recorder, UINT64_MAX, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "overflows") != NULL);
    CHECK_STATUS(kvc_recorder_record_prefix_lookup(NULL, 1, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_recorder_snapshot(recorder, &stats), KVC_OK);
    CHECK(kvc_stats_hits(stats) == 80 && kvc_stats_misses(stats) == 50);
    CHECK(kvc_stats_window_hits(stats) == 50 && kvc_stats_window_lookups(stats) == 100);
    kvc_stats_destroy(stats);
    kvc_recorder_destroy(recorder);

    for (i = 0; i < 10; ++i) prompt[i] = i;
    CHECK_STATUS(kvc_pool_options_create(&po), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_statistics(po, 0), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_statistics(NULL, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_pool_create(po, &pool), KVC_OK);
    kvc_pool_options_destroy(po);
    CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, 10, NULL, &seq), KVC_OK);
    CHECK_STATUS(kvc_pool_allocate(pool, seq, 10, &cached), KVC_OK);
    CHECK(cached == 0);
    stats = NULL;
    CHECK_STATUS(kvc_pool_snapshot(pool, &stats), KVC_ERR_INVALID_STATE);
    CHECK(stats == NULL && strstr(kvc_last_error_message(), "statistics") != NULL);
    CHECK(isnan(kvc_pool_window_token_hit_rate(pool)));
    kvc_pool_destroy(pool);
}

static void test_device_pool(void) {
    kvc_pool_options* options = NULL;
    kvc_pool* pool = NULL;
    void* base = NULL;
    uint64_t bytes_per_block = 0;
    kvc_status status;

    CHECK_STATUS(kvc_pool_options_create(&options), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(options, 16), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_model_shape(options, 1, 1, 64, KVC_DTYPE_F16), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_memory(options, KVC_MEMORY_DEVICE), KVC_OK);
    status = kvc_pool_create(options, &pool);
    if (status == KVC_OK) {
        CHECK_STATUS(kvc_pool_storage(pool, &base, &bytes_per_block), KVC_OK);
        CHECK(base != NULL);
        CHECK(bytes_per_block == 2u * 64u * 2u * 16u);
        kvc_pool_destroy(pool);
    } else {
        CHECK(status == KVC_ERR_UNSUPPORTED);
        CHECK(pool == NULL);
        CHECK(strstr(kvc_last_error_message(), "CUDA") != NULL);
    }
    kvc_pool_options_destroy(options);
}

/* C lets a caller pass any int as an enum; each such argument is checked as an integer before C++ sees
 * an enum (under UBSan, loading 7 into the C++ view of kvc_hash_algo aborts). */
static void test_enum_values_outside_the_enums(void) {
    kvc_pool_options* options = NULL;
    kvc_pool* pool = NULL;
    kvc_sequence_id seq = 0;
    int32_t prompt[3] = {1, 2, 3};
    int32_t table[4] = {-7, -7, -7, -7};
    uint64_t hashes[1];
    uint8_t buf[64];
    size_t n = 99;

    CHECK_STATUS(kvc_pool_options_create(&options), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_model_shape(options, 1, 1, 8, (kvc_dtype)7), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "unknown dtype 7") != NULL);
    CHECK_STATUS(kvc_pool_options_set_model_shape(options, 1, 1, 8, (kvc_dtype)-1), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "unknown dtype -1") != NULL);
    CHECK_STATUS(kvc_pool_options_set_memory(options, (kvc_memory)3), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "memory kind") != NULL);
    CHECK_STATUS(kvc_pool_options_set_hash(options, (kvc_hash_algo)2, "42"), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "hash algorithm 2") != NULL);
    CHECK_STATUS(kvc_pool_options_set_events(options, 1, "GPU", 16), KVC_OK);
    CHECK_STATUS(kvc_pool_create(options, &pool), KVC_OK);
    kvc_pool_options_destroy(options);
    CHECK_STATUS(kvc_pool_drain_events(pool, (kvc_event_encoding)2, buf, sizeof buf, &n), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "event encoding") != NULL);
    CHECK_STATUS(kvc_hash_blocks((kvc_hash_algo)-5, "42", 1, prompt, 3, NULL, hashes, 1, &n), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(kvc_status_string((kvc_status)-1), "KVC_ERR_UNKNOWN") == 0);

    /* A sequence without blocks has an empty table (memcpy of nothing from an empty vector). */
    CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, 3, NULL, &seq), KVC_OK);
    CHECK_STATUS(kvc_pool_block_table(pool, seq, table, 4, &n), KVC_OK);
    CHECK(n == 0 && table[0] == -7);
    kvc_pool_destroy(pool);
}

/* Every offered policy: a pool over it hits a freed prompt's blocks, and a chain's tail goes first. */
static void test_eviction_policies(void) {
    kvc_pool_options* options = NULL;
    kvc_pool* pool = NULL;
    kvc_sequence_id seq = 0;
    int32_t prompt[13];
    int32_t blocks[3];
    size_t cached = 0;
    int policy, i;

    for (i = 0; i < 13; ++i) prompt[i] = 40 + i;
    CHECK(strcmp(kvc_eviction_policy_name(KVC_EVICTION_LRU), "lru") == 0);
    CHECK(strcmp(kvc_eviction_policy_name(KVC_EVICTION_S3FIFO), "s3fifo") == 0);
    CHECK(strcmp(kvc_eviction_policy_name(KVC_EVICTION_ARC), "arc") == 0);
    CHECK(strcmp(kvc_eviction_policy_name((kvc_eviction_policy)3), "unknown") == 0);
    CHECK(strcmp(kvc_eviction_policy_name((kvc_eviction_policy)-1), "unknown") == 0);
    CHECK_STATUS(kvc_pool_options_create(&options), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_eviction_policy(options, (kvc_eviction_policy)3), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "eviction policy 3") != NULL);
    CHECK_STATUS(kvc_pool_options_set_eviction_policy(NULL, KVC_EVICTION_LRU), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(options, 5), KVC_OK); /* 4 usable */
    CHECK_STATUS(kvc_pool_options_set_block_size(options, 4), KVC_OK);
    for (policy = KVC_EVICTION_LRU; policy <= KVC_EVICTION_ARC; ++policy) {
        CHECK_STATUS(kvc_pool_options_set_eviction_policy(options, (kvc_eviction_policy)policy), KVC_OK);
        CHECK_STATUS(kvc_pool_create(options, &pool), KVC_OK);
        CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, 13, NULL, &seq), KVC_OK);
        CHECK_STATUS(kvc_pool_allocate(pool, seq, 13, NULL), KVC_OK);
        CHECK_STATUS(kvc_pool_sequence_free(pool, seq), KVC_OK);
        /* 3 cached blocks and 1 partial: taking 2 takes the partial one and the chain's tail. */
        CHECK_STATUS(kvc_pool_allocate_blocks(pool, blocks, 2), KVC_OK);
        CHECK_STATUS(kvc_pool_sequence_create(pool, prompt, 13, NULL, &seq), KVC_OK);
        CHECK_STATUS(kvc_pool_cached_prefix(pool, seq, &cached), KVC_OK);
        CHECK(cached == 8);
        kvc_pool_destroy(pool);
        pool = NULL;
    }
    kvc_pool_options_destroy(options);
}

int main(void) {
    test_version_and_status();
    test_bad_input();
    test_recording_and_export();
    test_exposition();
    test_pool();
    test_enum_values_outside_the_enums();
    test_eviction_policies();
    test_prefix_lookup_and_pool_without_statistics();
    test_device_pool();
    printf("c api: %d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
