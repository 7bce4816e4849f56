/* SPDX-License-Identifier: Apache-2.0 */
/* kvcore/ops_cuda.h from C, in every build. Without CUDA in the build (KVCORE_TEST_CUDA 0: "built without
 * CUDA") or without a usable device (the message names the CUDA error), every entry point answers
 * KVC_ERR_UNSUPPORTED with that reason, whatever its arguments. With a device: the probe passes, and bad
 * input gets the CPU calls' statuses, pageable host memory is refused. tests/gpu/ops_cuda_test.cpp checks the
 * results on a device. */
#include <string.h>

#include "kvcore/kvcore.h"

#include "check.h"

#ifndef KVCORE_TEST_CUDA
#error "define KVCORE_TEST_CUDA to 1 when kvcore is built with CUDA, else 0"
#endif

#define BLOCKS 8
#define BLOCK 4
#define HEADS 2
#define DIM 8

static int mentions(const char* text) { return strstr(kvc_last_error_message(), text) != NULL; }

int main(void) {
    kvc_kv_layout* layout = NULL;
    static uint16_t k_cache[BLOCKS * BLOCK * HEADS * DIM], v_cache[BLOCKS * BLOCK * HEADS * DIM];
    static uint16_t key[2 * HEADS * DIM], value[2 * HEADS * DIM];
    static float query[HEADS * DIM], out[HEADS * DIM];
    int64_t slots[2] = {0, 1};
    int32_t pairs[2] = {0, 1};
    int32_t table[1] = {0}, lens[1] = {3};
    const char* reason = KVCORE_TEST_CUDA ? "CUDA" : "built without CUDA";

    CHECK_STATUS(kvc_kv_layout_create(&layout), KVC_OK);
    CHECK_STATUS(kvc_kv_layout_set_shape(layout, 1, BLOCKS, BLOCK, HEADS, DIM, KVC_DTYPE_F16), KVC_OK);

    if (!kvc_kv_cuda_available()) {
        CHECK(mentions(reason));
        CHECK_STATUS(kvc_kv_cuda_probe(), KVC_ERR_UNSUPPORTED);
        CHECK(mentions(reason));
        CHECK_STATUS(kvc_kv_cuda_write(layout, 0, k_cache, v_cache, key, value, KVC_DTYPE_F16, slots, 2, NULL),
                     KVC_ERR_UNSUPPORTED);
        CHECK(mentions(reason));
        CHECK_STATUS(kvc_kv_cuda_copy_blocks(layout, k_cache, v_cache, pairs, 1, NULL), KVC_ERR_UNSUPPORTED);
        CHECK(mentions(reason));
        CHECK_STATUS(kvc_kv_cuda_swap_blocks(layout, k_cache, v_cache, layout, k_cache, v_cache, pairs, 1, NULL),
                     KVC_ERR_UNSUPPORTED);
        CHECK(mentions(reason));
        CHECK_STATUS(kvc_kv_cuda_gather(layout, 0, k_cache, v_cache, table, 1, lens, 1, key, value, KVC_DTYPE_F16, 3, NULL),
                     KVC_ERR_UNSUPPORTED);
        CHECK(mentions(reason));
        CHECK_STATUS(kvc_kv_cuda_attention_decode(layout, 0, k_cache, v_cache, query, HEADS, table, 1, lens, 1, 1.f, out,
                                                  NULL),
                     KVC_ERR_UNSUPPORTED);
        CHECK(mentions(reason));
        /* Unsupported comes first, also for arguments that are wrong. */
        CHECK_STATUS(kvc_kv_cuda_copy_blocks(NULL, NULL, NULL, NULL, 5, NULL), KVC_ERR_UNSUPPORTED);
        CHECK(mentions(reason));
        printf("ops_cuda: no CUDA here (%s)\n", kvc_last_error_message());
    } else {
        CHECK_STATUS(kvc_kv_cuda_probe(), KVC_OK);
        CHECK_STATUS(kvc_kv_cuda_copy_blocks(NULL, k_cache, v_cache, pairs, 1, NULL), KVC_ERR_INVALID_ARGUMENT);
        CHECK(mentions("layout is NULL"));
        /* The CPU checks come first (same statuses and messages), then where the memory lives. */
        slots[1] = BLOCKS * BLOCK;
        CHECK_STATUS(kvc_kv_cuda_write(layout, 0, k_cache, v_cache, key, value, KVC_DTYPE_F16, slots, 2, NULL),
                     KVC_ERR_OUT_OF_RANGE);
        CHECK(mentions("slots[1]"));
        slots[1] = 1;
        CHECK_STATUS(kvc_kv_cuda_write(layout, 0, k_cache, v_cache, key, value, KVC_DTYPE_F16, slots, 2, NULL),
                     KVC_ERR_INVALID_ARGUMENT);
        CHECK(mentions("pageable"));
        CHECK_STATUS(kvc_kv_cuda_copy_blocks(layout, k_cache, v_cache, pairs, 1, NULL), KVC_ERR_INVALID_ARGUMENT);
        CHECK(mentions("pageable"));
    }
    kvc_kv_layout_destroy(layout);
    printf("c_api_ops_cuda: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
