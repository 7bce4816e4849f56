/* SPDX-License-Identifier: Apache-2.0 */
/* A plain-C test of kvcore/ops.h on a pool's host memory: the layout described with the pool's strides,
 * a prompt written through the pool's slot mapping, decode attention through its block table against a
 * naive attention, a fork's copy-on-write pairs applied with kvc_kv_copy_blocks, gather, swap, threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvcore/kvcore.h"

#include "check.h"

#define LAYERS 2
#define HEADS 2
#define Q_HEADS 4
#define DIM 8
#define BLOCK 4
#define BLOCKS 16
#define PROMPT 11

static float value_at(int token, int head, int d, int is_v) {
    return (float)sin(0.37 * token + 0.71 * head + 0.13 * d + (is_v ? 1.9 : 0.0));
}

int main(void) {
    kvc_pool_options* po = NULL;
    kvc_pool* pool = NULL;
    kvc_kv_layout* layout = NULL;
    kvc_sequence_id seq = 0, child = 0;
    int32_t tokens[PROMPT + 1];
    int64_t slots[PROMPT];
    static float key[PROMPT * HEADS * DIM], value[PROMPT * HEADS * DIM], query[Q_HEADS * DIM], out[Q_HEADS * DIM];
    int32_t table[8], pairs[16];
    size_t count = 0, i;
    int t, h, d;
    void* base = NULL;
    uint64_t bytes_per_block = 0, block_bytes;
    unsigned char* k_cache;
    unsigned char* v_cache;

    CHECK_STATUS(kvc_pool_options_create(&po), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_num_blocks(po, BLOCKS), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_block_size(po, BLOCK), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_model_shape(po, LAYERS, HEADS, DIM, KVC_DTYPE_F32), KVC_OK);
    CHECK_STATUS(kvc_pool_options_set_memory(po, KVC_MEMORY_HOST), KVC_OK);
    CHECK_STATUS(kvc_pool_create(po, &pool), KVC_OK);
    kvc_pool_options_destroy(po);
    CHECK_STATUS(kvc_pool_storage(pool, &base, &bytes_per_block), KVC_OK);

    /* The pool keeps a block's layers together, K then V, in each layer. */
    CHECK_STATUS(kvc_kv_layout_create(&layout), KVC_OK);
    CHECK_STATUS(kvc_kv_layout_set_shape(layout, LAYERS, BLOCKS, BLOCK, HEADS, DIM, KVC_DTYPE_F32), KVC_OK);
    block_bytes = kvc_kv_layout_block_bytes(layout);
    CHECK(block_bytes * 2 * LAYERS == bytes_per_block);
    CHECK_STATUS(kvc_kv_layout_set_strides(layout, bytes_per_block, 2 * block_bytes), KVC_OK);
    k_cache = (unsigned char*)base;
    v_cache = k_cache + block_bytes;

    for (i = 0; i <= PROMPT; ++i) tokens[i] = (int32_t)(100 + i);
    CHECK_STATUS(kvc_pool_sequence_create(pool, tokens, PROMPT, NULL, &seq), KVC_OK);
    CHECK_STATUS(kvc_pool_allocate(pool, seq, PROMPT, NULL), KVC_OK);
    CHECK_STATUS(kvc_pool_slot_mapping(pool, seq, 0, slots, PROMPT), KVC_OK);
    for (t = 0; t < PROMPT; ++t) {
        for (h = 0; h < HEADS; ++h) {
            for (d = 0; d < DIM; ++d) {
                key[(t * HEADS + h) * DIM + d] = value_at(t, h, d, 0);
                value[(t * HEADS + h) * DIM + d] = value_at(t, h, d, 1);
            }
        }
    }
    CHECK_STATUS(kvc_kv_write(layout, 1, k_cache, v_cache, key, value, KVC_DTYPE_F32, slots, PROMPT), KVC_OK);

    /* Decode attention of layer 1 against a naive one. */
    CHECK_STATUS(kvc_pool_block_table(pool, seq, table, 8, &count), KVC_OK);
    for (i = 0; i < Q_HEADS * DIM; ++i) query[i] = (float)cos(0.3 * (double)i);
    {
        const int32_t len = PROMPT;
        const float scale = 0.35f;
        CHECK_STATUS(kvc_kv_attention_decode(layout, 1, k_cache, v_cache, query, Q_HEADS, table, count, &len, 1, scale,
                                             out),
                     KVC_OK);
        for (h = 0; h < Q_HEADS; ++h) {
            double logits[PROMPT], m = -1e300, sum = 0;
            const int kv = h / (Q_HEADS / HEADS);
            for (t = 0; t < PROMPT; ++t) {
                double dot = 0;
                for (d = 0; d < DIM; ++d) dot += query[h * DIM + d] * value_at(t, kv, d, 0);
                logits[t] = dot * scale;
                if (logits[t] > m) m = logits[t];
            }
            for (t = 0; t < PROMPT; ++t) sum += (logits[t] = exp(logits[t] - m));
            for (d = 0; d < DIM; ++d) {
                double o = 0;
                for (t = 0; t < PROMPT; ++t) o += logits[t] / sum * value_at(t, kv, d, 1);
                CHECK(fabs(o - out[h * DIM + d]) < 1e-5);
            }
        }
        /* A layer past the layout is refused. */
        CHECK_STATUS(kvc_kv_attention_decode(layout, 2, k_cache, v_cache, query, Q_HEADS, table, count, &len, 1, scale,
                                             out),
                     KVC_ERR_OUT_OF_RANGE);
    }

    /* A fork appending to the shared partial block gets a copy-on-write pair; copy it, then gather the
     * child: its first PROMPT tokens equal the parent's. */
    CHECK_STATUS(kvc_pool_fork(pool, seq, &child), KVC_OK);
    CHECK_STATUS(kvc_pool_append(pool, child, tokens + PROMPT, 1), KVC_OK);
    CHECK_STATUS(kvc_pool_drain_copies(pool, pairs, 8, &count), KVC_OK);
    CHECK(count == 1);
    CHECK_STATUS(kvc_kv_copy_blocks(layout, k_cache, v_cache, pairs, count), KVC_OK);
    CHECK_STATUS(kvc_pool_block_table(pool, child, table, 8, &count), KVC_OK);
    {
        static float gk[(PROMPT + 1) * HEADS * DIM], gv[(PROMPT + 1) * HEADS * DIM];
        const int32_t len = PROMPT;
        CHECK_STATUS(kvc_kv_gather(layout, 1, k_cache, v_cache, table, count, &len, 1, gk, gv, KVC_DTYPE_F32, PROMPT + 1),
                     KVC_OK);
        CHECK(memcmp(gk, key, sizeof key) == 0);
        CHECK(memcmp(gv, value, sizeof value) == 0);
        CHECK_STATUS(kvc_kv_gather(layout, 1, k_cache, v_cache, table, count, &len, 1, gk, gv, KVC_DTYPE_F32, PROMPT - 1),
                     KVC_ERR_BUFFER_TOO_SMALL);
    }

    /* Swap every block out to a packed host copy and back into a cleared pool memory. */
    {
        kvc_kv_layout* host = NULL;
        const uint64_t region = block_bytes * BLOCKS * LAYERS;
        unsigned char* hk = (unsigned char*)malloc(region);
        unsigned char* hv = (unsigned char*)malloc(region);
        unsigned char* saved = (unsigned char*)malloc(bytes_per_block * BLOCKS);
        int32_t all[2 * BLOCKS];
        for (i = 0; i < BLOCKS; ++i) all[2 * i] = all[2 * i + 1] = (int32_t)i;
        CHECK_STATUS(kvc_kv_layout_create(&host), KVC_OK);
        CHECK_STATUS(kvc_kv_layout_set_shape(host, LAYERS, BLOCKS, BLOCK, HEADS, DIM, KVC_DTYPE_F32), KVC_OK);
        memcpy(saved, base, bytes_per_block * BLOCKS);
        CHECK_STATUS(kvc_kv_swap_blocks(layout, k_cache, v_cache, host, hk, hv, all, BLOCKS), KVC_OK);
        memset(base, 0, bytes_per_block * BLOCKS);
        CHECK_STATUS(kvc_kv_swap_blocks(host, hk, hv, layout, k_cache, v_cache, all, BLOCKS), KVC_OK);
        CHECK(memcmp(saved, base, bytes_per_block * BLOCKS) == 0);
        kvc_kv_layout_destroy(host);
        free(hk);
        free(hv);
        free(saved);
    }

    CHECK_STATUS(kvc_kv_set_threads(2), KVC_OK);
    CHECK(kvc_kv_threads() == 2);
    CHECK_STATUS(kvc_kv_set_threads(0), KVC_OK);
    CHECK(kvc_kv_threads() >= 1);
    CHECK(strcmp(kvc_kv_isa(), "avx512") == 0 || strcmp(kvc_kv_isa(), "avx2") == 0 ||
          strcmp(kvc_kv_isa(), "generic") == 0);
    CHECK_STATUS(kvc_kv_write(layout, 0, k_cache, v_cache, key, value, KVC_DTYPE_F32, NULL, 1), KVC_ERR_INVALID_ARGUMENT);

    /* An INT8 pool's blocks hold the per-token-per-head scales: its block is the layout's (odd sizes: 3 tokens
     * x 1 head x 5 dims = 15 bytes, rounded to 16, then 3 scales), and a write into the pool's last block
     * stays inside the pool's memory. */
    {
        kvc_pool* int8_pool = NULL;
        kvc_kv_layout* int8_layout = NULL;
        void* int8_base = NULL;
        uint64_t int8_block = 0;
        const int64_t last_slot = 4 * 3 - 1;
        CHECK_STATUS(kvc_pool_options_create(&po), KVC_OK);
        CHECK_STATUS(kvc_pool_options_set_num_blocks(po, 4), KVC_OK);
        CHECK_STATUS(kvc_pool_options_set_block_size(po, 3), KVC_OK);
        CHECK_STATUS(kvc_pool_options_set_model_shape(po, 2, 1, 5, KVC_DTYPE_INT8), KVC_OK);
        CHECK_STATUS(kvc_pool_options_set_memory(po, KVC_MEMORY_HOST), KVC_OK);
        CHECK_STATUS(kvc_pool_create(po, &int8_pool), KVC_OK);
        kvc_pool_options_destroy(po);
        CHECK_STATUS(kvc_pool_storage(int8_pool, &int8_base, &int8_block), KVC_OK);
        CHECK_STATUS(kvc_kv_layout_create(&int8_layout), KVC_OK);
        CHECK_STATUS(kvc_kv_layout_set_shape(int8_layout, 2, 4, 3, 1, 5, KVC_DTYPE_INT8), KVC_OK);
        CHECK(kvc_kv_layout_block_bytes(int8_layout) == 16 + 3 * 4);
        CHECK(int8_block == 2 * 2 * (16 + 3 * 4));
        CHECK_STATUS(kvc_kv_layout_set_strides(int8_layout, int8_block, 2 * kvc_kv_layout_block_bytes(int8_layout)),
                     KVC_OK);
        CHECK_STATUS(kvc_kv_write(int8_layout, 1, int8_base, (unsigned char*)int8_base + kvc_kv_layout_block_bytes(int8_layout),
                                  key, value, KVC_DTYPE_F32, &last_slot, 1),
                     KVC_OK);
        kvc_kv_layout_destroy(int8_layout);
        kvc_pool_destroy(int8_pool);
    }

    kvc_kv_layout_destroy(layout);
    kvc_kv_layout_destroy(NULL);
    kvc_pool_destroy(pool);
    if (failures) fprintf(stderr, "%d of %d checks failed\n", failures, checks);
    return failures ? 1 : 0;
}
