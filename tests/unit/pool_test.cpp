// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <numeric>
#include <random>

#include "common/error.h"
#include "pool/pool.h"

using namespace kvcore::pool;
using kvcore::Error;

namespace {

PoolConfig small_config(uint32_t num_blocks, uint32_t block_size = 4) {
    PoolConfig c;
    c.num_blocks = num_blocks;
    c.block_size = block_size;
    return c;
}

std::vector<int32_t> iota_tokens(size_t n, int32_t first = 0) {
    std::vector<int32_t> t(n);
    std::iota(t.begin(), t.end(), first);
    return t;
}

kvc_status status_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.status();
    }
    return KVC_OK;
}

// A failing call must leave the pool exactly as it was.
void expect_unchanged_after_failure(Pool& pool, kvc_status expected, const std::function<void()>& fn) {
    const PoolCounters before = pool.counters();
    EXPECT_EQ(status_of(fn), expected);
    const PoolCounters after = pool.counters();
    EXPECT_EQ(before.free_blocks, after.free_blocks);
    EXPECT_EQ(before.blocks_in_use, after.blocks_in_use);
    EXPECT_EQ(before.cached_blocks, after.cached_blocks);
    EXPECT_EQ(before.tokens_stored, after.tokens_stored);
    EXPECT_EQ(before.live_sequences, after.live_sequences);
    pool.check_invariants();
}

uint64_t fake_now = 0;
uint64_t fake_clock() noexcept { return fake_now; }

}  // namespace

// Insertions count the blocks the prefix cache registers: not hits, not content another block holds.
TEST(Pool, InsertionsCountOnlyRegisteredBlocks) {
    Pool pool(small_config(16));
    const std::vector<int32_t> head{1};
    const std::vector<int32_t> rest{2, 3, 4, 5};
    const SequenceId a = pool.create_sequence(head, {});
    pool.allocate(a, 1);
    pool.append(a, rest);  // fills block 0: registered
    EXPECT_EQ(pool.snapshot().insertions, 1u);
    const SequenceId b = pool.create_sequence(head, {});
    pool.allocate(b, 1);
    pool.append(b, rest);  // the same content, already held by a's block
    EXPECT_EQ(pool.snapshot().insertions, 1u);
    EXPECT_EQ(pool.counters().cached_blocks, 1u);
    const auto prompt = iota_tokens(9, 1);  // a hit on block 0, a new block 1
    const SequenceId c = pool.create_sequence(prompt, {});
    size_t cached = 0;
    pool.allocate(c, prompt.size(), &cached);
    EXPECT_EQ(cached, 4u);
    EXPECT_EQ(pool.snapshot().insertions, 2u);
    pool.check_invariants();
}

// Block outcomes reach the recorder 64 at a time; prompts longer than that count exactly.
TEST(Pool, BlockHitsAndMissesCountAcrossManyWords) {
    Pool pool(small_config(400, 1));
    const auto prompt = iota_tokens(150);
    const SequenceId a = pool.create_sequence(prompt, {});
    pool.allocate(a, prompt.size());
    pool.free_sequence(a);
    const SequenceId b = pool.create_sequence(prompt, {});
    size_t cached = 0;
    pool.allocate(b, prompt.size(), &cached);
    EXPECT_EQ(cached, 149u);  // capped at n - 1
    const auto s = pool.snapshot();
    EXPECT_EQ(s.hits, 149u);
    EXPECT_EQ(s.misses, 150u + 1u);
    EXPECT_EQ(s.window_hits, 149u);
}

