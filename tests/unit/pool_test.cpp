// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <fstream>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <thread>

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
    EXPECT_EQ(pool.snapshot().memory_pressure_events, 3u);
}

// stats.h: memory pressure counts requests refused because memory was short, once per refused call;
// evictions and other failures are not it.
TEST(Pool, MemoryPressureCountsEachCallRefusedForWantOfBlocksOnce) {
    Pool pool(small_config(5));  // 4 usable blocks
    const auto prompt = iota_tokens(8);
    const SequenceId a = pool.create_sequence(prompt, {});
    pool.allocate(a, prompt.size());
    pool.free_sequence(a);
    std::vector<int32_t> four(4);
    pool.allocate_blocks(four);  // evicts both cached blocks: evictions, not pressure
    pool.free_blocks(four);
    EXPECT_EQ(pool.snapshot().evictions, 2u);
    EXPECT_EQ(pool.snapshot().memory_pressure_events, 0u);
    std::vector<int32_t> five(5);
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] { pool.allocate_blocks(five); });  // 5 short, 1 call
    EXPECT_EQ(pool.snapshot().memory_pressure_events, 1u);
    // A prompt the whole pool cannot hold is refused for want of memory too.
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] { pool.create_sequence(iota_tokens(17), {}); });
    EXPECT_EQ(pool.snapshot().memory_pressure_events, 2u);
    // Failures that are not about memory count nothing.
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.free_sequence(a); });
    const int32_t bad[] = {-1};
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_ARGUMENT, [&] { pool.create_sequence(bad, {}); });
    EXPECT_EQ(pool.snapshot().memory_pressure_events, 2u);
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
    lora.lora_id = 7;  // events only: the hashes below ignore it
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
            ASSERT_EQ(e.size, 13u);
            EXPECT_EQ(e.ptr[0].as<std::string>(), "BlockStored");
            EXPECT_EQ(e.ptr[1].as<std::vector<uint64_t>>(),
                      (std::vector<uint64_t>{hashes[0].event_value(HashAlgo::kSha256Cbor),
                                             hashes[1].event_value(HashAlgo::kSha256Cbor)}));
            EXPECT_TRUE(e.ptr[2].is_nil());
            EXPECT_EQ(e.ptr[3].as<std::vector<int32_t>>(), iota_tokens(8));
            EXPECT_EQ(e.ptr[4].as<uint32_t>(), 4u);
            EXPECT_EQ(e.ptr[5].as<int64_t>(), 7);  // lora_id
            EXPECT_EQ(e.ptr[6].as<std::string>(), "GPU");
            EXPECT_EQ(e.ptr[7].as<std::string>(), "adapter");
        } else {
            // The batch stays positional; only the events are maps.
            ASSERT_EQ(batch.type, msgpack::type::ARRAY);
            ASSERT_EQ(batch.via.array.size, 3u);
            EXPECT_EQ(batch.via.array.ptr[2].as<int>(), 0);
            const auto e = batch.via.array.ptr[1].via.array.ptr[0].as<std::map<std::string, msgpack::object>>();
            EXPECT_EQ(e.at("type").as<std::string>(), "BlockStored");
            EXPECT_EQ(e.at("block_size").as<uint32_t>(), 4u);
            EXPECT_EQ(e.at("lora_name").as<std::string>(), "adapter");
            EXPECT_EQ(e.at("lora_id").as<int64_t>(), 7);
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

namespace {

// A wall clock on a whole second: msgpack-c would pack such a ts as an integer.
uint64_t whole_second_clock() noexcept { return 1'700'000'000ull * 1'000'000'000ull; }

// kvcore's events as msgpack maps, decoded: the batch [ts, events, rank] and its events.
struct DecodedBatch {
    msgpack::object_handle handle;
    [[nodiscard]] const msgpack::object& batch() const { return handle.get(); }
    [[nodiscard]] const msgpack::object& event(uint32_t i) const { return handle.get().via.array.ptr[1].via.array.ptr[i]; }
    [[nodiscard]] uint32_t events() const { return handle.get().via.array.ptr[1].via.array.size; }
};

DecodedBatch decode_batch(const std::vector<uint8_t>& bytes) {
    return {msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
}

const msgpack::object& field(const msgpack::object& map, const std::string& key) {
    for (uint32_t i = 0; i < map.via.map.size; ++i) {
        if (map.via.map.ptr[i].key.as<std::string>() == key) return map.via.map.ptr[i].val;
    }
    throw std::runtime_error("the event has no field " + key);
}

// A block's extra_keys entry as text: "" for nil, else its keys, a pair as (id,offset).
std::string keys_text(const msgpack::object& entry) {
    if (entry.is_nil()) return "";
    std::string text;
    for (uint32_t k = 0; k < entry.via.array.size; ++k) {
        const msgpack::object& key = entry.via.array.ptr[k];
        if (!text.empty()) text += " ";
        text += key.type == msgpack::type::ARRAY ? "(" + key.via.array.ptr[0].as<std::string>() + "," +
                                                       std::to_string(key.via.array.ptr[1].as<int64_t>()) + ")"
                                                 : key.as<std::string>();
    }
    return text;
}

}  // namespace

// The pool's BlockStored for vLLM's own event (tests/data/vllm_kv_event_base.json): the same hashes,
// parent, tokens, block size, medium and LoRA, plus what current vLLM adds (extra_keys, group_idx,
// kv_cache_spec_kind).
TEST(Pool, EventsReproduceVllmsBaseEvent) {
    std::ifstream in(KVCORE_TEST_DATA "/vllm_kv_event_base.json");
    ASSERT_TRUE(in.good());
    const nlohmann::json expected = nlohmann::json::parse(in);
    const auto tokens = expected["token_ids"].get<std::vector<int32_t>>();
    PoolConfig config = small_config(64, expected["block_size"].get<uint32_t>());
    config.events = true;
    config.hash_algo = HashAlgo::kSha256Cbor;
    config.hash_seed = expected["hash_seed"].get<std::string>();
    Pool pool(config, nullptr, whole_second_clock);
    const SequenceId s = pool.create_sequence(tokens, {});
    pool.allocate(s, tokens.size());
    const std::vector<uint8_t> bytes = pool.encode_events(EventEncoding::kMap);
    EXPECT_EQ(pool.encode_events(EventEncoding::kMap).size(), bytes.size());
    const DecodedBatch decoded = decode_batch(bytes);
    ASSERT_EQ(decoded.batch().type, msgpack::type::ARRAY);
    ASSERT_EQ(decoded.batch().via.array.size, 3u);
    EXPECT_EQ(decoded.batch().via.array.ptr[0].type, msgpack::type::FLOAT64);
    EXPECT_EQ(decoded.batch().via.array.ptr[0].as<double>(), 1700000000.0);
    ASSERT_EQ(decoded.events(), 1u);
    const msgpack::object& e = decoded.event(0);
    EXPECT_EQ(field(e, "type").as<std::string>(), expected["event_type"].get<std::string>());
    EXPECT_EQ(field(e, "block_hashes").as<std::vector<uint64_t>>(), expected["block_hashes"].get<std::vector<uint64_t>>());
    EXPECT_TRUE(field(e, "parent_block_hash").is_nil());
    EXPECT_TRUE(expected["parent_block_hash"].is_null());
    EXPECT_EQ(field(e, "token_ids").as<std::vector<int32_t>>(), tokens);
    EXPECT_EQ(field(e, "block_size").as<uint32_t>(), expected["block_size"].get<uint32_t>());
    EXPECT_EQ(field(e, "medium").as<std::string>(), expected["medium"].get<std::string>());
    EXPECT_TRUE(field(e, "lora_name").is_nil());
    EXPECT_TRUE(expected["lora_name"].is_null());
    EXPECT_TRUE(field(e, "lora_id").is_nil());
    const msgpack::object& extra = field(e, "extra_keys");
    ASSERT_EQ(extra.via.array.size, 25u);
    for (uint32_t b = 0; b < extra.via.array.size; ++b) EXPECT_TRUE(extra.via.array.ptr[b].is_nil()) << b;
    EXPECT_EQ(field(e, "group_idx").as<int>(), 0);
    EXPECT_EQ(field(e, "kv_cache_spec_kind").as<std::string>(), "full_attention");
    EXPECT_EQ(e.via.map.size, 11u);  // no sliding window field under full attention
}

// Events list each block's extra keys, so a router can recompute the hashes; a chunked prefill's
// second event starts at its own first block.
TEST(Pool, EventsCarryEachBlocksExtraKeysAcrossChunks) {
    PoolConfig config = small_config(16, 4);
    config.events = true;
    config.hash_algo = HashAlgo::kSha256Cbor;
    Pool pool(config);
    SequenceOptions options;
    options.keys.cache_salt = "tenant";
    options.keys.multimodal = {{"img", 2, 7}};  // tokens [2, 9): blocks 0, 1, 2
    const auto prompt = iota_tokens(13);
    const SequenceId s = pool.create_sequence(prompt, options);
    pool.allocate(s, 6);   // block 0
    pool.allocate(s, 13);  // blocks 1 and 2
    const auto hashes = pool.hasher().hash_blocks(prompt, 4, options.keys);
    const DecodedBatch decoded = decode_batch(pool.encode_events(EventEncoding::kArray));
    ASSERT_EQ(decoded.events(), 2u);
    const auto& first = decoded.event(0).via.array;
    const auto& second = decoded.event(1).via.array;
    ASSERT_EQ(first.ptr[8].via.array.size, 1u);
    EXPECT_EQ(keys_text(first.ptr[8].via.array.ptr[0]), "(img,2) tenant");
    ASSERT_EQ(second.ptr[8].via.array.size, 2u);
    EXPECT_EQ(keys_text(second.ptr[8].via.array.ptr[0]), "(img,-2)");
    EXPECT_EQ(keys_text(second.ptr[8].via.array.ptr[1]), "(img,-6)");
    EXPECT_EQ(second.ptr[2].as<uint64_t>(), hashes[0].event_value(HashAlgo::kSha256Cbor));  // the parent
    EXPECT_EQ(second.ptr[1].as<std::vector<uint64_t>>(),
              (std::vector<uint64_t>{hashes[1].event_value(HashAlgo::kSha256Cbor), hashes[2].event_value(HashAlgo::kSha256Cbor)}));
}

TEST(Pool, SlidingWindowEventsNameTheWindow) {
    PoolConfig config = small_config(16, 4);
    config.events = true;
    config.sliding_window = 8;
    Pool pool(config);
    const SequenceId s = pool.create_sequence(iota_tokens(5), {});
    pool.allocate(s, 5);
    const DecodedBatch decoded = decode_batch(pool.encode_events(EventEncoding::kMap));
    ASSERT_EQ(decoded.events(), 1u);
    EXPECT_EQ(field(decoded.event(0), "kv_cache_spec_kind").as<std::string>(), "sliding_window");
    EXPECT_EQ(field(decoded.event(0), "kv_cache_spec_sliding_window").as<uint32_t>(), 8u);
}

TEST(Pool, DrainingEventsOfAPoolWithoutEventsIsRefused) {
    Pool pool(small_config(8));
    const SequenceId s = pool.create_sequence(iota_tokens(5), {});
    pool.allocate(s, 5);
    try {
        (void)pool.encode_events(EventEncoding::kArray);
        FAIL() << "a pool without events gave an event batch";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), KVC_ERR_INVALID_STATE);
        EXPECT_NE(std::string(e.what()).find("events are off"), std::string::npos) << e.what();
    }
}

