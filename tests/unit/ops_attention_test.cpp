// SPDX-License-Identifier: Apache-2.0
// Paged-attention decode against a straightforward contiguous attention in double precision over the
// cache's values read back by the header's formulas; every element type, every instruction set the CPU
// has, MHA/GQA/MQA, empty, short and split (multi-part) contexts; and thread counts that must not change
// a single bit.
#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/parallel.h"
#include "ops_test_util.h"

namespace kvcore::ops::test {
namespace {

struct Case {
    Shape shape;
    uint32_t q_heads;
    std::vector<int32_t> lens;
};

struct Batch {
    Case c;
    Cache k, v;
    std::vector<int32_t> tables;
    size_t max_blocks;
    std::vector<float> query, key, value;   // key/value: what was written, [slot, heads, dim]
    float k_scale = 0.03f, v_scale = 0.05f;  // FP8
};

// Writes random K/V into every slot of layer 1, hands out shuffled blocks to the sequences.
Batch make_batch(const Case& c, const LayoutHandle& layout, uint32_t seed) {
    Batch b{c, Cache(c.shape, seed), Cache(c.shape, seed + 1), {}, 0, {}, {}, {}};
    const Shape& s = c.shape;
    const float ks[] = {1.f, b.k_scale}, vs[] = {1.f, b.v_scale};
    EXPECT_EQ(kvc_kv_layout_set_fp8_scales(layout.p, ks, vs, 2), KVC_OK);
    const size_t per_token = size_t(s.kv_heads) * s.head_dim;
    std::vector<int64_t> slots(uint64_t(s.num_blocks) * s.block_size);
    std::iota(slots.begin(), slots.end(), 0);
    b.key = random_floats(slots.size() * per_token, seed + 2);
    b.value = random_floats(slots.size() * per_token, seed + 3);
    EXPECT_EQ(kvc_kv_write(layout.p, 1, b.k.bytes(), b.v.bytes(), b.key.data(), b.value.data(), KVC_DTYPE_F32,
                           slots.data(), slots.size()),
              KVC_OK);
    b.max_blocks = 0;
    for (int32_t len : c.lens) b.max_blocks = std::max<size_t>(b.max_blocks, (size_t(len) + s.block_size - 1) / s.block_size);
    b.max_blocks = std::max<size_t>(b.max_blocks, 1);
    std::vector<int32_t> order(s.num_blocks);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    b.tables.assign(c.lens.size() * b.max_blocks, -1);
    size_t next = 0;
    for (size_t q = 0; q < c.lens.size(); ++q) {
        for (size_t i = 0; i < (size_t(c.lens[q]) + s.block_size - 1) / s.block_size; ++i) {
            b.tables[q * b.max_blocks + i] = order[next++ % order.size()];  // blocks may be shared (prefixes)
        }
    }
    b.query = random_floats(c.lens.size() * c.q_heads * s.head_dim, seed + 4, 1.f);
    return b;
}

// out[s, h] from K/V given as a function (token -> value), in double.
template <class Read>
std::vector<double> reference(const Batch& b, Read&& read, float scale) {
    const Shape& s = b.c.shape;
    const uint32_t group = b.c.q_heads / s.kv_heads;
    std::vector<double> out(b.c.lens.size() * b.c.q_heads * s.head_dim, 0.0);
    for (size_t q = 0; q < b.c.lens.size(); ++q) {
        for (uint32_t h = 0; h < b.c.q_heads; ++h) {
            const uint32_t kvh = h / group;
            const float* qv = b.query.data() + (q * b.c.q_heads + h) * s.head_dim;
            std::vector<double> logits(size_t(b.c.lens[q]));
            for (int32_t t = 0; t < b.c.lens[q]; ++t) {
                double dot = 0;
                for (uint32_t d = 0; d < s.head_dim; ++d) dot += double(qv[d]) * read(true, q, t, kvh, d);
                logits[size_t(t)] = dot * scale;
            }
            if (logits.empty()) continue;
            const double m = *std::max_element(logits.begin(), logits.end());
            double sum = 0;
            for (auto& l : logits) sum += (l = std::exp(l - m));
            double* o = out.data() + (q * b.c.q_heads + h) * s.head_dim;
            for (int32_t t = 0; t < b.c.lens[q]; ++t) {
                for (uint32_t d = 0; d < s.head_dim; ++d) o[d] += logits[size_t(t)] / sum * read(false, q, t, kvh, d);
            }
        }
    }
    return out;
}

std::vector<float> decode(const Batch& b, float scale, const Kernels* table) {
    std::vector<float> out(b.query.size(), NAN);
    DecodeArgs a;
    a.layer = 1;
    a.k_cache = b.k.bytes();
    a.v_cache = b.v.bytes();
    a.query = b.query.data();
    a.num_q_heads = b.c.q_heads;
    a.block_tables = b.tables.data();
    a.max_blocks_per_seq = b.max_blocks;
    a.seq_lens = b.c.lens.data();
    a.num_seqs = b.c.lens.size();
    a.scale = scale;
    a.out = out.data();
    a.kernels = table;
    Layout layout;  // the C++ twin of the handle make_batch set up
    const Shape& s = b.c.shape;
    layout.layers = s.layers;
    layout.num_blocks = s.num_blocks;
    layout.block_size = s.block_size;
    layout.kv_heads = s.kv_heads;
    layout.head_dim = s.head_dim;
    layout.dtype = DType(s.dtype);
    layout.k_scales = {1.f, b.k_scale};
    layout.v_scales = {1.f, b.v_scale};
    attention_decode(layout, a);
    return out;
}

class OpsAttention : public ::testing::TestWithParam<kvc_dtype> {};

TEST_P(OpsAttention, MatchesContiguousAttentionOnEveryInstructionSet) {
    const kvc_dtype dtype = GetParam();
    const std::vector<Case> cases = {
        {{2, 120, 16, 2, 64, dtype}, 8, {1300, 1, 0, 17, 512, 513}},  // GQA, split contexts, empty and tiny
        {{2, 40, 8, 1, 40, dtype}, 4, {100, 7, 64}},                   // MQA, head_dim not a multiple of 16
        {{2, 30, 5, 3, 16, dtype}, 3, {37, 149}},                      // MHA, odd block size
    };
    // Tolerance against the exact attention over the stored values (float accumulation only), and, relative
    // to the value, against the values before quantization (the element type's rounding: E4M3 keeps 3
    // mantissa bits, so up to 1/16 of a value).
    const double quantized_tol = dtype == KVC_DTYPE_F32 ? 1e-5 : dtype == KVC_DTYPE_F16 ? 2e-3
                               : dtype == KVC_DTYPE_BF16 ? 1.5e-2 : dtype == KVC_DTYPE_FP8 ? 7e-2 : 2e-2;
    uint32_t seed = 100;
    for (const Case& c : cases) {
        LayoutHandle layout(c.shape);
        const Batch b = make_batch(c, layout, seed += 10);
        const float scale = 1.f / std::sqrt(float(c.shape.head_dim));
        const Shape& s = c.shape;
        auto stored = [&](bool is_k, size_t q, int32_t t, uint32_t h, uint32_t d) {
            const auto block = uint32_t(b.tables[q * b.max_blocks + size_t(t) / s.block_size]);
            return double((is_k ? b.k : b.v).read(1, block, uint32_t(t) % s.block_size, h, d, is_k ? b.k_scale : b.v_scale));
        };
        auto original = [&](bool is_k, size_t q, int32_t t, uint32_t h, uint32_t d) {
            const auto block = uint32_t(b.tables[q * b.max_blocks + size_t(t) / s.block_size]);
            const uint64_t slot = uint64_t(block) * s.block_size + uint32_t(t) % s.block_size;
            return double((is_k ? b.key : b.value)[(slot * s.kv_heads + h) * s.head_dim + d]);
        };
        const auto exact = reference(b, stored, scale);
        const auto before = reference(b, original, scale);
        for (const char* isa : {"generic", "avx2", "avx512"}) {
            const Kernels* table = kernels_for(isa);
            if (table == nullptr) continue;
            SCOPED_TRACE(std::string(isa) + " head_dim " + std::to_string(s.head_dim));
            const auto got = decode(b, scale, table);
            for (size_t i = 0; i < got.size(); ++i) {
                ASSERT_NEAR(got[i], exact[i], 2e-5 + 2e-5 * std::fabs(exact[i])) << i;
                ASSERT_NEAR(got[i], before[i], quantized_tol * std::max(1.0, std::fabs(before[i]))) << i;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, OpsAttention, ::testing::ValuesIn(kAllDtypes),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// An FP8 NaN code (S.1111.111) in one token's K or V row makes the outputs of its KV head's query heads
// NaN, and only those, on every instruction set: head_dim 64 takes the in-register path (which checks
// blocks for NaN codes), 40 the scratch path on AVX2/AVX-512.
TEST(OpsAttentionFp8, NanCodesReachTheOutputsOfTheirHeadOnly) {
    for (const uint32_t dim : {64u, 40u}) {
        for (const bool in_v : {false, true}) {
            const Case c{{2, 8, 16, 2, dim, KVC_DTYPE_FP8}, 4, {40, 40}};
            LayoutHandle layout(c.shape);
            Batch b = make_batch(c, layout, 7);
            // Sequence 0, token 21 (its second block), KV head 1, element 3.
            const auto block = uint32_t(b.tables[0 * b.max_blocks + 1]);
            for (const int32_t other : {b.tables[1 * b.max_blocks + 0], b.tables[1 * b.max_blocks + 1],
                                        b.tables[1 * b.max_blocks + 2]}) {
                ASSERT_NE(uint32_t(other), block) << "the test needs the block unshared";
            }
            (in_v ? b.v : b.k).bytes()[(in_v ? b.v : b.k).row_at(1, block, 5, 1) + 3] = 0xFF;
            for (const char* isa : {"generic", "avx2", "avx512"}) {
                const Kernels* table = kernels_for(isa);
                if (table == nullptr) continue;
                SCOPED_TRACE(std::string(isa) + " head_dim " + std::to_string(dim) + (in_v ? " V" : " K"));
                const auto got = decode(b, 0.125f, table);
                for (size_t s = 0; s < 2; ++s) {
                    for (uint32_t h = 0; h < c.q_heads; ++h) {
                        const bool poisoned = s == 0 && h / 2 == 1;  // group 2: query heads 2, 3 read KV head 1
                        for (uint32_t d = 0; d < dim; ++d) {
                            const float x = got[(s * c.q_heads + h) * dim + d];
                            if (poisoned && (!in_v || d == 3)) {
                                ASSERT_TRUE(std::isnan(x)) << s << " " << h << " " << d;
                            } else {
                                ASSERT_TRUE(std::isfinite(x)) << s << " " << h << " " << d;
                            }
                        }
                    }
                }
            }
        }
    }
}

TEST(OpsAttentionThreads, ThreadCountChangesNoBit) {
    const Case c{{2, 200, 16, 4, 128, KVC_DTYPE_F16}, 16, {4096, 3000, 1, 700}};
    LayoutHandle layout(c.shape);
    const Batch b = make_batch(c, layout, 5);
    ASSERT_EQ(kvc_kv_set_threads(1), KVC_OK);
    EXPECT_EQ(kvc_kv_threads(), 1u);
    const auto one = decode(b, 0.1f, nullptr);
    ASSERT_EQ(kvc_kv_set_threads(3), KVC_OK);
    const auto three = decode(b, 0.1f, nullptr);
    ASSERT_EQ(kvc_kv_set_threads(0), KVC_OK);
    EXPECT_GE(kvc_kv_threads(), 1u);
    const auto all = decode(b, 0.1f, nullptr);
    for (size_t i = 0; i < one.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(one[i]), std::bit_cast<uint32_t>(three[i])) << i;
        ASSERT_EQ(std::bit_cast<uint32_t>(one[i]), std::bit_cast<uint32_t>(all[i])) << i;
    }
    EXPECT_EQ(kvc_kv_set_threads(1025), KVC_ERR_OUT_OF_RANGE);
}

TEST(OpsParallel, EveryIndexRunsOnceEvenWhenCalledFromATask) {
    ASSERT_EQ(kvc_kv_set_threads(4), KVC_OK);
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(10, [&](size_t outer) {
        // The pool is busy: the nested loop runs on this thread alone, no deadlock.
        parallel_for(100, [&](size_t inner) { hits[outer * 100 + inner].fetch_add(1); });
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    ASSERT_EQ(kvc_kv_set_threads(0), KVC_OK);
}

}  // namespace
}  // namespace kvcore::ops::test
