/* SPDX-License-Identifier: Apache-2.0 */
/* The raw block path for callgrind (bench/free_list_instructions.sh): `kvcore_alloc_free_loop ROUNDS`
 * takes 64 blocks with kvc_pool_allocate_blocks and frees them with kvc_pool_free_blocks, ROUNDS times,
 * in a 4,096-block pool. */
#include <stdio.h>
#include <stdlib.h>

#include "kvcore/kvcore.h"

int main(int argc, char** argv) {
    kvc_pool_options* options = NULL;
    kvc_pool* pool = NULL;
    int32_t blocks[64];
    const long rounds = argc > 1 ? atol(argv[1]) : 1000;
    long i;
    if (kvc_pool_options_create(&options) != KVC_OK || kvc_pool_options_set_num_blocks(options, 4096) != KVC_OK ||
        kvc_pool_create(options, &pool) != KVC_OK) {
        fprintf(stderr, "pool: %s\n", kvc_last_error_message());
        return 1;
    }
    kvc_pool_options_destroy(options);
    for (i = 0; i < rounds; ++i) {
        if (kvc_pool_allocate_blocks(pool, blocks, 64) != KVC_OK || kvc_pool_free_blocks(pool, blocks, 64) != KVC_OK) {
            fprintf(stderr, "round %ld: %s\n", i, kvc_last_error_message());
            return 1;
        }
    }
    kvc_pool_destroy(pool);
    return 0;
}
