// SPDX-License-Identifier: Apache-2.0
// Bad input through the C API: each call fails with a clear status and message, and no byte of any cache
// or output changes (every argument is checked before anything is written). The bad value is put last,
// after good ones, so a kernel that wrote as it checked would be caught.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "ops_test_util.h"

namespace kvcore::ops::test {
namespace {

struct Fixture {
    Shape s{2, 10, 4, 2, 8, KVC_DTYPE_F16};
    LayoutHandle layout{s};
    Cache k{s, 1}, v{s, 2};
    Cache k0 = k, v0 = v;
    std::vector<float> key = random_floats(3 * 2 * 8, 3), value = random_floats(3 * 2 * 8, 4);
    bool unchanged() const { return k.words == k0.words && v.words == v0.words; }
};

void expect_failure(kvc_status got, kvc_status expected, const char* fragment) {
    EXPECT_EQ(got, expected) << kvc_status_string(got);
    EXPECT_NE(std::string(kvc_last_error_message()).find(fragment), std::string::npos) << kvc_last_error_message();
}

TEST(OpsBadInput, WriteRejectsAndWritesNothing) {
    Fixture f;
    auto write = [&](const int64_t* slots, uint32_t layer = 1, void* kc = nullptr, kvc_dtype src = KVC_DTYPE_F32) {
        return kvc_kv_write(f.layout.p, layer, kc ? kc : f.k.bytes(), f.v.bytes(), f.key.data(), f.value.data(), src,
                            slots, 3);
    };
    const int64_t past_end[] = {0, 5, 40}, negative[] = {1, 2, -2}, twice[] = {7, 9, 7}, good[] = {0, 1, -1};
    expect_failure(write(past_end), KVC_ERR_OUT_OF_RANGE, "slots[2] = 40");
    expect_failure(write(negative), KVC_ERR_OUT_OF_RANGE, "slots[2] = -2");
    expect_failure(write(twice), KVC_ERR_INVALID_ARGUMENT, "slot 7 is written twice");
    expect_failure(write(good, 2), KVC_ERR_OUT_OF_RANGE, "layer 2");
    expect_failure(write(good, 0, f.k.bytes() + 1), KVC_ERR_INVALID_ARGUMENT, "k_cache is not aligned");
    expect_failure(write(good, 0, nullptr, KVC_DTYPE_FP8), KVC_ERR_INVALID_ARGUMENT, "src_dtype");
    expect_failure(write(good, 0, nullptr, kvc_dtype(99)), KVC_ERR_INVALID_ARGUMENT, "unknown src_dtype 99");
    expect_failure(kvc_kv_write(f.layout.p, 0, f.k.bytes(), f.v.bytes(), f.key.data(), f.value.data(), KVC_DTYPE_F32,
                                nullptr, 3),
                   KVC_ERR_INVALID_ARGUMENT, "slots is NULL");
    expect_failure(kvc_kv_write(nullptr, 0, f.k.bytes(), f.v.bytes(), f.key.data(), f.value.data(), KVC_DTYPE_F32, good, 3),
                   KVC_ERR_INVALID_ARGUMENT, "layout is NULL");
    EXPECT_TRUE(f.unchanged());
    EXPECT_EQ(write(good), KVC_OK);  // the same call with good slots does write
    EXPECT_FALSE(f.unchanged());
}

TEST(OpsBadInput, CopyAndSwapRejectAndCopyNothing) {
    Fixture f;
    const int32_t past_end[] = {1, 2, 3, 4, 5, 10}, dst_twice[] = {1, 2, 3, 2}, chained[] = {1, 2, 2, 3},
                  negative[] = {1, 2, -1, 4};
    expect_failure(kvc_kv_copy_blocks(f.layout.p, f.k.bytes(), f.v.bytes(), past_end, 3), KVC_ERR_OUT_OF_RANGE,
                   "destination block 10");
    expect_failure(kvc_kv_copy_blocks(f.layout.p, f.k.bytes(), f.v.bytes(), negative, 2), KVC_ERR_OUT_OF_RANGE,
                   "source block -1");
    expect_failure(kvc_kv_copy_blocks(f.layout.p, f.k.bytes(), f.v.bytes(), dst_twice, 2), KVC_ERR_INVALID_ARGUMENT,
                   "appears twice");
    expect_failure(kvc_kv_copy_blocks(f.layout.p, f.k.bytes(), f.v.bytes(), chained, 2), KVC_ERR_INVALID_ARGUMENT,
                   "both a source and a destination");
    expect_failure(kvc_kv_copy_blocks(f.layout.p, f.k.bytes(), f.v.bytes() + 1, dst_twice, 1), KVC_ERR_INVALID_ARGUMENT,
                   "v_cache is not aligned");
    EXPECT_TRUE(f.unchanged());

    Shape other = f.s;
    other.head_dim = 16;
    LayoutHandle wrong(other);
    Cache src(f.s, 9);
    const int32_t ok[] = {0, 0, 1, 1};
    expect_failure(kvc_kv_swap_blocks(f.layout.p, src.bytes(), src.bytes(), wrong.p, f.k.bytes(), f.v.bytes(), ok, 2),
                   KVC_ERR_INVALID_ARGUMENT, "layouts differ");
    Shape small = f.s;
    small.num_blocks = 4;
    LayoutHandle small_layout(small);
    const int32_t past_small[] = {0, 0, 9, 4};
    expect_failure(kvc_kv_swap_blocks(f.layout.p, src.bytes(), src.bytes(), small_layout.p, f.k.bytes(), f.v.bytes(),
                                      past_small, 2),
                   KVC_ERR_OUT_OF_RANGE, "destination block 4");
    EXPECT_TRUE(f.unchanged());
}

TEST(OpsBadInput, GatherAndAttentionRejectAndWriteNothing) {
    Fixture f;
    const int32_t tables[] = {1, 2, 3, 4, 5, -1};
    const int32_t lens[] = {8, 5}, too_long[] = {8, 13};
    std::vector<float> out(20 * 16, 7.f);
    const std::vector<float> out0 = out;
    expect_failure(kvc_kv_gather(f.layout.p, 0, f.k.bytes(), f.v.bytes(), tables, 3, lens, 2, out.data(), out.data(),
                                 KVC_DTYPE_F32, 12),
                   KVC_ERR_BUFFER_TOO_SMALL, "13 tokens");
    expect_failure(kvc_kv_gather(f.layout.p, 0, f.k.bytes(), f.v.bytes(), tables, 3, too_long, 2, out.data(), out.data(),
                                 KVC_DTYPE_F32, 20),
                   KVC_ERR_OUT_OF_RANGE, "needs 4 blocks");
    const int32_t bad_tables[] = {1, 2, 3, 4, -1, 0};
    expect_failure(kvc_kv_gather(f.layout.p, 0, f.k.bytes(), f.v.bytes(), bad_tables, 3, lens, 2, out.data(), out.data(),
                                 KVC_DTYPE_F32, 20),
                   KVC_ERR_OUT_OF_RANGE, "block_tables[1][1] = -1");
    expect_failure(kvc_kv_gather(f.layout.p, 0, f.k.bytes(), f.v.bytes(), tables, 3, lens, 2, out.data(), out.data(),
                                 KVC_DTYPE_INT8, 20),
                   KVC_ERR_INVALID_ARGUMENT, "out_dtype");
    const float* query = f.key.data();
    expect_failure(kvc_kv_attention_decode(f.layout.p, 0, f.k.bytes(), f.v.bytes(), query, 3, tables, 3, lens, 2, 1.f,
                                           out.data()),
                   KVC_ERR_INVALID_ARGUMENT, "num_q_heads 3");
    expect_failure(kvc_kv_attention_decode(f.layout.p, 0, f.k.bytes(), f.v.bytes(), query, 2, bad_tables, 3, lens, 2,
                                           1.f, out.data()),
                   KVC_ERR_OUT_OF_RANGE, "block_tables[1][1]");
    expect_failure(kvc_kv_attention_decode(f.layout.p, 0, f.k.bytes(), f.v.bytes(), query, 2, tables, 3, lens, 2, NAN,
                                           out.data()),
                   KVC_ERR_INVALID_ARGUMENT, "scale");
    expect_failure(kvc_kv_attention_decode(f.layout.p, 0, f.k.bytes(), f.v.bytes(), query, 2, tables, 3, lens, 2, 1.f,
                                           reinterpret_cast<float*>(reinterpret_cast<char*>(out.data()) + 2)),
                   KVC_ERR_INVALID_ARGUMENT, "out is not aligned");
    EXPECT_EQ(out, out0);
}

TEST(OpsBadInput, LayoutSettersKeepTheLayoutOnFailure) {
    Shape s{2, 10, 4, 2, 8, KVC_DTYPE_INT8};
    LayoutHandle layout(s);
    const uint64_t bytes = kvc_kv_layout_block_bytes(layout.p);
    EXPECT_EQ(bytes, block_bytes(s));
    EXPECT_EQ(bytes, 4u * 2 * 8 + 4u * 2 * 4);  // elements, then one float scale per token and head
    expect_failure(kvc_kv_layout_set_strides(layout.p, bytes - 4, 0), KVC_ERR_INVALID_ARGUMENT, "block_stride");
    expect_failure(kvc_kv_layout_set_strides(layout.p, bytes + 2, 0), KVC_ERR_INVALID_ARGUMENT, "multiple of 4");
    expect_failure(kvc_kv_layout_set_strides(layout.p, 0, bytes * 3), KVC_ERR_INVALID_ARGUMENT, "overlap");
    EXPECT_EQ(kvc_kv_layout_set_strides(layout.p, 2 * bytes, bytes), KVC_OK);  // layers inside blocks
    expect_failure(kvc_kv_layout_set_shape(layout.p, 1, 0, 4, 2, 8, KVC_DTYPE_F16), KVC_ERR_OUT_OF_RANGE, "num_blocks");
    expect_failure(kvc_kv_layout_set_shape(layout.p, 1, 4, 4, 2, 8, kvc_dtype(5)), KVC_ERR_INVALID_ARGUMENT, "dtype");
    const float one[] = {1.f, 1.f}, bad[] = {1.f, -1.f};
    expect_failure(kvc_kv_layout_set_fp8_scales(layout.p, one, one, 1), KVC_ERR_INVALID_ARGUMENT, "1 scales for 2 layers");
    expect_failure(kvc_kv_layout_set_fp8_scales(layout.p, one, bad, 2), KVC_ERR_INVALID_ARGUMENT, "v_scales");
    EXPECT_EQ(kvc_kv_layout_block_bytes(layout.p), bytes);
    EXPECT_EQ(kvc_kv_layout_block_bytes(nullptr), 0u);
    kvc_kv_layout_destroy(nullptr);
    expect_failure(kvc_kv_layout_create(nullptr), KVC_ERR_INVALID_ARGUMENT, "out is NULL");
}

}  // namespace
}  // namespace kvcore::ops::test
