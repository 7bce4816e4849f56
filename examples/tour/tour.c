/* SPDX-License-Identifier: Apache-2.0 */
/* kvcore from C: a recorder, a pool that reuses a cached prefix, one Prometheus scrape of both. */
#include <stdio.h>
#include <stdlib.h>

#include <kvcore/kvcore.h>

/* Every fallible call returns a kvc_status; kvc_last_error_message() says why it failed. */
#define CHECK(call) do { kvc_status s_ = (call); if (s_ != KVC_OK) { \
    fprintf(stderr, "%s: %s\n", kvc_status_string(s_), kvc_last_error_message()); exit(1); } } while (0)

int main(void) {
    kvc_recorder_options* options = NULL;
    CHECK(kvc_recorder_options_create(&options));
    CHECK(kvc_recorder_options_set_component(options, "prefix_cache"));
    kvc_recorder* recorder = NULL;
    CHECK(kvc_recorder_create(options, &recorder));
    kvc_recorder_options_destroy(options);
    CHECK(kvc_recorder_record_access(recorder, 1));           /* a hit */
    CHECK(kvc_recorder_record_access_bits(recorder, 0x5, 3)); /* 3 lookups in one call: hit, miss, hit */

    kvc_pool* pool = NULL;                                    /* NULL options: 1024 blocks of 16 tokens */
    CHECK(kvc_pool_create(NULL, &pool));
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

    kvc_stats *recorded = NULL, *pooled = NULL;
    kvc_exposition* scrape = NULL;                            /* each # HELP / # TYPE once for both */
    CHECK(kvc_recorder_snapshot(recorder, &recorded));
    CHECK(kvc_pool_snapshot(pool, &pooled));
    CHECK(kvc_exposition_create(&scrape));
    CHECK(kvc_exposition_add(scrape, recorded));
    CHECK(kvc_exposition_add(scrape, pooled));
    size_t n = 0;
    CHECK(kvc_exposition_to_prometheus(scrape, NULL, 0, &n)); /* size query, then fill n + 1 bytes */
    char* text = malloc(n + 1);
    if (text == NULL) return 1;
    CHECK(kvc_exposition_to_prometheus(scrape, text, n + 1, NULL));
    fputs(text, stdout);
    free(text);
    kvc_exposition_destroy(scrape);
    kvc_stats_destroy(pooled);
    kvc_stats_destroy(recorded);
    kvc_pool_destroy(pool);                                   /* frees its sequences too */
    kvc_recorder_destroy(recorder);
    return 0;
}