// A 24-bit generation per slot repeated an id after 2^24 reuses of the slot; stamps never do.
TEST(Pool, AFreedIdStaysRefusedPastWhereA24BitGenerationWrapped) {
    Pool pool(small_config(8));
    const SequenceId a = pool.create_sequence(iota_tokens(2), {});
    pool.free_sequence(a);
    // The slot's next id, 2^24 ids later: its low 48 bits are what a 24-bit generation and the slot held.
    pool.restart_ids_for_testing((a >> 24) + (uint64_t{1} << 24));
    const SequenceId b = pool.create_sequence(iota_tokens(2), {});
    EXPECT_EQ(b & 0xffff'ffff'ffffull, a & 0xffff'ffff'ffffull);
    EXPECT_NE(b, a);
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.free_sequence(a); });
    EXPECT_EQ(pool.prompt_tokens(b), 2u);
}

// A 16-bit pool tag repeated every 65,535 pools, and the later pool took the earlier one's ids as its own.
TEST(Pool, IdsOfAnotherPoolStayForeignAfter65535Pools) {
    PoolConfig tiny = small_config(2);
    tiny.statistics = false;
    Pool first(tiny);
    const SequenceId x = first.create_sequence(iota_tokens(1), {});
    for (int i = 0; i < 65534; ++i) Pool between(tiny);
    Pool later(tiny);
    const SequenceId y = later.create_sequence(iota_tokens(1), {});
    EXPECT_NE(x, y);
    expect_unchanged_after_failure(later, KVC_ERR_INVALID_ARGUMENT, [&] { later.free_sequence(x); });
    expect_unchanged_after_failure(first, KVC_ERR_INVALID_ARGUMENT, [&] { first.free_sequence(y); });
    first.free_sequence(x);
    later.free_sequence(y);
}

