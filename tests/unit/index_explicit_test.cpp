// SPDX-License-Identifier: Apache-2.0
// llm-d's explicit writes on the cluster index (Index::add / Index::evict): the engine-to-request key
// mapping in each of its shapes, eviction by either key, their interplay with events, clears, the byte
// budget and concurrent use.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "common/error.h"
#include "index/index.h"
#include "pool/pool.h"

namespace kvcore::index {
namespace {

IndexConfig mapped() { return IndexConfig{.hash_seed = "7", .block_size = 16}; }

Holder holder(PodId pod, uint16_t rank = 0, Medium tier = Medium::kGpu) { return Holder{pod, rank, tier, false}; }

// Blocks of pod's run from key 0 among keys (request keys).
uint32_t run_of(const Index& index, ModelId model, PodId pod, std::span<const uint64_t> keys) {
    PodScore out[1];
    const PodId cand[1] = {pod};
    index.score(model, keys, cand, out);
    return out[0].blocks;
}

bool holds(const Index& index, ModelId model, uint64_t key, const Holder& h) {
    const auto all = index.holders(model, key);
    return std::find(all.begin(), all.end(), h) != all.end();
}

kvc_status status_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.status();
    }
    return KVC_OK;
}

TEST(IndexExplicit, OneToOneAddsEveryHolderAndEvictsByEitherKey) {
    Index index(mapped());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    const std::vector<uint64_t> engine{101, 102, 103}, request{201, 202, 203};
    const std::vector<Holder> both{holder(a), holder(b, 1, Medium::kCpu)};
    index.add(m, engine, request, both);
    EXPECT_EQ(index.counters().keys, 3u);
    EXPECT_EQ(index.counters().holders, 6u);
    EXPECT_EQ(index.counters().engine_blocks, 6u);  // one mapping per (pod, rank)
    EXPECT_EQ(run_of(index, m, a, request), 3u);
    EXPECT_EQ(run_of(index, m, b, request), 3u);
    PodScore out[2];
    const PodId cands[2] = {a, b};
    index.score(m, request, cands, out);
    EXPECT_DOUBLE_EQ(out[0].score, 3.0);
    EXPECT_NEAR(out[1].score, 3 * 0.8, 1e-6);  // cpu weighs 0.8
    // Engine key 102 of a: a leaves request key 202, so its run stops at one block; b is untouched.
    const Holder a_only[1] = {holder(a)};
    index.evict(m, 102, KeyKind::kEngine, a_only);
    EXPECT_EQ(run_of(index, m, a, request), 1u);
    EXPECT_EQ(run_of(index, m, b, request), 3u);
    EXPECT_FALSE(holds(index, m, 202, holder(a)));
    // The wrong tier or rank evicts nothing.
    const Holder b_wrong[2] = {holder(b, 1, Medium::kGpu), holder(b, 0, Medium::kCpu)};
    index.evict(m, 101, KeyKind::kEngine, b_wrong);
    index.evict(m, 201, KeyKind::kRequest, b_wrong);
    EXPECT_EQ(run_of(index, m, b, request), 3u);
    // By request key.
    const Holder b_only[1] = {holder(b, 1, Medium::kCpu)};
    index.evict(m, 201, KeyKind::kRequest, b_only);
    EXPECT_EQ(run_of(index, m, b, request), 0u);
    EXPECT_TRUE(holds(index, m, 202, holder(b, 1, Medium::kCpu)));
    // Evicting by engine key dropped that mapping (a's 102); evicting by request key keeps b's.
    EXPECT_EQ(index.counters().engine_blocks, 5u);
    index.check_invariants();
}

TEST(IndexExplicit, ManyToOneAndOneToManyMappings) {
    Index index(mapped());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    const Holder ha[1] = {holder(a)}, hb[1] = {holder(b)};
    // Engine blocks of 8 tokens, request blocks of 16: engine keys 2i and 2i+1 make request key i.
    const std::vector<uint64_t> small{1, 2, 3, 4, 5, 6}, request{10, 11, 12};
    index.add(m, small, request, ha);
    EXPECT_EQ(run_of(index, m, a, request), 3u);
    index.evict(m, 4, KeyKind::kEngine, ha);  // the second half of request key 11
    EXPECT_EQ(run_of(index, m, a, request), 1u);
    EXPECT_TRUE(holds(index, m, 12, holder(a)));
    // Engine blocks of 32 tokens: engine key i makes request keys 2i and 2i+1.
    const std::vector<uint64_t> large{7, 8}, request4{20, 21, 22, 23};
    index.add(m, large, request4, hb);
    EXPECT_EQ(run_of(index, m, b, request4), 4u);
    index.evict(m, 8, KeyKind::kEngine, hb);
    EXPECT_EQ(run_of(index, m, b, request4), 2u);
    EXPECT_FALSE(holds(index, m, 22, holder(b)));
    EXPECT_FALSE(holds(index, m, 23, holder(b)));
    // No engine keys: request keys only, evicted by request key; an engine-key evict finds no mapping.
    const std::vector<uint64_t> none, only{30, 31};
    index.add(m, none, only, ha);
    index.evict(m, 30, KeyKind::kEngine, ha);
    EXPECT_EQ(run_of(index, m, a, only), 2u);
    index.evict(m, 30, KeyKind::kRequest, ha);
    EXPECT_EQ(run_of(index, m, a, only), 0u);
    index.check_invariants();
}