// Evictions are derived at snapshot time (insertions - still cached - cleared by resets), so check
// that a reset does not count as evictions and that snapshots in between change nothing.
TEST(Pool, EvictionsCountBlocksTakenForNewDataNotResets) {
    Pool pool(small_config(4));  // 3 usable blocks
    const auto prompt = iota_tokens(9);  // 2 full blocks, cached on allocation
    const SequenceId a = pool.create_sequence(prompt, {});
    pool.allocate(a, prompt.size());
    pool.free_sequence(a);
    EXPECT_EQ(pool.snapshot().insertions, 2u);
    EXPECT_EQ(pool.snapshot().evictions, 0u);
    std::vector<int32_t> two(2);
    pool.allocate_blocks(two);  // the never-cached block goes first, then one cached block
    EXPECT_EQ(pool.snapshot().evictions, 1u);
    pool.free_blocks(two);
    const SequenceId b = pool.create_sequence(prompt, {});
    size_t cached = 0;
    pool.allocate(b, prompt.size(), &cached);  // the first block hits; the evicted second is cached anew
    EXPECT_EQ(cached, 4u);
    pool.free_sequence(b);
    pool.reset_prefix_cache();  // drops both cached hashes: not evictions
    const auto s = pool.snapshot();
    EXPECT_EQ(s.insertions, 3u);
    EXPECT_EQ(s.evictions, 1u);
    EXPECT_EQ(pool.counters().cached_blocks, 0u);
    pool.check_invariants();
}

TEST(Pool, WithStatisticsOffTheSnapshotIsRefused) {
    PoolConfig config = small_config(16);
    config.statistics = false;
    Pool pool(config);
    const auto prompt = iota_tokens(10);
    const SequenceId a = pool.create_sequence(prompt, {});
    pool.allocate(a, prompt.size());
    pool.free_sequence(a);
    const SequenceId b = pool.create_sequence(prompt, {});
    size_t cached = 0;
    pool.allocate(b, prompt.size(), &cached);
    EXPECT_EQ(cached, 8u);  // caching works as ever
    try {
        (void)pool.snapshot();
        FAIL() << "a pool without statistics gave a snapshot";
    } catch (const kvcore::Error& e) {
        EXPECT_EQ(e.status(), KVC_ERR_INVALID_STATE);
    }
    EXPECT_EQ(pool.counters().window_requests, 0u);
    pool.check_invariants();
}

TEST(Pool, AllocatesSlotsAndFreesEverything) {
    Pool pool(small_config(16));
    const auto prompt = iota_tokens(10);
    const SequenceId s = pool.create_sequence(prompt, {});
    size_t cached = 99;
    pool.allocate(s, prompt.size(), &cached);
    EXPECT_EQ(cached, 0u);
    const auto table = pool.block_table(s);
    ASSERT_EQ(table.size(), 3u);  // 10 tokens in blocks of 4
    std::vector<int64_t> slots(10);
    pool.slot_mapping(s, 0, slots);
    for (size_t t = 0; t < 10; ++t) EXPECT_EQ(slots[t], int64_t{table[t / 4]} * 4 + int64_t(t % 4));
    EXPECT_EQ(pool.counters().blocks_in_use, 3u);
    EXPECT_EQ(pool.counters().tokens_stored, 10u);
    EXPECT_DOUBLE_EQ(pool.counters().memory_efficiency, 10.0 / 12.0);
    EXPECT_EQ(pool.counters().cached_blocks, 2u);  // the two full blocks
    pool.check_invariants();
    pool.free_sequence(s);
    EXPECT_EQ(pool.counters().free_blocks, 15u);
    EXPECT_EQ(pool.counters().blocks_in_use, 0u);
    pool.check_invariants();
}

TEST(Pool, PrefixHitIsCappedOneTokenShortOfThePrompt) {
    Pool pool(small_config(32));
    const auto prompt = iota_tokens(16);
    const SequenceId a = pool.create_sequence(prompt, {});
    pool.allocate(a, 16);
    pool.free_sequence(a);  // its blocks stay cached while free
    const SequenceId b = pool.create_sequence(prompt, {});
    EXPECT_EQ(pool.cached_prefix_tokens(b), 12u);  // 16 - 1 rounded down to whole blocks
    size_t cached = 0;
    pool.allocate(b, 16, &cached);
    EXPECT_EQ(cached, 12u);
    const auto snap = pool.snapshot();
    EXPECT_EQ(snap.tokens_queried, 32u);
    EXPECT_EQ(snap.tokens_hit, 12u);
    EXPECT_EQ(snap.hits, 3u);    // blocks reused
    EXPECT_EQ(snap.misses, 5u);  // 4 on the first request, 1 on the second
    pool.check_invariants();
    // A longer prompt with the same start reuses the whole common part.
    auto longer = prompt;
    longer.push_back(99);
    const SequenceId c = pool.create_sequence(longer, {});
    EXPECT_EQ(pool.cached_prefix_tokens(c), 16u);
}

