// SPDX-License-Identifier: Apache-2.0
// The pool under every eviction policy: retention priorities first, a freed chain's tail before its
// head, invariants after random operations, and the offline replay model (kvcore simulate's opt) agreeing
// with the pool's own LRU and bounding every policy.
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

#include "common/error.h"
#include "common/eviction/policy.h"
#include "pool/pool.h"
#include "pool/replay_model.h"

using namespace kvcore::pool;
namespace eviction = kvcore::eviction;

namespace {

const eviction::Kind kAllKinds[] = {eviction::Kind::kLru, eviction::Kind::kS3Fifo, eviction::Kind::kSieve,
                                    eviction::Kind::kArc, eviction::Kind::kWTinyLfu};

class PoolEviction : public testing::TestWithParam<eviction::Kind> {
protected:
    PoolConfig config(uint32_t num_blocks, uint32_t block_size = 4) const {
        PoolConfig c;
        c.num_blocks = num_blocks;
        c.block_size = block_size;
        c.eviction = GetParam();
        return c;
    }
};
INSTANTIATE_TEST_SUITE_P(All, PoolEviction, testing::ValuesIn(kAllKinds),
                         [](const testing::TestParamInfo<eviction::Kind>& i) { return std::string(eviction::kind_name(i.param)); });

std::vector<int32_t> tokens_from(int32_t first, size_t n) {
    std::vector<int32_t> t(n);
    std::iota(t.begin(), t.end(), first);
    return t;
}

size_t cached_blocks_of(Pool& pool, int32_t first, size_t blocks) {
    const SequenceId probe = pool.create_sequence(tokens_from(first, blocks * 4 + 1), {});
    const size_t n = pool.cached_prefix_tokens(probe) / 4;
    pool.free_sequence(probe);
    return n;
}

TEST_P(PoolEviction, LowerPrioritiesGoFirstWhateverThePolicy) {
    Pool pool(config(13));  // 12 usable blocks
    SequenceOptions low, high;
    low.priority = 10;
    high.priority = 90;
    // High first (older, and hit once so every policy has seen it twice), then low.
    for (const auto& [first, options] : {std::pair{100, high}, std::pair{200, low}}) {
        const SequenceId s = pool.create_sequence(tokens_from(first, 17), options);
        pool.allocate(s, 17);
        pool.free_sequence(s);
    }
    // 8 cached blocks (4 each) and 2 partial ones without a hash: taking 6 takes those 2, then low's 4.
    std::vector<int32_t> taken(6);
    pool.allocate_blocks(taken);
    EXPECT_EQ(cached_blocks_of(pool, 100, 4), 4u) << "a high-priority block went before a low one";
    EXPECT_EQ(cached_blocks_of(pool, 200, 4), 0u);
    pool.check_invariants();
    pool.free_blocks(taken);
    pool.check_invariants();
}

TEST_P(PoolEviction, AFreedChainLosesItsTailFirst) {
    Pool pool(config(9));  // 8 usable blocks
    const SequenceId s = pool.create_sequence(tokens_from(0, 25), {});  // 6 full blocks + 1 partial
    pool.allocate(s, 25);
    pool.free_sequence(s);
    std::vector<int32_t> two(2);
    pool.allocate_blocks(two);  // the blocks without a hash: the partial one and the one never used
    EXPECT_EQ(cached_blocks_of(pool, 0, 6), 6u);
    for (size_t k = 1; k <= 6; ++k) {
        std::vector<int32_t> next(1);
        pool.allocate_blocks(next);  // and then one cached block each
        EXPECT_EQ(cached_blocks_of(pool, 0, 6), 6 - std::min<size_t>(k, 6)) << "after " << k << " evictions";
        pool.check_invariants();
    }
}

TEST_P(PoolEviction, RandomOperationsKeepTheInvariants) {
    Pool pool(config(48));
    std::mt19937 rng(static_cast<uint32_t>(GetParam()) + 1);
    std::vector<SequenceId> live;
    std::vector<int32_t> raw;
    for (int step = 0; step < 4000; ++step) {
        const int op = static_cast<int>(rng() % 9);
        try {
            if (op <= 1 || live.empty()) {
                std::vector<int32_t> prompt(1 + rng() % 24);
                for (auto& t : prompt) t = static_cast<int32_t>(rng() % 3);  // few distinct: many hits
                SequenceOptions options;
                options.priority = rng() % 4 == 0 ? static_cast<uint32_t>(rng() % 101) : kDefaultPriority;
                const SequenceId s = pool.create_sequence(prompt, options);
                live.push_back(s);
                pool.allocate(s, prompt.size());
            } else if (op == 2) {
                const int32_t tok[] = {static_cast<int32_t>(rng() % 3)};
                pool.append(live[rng() % live.size()], tok);
            } else if (op == 3) {
                live.push_back(pool.fork(live[rng() % live.size()]));
            } else if (op == 4) {
                live.push_back(pool.pin_prefix(live[rng() % live.size()]));
            } else if (op == 5) {
                std::vector<int32_t> got(1 + rng() % 3);
                pool.allocate_blocks(got);
                raw.insert(raw.end(), got.begin(), got.end());
            } else if (op == 6 && !raw.empty()) {
                pool.free_blocks(std::span<const int32_t>(&raw.back(), 1));
                raw.pop_back();
            } else if (op == 7 && step % 500 == 0) {
                for (SequenceId s : live) pool.free_sequence(s);
                live.clear();
                pool.free_blocks(raw);
                raw.clear();
                pool.reset_prefix_cache();
            } else {
                const size_t i = rng() % live.size();
                pool.free_sequence(live[i]);
                live.erase(live.begin() + static_cast<ptrdiff_t>(i));
            }
        } catch (const kvcore::Error& e) {
            ASSERT_TRUE(e.status() == KVC_ERR_CAPACITY || e.status() == KVC_ERR_INVALID_STATE) << e.what();
        }
        ASSERT_NO_THROW(pool.check_invariants()) << "step " << step;
        pool.drain_copies();
    }
}

// A seeded multi-turn workload in the shape of a conversation trace: each turn resends its conversation
// so far plus new tokens; conversations start, pause and end at random; a shared system prompt.
std::vector<std::vector<int32_t>> conversations(uint32_t seed, size_t requests) {
    std::mt19937 rng(seed);
    std::vector<std::vector<int32_t>> open, out;
    int32_t next = 1000;
    const std::vector<int32_t> system = tokens_from(0, 8);
    while (out.size() < requests) {
        if (open.empty() || rng() % 3 == 0) open.push_back(system);
        auto& c = open[rng() % open.size()];
        for (uint32_t n = 1 + rng() % 14; n > 0; --n) c.push_back(next++);
        out.push_back(c);
        if (rng() % 4 == 0) {
            std::swap(c, open.back());
            open.pop_back();
        }
    }
    return out;
}

double pool_block_hit_rate(eviction::Kind kind, uint32_t num_blocks, const std::vector<std::vector<int32_t>>& trace) {
    PoolConfig c;
    c.num_blocks = num_blocks;
    c.block_size = 4;
    c.eviction = kind;
    Pool pool(c);
    for (const auto& prompt : trace) {
        try {
            const SequenceId s = pool.create_sequence(prompt, {});
            pool.allocate(s, prompt.size());
            pool.free_sequence(s);
        } catch (const kvcore::Error& e) {
            EXPECT_EQ(e.status(), KVC_ERR_CAPACITY);  // longer than the pool, as simulate counts it
        }
    }
    const auto snap = pool.snapshot();
    return double(snap.hits) / double(snap.hits + snap.misses);
}

TEST(ReplayModel, LeastRecentOrderReproducesThePoolsLruAndTheOptimumBoundsEveryPolicy) {
    for (const uint32_t seed : {1u, 2u}) {
        const auto trace = conversations(seed, 3000);
        ReplayTrace recorded(4, HashAlgo::kXxh3, "42");
        for (const auto& prompt : trace) recorded.add(prompt);
        for (const uint32_t blocks : {40u, 200u, 1000u}) {
            const auto lru = recorded.replay(blocks, ReplayTrace::Order::kLeastRecentUse);
            const double model_lru = double(lru.blocks_hit) / double(lru.blocks_queried);
            EXPECT_DOUBLE_EQ(model_lru, pool_block_hit_rate(eviction::Kind::kLru, blocks, trace))
                << "seed " << seed << ", " << blocks << " blocks";
            const auto opt = recorded.replay(blocks, ReplayTrace::Order::kFarthestNextUse);
            const double ceiling = double(opt.blocks_hit) / double(opt.blocks_queried);
            EXPECT_EQ(opt.too_long, lru.too_long);
            for (const eviction::Kind kind : kAllKinds) {
                EXPECT_LE(pool_block_hit_rate(kind, blocks, trace), ceiling)
                    << eviction::kind_name(kind) << ", seed " << seed << ", " << blocks << " blocks";
            }
            EXPECT_GT(ceiling, model_lru) << blocks;
        }
    }
}

}  // namespace