TEST(Pool, PoolsCreatingInTurnKeepABoundedIdHistoryAndStillRefuseOldIds) {
    PoolConfig tiny = small_config(2);
    tiny.statistics = false;
    Pool a(tiny), b(tiny);
    const SequenceId first_of_a = a.create_sequence(iota_tokens(1), {});
    const SequenceId first_of_b = b.create_sequence(iota_tokens(1), {});
    a.free_sequence(first_of_a);
    // Each pool reserves ids 4,096 at a time; taking turns, no two reservations of one pool touch.
    for (int round = 0; round < 80; ++round) {
        for (Pool* pool : {&a, &b}) {
            for (int i = 0; i < 4096; ++i) pool->free_sequence(pool->create_sequence(iota_tokens(1), {}));
        }
    }
    EXPECT_LE(a.id_ranges_for_testing(), 64u);
    EXPECT_LE(b.id_ranges_for_testing(), 64u);
    // Ids from the start stay refused: its own freed one, and the other pool's live one.
    expect_unchanged_after_failure(a, KVC_ERR_INVALID_STATE, [&] { a.free_sequence(first_of_a); });
    EXPECT_THROW(a.free_sequence(first_of_b), Error);
    b.free_sequence(first_of_b);
}

// Pools on different threads (allowed: one thread per pool) reserve ids from the one process-wide
// counter at the same time; no id is issued twice. Run under the tsan preset too.
TEST(Pool, PoolsOnSeveralThreadsNeverIssueTheSameId) {
    constexpr int kThreads = 4, kSequences = 3 * 4096;  // several reservations per pool
    std::vector<std::vector<SequenceId>> ids(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            PoolConfig tiny = small_config(2);
            tiny.statistics = false;
            Pool pool(tiny);
            for (int i = 0; i < kSequences; ++i) {
                const SequenceId id = pool.create_sequence(iota_tokens(1), {});
                ids[t].push_back(id);
                pool.free_sequence(id);
            }
        });
    }
    for (std::thread& thread : threads) thread.join();
    std::set<SequenceId> unique;
    for (const auto& per_pool : ids) unique.insert(per_pool.begin(), per_pool.end());
    EXPECT_EQ(unique.size(), size_t{kThreads} * kSequences);
}