TEST(IndexExplicit, AnEngineKeyAddedAgainKeepsBothMappingsAndEachTier) {
    Index index(mapped());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a");
    const std::vector<uint64_t> e{5}, r1{50}, r2{51};
    const Holder gpu[1] = {holder(a)}, cpu[1] = {holder(a, 0, Medium::kCpu)};
    index.add(m, e, r1, gpu);
    index.add(m, e, r2, cpu);
    EXPECT_EQ(index.counters().engine_blocks, 1u);  // one mapping: 5 -> {50, 51}, tiers gpu and cpu
    EXPECT_EQ(index.counters().holders, 2u);
    index.evict(m, 5, KeyKind::kEngine, gpu);
    EXPECT_FALSE(holds(index, m, 50, holder(a)));
    EXPECT_TRUE(holds(index, m, 51, holder(a, 0, Medium::kCpu)));
    EXPECT_EQ(index.counters().engine_blocks, 1u);  // the cpu tier still maps
    index.evict(m, 5, KeyKind::kEngine, cpu);
    EXPECT_EQ(index.counters().keys, 0u);
    EXPECT_EQ(index.counters().engine_blocks, 0u);
    index.check_invariants();
}

TEST(IndexExplicit, BadArgumentsChangeNothing) {
    Index index(mapped());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a");
    const Holder ha[1] = {holder(a)};
    const std::vector<uint64_t> three{1, 2, 3}, two{4, 5}, none;
    EXPECT_EQ(status_of([&] { index.add(m, three, two, ha); }), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { index.add(m, three, none, ha); }), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { index.add(m, none, two, {}); }), KVC_ERR_INVALID_ARGUMENT);
    const Holder spec[1] = {Holder{a, 0, Medium::kGpu, true}};
    EXPECT_EQ(status_of([&] { index.add(m, none, two, spec); }), KVC_ERR_INVALID_ARGUMENT);
    const Holder bad_rank[2] = {holder(a), holder(a, kMaxRank + 1)};
    EXPECT_EQ(status_of([&] { index.add(m, two, two, bad_rank); }), KVC_ERR_INVALID_ARGUMENT);
    const Holder unknown[1] = {holder(77)};
    EXPECT_EQ(status_of([&] { index.add(m, two, two, unknown); }), KVC_ERR_NOT_FOUND);
    EXPECT_EQ(status_of([&] { index.add(ModelId{9}, two, two, ha); }), KVC_ERR_NOT_FOUND);
    EXPECT_EQ(status_of([&] { index.evict(m, 4, KeyKind::kRequest, {}); }), KVC_ERR_INVALID_ARGUMENT);
    const auto c = index.counters();
    EXPECT_EQ(c.keys, 0u);
    EXPECT_EQ(c.engine_blocks, 0u);
}

