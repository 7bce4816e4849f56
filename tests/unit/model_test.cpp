// SPDX-License-Identifier: Apache-2.0
// The reference decoder (src/model): generation with the pool's KV cache must give the tokens of recomputing
// every context from scratch, batched steps those of one sequence at a time, chunked prefill that of one pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "common/error.h"
#include "model/generate.h"
#include "model/model.h"
#include "model/rng.h"
#include "model/sampler.h"

namespace kvcore::model {
namespace {

constexpr uint32_t kBlock = 16;

using PoolPtr = std::unique_ptr<kvc_pool, decltype(&kvc_pool_destroy)>;

PoolPtr make_pool(const Config& c, uint32_t blocks, bool prefix_caching = false) {
    kvc_pool_options* o = nullptr;
    EXPECT_EQ(kvc_pool_options_create(&o), KVC_OK);
    EXPECT_EQ(kvc_pool_options_set_num_blocks(o, blocks), KVC_OK);
    EXPECT_EQ(kvc_pool_options_set_block_size(o, kBlock), KVC_OK);
    EXPECT_EQ(kvc_pool_options_set_model_shape(o, c.layers, c.heads, c.head_dim(), KVC_DTYPE_F32), KVC_OK);
    EXPECT_EQ(kvc_pool_options_set_memory(o, KVC_MEMORY_HOST), KVC_OK);
    EXPECT_EQ(kvc_pool_options_set_prefix_caching(o, prefix_caching ? 1 : 0), KVC_OK);
    kvc_pool* pool = nullptr;
    EXPECT_EQ(kvc_pool_create(o, &pool), KVC_OK);
    kvc_pool_options_destroy(o);
    return PoolPtr(pool, kvc_pool_destroy);
}

std::vector<int32_t> prompt(uint32_t n, uint32_t vocab, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> p(n);
    for (auto& t : p) t = int32_t(rng.next() % vocab);
    return p;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    float m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

float max_abs(const std::vector<float>& a) {
    float m = 0;
    for (float v : a) m = std::max(m, std::abs(v));
    return m;
}

// Cached and recomputed generation of the same requests: same tokens, logits within float rounding.
void expect_cached_matches_recompute(const Config& c, const std::vector<Request>& requests, uint32_t blocks) {
    auto pool = make_pool(c, blocks);
    Model model(c, pool_memory(pool.get(), kBlock));
    const auto cached = generate(model, pool.get(), requests, {.mode = Mode::kCached, .keep_logits = true});
    const auto recomputed = generate(model, pool.get(), requests, {.mode = Mode::kRecompute, .keep_logits = true});
    ASSERT_EQ(cached.size(), requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
        EXPECT_EQ(cached[i].tokens.size(), requests[i].max_new_tokens);
        EXPECT_EQ(cached[i].tokens, recomputed[i].tokens) << "request " << i;
        EXPECT_LT(max_abs_diff(cached[i].logits, recomputed[i].logits), 1e-4f * std::max(1.f, max_abs(cached[i].logits)))
            << "request " << i;
    }
    EXPECT_EQ(kvc_pool_num_blocks_in_use(pool.get()), 0u);  // every block went back
}

TEST(ModelGenerate, SmallMindGreedyCachedMatchesRecompute) {
    const Config c = Config::small_mind();
    expect_cached_matches_recompute(c, {{.prompt = prompt(19, c.vocab, 1), .max_new_tokens = 50}}, 64);
}

TEST(ModelGenerate, SmallMindSampledCachedMatchesRecompute) {
    const Config c = Config::small_mind();
    const Request sampled{.prompt = prompt(19, c.vocab, 2), .max_new_tokens = 50,
                          .sampling = {.temperature = 0.8f, .top_k = 40, .seed = 7}};
    expect_cached_matches_recompute(c, {sampled}, 64);

    // Sampling does sample: the same seed repeats itself, another seed and greedy decoding differ.
    auto pool = make_pool(c, 64);
    Model model(c, pool_memory(pool.get(), kBlock));
    Request other_seed = sampled, greedy = sampled;
    other_seed.sampling.seed = 8;
    greedy.sampling = {};
    const auto out = generate(model, pool.get(), std::vector<Request>{sampled, sampled, other_seed, greedy});
    EXPECT_EQ(out[0].tokens, out[1].tokens);
    EXPECT_NE(out[0].tokens, out[2].tokens);
    EXPECT_NE(out[0].tokens, out[3].tokens);
}

TEST(ModelGenerate, BatchedStepsMatchOneSequenceAtATime) {
    const Config c = Config::small_mind();
    // Prompts of different lengths (one token, within a block, exactly a block, across blocks) and outputs of
    // different lengths, so every step mixes positions, prefill with decode, and admissions mid-run.
    std::vector<Request> requests;
    const uint32_t lengths[] = {1, 7, 16, 19, 33}, outputs[] = {12, 20, 5, 17, 9};
    for (size_t i = 0; i < 5; ++i) {
        requests.push_back({.prompt = prompt(lengths[i], c.vocab, 10 + i), .max_new_tokens = outputs[i]});
        if (i % 2) requests.back().sampling = {.temperature = 0.8f, .top_k = 40, .seed = 100 + i};
    }
    auto pool = make_pool(c, 64);
    Model model(c, pool_memory(pool.get(), kBlock));
    const auto one_by_one = generate(model, pool.get(), requests, {.max_batch = 1, .keep_logits = true});
    for (uint32_t max_batch : {2u, 5u}) {
        const auto batched = generate(model, pool.get(), requests, {.max_batch = max_batch, .keep_logits = true});
        for (size_t i = 0; i < requests.size(); ++i) {
            EXPECT_EQ(batched[i].tokens, one_by_one[i].tokens) << "request " << i << ", max_batch " << max_batch;
            EXPECT_LT(max_abs_diff(batched[i].logits, one_by_one[i].logits), 1e-4f);
        }
    }
    // And all of them batched without the cache.
    const auto recomputed = generate(model, pool.get(), requests, {.mode = Mode::kRecompute});
    for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(recomputed[i].tokens, one_by_one[i].tokens);
}

TEST(ModelGenerate, Gpt2SmallCachedMatchesRecompute) {
    const Config c = Config::gpt2_small();
    expect_cached_matches_recompute(c,
                                    {{.prompt = prompt(19, c.vocab, 3), .max_new_tokens = 4},
                                     {.prompt = prompt(5, c.vocab, 4), .max_new_tokens = 6,
                                      .sampling = {.temperature = 0.8f, .top_k = 40, .seed = 9}}},
                                    16);
}

TEST(ModelGenerate, PrefixCacheSuppliesTheSameKeysAndValues) {
    const Config c = Config::small_mind();
    auto pool = make_pool(c, 64, /*prefix_caching=*/true);
    Model model(c, pool_memory(pool.get(), kBlock));
    const Request r{.prompt = prompt(37, c.vocab, 5), .max_new_tokens = 10};
    // One at a time: the second finds the first's two full prompt blocks cached and computes only the rest.
    const auto out = generate(model, pool.get(), std::vector<Request>{r, r}, {.max_batch = 1});
    EXPECT_EQ(out[0].cached_prompt_tokens, 0u);
    EXPECT_EQ(out[1].cached_prompt_tokens, 32u);
    EXPECT_EQ(out[0].tokens, out[1].tokens);
}

TEST(ModelGenerate, RunningOutOfBlocksFreesWhatItHeld) {
    const Config c = Config::small_mind();
    auto pool = make_pool(c, 4);
    Model model(c, pool_memory(pool.get(), kBlock));
    const std::vector<Request> requests(3, Request{.prompt = prompt(30, c.vocab, 6), .max_new_tokens = 40});
    try {
        (void)generate(model, pool.get(), requests);
        FAIL() << "three 70-token sequences fit in 4 blocks of 16";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), KVC_ERR_CAPACITY);
    }
    EXPECT_EQ(kvc_pool_num_blocks_in_use(pool.get()), 0u);
}

// Model::forward directly: a prompt in three chunks (chunked prefill) gives the logits of one pass.
TEST(ModelForward, ChunkedPrefillMatchesOnePass) {
    const Config c = Config::small_mind();
    auto pool = make_pool(c, 16);
    Model model(c, pool_memory(pool.get(), kBlock));
    const auto tokens = prompt(40, c.vocab, 7);
    std::vector<int32_t> table_a = {0, 1, 2}, table_b = {5, 3, 9};
    auto slots_of = [](const std::vector<int32_t>& table, size_t first, size_t n) {
        std::vector<int64_t> s(n);
        for (size_t i = 0; i < n; ++i) s[i] = int64_t(table[(first + i) / kBlock]) * kBlock + (first + i) % kBlock;
        return s;
    };
    const auto all_slots = slots_of(table_a, 0, 40);
    std::vector<float> one_pass, every;
    model.forward(std::vector<SequenceStep>{{tokens, 0, all_slots, table_a}}, every, Logits::kEveryToken);
    model.forward(std::vector<SequenceStep>{{tokens, 0, all_slots, table_a}}, one_pass);
    ASSERT_EQ(every.size(), 40u * c.vocab);
    ASSERT_EQ(one_pass.size(), c.vocab);
    EXPECT_LT(max_abs_diff(one_pass, std::vector<float>(every.end() - c.vocab, every.end())), 1e-4f);

    std::vector<float> chunk;
    for (auto [first, n] : {std::pair<size_t, size_t>{0, 16}, {16, 16}, {32, 8}}) {
        const auto slots = slots_of(table_b, first, n);
        const std::span<const int32_t> part(tokens.data() + first, n);
        model.forward(std::vector<SequenceStep>{{part, uint32_t(first), slots, table_b}}, chunk);
        const std::vector<float> expected(every.begin() + (first + n - 1) * c.vocab, every.begin() + (first + n) * c.vocab);
        EXPECT_LT(max_abs_diff(chunk, expected), 1e-4f) << "chunk at " << first;
    }
}

TEST(ModelForward, RejectsBadSteps) {
    const Config c = Config::small_mind();
    auto pool = make_pool(c, 16);
    Model model(c, pool_memory(pool.get(), kBlock));
    std::vector<int32_t> tokens = {1, 2}, table = {3};
    std::vector<int64_t> slots = {48, 49};
    std::vector<float> logits;
    auto status_of = [&](const SequenceStep& step) {
        try {
            model.forward(std::vector<SequenceStep>{step}, logits);
        } catch (const Error& e) {
            return e.status();
        }
        return KVC_OK;
    };
    EXPECT_EQ(status_of({tokens, 0, slots, table}), KVC_OK);
    EXPECT_EQ(logits.size(), c.vocab);
    const std::vector<int32_t> bad_token = {1, int32_t(c.vocab)};
    EXPECT_EQ(status_of({bad_token, 0, slots, table}), KVC_ERR_OUT_OF_RANGE);
    EXPECT_EQ(status_of({tokens, c.context - 1, slots, std::vector<int32_t>(8, 3)}), KVC_ERR_OUT_OF_RANGE);
    const std::vector<int64_t> elsewhere = {48, 50};
    EXPECT_EQ(status_of({tokens, 0, elsewhere, table}), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({tokens, 0, std::span<const int64_t>(slots.data(), 1), table}), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of({tokens, 16, slots, table}), KVC_ERR_INVALID_ARGUMENT);  // table too short for 18 tokens
    const std::vector<int32_t> past_pool = {16};
    EXPECT_EQ(status_of({tokens, 0, std::vector<int64_t>{256, 257}, past_pool}), KVC_ERR_OUT_OF_RANGE);

    // A pool of another shape cannot hold this model's K/V.
    Config wider = c;
    wider.d_model = 256;
    EXPECT_THROW(Model(wider, pool_memory(pool.get(), kBlock)), Error);
}

TEST(ModelSampler, GreedyTopKAndSeeds) {
    const std::vector<float> logits = {0.5f, 2.f, -1.f, 2.f, 1.f};
    EXPECT_EQ(Sampler({}).next(logits), 1);  // the first of the tied maxima
    Sampler top1({.temperature = 5.f, .top_k = 1, .seed = 3});
    for (int i = 0; i < 20; ++i) EXPECT_EQ(top1.next(logits), 1);  // ties by id: 1 before 3
    Sampler top2({.temperature = 5.f, .top_k = 2, .seed = 3});
    for (int i = 0; i < 50; ++i) {
        const int32_t t = top2.next(logits);
        EXPECT_TRUE(t == 1 || t == 3) << t;
    }
    Sampler a({.temperature = 1.f, .seed = 11}), b({.temperature = 1.f, .seed = 11});
    for (int i = 0; i < 50; ++i) EXPECT_EQ(a.next(logits), b.next(logits));
    EXPECT_THROW(Sampler({.temperature = -1.f}), Error);
}

TEST(ModelSampler, FrequenciesFollowTheSoftmax) {
    // Logits ln 1, ln 2, ln 4 at temperature 1: probabilities 1/7, 2/7, 4/7; at temperature 0.5: 1/21, 4/21, 16/21.
    const std::vector<float> logits = {0.f, std::log(2.f), std::log(4.f)};
    for (auto [temperature, expected] :
         {std::pair<float, std::array<double, 3>>{1.f, {1 / 7., 2 / 7., 4 / 7.}}, {0.5f, {1 / 21., 4 / 21., 16 / 21.}}}) {
        Sampler s({.temperature = temperature, .seed = 42});
        std::array<int, 3> counts{};
        const int n = 40000;
        for (int i = 0; i < n; ++i) ++counts[size_t(s.next(logits))];
        for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(counts[k] / double(n), expected[k], 0.01) << temperature << " " << k;
    }
}

}  // namespace
}  // namespace kvcore::model
