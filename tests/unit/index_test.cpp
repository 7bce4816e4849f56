// SPDX-License-Identifier: Apache-2.0
// The cluster index's core and scorer (issue 13): every rule of src/index/index.h, with events from a
// real kvcore Pool (encoded, decoded, applied) and events built by hand for unknown parents.
#include "index/index.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "common/error.h"
#include "index/event_decoder.h"
#include "index/ingest_pool.h"
#include "pool/pool.h"

namespace kvcore::index {
namespace {

using pool::BlockHasher;
using pool::HashAlgo;

std::vector<int32_t> tokens_from(uint32_t seed, size_t n) {
    std::mt19937 rng(seed);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = static_cast<int32_t>(rng() % 50000);
    return t;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// ---- a kvcore Pool as the engine --------------------------------------------------------------------------
struct Engine {
    pool::Pool pool;
    explicit Engine(uint32_t block_size, uint32_t blocks = 4096)
        : pool(pool::PoolConfig{.num_blocks = blocks,
                                .block_size = block_size,
                                .hash_algo = HashAlgo::kSha256Cbor,
                                .hash_seed = "42",
                                .events = true}) {}
    void run(const std::vector<int32_t>& prompt, const pool::ExtraKeys& keys = {}) {
        const auto id = pool.create_sequence(prompt, pool::SequenceOptions{.keys = keys});
        pool.allocate(id, prompt.size());
        pool.free_sequence(id);
    }
    size_t cached_tokens(const std::vector<int32_t>& prompt, const pool::ExtraKeys& keys = {}) {
        const auto id = pool.create_sequence(prompt, pool::SequenceOptions{.keys = keys});
        const size_t c = pool.cached_prefix_tokens(id);
        pool.free_sequence(id);
        return c;
    }
    EventBatch drain() {
        const auto bytes = pool.encode_events(pool::EventEncoding::kArray);
        pool.clear_events();
        return decode_event_batch(bytes);
    }
};

uint32_t score_one(const Index& index, ModelId model, PodId pod, const std::vector<int32_t>& prompt,
                   const pool::ExtraKeys& keys = {}) {
    PodScore out[1];
    const PodId cand[1] = {pod};
    index.score_tokens(model, prompt, keys, cand, out);
    return out[0].blocks;
}

IndexConfig direct_config() {
    return IndexConfig{.hash_algo = HashAlgo::kSha256Cbor, .hash_seed = "42", .block_size = 16, .engine_keys_direct = true};
}
IndexConfig mapped_config(uint32_t block_size, HashAlgo algo = HashAlgo::kXxh3) {
    return IndexConfig{.hash_algo = algo, .hash_seed = "1234", .block_size = block_size};
}

EventBatch batch_of(std::vector<Event> events, std::optional<int64_t> rank = std::nullopt) {
    EventBatch b;
    b.events = std::move(events);
    b.data_parallel_rank = rank;
    return b;
}

// Drives an engine through prompts sharing prefixes (and, with a small pool, evicting), applies its
// events to the index, and checks that every pod's score is the engine's cached prefix in index blocks.
void check_matches_pool(IndexConfig config, uint32_t engine_block, uint32_t engine_blocks, const pool::ExtraKeys& keys) {
    Index index(config);
    const ModelId model = index.intern_model("llama");
    const PodId pod = index.intern_pod("pod-a");
    Engine engine(engine_block, engine_blocks);
    const auto system = tokens_from(1, 40 * 16 + 5);
    std::vector<std::vector<int32_t>> prompts;
    for (uint32_t i = 0; i < 30; ++i) {
        const size_t shared = (i * 37) % system.size();
        prompts.push_back(concat(std::vector<int32_t>(system.begin(), system.begin() + shared), tokens_from(100 + i, 50 + i * 13)));
        // The pool keeps the last token of a prompt uncached: keep it out of the last full block.
        if (prompts.back().size() % 16 == 0) prompts.back().push_back(1);
    }
    std::vector<EventBatch> log;
    for (size_t i = 0; i < prompts.size(); ++i) {
        engine.run(prompts[i], keys);
        log.push_back(engine.drain());
        index.apply(pod, model, log.back());
        if (i % 5 != 4) continue;
        for (size_t q = 0; q <= i; ++q) {
            const size_t cached = engine.cached_tokens(prompts[q], keys);
            log.push_back(engine.drain());
            index.apply(pod, model, log.back());
            const size_t full = prompts[q].size() / config.block_size;
            const size_t expected = std::min(full, cached / config.block_size);
            const uint32_t score = score_one(index, model, pod, prompts[q], keys);
            if (engine_block <= config.block_size) {
                ASSERT_EQ(score, expected) << "prompt " << q << " after " << i;
            } else {
                // Index blocks smaller than the engine's: the pod may hold the next index block inside
                // another engine block (a prompt that parted mid-block) that vLLM cannot hit partly.
                ASSERT_GE(score, expected) << "prompt " << q << " after " << i;
                ASSERT_LT(score, expected + engine_block / config.block_size) << "prompt " << q << " after " << i;
            }
        }
    }
    index.check_invariants();
    // A different salt shares nothing.
    pool::ExtraKeys other = keys;
    other.cache_salt = "another-tenant";
    EXPECT_EQ(score_one(index, model, pod, prompts[0], other), 0u);
}

TEST(IndexPool, DirectEngineKeysScoreThePoolsCachedPrefix) { check_matches_pool(direct_config(), 16, 4096, {}); }
TEST(IndexPool, DirectWithEvictionsAndExtraKeys) {
    check_matches_pool(direct_config(), 16, 60, pool::ExtraKeys{.lora_name = "adapter", .cache_salt = "tenant"});
}
TEST(IndexPool, MappedOneToOne) { check_matches_pool(mapped_config(16), 16, 4096, {}); }
TEST(IndexPool, MappedOneToOneWithEvictionsAndExtraKeys) {
    check_matches_pool(mapped_config(16, HashAlgo::kSha256Cbor), 16, 60,
                       pool::ExtraKeys{.lora_name = "adapter", .cache_salt = "tenant"});
}
TEST(IndexPool, MappedManyToOneEngine16Index32) { check_matches_pool(mapped_config(32), 16, 4096, {}); }
TEST(IndexPool, MappedManyToOneWithEvictions) {
    check_matches_pool(mapped_config(32), 16, 60, pool::ExtraKeys{.cache_salt = "s"});
}
TEST(IndexPool, MappedOneToManyEngine32Index16) { check_matches_pool(mapped_config(16), 32, 4096, {}); }
TEST(IndexPool, MappedOneToManyWithEvictions) {
    check_matches_pool(mapped_config(16), 32, 40, pool::ExtraKeys{.lora_name = "l"});
}
TEST(IndexPool, DirectConfigWithAnotherEngineBlockSizeGoesThroughTheMapping) {
    IndexConfig c = direct_config();
    c.block_size = 32;
    check_matches_pool(c, 16, 4096, {});
}

// ---- events by hand: an engine whose seed the index does not know --------------------------------------
struct HandEngine {
    BlockHasher hasher{HashAlgo::kSha256Cbor, "777"};
    uint32_t block_size = 16;
    // BlockStored for blocks [first, first + n) of tokens.
    BlockStored stored(const std::vector<int32_t>& tokens, size_t first, size_t n, Medium m = Medium::kGpu) const {
        const auto hs = hasher.hash_blocks(std::span(tokens).first((first + n) * block_size), block_size, {});
        BlockStored s;
        for (size_t i = first; i < first + n; ++i) s.block_hashes.push_back(hs[i].event_value(hasher.algo()));
        if (first > 0) s.parent_block_hash = hs[first - 1].event_value(hasher.algo());
        s.token_ids.assign(tokens.begin() + first * block_size, tokens.begin() + (first + n) * block_size);
        s.block_size = block_size;
        s.medium = m;
        return s;
    }
    uint64_t key(const std::vector<int32_t>& tokens, size_t block) const {
        return hasher.hash_blocks(std::span(tokens).first((block + 1) * block_size), block_size, {})[block].event_value(
            hasher.algo());
    }
};


TEST(IndexOrphans, UnknownParentIsIndexedByEngineKeyAndHealsWhenTheParentArrives) {
    for (uint32_t index_block : {16u, 32u, 8u}) {
        Index index(mapped_config(index_block));
        const ModelId model = index.intern_model("m");
        const PodId pod = index.intern_pod("p");
        HandEngine engine;
        const auto prompt = tokens_from(5, 16 * 12);
        // The tail arrives first (as after a router restart), then a grandchild, then the head.
        index.apply(pod, model, batch_of({engine.stored(prompt, 4, 4)}));
        index.apply(pod, model, batch_of({engine.stored(prompt, 8, 4)}));
        EXPECT_EQ(score_one(index, model, pod, prompt), 0u);
        EXPECT_EQ(index.holders(model, engine.key(prompt, 5), KeyKind::kEngine).size(), 1u);
        EXPECT_EQ(index.holders(model, engine.key(prompt, 9), KeyKind::kEngine).size(), 1u);
        EXPECT_EQ(index.counters().orphan_blocks, 8u);
        index.apply(pod, model, batch_of({engine.stored(prompt, 0, 4)}));
        EXPECT_EQ(score_one(index, model, pod, prompt), 16u * 12 / index_block) << index_block;
        EXPECT_TRUE(index.holders(model, engine.key(prompt, 5), KeyKind::kEngine).empty());
        EXPECT_TRUE(index.holders(model, engine.key(prompt, 9), KeyKind::kEngine).empty());
        const auto c = index.counters();
        EXPECT_EQ(c.orphan_blocks, 0u);
        EXPECT_EQ(c.orphans_healed, 8u);
        // Removing an engine block in the middle ends the run there.
        BlockRemoved r;
        r.block_hashes = {engine.key(prompt, 6)};
        index.apply(pod, model, batch_of({r}));
        EXPECT_EQ(score_one(index, model, pod, prompt), 6u * 16 / index_block) << index_block;
        index.check_invariants();
    }
}

TEST(IndexOrphans, ARemovedOrphanBlockIsNotHealedIntoTheIndex) {
    Index index(mapped_config(16));
    const ModelId model = index.intern_model("m");
    const PodId pod = index.intern_pod("p");
    HandEngine engine;
    const auto prompt = tokens_from(6, 16 * 6);
    index.apply(pod, model, batch_of({engine.stored(prompt, 2, 4)}));
    BlockRemoved r;
    r.block_hashes = {engine.key(prompt, 5)};
    index.apply(pod, model, batch_of({r}));
    index.apply(pod, model, batch_of({engine.stored(prompt, 0, 2)}));
    EXPECT_EQ(score_one(index, model, pod, prompt), 5u);
    EXPECT_EQ(index.counters().keys, 5u);  // block 5 neither by request nor by engine key
    index.check_invariants();
}

TEST(IndexOrphans, OrphansAreBoundedPerPod) {
    IndexConfig c = mapped_config(16);
    c.max_orphan_blocks = 8;
    Index index(c);
    const ModelId model = index.intern_model("m");
    const PodId pod = index.intern_pod("p");
    HandEngine engine;
    for (uint32_t i = 0; i < 5; ++i) {
        const auto prompt = tokens_from(50 + i, 16 * 8);
        index.apply(pod, model, batch_of({engine.stored(prompt, 4, 4)}));
    }
    const auto counters = index.counters();
    EXPECT_EQ(counters.orphan_blocks, 8u);
    EXPECT_EQ(counters.orphans_dropped, 12u);
    EXPECT_EQ(counters.keys, 20u);  // every block is still indexed by its engine key
}

TEST(IndexDirect, UnknownParentIsIndexedByRequestKeyAtOnce) {
    Index index(direct_config());
    const ModelId model = index.intern_model("m");
    const PodId pod = index.intern_pod("p");
    HandEngine engine;
    engine.hasher = BlockHasher(HashAlgo::kSha256Cbor, "42");
    const auto prompt = tokens_from(7, 16 * 8);
    index.apply(pod, model, batch_of({engine.stored(prompt, 4, 4)}));
    const auto keys = index.request_keys(prompt, {});
    EXPECT_EQ(keys[5], engine.key(prompt, 5));
    EXPECT_EQ(index.holders(model, keys[5]).size(), 1u);
    EXPECT_EQ(score_one(index, model, pod, prompt), 0u);
    index.apply(pod, model, batch_of({engine.stored(prompt, 0, 4)}));
    EXPECT_EQ(score_one(index, model, pod, prompt), 8u);
}

// ---- clears, pods, ranks, tiers -----------------------------------------------------------------------------
TEST(IndexPods, AllBlocksClearedClearsThatPodRankAndModelOnly) {
    Index index(mapped_config(16));
    const ModelId m1 = index.intern_model("m1"), m2 = index.intern_model("m2");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    HandEngine engine;
    const auto prompt = tokens_from(8, 16 * 4);
    for (PodId p : {a, b})
        for (ModelId m : {m1, m2}) index.apply(p, m, batch_of({engine.stored(prompt, 0, 4)}));
    index.apply(a, m1, batch_of({engine.stored(prompt, 0, 4)}, 1));  // rank 1 of pod a
    const auto before = index.counters();
    EXPECT_EQ(before.engine_blocks, 20u);
    index.apply(a, m1, batch_of({AllBlocksCleared{}}));
    EXPECT_EQ(score_one(index, m1, b, prompt), 4u);
    EXPECT_EQ(score_one(index, m2, a, prompt), 4u);
    EXPECT_EQ(score_one(index, m1, a, prompt), 4u);  // rank 1 still holds them
    index.apply(a, m1, batch_of({AllBlocksCleared{}}, 1));
    EXPECT_EQ(score_one(index, m1, a, prompt), 0u);
    EXPECT_EQ(index.counters().engine_blocks, 12u);
    EXPECT_EQ(index.counters().clears, 2u);
    index.check_invariants();
}

TEST(IndexPods, RemovingAPodRemovesAllItsEntries) {
    Index index(direct_config());
    const ModelId m1 = index.intern_model("m1"), m2 = index.intern_model("m2");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    HandEngine engine;
    engine.hasher = BlockHasher(HashAlgo::kSha256Cbor, "42");
    const auto shared = tokens_from(9, 16 * 4), only_a = tokens_from(10, 16 * 3);
    for (ModelId m : {m1, m2}) {
        index.apply(a, m, batch_of({engine.stored(shared, 0, 4), engine.stored(only_a, 0, 3)}));
        index.apply(b, m, batch_of({engine.stored(shared, 0, 4)}));
    }
    EXPECT_EQ(index.counters().keys, 14u);
    index.remove_pod(a);
    EXPECT_EQ(index.counters().keys, 8u);
    EXPECT_EQ(index.counters().holders, 8u);
    EXPECT_EQ(index.find_pod("a"), Index::kNoPod);
    EXPECT_EQ(score_one(index, m1, b, shared), 4u);
    EXPECT_EQ(index.intern_pod("c"), a);  // the id is reused, with nothing of a's
    EXPECT_EQ(score_one(index, m1, a, shared), 0u);
    index.check_invariants();
}

TEST(IndexPods, TiersWeighScoresAndRemovalIsPerTier) {
    Index index(mapped_config(16));
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    HandEngine engine;
    const auto prompt = tokens_from(11, 16 * 4);
    index.apply(a, m, batch_of({engine.stored(prompt, 0, 4)}));
    index.apply(b, m, batch_of({engine.stored(prompt, 0, 4)}));
    // b offloads all four to CPU (no tokens, as vLLM's offload events), then drops two from GPU.
    BlockStored off = engine.stored(prompt, 0, 4, Medium::kCpu);
    off.token_ids.clear();
    BlockRemoved gone;
    gone.block_hashes = {engine.key(prompt, 2), engine.key(prompt, 3)};
    index.apply(b, m, batch_of({off, gone}));
    PodScore out[2];
    const PodId cands[2] = {a, b};
    index.score_tokens(m, prompt, {}, cands, out);
    EXPECT_EQ(out[0].blocks, 4u);
    EXPECT_FLOAT_EQ(out[0].score, 4.0);
    EXPECT_EQ(out[1].blocks, 4u);
    EXPECT_NEAR(out[1].score, 1.0 + 1.0 + 0.8 + 0.8, 1e-6);
    ScoreParams params;
    params.tier_weight[size_t(Medium::kCpu)] = 0.25f;
    params.prefill_weight = 2.0;
    const double load[2] = {10.0, 1.0};
    index.score_tokens(m, prompt, {}, cands, out, params, load);
    EXPECT_NEAR(out[1].score, 2.5, 1e-6);
    EXPECT_DOUBLE_EQ(out[0].cost, 10.0);
    EXPECT_DOUBLE_EQ(out[1].cost, 1.0);
    // A tier of weight 0 ends a run: b holds blocks 2 and 3 on CPU only.
    params.tier_weight[size_t(Medium::kCpu)] = 0.0f;
    index.score_tokens(m, prompt, {}, cands, out, params);
    EXPECT_EQ(out[0].blocks, 4u);
    EXPECT_EQ(out[1].blocks, 2u);
    EXPECT_NEAR(out[1].score, 2.0, 1e-6);
    // Removing the CPU copies: b's run stops after block 1.
    BlockRemoved cpu = gone;
    cpu.medium = Medium::kCpu;
    index.apply(b, m, batch_of({cpu}));
    index.score_tokens(m, prompt, {}, cands, out);
    EXPECT_EQ(out[1].blocks, 2u);
    index.check_invariants();
}

TEST(IndexPods, RanksAreSeparateHoldersAndBadRankAppliesNothing) {
    Index index(direct_config());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a");
    HandEngine engine;
    engine.hasher = BlockHasher(HashAlgo::kSha256Cbor, "42");
    const auto prompt = tokens_from(12, 16 * 2);
    index.apply(a, m, batch_of({engine.stored(prompt, 0, 2)}, 3));
    const auto h = index.holders(m, engine.key(prompt, 0));
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].rank, 3u);
    EXPECT_THROW(index.apply(a, m, batch_of({engine.stored(prompt, 0, 2)}, 5000)), Error);
    BlockStored bad = engine.stored(tokens_from(13, 32), 0, 2);
    bad.token_ids[3] = -1;
    const auto before = index.counters().keys;
    EXPECT_THROW(index.apply(a, m, batch_of({engine.stored(tokens_from(14, 32), 0, 2), bad})), Error);
    EXPECT_EQ(index.counters().keys, before);
}

// ---- lookup, candidates, early stop --------------------------------------------------------------------------
TEST(IndexScore, LookupStopsAtTheFirstKeyWithoutAHolderAmongTheFilter) {
    Index index(direct_config());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b"), c = index.intern_pod("c");
    HandEngine engine;
    engine.hasher = BlockHasher(HashAlgo::kSha256Cbor, "42");
    const auto prompt = tokens_from(15, 16 * 6);
    index.apply(a, m, batch_of({engine.stored(prompt, 0, 6)}));
    index.apply(b, m, batch_of({engine.stored(prompt, 0, 3)}));
    const auto keys = index.request_keys(prompt, {});
    auto all = index.lookup(m, keys, {});
    EXPECT_EQ(all.keys_found, 6u);
    EXPECT_EQ(all.offsets, (std::vector<uint32_t>{0, 2, 4, 6, 7, 8, 9}));
    const PodId only_b[1] = {b};
    EXPECT_EQ(index.lookup(m, keys, only_b).keys_found, 3u);
    const PodId only_c[1] = {c};
    EXPECT_EQ(index.lookup(m, keys, only_c).keys_found, 0u);
    // No candidates: every pod holding key 0, best first.
    PodScore out[4];
    ASSERT_EQ(index.score(m, keys, {}, out), 2u);
    EXPECT_EQ(out[0].pod, a);
    EXPECT_EQ(out[0].blocks, 6u);
    EXPECT_EQ(out[1].pod, b);
    EXPECT_EQ(out[1].blocks, 3u);
    // Duplicated and absent candidates.
    const PodId cands[4] = {c, b, b, a};
    index.score(m, keys, cands, out);
    EXPECT_EQ(out[0].blocks, 0u);
    EXPECT_EQ(out[1].blocks, 3u);
    EXPECT_EQ(out[2].blocks, 3u);
    EXPECT_EQ(out[3].blocks, 6u);
    EXPECT_THROW(index.score(m, keys, cands, std::span(out, 2)), Error);
    // A candidate that is no pod is refused before anything is set up: the next call scores alike.
    const PodId with_none[3] = {a, Index::kNoPod, b};
    EXPECT_THROW(index.score(m, keys, with_none, out), Error);
    const PodId b_then_c[2] = {b, c};
    index.score(m, keys, b_then_c, out);
    EXPECT_EQ(out[0].pod, b);
    EXPECT_EQ(out[0].blocks, 3u);
    EXPECT_EQ(out[1].blocks, 0u);
}

// ---- speculative entries ---------------------------------------------------------------------------------------
std::atomic<uint64_t> g_now{1000};
uint64_t fake_now() noexcept { return g_now.load(); }

TEST(IndexSpeculative, ExpireWithTheClockAndAreReplacedByTheEngineEvent) {
    IndexConfig c = direct_config();
    c.clock = fake_now;
    Index index(c);
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    HandEngine engine;
    engine.hasher = BlockHasher(HashAlgo::kSha256Cbor, "42");
    const auto prompt = tokens_from(16, 16 * 4);
    const auto keys = index.request_keys(prompt, {});
    g_now = 1000;
    index.add_speculative(m, keys, a, 500);
    index.add_speculative(m, std::span(keys).first(2), b, 500);
    EXPECT_EQ(score_one(index, m, a, prompt), 4u);
    EXPECT_EQ(score_one(index, m, b, prompt), 2u);
    ASSERT_EQ(index.holders(m, keys[0]).size(), 2u);
    EXPECT_TRUE(index.holders(m, keys[0])[0].speculative);
    EXPECT_EQ(index.counters().speculative, 6u);
    // a's engine reports the first two blocks: those become real.
    index.apply(a, m, batch_of({engine.stored(prompt, 0, 2)}));
    EXPECT_EQ(index.counters().speculative, 4u);
    g_now = 1500;  // the TTL is over: ignored at once, removed at the next write or sweep
    EXPECT_EQ(score_one(index, m, a, prompt), 2u);
    EXPECT_EQ(score_one(index, m, b, prompt), 0u);
    index.expire_speculative();
    const auto counters = index.counters();
    EXPECT_EQ(counters.speculative, 0u);
    EXPECT_EQ(counters.expired, 4u);
    EXPECT_EQ(counters.keys, 2u);
    EXPECT_FALSE(index.holders(m, keys[0])[0].speculative);
    index.check_invariants();
}

// ---- byte budget ------------------------------------------------------------------------------------------------
TEST(IndexBudget, LruEvictionIsExactAndCounted) {
    IndexConfig c = direct_config();
    c.shards = 1;
    c.byte_budget = 10 * Index::kKeyCharge + 2 * Index::kHolderSlotCharge;
    Index index(c);
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    // Keys 0..9, each one holder: exactly at the budget but for the 8 spare bytes.
    auto stored = [](uint64_t k) {
        BlockStored s;
        s.block_hashes = {k};
        s.block_size = 16;
        return Event(s);
    };
    for (uint64_t k = 0; k < 10; ++k) index.apply(a, m, batch_of({stored(k)}));
    EXPECT_EQ(index.counters().charged_bytes, 10 * Index::kKeyCharge);
    EXPECT_EQ(index.counters().evictions, 0u);
    // A second holder on key 9 costs a two-slot pod set: 8 bytes, still within.
    index.apply(b, m, batch_of({stored(9)}));
    EXPECT_EQ(index.counters().charged_bytes, 10 * Index::kKeyCharge + 8);
    EXPECT_EQ(index.counters().evictions, 0u);
    // A lookup references key 0: it gets a second chance, so keys 1 and 2 go for 10 and 11.
    const uint64_t k0[1] = {0};
    EXPECT_EQ(index.lookup(m, k0, {}).keys_found, 1u);
    index.apply(a, m, batch_of({stored(10), stored(11)}));
    const auto counters = index.counters();
    EXPECT_EQ(counters.evictions, 2u);
    EXPECT_EQ(counters.keys, 10u);
    EXPECT_EQ(counters.charged_bytes, 10 * Index::kKeyCharge + 8);
    for (uint64_t k : {0, 3, 9, 10, 11}) EXPECT_FALSE(index.holders(m, k).empty()) << k;
    for (uint64_t k : {1, 2}) EXPECT_TRUE(index.holders(m, k).empty()) << k;
    // Growing key 9 to three holders (a four-slot set, +8 bytes) evicts the oldest key: 3 (key 0 went
    // to the newest end with its second chance).
    const PodId d = index.intern_pod("d");
    index.apply(d, m, batch_of({stored(9)}));
    EXPECT_EQ(index.counters().evictions, 3u);
    EXPECT_TRUE(index.holders(m, 3).empty());
    EXPECT_FALSE(index.holders(m, 0).empty());
    EXPECT_EQ(index.counters().charged_bytes, 9 * Index::kKeyCharge + 16);
    index.check_invariants();
}

TEST(IndexBudget, ShardedBudgetIsNeverExceeded) {
    IndexConfig c = direct_config();
    c.shards = 8;
    c.byte_budget = 8 * 100 * Index::kKeyCharge;
    Index index(c);
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a");
    for (uint64_t base = 0; base < 5000; base += 50) {
        BlockStored s;
        for (uint64_t k = base; k < base + 50; ++k) s.block_hashes.push_back(k * 0x9E3779B97F4A7C15ull);
        s.block_size = 16;
        index.apply(a, m, batch_of({s}));
    }
    const auto counters = index.counters();
    EXPECT_LE(counters.charged_bytes, c.byte_budget);
    EXPECT_EQ(counters.keys + counters.evictions, 5000u);
    EXPECT_GT(counters.evictions, 4000u);
    index.check_invariants();
}

// ---- concurrency -----------------------------------------------------------------------------------------------
TEST(IndexConcurrency, FourIngestThreadsAndScorersAgreeWithASequentialIndex) {
    constexpr uint32_t kPods = 12, kRounds = 25;
    HandEngine engine;
    std::vector<std::vector<int32_t>> prompts;
    for (uint32_t i = 0; i < 8; ++i) prompts.push_back(tokens_from(200 + i, 16 * 12));
    // Per pod, a deterministic history of stores and removals (mapped keys: the pod's engine map is used).
    auto history = [&](uint32_t p) {
        std::vector<EventBatch> out;
        std::mt19937 rng(p);
        for (uint32_t r = 0; r < kRounds; ++r) {
            const auto& prompt = prompts[rng() % prompts.size()];
            const size_t n = 1 + rng() % 12;
            std::vector<Event> ev{engine.stored(prompt, 0, n)};
            if (rng() % 3 == 0) {
                BlockRemoved rm;
                rm.block_hashes = {engine.key(prompt, rng() % n)};
                ev.push_back(rm);
            }
            if (rng() % 17 == 0) ev.push_back(AllBlocksCleared{});
            out.push_back(batch_of(std::move(ev)));
        }
        return out;
    };
    Index concurrent(mapped_config(16)), sequential(mapped_config(16));
    std::vector<PodId> pods;
    const ModelId m = concurrent.intern_model("m");
    sequential.intern_model("m");
    for (uint32_t p = 0; p < kPods; ++p) {
        pods.push_back(concurrent.intern_pod("pod-" + std::to_string(p)));
        sequential.intern_pod("pod-" + std::to_string(p));
    }
    std::vector<std::vector<EventBatch>> histories;
    for (uint32_t p = 0; p < kPods; ++p) histories.push_back(history(p));
    std::atomic<bool> done{false};
    std::atomic<uint64_t> scored{0};
    std::vector<std::thread> scorers;
    for (int t = 0; t < 2; ++t)
        scorers.emplace_back([&, t] {
            std::vector<PodScore> out(kPods);
            for (uint64_t i = 0; i < 1000000 && !done.load(); ++i) {
                concurrent.score_tokens(m, prompts[(i + t) % prompts.size()], {}, pods, out);
                for (const auto& s : out) ASSERT_LE(s.blocks, 12u);
                scored.fetch_add(1);
            }
        });
    {
        IngestPool ingest(concurrent, 4, 8);
        for (uint32_t r = 0; r < kRounds; ++r)
            for (uint32_t p = 0; p < kPods; ++p) ingest.submit(pods[p], m, histories[p][r]);
        ingest.flush();
        EXPECT_EQ(ingest.applied(), uint64_t{kPods} * kRounds);
        EXPECT_EQ(ingest.failed(), 0u);
    }
    done = true;
    for (auto& t : scorers) t.join();
    EXPECT_GT(scored.load(), 0u);
    for (uint32_t p = 0; p < kPods; ++p)
        for (const auto& b : histories[p]) sequential.apply(pods[p], m, b);
    std::vector<PodScore> a(kPods), b(kPods);
    for (const auto& prompt : prompts) {
        concurrent.score_tokens(m, prompt, {}, pods, a);
        sequential.score_tokens(m, prompt, {}, pods, b);
        for (uint32_t p = 0; p < kPods; ++p) EXPECT_EQ(a[p].blocks, b[p].blocks) << p;
    }
    EXPECT_EQ(concurrent.counters().keys, sequential.counters().keys);
    concurrent.check_invariants();
}

TEST(IndexIngest, FailedBatchesAreCountedAndTheWorkerGoesOn) {
    Index index(direct_config());
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a");
    IngestPool ingest(index, 2, 1);
    ingest.submit(a, m, batch_of({}, 9999));
    BlockStored s;
    s.block_hashes = {42};
    s.block_size = 16;
    ingest.submit(a, m, batch_of({s}));
    ingest.flush();
    EXPECT_EQ(ingest.failed(), 1u);
    EXPECT_EQ(ingest.applied(), 1u);
    EXPECT_NE(ingest.last_error().find("data_parallel_rank"), std::string::npos);
    EXPECT_EQ(index.holders(m, 42).size(), 1u);
}

TEST(IndexPool, MappedOneToManyWithoutExtraKeysWithEvictions) { check_matches_pool(mapped_config(16), 32, 40, {}); }
TEST(IndexPool, MappedOneToOneBlock32WithEvictions) {
    check_matches_pool(mapped_config(32), 32, 40, pool::ExtraKeys{.lora_name = "l"});
}

}  // namespace
}  // namespace kvcore::index