TEST(Pool, ExhaustedIdsRefuseNewSequencesAndChangeNothing) {
    Pool pool(small_config(8));
    const SequenceId a = pool.create_sequence(iota_tokens(5), {});
    pool.allocate(a, 5);
    const uint64_t saved = pool.restart_ids_for_testing(Pool::kIdStampLimit - 1);
    const SequenceId last = pool.create_sequence(iota_tokens(2), {});
    EXPECT_EQ(last >> 24, Pool::kIdStampLimit - 1);
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] { pool.create_sequence(iota_tokens(2), {}); });
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] { pool.fork(a); });
    expect_unchanged_after_failure(pool, KVC_ERR_CAPACITY, [&] { pool.pin_prefix(a); });
    EXPECT_EQ(pool.snapshot().memory_pressure_events, 0u);  // ids are not memory
    pool.free_sequence(last);
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.free_sequence(last); });
    pool.restart_ids_for_testing(saved);  // other tests in this process create sequences
    const SequenceId next = pool.create_sequence(iota_tokens(2), {});
    EXPECT_LT(next >> 24, Pool::kIdStampLimit - 1);
    pool.check_invariants();
}

// vLLM's search for a sliding window's prefix stops only at a cached block: a window of one token needs
// no earlier block, but a prompt never seen has no hit.
TEST(Pool, SlidingWindowOfOneTokenHitsOnlyCachedBlocks) {
    PoolConfig config = small_config(32, 4);
    config.sliding_window = 1;
    Pool pool(config);
    const auto prompt = iota_tokens(13);
    const SequenceId s = pool.create_sequence(prompt, {});
    EXPECT_EQ(pool.cached_prefix_tokens(s), 0u);
    size_t cached = 99;
    pool.allocate(s, prompt.size(), &cached);
    EXPECT_EQ(cached, 0u);
    EXPECT_EQ(pool.snapshot().tokens_hit, 0u);
    pool.check_invariants();
    const SequenceId again = pool.create_sequence(prompt, {});
    EXPECT_EQ(pool.cached_prefix_tokens(again), 12u);  // the released blocks stay cached
    pool.allocate(again, prompt.size(), &cached);
    EXPECT_EQ(cached, 12u);
    EXPECT_EQ(pool.block_table(again)[2], 0);  // hit, then left the one-token window: the null block
    EXPECT_NE(pool.block_table(again)[3], 0);  // the last token's block
    pool.check_invariants();
}

