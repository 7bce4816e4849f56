// SPDX-License-Identifier: Apache-2.0
// write, copy_blocks, swap_blocks and gather through the C API, each against a naive reference on random
// inputs, for every element type; and the run planner that makes swaps few large copies.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <string>
#include <tuple>
#include <numeric>
#include <random>
#include <vector>

#include "ops/ops.h"
#include "ops_test_util.h"

namespace kvcore::ops::test {
namespace {

class OpsCache : public ::testing::TestWithParam<kvc_dtype> {};

// Writes random tokens of one layer; returns the slot of each token (-1 for skipped ones).
std::vector<int64_t> write_random(const LayoutHandle& layout, const Shape& s, uint32_t layer, Cache& k, Cache& v,
                                  const std::vector<float>& key, const std::vector<float>& value, uint32_t seed) {
    const size_t n = key.size() / (s.kv_heads * s.head_dim);
    std::vector<int64_t> all(uint64_t(s.num_blocks) * s.block_size);
    std::iota(all.begin(), all.end(), 0);
    std::mt19937 rng(seed);
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<int64_t> slots(all.begin(), all.begin() + long(n));
    for (size_t i = 0; i < n; i += 5) slots[i] = -1;
    EXPECT_EQ(kvc_kv_write(layout.p, layer, k.bytes(), v.bytes(), key.data(), value.data(), KVC_DTYPE_F32, slots.data(), n),
              KVC_OK)
        << kvc_last_error_message();
    return slots;
}

TEST_P(OpsCache, WriteStoresEachTokenInItsSlotAndNothingElse) {
    Shape s;
    s.dtype = GetParam();
    LayoutHandle layout(s);
    const float k_scales[] = {0.02f, 0.5f}, v_scales[] = {0.04f, 0.25f};
    ASSERT_EQ(kvc_kv_layout_set_fp8_scales(layout.p, k_scales, v_scales, 2), KVC_OK);
    Cache k(s, 1), v(s, 2);
    const Cache k_before = k, v_before = v;
    const size_t n = 30, row = s.head_dim, per_token = size_t(s.kv_heads) * row;
    const auto key = random_floats(n * per_token, 3), value = random_floats(n * per_token, 4, 5.f);
    const uint32_t layer = 1;
    const auto slots = write_random(layout, s, layer, k, v, key, value, 9);

    std::vector<bool> written(uint64_t(s.num_blocks) * s.block_size, false);
    for (size_t i = 0; i < n; ++i) {
        if (slots[i] < 0) continue;
        written[size_t(slots[i])] = true;
        const auto block = uint32_t(slots[i] / s.block_size), t = uint32_t(slots[i] % s.block_size);
        for (uint32_t h = 0; h < s.kv_heads; ++h) {
            const auto ek = reference_row(key.data() + i * per_token + h * row, s.head_dim, s.dtype, k_scales[layer]);
            const auto ev = reference_row(value.data() + i * per_token + h * row, s.head_dim, s.dtype, v_scales[layer]);
            for (uint32_t d = 0; d < s.head_dim; ++d) {
                ASSERT_FLOAT_EQ(k.read(layer, block, t, h, d, k_scales[layer]), ek[d]) << i << " " << h << " " << d;
                ASSERT_FLOAT_EQ(v.read(layer, block, t, h, d, v_scales[layer]), ev[d]) << i << " " << h << " " << d;
            }
        }
    }
    // Every byte outside the written slots' rows (and their INT8 scales) is as it was: compare layer 0
    // whole, and layer 1 slot by slot.
    const uint64_t layer_bytes = block_bytes(s) * s.num_blocks;
    EXPECT_TRUE(std::equal(k.bytes(), k.bytes() + layer_bytes, k_before.bytes()));
    EXPECT_TRUE(std::equal(v.bytes(), v.bytes() + layer_bytes, v_before.bytes()));
    for (uint64_t slot = 0; slot < written.size(); ++slot) {
        if (written[slot]) continue;
        const auto block = uint32_t(slot / s.block_size), t = uint32_t(slot % s.block_size);
        for (uint32_t h = 0; h < s.kv_heads; ++h) {
            const uint64_t at = k.row_at(layer, block, t, h);
            ASSERT_TRUE(std::equal(k.bytes() + at, k.bytes() + at + row * esize(s.dtype), k_before.bytes() + at));
            ASSERT_TRUE(std::equal(v.bytes() + at, v.bytes() + at + row * esize(s.dtype), v_before.bytes() + at));
            if (s.dtype == KVC_DTYPE_INT8) {
                ASSERT_EQ(std::bit_cast<uint32_t>(k.int8_scale(layer, block, t, h)),
                          std::bit_cast<uint32_t>(k_before.int8_scale(layer, block, t, h)));
                ASSERT_EQ(std::bit_cast<uint32_t>(v.int8_scale(layer, block, t, h)),
                          std::bit_cast<uint32_t>(v_before.int8_scale(layer, block, t, h)));
            }
        }
    }
}

TEST_P(OpsCache, WriteFromHalfSourcesConverts) {
    Shape s;
    s.dtype = GetParam();
    s.layers = 1;
    LayoutHandle layout(s);
    Cache k(s, 1), v(s, 2);
    const size_t n = 7, per_token = size_t(s.kv_heads) * s.head_dim;
    const auto key = random_floats(n * per_token, 5);
    std::vector<uint16_t> key16(key.size()), key_bf(key.size());
    std::vector<float> key_from16(key.size()), key_from_bf(key.size());
    for (size_t i = 0; i < key.size(); ++i) {
        key16[i] = float_to_fp16(key[i]);
        key_from16[i] = fp16_to_float(key16[i]);
        key_bf[i] = float_to_bf16(key[i]);
        key_from_bf[i] = bf16_to_float(key_bf[i]);
    }
    const std::vector<int64_t> slots = {3, 4, 5, 20, 21, 40, 0};
    for (auto [src, as_float, dtype] : {std::tuple{static_cast<const void*>(key16.data()), &key_from16, KVC_DTYPE_F16},
                                        std::tuple{static_cast<const void*>(key_bf.data()), &key_from_bf, KVC_DTYPE_BF16}}) {
        ASSERT_EQ(kvc_kv_write(layout.p, 0, k.bytes(), v.bytes(), src, src, dtype, slots.data(), n), KVC_OK);
        for (size_t i = 0; i < n; ++i) {
            for (uint32_t h = 0; h < s.kv_heads; ++h) {
                const auto e = reference_row(as_float->data() + i * per_token + h * s.head_dim, s.head_dim, s.dtype, 1.f);
                for (uint32_t d = 0; d < s.head_dim; ++d) {
                    ASSERT_FLOAT_EQ(v.read(0, uint32_t(slots[i] / 4), uint32_t(slots[i] % 4), h, d), e[d]);
                }
            }
        }
    }
}

TEST_P(OpsCache, CopyBlocksCopiesEveryLayerOfEachPair) {
    Shape s;
    s.dtype = GetParam();
    s.layers = 3;
    s.num_blocks = 40;
    LayoutHandle layout(s);
    Cache k(s, 1), v(s, 2);
    const Cache k0 = k, v0 = v;
    // Runs (5,6,7 -> 20,21,22), a lone pair, one source copied twice.
    const std::vector<int32_t> pairs = {6, 21, 5, 20, 7, 22, 11, 30, 2, 33, 2, 34};
    ASSERT_EQ(kvc_kv_copy_blocks(layout.p, k.bytes(), v.bytes(), pairs.data(), pairs.size() / 2), KVC_OK)
        << kvc_last_error_message();
    const uint64_t bb = block_bytes(s);
    std::vector<int32_t> source_of(s.num_blocks, -1);
    for (size_t i = 0; i < pairs.size(); i += 2) source_of[size_t(pairs[i + 1])] = pairs[i];
    for (uint32_t layer = 0; layer < s.layers; ++layer) {
        for (uint32_t b = 0; b < s.num_blocks; ++b) {
            const uint64_t at = (uint64_t(layer) * s.num_blocks + b) * bb;
            const uint64_t from = (uint64_t(layer) * s.num_blocks + uint32_t(source_of[b] < 0 ? b : source_of[b])) * bb;
            ASSERT_TRUE(std::equal(k.bytes() + at, k.bytes() + at + bb, k0.bytes() + from)) << layer << " " << b;
            ASSERT_TRUE(std::equal(v.bytes() + at, v.bytes() + at + bb, v0.bytes() + from)) << layer << " " << b;
        }
    }
}

TEST_P(OpsCache, SwapBetweenMemoriesOfDifferentSizesAndStrides) {
    Shape s;
    s.dtype = GetParam();
    s.layers = 2;
    s.num_blocks = 16;
    Shape host = s;
    host.num_blocks = 50;
    LayoutHandle device_layout(s), host_layout(host);
    Cache dk(s, 1), dv(s, 2), hk(host, 3), hv(host, 4);
    const Cache hk0 = hk, hv0 = hv;
    // A run (3..9 -> 40..46) given out of order, lone pairs, and the last block of each side.
    const std::vector<int32_t> pairs = {5, 42, 3, 40, 4, 41, 6, 43, 7, 44, 9, 46, 8, 45, 10, 5, 11, 20, 15, 49, 0, 2};
    ASSERT_EQ(kvc_kv_swap_blocks(device_layout.p, dk.bytes(), dv.bytes(), host_layout.p, hk.bytes(), hv.bytes(),
                                 pairs.data(), pairs.size() / 2),
              KVC_OK)
        << kvc_last_error_message();
    const uint64_t bb = block_bytes(s);
    std::vector<int32_t> source_of(host.num_blocks, -1);
    for (size_t i = 0; i < pairs.size(); i += 2) source_of[size_t(pairs[i + 1])] = pairs[i];
    for (uint32_t layer = 0; layer < s.layers; ++layer) {
        for (uint32_t b = 0; b < host.num_blocks; ++b) {
            const uint64_t at = (uint64_t(layer) * host.num_blocks + b) * bb;
            if (source_of[b] < 0) {
                ASSERT_TRUE(std::equal(hk.bytes() + at, hk.bytes() + at + bb, hk0.bytes() + at));
                continue;
            }
            const uint64_t from = (uint64_t(layer) * s.num_blocks + uint32_t(source_of[b])) * bb;
            ASSERT_TRUE(std::equal(hk.bytes() + at, hk.bytes() + at + bb, dk.bytes() + from)) << layer << " " << b;
            ASSERT_TRUE(std::equal(hv.bytes() + at, hv.bytes() + at + bb, dv.bytes() + from)) << layer << " " << b;
        }
    }
}

TEST_P(OpsCache, GatherReadsThroughBlockTables) {
    Shape s;
    s.dtype = GetParam();
    s.layers = 2;
    s.num_blocks = 30;
    LayoutHandle layout(s);
    const float scales[] = {0.3f, 0.7f};
    ASSERT_EQ(kvc_kv_layout_set_fp8_scales(layout.p, scales, scales, 2), KVC_OK);
    Cache k(s, 1), v(s, 2);
    const size_t per_token = size_t(s.kv_heads) * s.head_dim;
    // Real values in every slot of layer 1 (random bytes would hold NaNs).
    std::vector<int64_t> slots(uint64_t(s.num_blocks) * s.block_size);
    std::iota(slots.begin(), slots.end(), 0);
    const auto key = random_floats(slots.size() * per_token, 3), value = random_floats(slots.size() * per_token, 4);
    ASSERT_EQ(kvc_kv_write(layout.p, 1, k.bytes(), v.bytes(), key.data(), value.data(), KVC_DTYPE_F32, slots.data(),
                           slots.size()),
              KVC_OK);
    const size_t max_blocks = 4;
    const std::vector<int32_t> tables = {7, 3, 29, 0, 12, -5, -5, -5, 0, 0, 0, 0, 1, 2, 3, 4};
    const std::vector<int32_t> lens = {14, 3, 0, 16};  // -5: past the length, never read
    const size_t total = 33;
    for (kvc_dtype out_dtype : {KVC_DTYPE_F32, KVC_DTYPE_F16, KVC_DTYPE_BF16}) {
        std::vector<uint32_t> out_k(total * per_token), out_v(total * per_token);
        ASSERT_EQ(kvc_kv_gather(layout.p, 1, k.bytes(), v.bytes(), tables.data(), max_blocks, lens.data(), lens.size(),
                                out_k.data(), out_v.data(), out_dtype, total),
                  KVC_OK)
            << kvc_last_error_message();
        size_t token = 0;
        for (size_t seq = 0; seq < lens.size(); ++seq) {
            for (int32_t t = 0; t < lens[seq]; ++t, ++token) {
                const auto block = uint32_t(tables[seq * max_blocks + size_t(t) / s.block_size]);
                for (uint32_t h = 0; h < s.kv_heads; ++h) {
                    for (uint32_t d = 0; d < s.head_dim; ++d) {
                        const size_t i = (token * s.kv_heads + h) * s.head_dim + d;
                        float gk, gv;
                        if (out_dtype == KVC_DTYPE_F32) {
                            gk = reinterpret_cast<const float*>(out_k.data())[i];
                            gv = reinterpret_cast<const float*>(out_v.data())[i];
                        } else {
                            const uint16_t hk = reinterpret_cast<const uint16_t*>(out_k.data())[i];
                            const uint16_t hv = reinterpret_cast<const uint16_t*>(out_v.data())[i];
                            gk = out_dtype == KVC_DTYPE_F16 ? fp16_to_float(hk) : bf16_to_float(hk);
                            gv = out_dtype == KVC_DTYPE_F16 ? fp16_to_float(hv) : bf16_to_float(hv);
                        }
                        float ek = k.read(1, block, uint32_t(t) % s.block_size, h, d, scales[1]);
                        float ev = v.read(1, block, uint32_t(t) % s.block_size, h, d, scales[1]);
                        if (out_dtype == KVC_DTYPE_F16) ek = fp16_to_float(float_to_fp16(ek)), ev = fp16_to_float(float_to_fp16(ev));
                        if (out_dtype == KVC_DTYPE_BF16) ek = bf16_to_float(float_to_bf16(ek)), ev = bf16_to_float(float_to_bf16(ev));
                        ASSERT_EQ(gk, ek) << seq << " " << t << " " << h << " " << d;
                        ASSERT_EQ(gv, ev) << seq << " " << t << " " << h << " " << d;
                    }
                }
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, OpsCache, ::testing::ValuesIn(kAllDtypes),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(OpsRuns, ConsecutivePairsMergeWhateverTheirOrder) {
    const std::vector<int32_t> pairs = {12, 3, 10, 1, 11, 2, 20, 9, 21, 8, 30, 30};
    const auto runs = plan_block_runs(pairs.data(), pairs.size() / 2);
    ASSERT_EQ(runs.size(), 4u);
    EXPECT_EQ(runs[0].src, 10);
    EXPECT_EQ(runs[0].dst, 1);
    EXPECT_EQ(runs[0].count, 3);
    EXPECT_EQ(runs[1].count, 1);  // 20 -> 9 and 21 -> 8 run backwards: two copies
    EXPECT_EQ(runs[2].count, 1);
    EXPECT_EQ(runs[3].src, 30);
    std::vector<int32_t> many;
    for (int32_t b = 0; b < 1000; ++b) many.insert(many.end(), {999 - b + 5, 999 - b + 2000});
    EXPECT_EQ(plan_block_runs(many.data(), 1000).size(), 1u);
    EXPECT_TRUE(plan_block_runs(nullptr, 0).empty());
}

}  // namespace
}  // namespace kvcore::ops::test