TEST(Pool, CapacityFailureChangesNothing) {
    Pool pool(small_config(5));  // 4 usable blocks
    const SequenceId a = pool.create_sequence(iota_tokens(12), {});
    pool.allocate(a, 12);
    const SequenceId b = pool.create_sequence(iota_tokens(8, 100), {});
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] { pool.allocate(b, 8); });
    pool.allocate(b, 4);  // chunked prefill: one block fits
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] { pool.allocate(b, 8); });
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] {
        std::vector<int32_t> out(1);
        pool.allocate_blocks(out);
    });
    EXPECT_GE(pool.snapshot().memory_pressure_events, 3u);
}

TEST(Pool, AppendCachesBlocksAsTheyFill) {
    PoolConfig config = small_config(16);
    config.events = true;
    Pool pool(config);
    const SequenceId s = pool.create_sequence(iota_tokens(3), {});
    pool.allocate(s, 3);
    EXPECT_EQ(pool.counters().cached_blocks, 0u);
    const int32_t next[] = {3};
    pool.append(s, next);  // the first block is full now
    EXPECT_EQ(pool.counters().cached_blocks, 1u);
    const auto more = iota_tokens(5, 4);
    pool.append(s, more);
    EXPECT_EQ(pool.num_tokens(s), 9u);
    EXPECT_EQ(pool.block_table(s).size(), 3u);
    EXPECT_EQ(pool.counters().cached_blocks, 2u);
    EXPECT_EQ(pool.counters().events_pending, 2u);
    pool.check_invariants();
    // Another sequence with those 9 tokens hits 2 blocks.
    const SequenceId t = pool.create_sequence(iota_tokens(9), {});
    EXPECT_EQ(pool.cached_prefix_tokens(t), 8u);
}

TEST(Pool, ForkSharesBlocksAndCopiesOnWrite) {
    Pool pool(small_config(16));
    const SequenceId parent = pool.create_sequence(iota_tokens(6), {});
    pool.allocate(parent, 6);
    const SequenceId child = pool.fork(parent);
    const std::vector<int32_t> parent_table(pool.block_table(parent).begin(), pool.block_table(parent).end());
    EXPECT_EQ(pool.counters().blocks_in_use, 2u);  // shared
    pool.check_invariants();
    const int32_t token[] = {42};
    pool.append(child, token);  // writes into the shared, half-full second block
    const auto copies = pool.drain_copies();
    ASSERT_EQ(copies.size(), 1u);
    EXPECT_EQ(copies[0].first, parent_table[1]);
    EXPECT_EQ(copies[0].second, pool.block_table(child)[1]);
    EXPECT_NE(pool.block_table(child)[1], parent_table[1]);
    EXPECT_EQ(pool.block_table(child)[0], parent_table[0]);  // the full block stays shared
    EXPECT_TRUE(std::equal(parent_table.begin(), parent_table.end(), pool.block_table(parent).begin()));
    pool.append(parent, token);  // now unshared: no copy
    EXPECT_TRUE(pool.drain_copies().empty());
    pool.check_invariants();
    pool.free_sequence(parent);
    pool.free_sequence(child);
    EXPECT_EQ(pool.counters().blocks_in_use, 0u);
    pool.check_invariants();
}

TEST(Pool, FreedChainsAreEvictedTailFirst) {
    Pool pool(small_config(4));  // 3 usable blocks
    const SequenceId a = pool.create_sequence(iota_tokens(12), {});
    pool.allocate(a, 12);
    pool.free_sequence(a);
    std::vector<int32_t> one(1);
    pool.allocate_blocks(one);  // must evict the chain's tail, not its head
    EXPECT_EQ(pool.counters().cached_blocks, 2u);
    const SequenceId b = pool.create_sequence(iota_tokens(12), {});
    EXPECT_EQ(pool.cached_prefix_tokens(b), 8u);
    pool.free_blocks(one);
    pool.check_invariants();
}