TEST(Pool, ARetentionOfAlmostForeverDoesNotExpireAtOnce) {
    for (uint64_t duration_ms : {UINT64_MAX, UINT64_MAX / 1'000'000u, uint64_t{1} << 60}) {
        Pool pool(small_config(3, 4), fake_clock);  // 2 usable blocks
        fake_now = 1'000'000'000;
        SequenceOptions kept, middle;
        kept.priority = 90;
        kept.priority_duration_ms = duration_ms;
        middle.priority = 50;
        const SequenceId k = pool.create_sequence(iota_tokens(4, 100), kept);  // freed first: older
        pool.allocate(k, 4);
        const SequenceId m = pool.create_sequence(iota_tokens(4, 200), middle);
        pool.allocate(m, 4);
        pool.free_sequence(k);
        pool.free_sequence(m);
        fake_now += 2'000'000'000;
        std::vector<int32_t> one(1);
        pool.allocate_blocks(one);  // priority 90 still holds: the priority-50 block goes
        EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(iota_tokens(5, 100), {})), 4u) << duration_ms;
        EXPECT_EQ(pool.cached_prefix_tokens(pool.create_sequence(iota_tokens(5, 200), {})), 0u) << duration_ms;
        pool.check_invariants();
    }
}

// bytes_in_use and peak_bytes follow the blocks, not the scrapes: a pool that filled up and emptied
// between two snapshots reports its peak.
TEST(Pool, PeakBytesCountBlocksHeldBetweenSnapshots) {
    PoolConfig config = small_config(9, 4);  // 8 usable
    Pool pool(config);
    const uint64_t bytes_per_block = config.bytes_per_block();
    EXPECT_EQ(pool.snapshot().peak_bytes, 0u);
    const SequenceId a = pool.create_sequence(iota_tokens(16), {});
    pool.allocate(a, 16);  // 4 blocks
    const SequenceId b = pool.create_sequence(iota_tokens(8, 100), {});
    pool.allocate(b, 8);  // 2 more
    const int32_t token[] = {7};
    pool.append(b, token);  // 7
    pool.free_sequence(a);
    pool.free_sequence(b);
    std::vector<int32_t> two(2);
    pool.allocate_blocks(two);
    auto s = pool.snapshot();
    EXPECT_EQ(s.bytes_in_use, 2 * bytes_per_block);
    EXPECT_EQ(s.peak_bytes, 7 * bytes_per_block);
    pool.free_blocks(two);
    s = pool.snapshot();
    EXPECT_EQ(s.bytes_in_use, 0u);
    EXPECT_EQ(s.peak_bytes, 7 * bytes_per_block);
}

