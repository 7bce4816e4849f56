/* SPDX-License-Identifier: Apache-2.0 */
/* Instructions that statistics add to a request's admission, counted by callgrind (command in
 * bench/RESULTS.md, session 5): `kvcore_admission_loop STATISTICS ROUNDS` admits ROUNDS x 32 chat
 * requests (one of 8 system prompts of 512 tokens, then a new 256-token turn) into a 4,096-block pool
 * with statistics on (1) or off (0), freeing each round's requests after it. */
#include <stdio.h>
#include <stdlib.h>

#include "kvcore/kvcore.h"

int main(int argc, char** argv) {
    kvc_pool_options* options = NULL;
    kvc_pool* pool = NULL;
    kvc_sequence_id seqs[32];
    static int32_t prompt[768];
    const unsigned long rounds = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
    unsigned long round, r;
    int k, i;

    if (argc < 2 || kvc_pool_options_create(&options) != KVC_OK ||
        kvc_pool_options_set_num_blocks(options, 4096) != KVC_OK ||
        kvc_pool_options_set_statistics(options, (uint32_t)atoi(argv[1])) != KVC_OK ||
        kvc_pool_create(options, &pool) != KVC_OK) {
        fprintf(stderr, "usage: kvcore_admission_loop 0|1 [rounds]\n");
        return 2;
    }
    kvc_pool_options_destroy(options);
    for (round = 0; round < rounds; ++round) {
        for (k = 0; k < 32; ++k) {
            r = round * 32 + (unsigned long)k;
            for (i = 0; i < 512; ++i) prompt[i] = (int32_t)((r % 8) * 1000 + (unsigned long)i);
            for (i = 0; i < 256; ++i) prompt[512 + i] = (int32_t)((r * 256 + (unsigned long)i) * 7919 % 151000);
            if (kvc_pool_sequence_create(pool, prompt, 768, NULL, &seqs[k]) != KVC_OK ||
                kvc_pool_allocate(pool, seqs[k], 768, NULL) != KVC_OK) {
                fprintf(stderr, "admission failed: %s\n", kvc_last_error_message());
                return 1;
            }
        }
        for (k = 0; k < 32; ++k) kvc_pool_sequence_free(pool, seqs[k]);
    }
    kvc_pool_destroy(pool);
    return 0;
}