TEST(Pool, CacheSaltsAndLorasNeverShareBlocks) {
    for (HashAlgo algo : {HashAlgo::kSha256Cbor, HashAlgo::kXxh3}) {
        PoolConfig config = small_config(64);
        config.hash_algo = algo;
        Pool pool(config);
        const auto prompt = iota_tokens(20);
        SequenceOptions salt_x, lora_x, salt_y;
        salt_x.keys.cache_salt = "X";
        lora_x.keys.lora_name = "X";
        salt_y.keys.cache_salt = "Y";
        const SequenceId a = pool.create_sequence(prompt, salt_x);
        pool.allocate(a, prompt.size());
        EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(prompt, salt_x)), 16u);
        EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(prompt, salt_y)), 0u);
        EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(prompt, lora_x)), 0u) << hash_algo_name(algo);
        EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(prompt, {})), 0u);
    }
}

TEST(Pool, LowPriorityBlocksAreEvictedFirstUntilTheirDurationEnds) {
    PoolConfig config = small_config(3, 4);  // 2 usable blocks
    Pool pool(config, fake_clock);
    fake_now = 1'000'000'000;
    SequenceOptions low, high;
    low.priority = 10;
    high.priority = 90;
    high.priority_duration_ms = 1000;
    const SequenceId h = pool.create_sequence(iota_tokens(4, 100), high);  // freed first (older)
    pool.allocate(h, 4);
    const SequenceId l = pool.create_sequence(iota_tokens(4, 200), low);
    pool.allocate(l, 4);
    pool.free_sequence(h);
    pool.free_sequence(l);
    std::vector<int32_t> one(1);
    pool.allocate_blocks(one);  // LRU alone would take h's block; priority takes l's
    EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(iota_tokens(5, 100), {})), 4u);
    EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(iota_tokens(5, 200), {})), 0u);
    pool.free_blocks(one);
    // After the duration, h's block is back at the default priority, above the fresh level-0 block.
    fake_now += 2'000'000'000;
    std::vector<int32_t> two(2);
    pool.allocate_blocks(two);
    EXPECT_EQ(pool.counters().cached_blocks, 0u);
    pool.check_invariants();
}

TEST(Pool, PinnedPrefixSurvivesPressure) {
    Pool pool(small_config(6));  // 5 usable
    const auto system_prompt = iota_tokens(9);
    const SequenceId s = pool.create_sequence(system_prompt, {});
    pool.allocate(s, 9);
    const SequenceId pin = pool.pin_prefix(s);  // the 2 full blocks
    pool.free_sequence(s);
    std::vector<int32_t> rest(3);
    pool.allocate_blocks(rest);  // everything not pinned
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] {
        std::vector<int32_t> more(1);
        pool.allocate_blocks(more);
    });
    EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(system_prompt, {})), 8u);
    EXPECT_EQ(status_of([&] { pool.append(pin, iota_tokens(1)); }), KVC_ERR_INVALID_STATE);
    pool.free_sequence(pin);
    pool.free_blocks(rest);
    pool.check_invariants();
}

TEST(Pool, SlidingWindowReleasesBlocksThatLeaveIt) {
    PoolConfig config = small_config(32, 4);
    config.sliding_window = 8;
    Pool pool(config);
    const SequenceId s = pool.create_sequence(iota_tokens(4), {});
    pool.allocate(s, 4);
    for (int32_t t = 4; t < 20; ++t) {
        const int32_t tok[] = {t};
        pool.append(s, tok);
        pool.check_invariants();
    }
    // 20 tokens: first useful token is 20 - 8 + 1 = 13, so blocks 0..2 are released.
    const auto table = pool.block_table(s);
    ASSERT_EQ(table.size(), 5u);
    EXPECT_EQ(table[0], 0);
    EXPECT_EQ(table[2], 0);
    EXPECT_NE(table[3], 0);
    EXPECT_EQ(pool.counters().blocks_in_use, 2u);
    std::vector<int64_t> slot(1);
    pool.slot_mapping(s, 0, slot);
    EXPECT_EQ(slot[0], -1);
    // The released blocks stay cached: a new request with the same 19 tokens finds its window.
    const SequenceId again = pool.create_sequence(iota_tokens(20), {});
    EXPECT_EQ(pool.cached_prefix_tokens(again), 16u);
    pool.allocate(again, 20);
    EXPECT_EQ(pool.block_table(again)[0], 0);
    pool.check_invariants();
}