TEST(Pool, PeakBytesCountBlocksASlidingWindowGivesBackInTheSameCall) {
    PoolConfig config = small_config(64, 4);
    config.sliding_window = 4;
    Pool pool(config);
    const SequenceId a = pool.create_sequence(iota_tokens(40), {});
    pool.allocate(a, 40);  // holds 10 blocks while it computes the prompt, keeps 2 once the window slides
    const auto s = pool.snapshot();
    EXPECT_LT(s.bytes_in_use, 10 * config.bytes_per_block());
    EXPECT_EQ(s.peak_bytes, 10 * config.bytes_per_block());
    pool.free_sequence(a);
}

// ---- turns: truncate, blocks_needed, reclaimable_blocks, deferred caching (the session store's needs) ----

TEST(PoolTurns, TruncateReleasesTheTailAndUncachesACutBlockOnlyThisSequenceHolds) {
    Pool pool(small_config(16));
    const SequenceId s = pool.create_sequence(iota_tokens(10), {});
    pool.allocate(s, 10);
    EXPECT_EQ(pool.counters().cached_blocks, 2u);
    EXPECT_EQ(pool.blocks_freed_by_truncate(s, 5), 1u);  // block 2 goes; block 1 is kept, cut inside
    pool.truncate(s, 5);
    EXPECT_EQ(pool.num_tokens(s), 5u);
    EXPECT_EQ(pool.block_table(s).size(), 2u);
    EXPECT_EQ(pool.counters().blocks_in_use, 2u);
    EXPECT_EQ(pool.counters().cached_blocks, 1u);  // block 1 will be rewritten: no longer findable
    pool.append(s, iota_tokens(3, 100));
    EXPECT_EQ(pool.num_tokens(s), 8u);
    EXPECT_TRUE(pool.drain_copies().empty());
    pool.check_invariants();
    expect_unchanged_after_failure(pool, KVC_ERR_OUT_OF_RANGE, [&] { pool.truncate(s, 9); });
    pool.truncate(s, 0);
    EXPECT_EQ(pool.counters().blocks_in_use, 0u);
    pool.check_invariants();
}

TEST(PoolTurns, TruncateInsideASharedBlockCopiesItOnGrowth) {
    Pool pool(small_config(16));
    const SequenceId a = pool.create_sequence(iota_tokens(9), {});
    pool.allocate(a, 9);
    const SequenceId b = pool.create_sequence(iota_tokens(9), {});
    size_t cached = 0;
    pool.allocate(b, 9, &cached);
    EXPECT_EQ(cached, 8u);
    const int32_t shared = pool.block_table(b)[1];
    EXPECT_EQ(pool.blocks_freed_by_truncate(b, 6), 1u);  // b's own partial block 2
    EXPECT_EQ(pool.blocks_needed(b, 8, 6), 1u);          // the copy of shared block 1 only
    EXPECT_EQ(pool.blocks_needed(b, 9, 6), 2u);          // and one new block
    pool.truncate(b, 6);
    EXPECT_EQ(pool.counters().cached_blocks, 2u);  // a still holds block 1 whole
    pool.append(b, iota_tokens(3, 50));
    const auto copies = pool.drain_copies();
    ASSERT_EQ(copies.size(), 1u);
    EXPECT_EQ(copies[0].first, shared);
    EXPECT_EQ(copies[0].second, pool.block_table(b)[1]);
    EXPECT_EQ(pool.block_table(a)[1], shared);
    pool.check_invariants();
}

TEST(PoolTurns, TruncateRefusesPinsAndSlidingWindows) {
    PoolConfig c = small_config(16);
    c.sliding_window = 8;
    Pool windowed(c);
    const SequenceId s = windowed.create_sequence(iota_tokens(6), {});
    windowed.allocate(s, 6);
    expect_unchanged_after_failure(windowed, KVC_ERR_UNSUPPORTED, [&] { windowed.truncate(s, 2); });
    Pool pool(small_config(16));
    const SequenceId t = pool.create_sequence(iota_tokens(8), {});
    pool.allocate(t, 8);
    const SequenceId pin = pool.pin_prefix(t);
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.truncate(pin, 4); });
    const SequenceId u = pool.create_sequence(iota_tokens(8), {});
    expect_unchanged_after_failure(pool, KVC_ERR_INVALID_STATE, [&] { pool.truncate(u, 4); });  // not allocated
}