TEST(IndexExplicit, ASpeculativeHolderCountsAsRankZeroGpu) {
    Index index(mapped());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a");
    const std::vector<uint64_t> keys{1, 2};
    index.add_speculative(m, keys, a, 60'000'000'000ull);
    ASSERT_TRUE(index.holders(m, 1)[0].speculative);
    const Holder cpu[1] = {holder(a, 0, Medium::kCpu)};
    index.evict(m, 1, KeyKind::kRequest, cpu);
    EXPECT_EQ(index.holders(m, 1).size(), 1u);
    const Holder gpu[1] = {holder(a)};
    index.evict(m, 1, KeyKind::kRequest, gpu);
    EXPECT_TRUE(index.holders(m, 1).empty());
    EXPECT_EQ(index.counters().speculative, 1u);
    // Withdrawing the decision removes speculative holders only.
    const std::vector<uint64_t> one{1}, two{2};
    index.add(m, {}, one, gpu);
    index.add_speculative(m, one, a, 60'000'000'000ull);  // a confirmed holder: no decision is added
    index.remove_speculative(m, one, a);
    EXPECT_TRUE(holds(index, m, 1, holder(a)));
    index.evict(m, 1, KeyKind::kRequest, gpu);
    // A confirmed add replaces the routing decision, as the engine's event would.
    const std::vector<uint64_t> none, second{2};
    index.add(m, none, second, gpu);
    ASSERT_EQ(index.holders(m, 2).size(), 1u);
    EXPECT_FALSE(index.holders(m, 2)[0].speculative);
    EXPECT_EQ(index.counters().speculative, 0u);
    index.check_invariants();
}

// An engine key that only the pod's events mapped is evicted as the engine's BlockRemoved would be.
TEST(IndexExplicit, EvictingAnEventsEngineKeyIsTheEnginesRemoval) {
    Index index(mapped());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a");
    pool::Pool engine(pool::PoolConfig{.num_blocks = 64, .block_size = 16, .hash_algo = pool::HashAlgo::kSha256Cbor,
                                       .hash_seed = "42", .events = true});
    std::vector<int32_t> prompt(16 * 4 + 1);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i * 3 + 1);
    const auto seq = engine.create_sequence(prompt, {});
    engine.allocate(seq, prompt.size());
    const EventBatch batch = decode_event_batch(engine.encode_events(pool::EventEncoding::kArray));
    index.apply(a, m, batch);
    const auto keys = index.request_keys(prompt, {});
    ASSERT_EQ(run_of(index, m, a, keys), 4u);
    const auto& stored = std::get<BlockStored>(batch.events.at(0));
    const Holder ha[1] = {holder(a)};
    index.evict(m, stored.block_hashes.at(2), KeyKind::kEngine, ha);
    EXPECT_EQ(run_of(index, m, a, keys), 2u);
    EXPECT_EQ(index.counters().blocks_removed, 1u);
    EXPECT_EQ(index.counters().engine_blocks, 3u);
    index.check_invariants();
}

TEST(IndexExplicit, ClearsAndRemovingThePodDropTheMapping) {
    Index index(mapped());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    const std::vector<uint64_t> e{1, 2}, r{11, 12};
    const Holder both[3] = {holder(a), holder(a, 3), holder(b)};
    index.add(m, e, r, both);
    EXPECT_EQ(index.counters().engine_blocks, 6u);
    EventBatch clear;
    clear.data_parallel_rank = 3;
    clear.events.emplace_back(AllBlocksCleared{});
    index.apply(a, m, clear);  // a's rank 3 only
    EXPECT_EQ(index.counters().engine_blocks, 4u);
    EXPECT_FALSE(holds(index, m, 11, holder(a, 3)));
    EXPECT_TRUE(holds(index, m, 11, holder(a)));
    index.remove_pod(a);
    EXPECT_EQ(index.counters().engine_blocks, 2u);
    EXPECT_EQ(index.counters().holders, 2u);
    EXPECT_EQ(run_of(index, m, b, r), 2u);
    index.check_invariants();
}

TEST(IndexExplicit, AddsKeepTheByteBudget) {
    IndexConfig c = mapped();
    c.shards = 1;
    c.byte_budget = 100 * Index::kKeyCharge;
    Index index(c);
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a");
    const Holder ha[1] = {holder(a)};
    std::vector<uint64_t> engine(1000), request(1000);
    for (size_t i = 0; i < engine.size(); ++i) {
        engine[i] = 5000 + i;
        request[i] = 9000 + i;
    }
    index.add(m, engine, request, ha);
    const auto counters = index.counters();
    EXPECT_EQ(counters.keys, 100u);
    EXPECT_EQ(counters.evictions, 900u);
    EXPECT_LE(counters.charged_bytes, c.byte_budget);
    EXPECT_TRUE(holds(index, m, 9999, holder(a)));  // the newest stay
    EXPECT_FALSE(holds(index, m, 9000, holder(a)));
    index.evict(m, 5000, KeyKind::kEngine, ha);  // its key went with the budget: nothing to remove
    index.check_invariants();
}

// llm-d's concurrent test, on kvcore: goroutine-like threads add, look up and evict the same keys
// for their own pods while one removes and re-adds pods; the index stays consistent.
TEST(IndexExplicit, ConcurrentAddLookupEvict) {
    Index index(mapped());
    const ModelId m = index.intern_model("m");
    const std::vector<uint64_t> engine{1, 2, 3, 4}, request{11, 12, 13, 14};
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            const PodId pod = index.intern_pod("pod-" + std::to_string(t));
            const Holder h[1] = {holder(pod, static_cast<uint16_t>(t % 2))};
            for (int i = 0; i < 300; ++i) {
                index.add(m, engine, request, h);
                const PodId cand[1] = {pod};
                if (index.lookup(m, request, cand).keys_found != 4) failures.fetch_add(1);
                index.evict(m, engine[static_cast<size_t>(i) % 4], KeyKind::kEngine, h);
                index.evict(m, request[0], KeyKind::kRequest, h);
                if (index.lookup(m, request, cand).keys_found != 0) failures.fetch_add(1);
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    index.check_invariants();
}

}  // namespace
}  // namespace kvcore::index