TEST(Pool, BadInputIsRejectedAndChangesNothing) {
    Pool pool(small_config(8));
    Pool other(small_config(8));
    const SequenceId s = pool.create_sequence(iota_tokens(5), {});
    pool.allocate(s, 5);
    const int32_t negative[] = {1, -2};
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_ARGUMENT, [&] { pool.create_sequence(negative, {}); });
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_ARGUMENT, [&] { pool.create_sequence({}, {}); });
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] { pool.create_sequence(iota_tokens(29), {}); });
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_ARGUMENT, [&] { pool.append(s, negative); });
    expect_unchanged_after_failure(pool, KVC_ERR_OUT_OF_RANGE, [&] { pool.allocate(s, 6); });
    SequenceOptions bad_priority;
    bad_priority.priority = 101;
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_ARGUMENT, [&] { pool.create_sequence(iota_tokens(2), bad_priority); });
    const SequenceId foreign = other.create_sequence(iota_tokens(2), {});
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_ARGUMENT, [&] { pool.free_sequence(foreign); });
    const SequenceId gone = pool.create_sequence(iota_tokens(2), {});
    pool.free_sequence(gone);
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.free_sequence(gone); });
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.append(gone, iota_tokens(1)); });
    const SequenceId reused = pool.create_sequence(iota_tokens(2), {});  // takes the freed slot
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.fork(gone); });
    pool.free_sequence(reused);
    const SequenceId unadmitted = pool.create_sequence(iota_tokens(2), {});
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.append(unadmitted, iota_tokens(1)); });
    std::vector<int32_t> raw(2);
    pool.allocate_blocks(raw);
    const int32_t twice[] = {raw[0], raw[0]};
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.free_blocks(twice); });
    const int32_t out_of_range[] = {8};
    expect_unchanged_after_failure(pool, KVC_ERR_OUT_OF_RANGE, [&] { pool.free_blocks(out_of_range); });
    const int32_t null_block[] = {0};
    expect_unchanged_after_failure(pool, KVC_ERR_OUT_OF_RANGE, [&] { pool.free_blocks(null_block); });
    const int32_t owned[] = {pool.block_table(s)[0]};
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.free_blocks(owned); });
    pool.free_blocks(raw);
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.free_blocks(std::span(raw).first(1)); });
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.reset_prefix_cache(); });
    for (uint32_t bad : {0u, 1u}) {
        EXPECT_EQ(status_of([&] { Pool p(small_config(bad)); }), KVC_ERR_INVALID_ARGUMENT);
    }
    EXPECT_EQ(status_of([&] { Pool p(small_config(8, 0)); }), KVC_ERR_INVALID_ARGUMENT);
    PoolConfig huge = small_config(1u << 30, 4096);
    huge.memory = Memory::kHost;
    huge.layers = 4096;
    EXPECT_EQ(status_of([&] { Pool p(huge); }), KVC_ERR_INVALID_ARGUMENT);
}