TEST(PoolTurns, BlocksNeededIsWhatAllocateAndAppendTake) {
    Pool pool(small_config(16));
    const SequenceId a = pool.create_sequence(iota_tokens(12), {});
    EXPECT_EQ(pool.blocks_needed(a, 12), 3u);
    pool.allocate(a, 12);
    EXPECT_EQ(pool.counters().blocks_in_use, 3u);
    // b finds a's first two blocks in use: they are not taken from the free lists.
    const SequenceId b = pool.create_sequence(iota_tokens(10), {});
    EXPECT_EQ(pool.blocks_needed(b, 10), 1u);
    pool.allocate(b, 10);
    EXPECT_EQ(pool.counters().blocks_in_use, 4u);
    pool.free_sequence(a);
    pool.free_sequence(b);
    // c revives free cached blocks: they count, since blocks in use grow by them.
    const SequenceId c = pool.create_sequence(iota_tokens(10), {});
    EXPECT_EQ(pool.blocks_needed(c, 10), 3u);
    pool.allocate(c, 10);
    EXPECT_EQ(pool.counters().blocks_in_use, 3u);
    EXPECT_EQ(pool.blocks_needed(c, 12), 0u);
    EXPECT_EQ(pool.blocks_needed(c, 13), 1u);
    pool.append(c, iota_tokens(3, 77));
    EXPECT_EQ(pool.counters().blocks_in_use, 4u);
}

TEST(PoolTurns, ReclaimableBlocksCountSharedBlocksOnceAndOnlyWhenAllHoldersGo) {
    Pool pool(small_config(32));
    const SequenceId a = pool.create_sequence(iota_tokens(12), {});
    pool.allocate(a, 12);
    const SequenceId b = pool.create_sequence(iota_tokens(14), {});
    pool.allocate(b, 14);  // shares a's 3 full blocks, one of its own
    const SequenceId c = pool.create_sequence(iota_tokens(5, 500), {});
    pool.allocate(c, 5);
    const std::vector<SequenceId> ab{a, b}, just_a{a}, abc{a, b, c};
    EXPECT_EQ(pool.reclaimable_blocks(just_a), 0u);
    EXPECT_EQ(pool.reclaimable_blocks(ab), 4u);
    EXPECT_EQ(pool.reclaimable_blocks(abc), 6u);
    const uint32_t in_use = pool.counters().blocks_in_use;
    pool.free_sequence(a);
    pool.free_sequence(b);
    EXPECT_EQ(pool.counters().blocks_in_use, in_use - 4);
}

TEST(PoolTurns, DeferredCachingRegistersBlocksOnlyAtCommit) {
    Pool pool(small_config(32));
    SequenceOptions deferred;
    deferred.defer_caching = true;
    const SequenceId a = pool.create_sequence(iota_tokens(9), deferred);
    pool.allocate(a, 9);
    pool.append(a, iota_tokens(4, 9));
    EXPECT_EQ(pool.counters().cached_blocks, 0u);  // K/V not written yet: nobody may hit them
    const SequenceId probe = pool.create_sequence(iota_tokens(13), {});
    EXPECT_EQ(pool.cached_prefix_tokens(probe), 0u);
    pool.commit(a, 6);
    EXPECT_EQ(pool.counters().cached_blocks, 1u);
    EXPECT_EQ(pool.cached_prefix_tokens(probe), 4u);
    pool.commit(a, 13);
    EXPECT_EQ(pool.counters().cached_blocks, 3u);
    EXPECT_EQ(pool.cached_prefix_tokens(probe), 12u);
    EXPECT_EQ(status_of([&] { pool.commit(a, 14); }), KVC_ERR_OUT_OF_RANGE);
    pool.check_invariants();
}