TEST(Pool, EventsUseVllmsWireFormat) {
    PoolConfig config = small_config(4, 4);  // 3 usable blocks
    config.events = true;
    config.hash_algo = HashAlgo::kSha256Cbor;
    Pool pool(config);
    SequenceOptions lora;
    lora.keys.lora_name = "adapter";
    const SequenceId s = pool.create_sequence(iota_tokens(9), lora);
    pool.allocate(s, 9);
    const auto hashes = pool.hasher().hash_blocks(iota_tokens(9), 4, lora.keys);
    for (EventEncoding encoding : {EventEncoding::kArray, EventEncoding::kMap}) {
        const std::vector<uint8_t> bytes = pool.encode_events(encoding);
        const msgpack::object_handle oh = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        const msgpack::object& batch = oh.get();
        msgpack::object events;
        if (encoding == EventEncoding::kArray) {
            ASSERT_EQ(batch.type, msgpack::type::ARRAY);
            ASSERT_EQ(batch.via.array.size, 3u);
            EXPECT_EQ(batch.via.array.ptr[0].type, msgpack::type::FLOAT64);
            events = batch.via.array.ptr[1];
            const auto& e = events.via.array.ptr[0].via.array;
            ASSERT_EQ(e.size, 8u);
            EXPECT_EQ(e.ptr[0].as<std::string>(), "BlockStored");
            EXPECT_EQ(e.ptr[1].as<std::vector<uint64_t>>(),
                      (std::vector<uint64_t>{hashes[0].event_value(HashAlgo::kSha256Cbor),
                                             hashes[1].event_value(HashAlgo::kSha256Cbor)}));
            EXPECT_TRUE(e.ptr[2].is_nil());
            EXPECT_EQ(e.ptr[3].as<std::vector<int32_t>>(), iota_tokens(8));
            EXPECT_EQ(e.ptr[4].as<uint32_t>(), 4u);
            EXPECT_EQ(e.ptr[6].as<std::string>(), "GPU");
            EXPECT_EQ(e.ptr[7].as<std::string>(), "adapter");
        } else {
            const auto m = batch.as<std::map<std::string, msgpack::object>>();
            ASSERT_TRUE(m.count("events"));
            EXPECT_EQ(m.at("data_parallel_rank").as<int>(), 0);
            const auto e = m.at("events").via.array.ptr[0].as<std::map<std::string, msgpack::object>>();
            EXPECT_EQ(e.at("type").as<std::string>(), "BlockStored");
            EXPECT_EQ(e.at("block_size").as<uint32_t>(), 4u);
            EXPECT_EQ(e.at("lora_name").as<std::string>(), "adapter");
        }
    }
    pool.clear_events();
    pool.free_sequence(s);
    std::vector<int32_t> all(3);
    pool.allocate_blocks(all);  // evicts both cached blocks
    pool.free_blocks(all);
    pool.reset_prefix_cache();
    const std::vector<uint8_t> bytes = pool.encode_events(EventEncoding::kArray);
    const msgpack::object_handle oh = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const auto& events = oh.get().via.array.ptr[1].via.array;
    ASSERT_EQ(events.size, 3u);
    EXPECT_EQ(events.ptr[0].via.array.ptr[0].as<std::string>(), "BlockRemoved");
    EXPECT_EQ(events.ptr[2].via.array.ptr[0].as<std::string>(), "AllBlocksCleared");
}

TEST(Pool, RandomOperationsKeepTheInvariantsAndWasteUnderABlock) {
    PoolConfig config = small_config(64, 4);
    Pool pool(config);
    std::mt19937 rng(1);
    std::vector<SequenceId> live;
    for (int step = 0; step < 3000; ++step) {
        const int op = static_cast<int>(rng() % 6);
        try {
            if (op == 0 || live.empty()) {
                std::vector<int32_t> prompt(1 + rng() % 20);
                for (auto& t : prompt) t = static_cast<int32_t>(rng() % 3);  // few distinct: many hits
                const SequenceId s = pool.create_sequence(prompt, {});
                live.push_back(s);
                pool.allocate(s, prompt.size());
            } else if (op <= 2) {
                const int32_t tok[] = {static_cast<int32_t>(rng() % 3)};
                pool.append(live[rng() % live.size()], tok);
            } else if (op == 3) {
                live.push_back(pool.fork(live[rng() % live.size()]));
            } else {
                const size_t i = rng() % live.size();
                pool.free_sequence(live[i]);
                live.erase(live.begin() + static_cast<ptrdiff_t>(i));
            }
        } catch (const Error& e) {
            ASSERT_TRUE(e.status() == KVC_ERR_CAPACITY || e.status() == KVC_ERR_INVALID_STATE) << e.what();
        }
        pool.check_invariants();
        for (SequenceId s : live) {
            const size_t tokens = pool.num_tokens(s);
            if (tokens > 0) {
                EXPECT_LT(pool.block_table(s).size() * 4 - tokens, 4u);
            }
        }
        pool.drain_copies();
    }
}

TEST(Pool, RequestWindowCountsOnlyTheLastRequests) {
    PoolConfig config = small_config(64, 4);
    config.window_requests = 2;
    Pool pool(config);
    const auto prompt = iota_tokens(9);
    for (int i = 0; i < 3; ++i) {  // queried 9 each; hits 0, then 8, then 8
        const SequenceId s = pool.create_sequence(prompt, {});
        pool.allocate(s, prompt.size());
        pool.free_sequence(s);
    }
    const PoolCounters c = pool.counters();
    EXPECT_EQ(c.window_requests, 2u);
    EXPECT_EQ(c.window_tokens_queried, 18u);
    EXPECT_EQ(c.window_tokens_hit, 16u);
}
