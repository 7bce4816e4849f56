// SPDX-License-Identifier: Apache-2.0
// The score cache of the cluster index (src/index/score_cache.h): a cached result always equals the
// uncached one (Index::score on the prompt's keys, which never goes through the cache), every kind of
// write that touches a cached prompt's keys invalidates it, unrelated writes do not, and the TTL and
// bounds hold. Engines report keys directly (sha256_cbor, seed 42, 16-token blocks), so the tests build
// BlockStored events from the index's own request keys.
#include "index/score_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "common/error.h"
#include "index/index.h"

namespace kvcore::index {
namespace {

using pool::HashAlgo;

std::atomic<uint64_t> g_now{1'000'000};
uint64_t fake_now() noexcept { return g_now.load(); }
constexpr uint64_t kMs = 1'000'000;

std::vector<int32_t> tokens_from(uint32_t seed, size_t n) {
    std::mt19937 rng(seed);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = static_cast<int32_t>(rng() % 50000);
    return t;
}

IndexConfig cached_config(uint32_t entries = 1024, uint64_t ttl_ms = 30000, uint32_t pod_sets = 4) {
    IndexConfig c{.hash_algo = HashAlgo::kSha256Cbor, .hash_seed = "42", .block_size = 16, .engine_keys_direct = true};
    c.clock = fake_now;
    c.score_cache = ScoreCacheConfig{entries, ttl_ms, pod_sets};
    return c;
}

EventBatch batch_of(std::vector<Event> events) {
    EventBatch b;
    b.events = std::move(events);
    return b;
}

// Blocks [first, first + n) of prompt, as an engine hashing like the index reports them.
BlockStored stored(const Index& index, const std::vector<int32_t>& prompt, size_t first, size_t n,
                   Medium m = Medium::kGpu) {
    const auto keys = index.request_keys(prompt, {});
    BlockStored s;
    for (size_t i = first; i < first + n; ++i) s.block_hashes.push_back(keys[i]);
    if (first > 0) s.parent_block_hash = keys[first - 1];
    s.token_ids.assign(prompt.begin() + first * 16, prompt.begin() + (first + n) * 16);
    s.block_size = 16;
    s.medium = m;
    return s;
}
BlockRemoved removed(const Index& index, const std::vector<int32_t>& prompt, size_t first, size_t n) {
    const auto keys = index.request_keys(prompt, {});
    BlockRemoved r;
    r.block_hashes.assign(keys.begin() + first, keys.begin() + first + n);
    return r;
}

void expect_same(const std::vector<PodScore>& a, const std::vector<PodScore>& b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].pod, b[i].pod) << what << " #" << i;
        EXPECT_EQ(a[i].blocks, b[i].blocks) << what << " #" << i;
        EXPECT_EQ(a[i].score, b[i].score) << what << " #" << i;  // bit for bit: same sums in the same order
        EXPECT_EQ(a[i].cost, b[i].cost) << what << " #" << i;
    }
}

// score_tokens (through the cache) and score on the keys (never cached); with no candidates, out
// holds `open` pods.
struct Both {
    std::vector<PodScore> cached, uncached;
};
Both score_both(const Index& index, ModelId m, const std::vector<int32_t>& prompt, std::vector<PodId> cands,
                const pool::ExtraKeys& extra = {}, std::vector<double> load = {}, size_t open = 8) {
    const size_t cap = cands.empty() ? open : cands.size();
    Both b{std::vector<PodScore>(cap), std::vector<PodScore>(cap)};
    b.cached.resize(index.score_tokens(m, prompt, extra, cands, b.cached, {}, load));
    b.uncached.resize(index.score(m, index.request_keys(prompt, extra), cands, b.uncached, {}, KeyKind::kRequest, load));
    return b;
}
std::vector<PodScore> score_cached(const Index& index, ModelId m, const std::vector<int32_t>& prompt,
                                   std::vector<PodId> cands) {
    std::vector<PodScore> out(cands.size());
    index.score_tokens(m, prompt, {}, cands, out);
    return out;
}

struct World {
    Index index;
    ModelId m;
    PodId a, b, c;
    explicit World(IndexConfig config = cached_config())
        : index(config), m(index.intern_model("m")), a(index.intern_pod("a")), b(index.intern_pod("b")),
          c(index.intern_pod("c")) {}
    [[nodiscard]] ScoreCache::Counters counters() const {
        const IndexCounters x = index.counters();
        return {x.score_cache_hits, x.score_cache_misses, x.score_cache_invalidations};
    }
};

TEST(IndexScoreCache, HitReturnsTheUncachedScores) {
    g_now = 1'000'000;
    World w;
    const auto prompt = tokens_from(1, 16 * 12 + 3);
    w.index.apply(w.a, w.m, batch_of({stored(w.index, prompt, 0, 8)}));
    w.index.apply(w.b, w.m, batch_of({stored(w.index, prompt, 0, 5, Medium::kCpu)}));
    w.index.apply(w.c, w.m, batch_of({stored(w.index, prompt, 0, 2)}));
    const std::vector<PodId> cands{w.c, w.a, w.b, w.a};
    const std::vector<double> load{1.5, 0.25, 3, 7};
    for (int round = 0; round < 3; ++round) {
        const Both r = score_both(w.index, w.m, prompt, cands, {}, load);
        expect_same(r.cached, r.uncached, "round " + std::to_string(round));
        EXPECT_EQ(r.cached[1].blocks, 8u);
        EXPECT_EQ(r.cached[2].blocks, 5u);
        EXPECT_NEAR(r.cached[2].score, 5 * double(0.8f), 1e-9);
    }
    EXPECT_EQ(w.counters().misses, 1u);
    EXPECT_EQ(w.counters().hits, 2u);
    // Without decode loads: the same record, costs 0.
    const Both r = score_both(w.index, w.m, prompt, cands);
    expect_same(r.cached, r.uncached, "no load");
    EXPECT_EQ(w.counters().hits, 3u);
    // No candidates: every holder of key 0, best first, as many as out holds (each capacity its record).
    for (size_t open : {size_t{8}, size_t{2}, size_t{8}, size_t{2}}) {
        const Both o = score_both(w.index, w.m, prompt, {}, {}, {}, open);
        ASSERT_EQ(o.cached.size(), std::min<size_t>(open, 3));
        expect_same(o.cached, o.uncached, "open " + std::to_string(open));
    }
    EXPECT_EQ(w.counters().misses, 3u);
    EXPECT_EQ(w.counters().hits, 5u);
    // Another LoRA is another prompt.
    const pool::ExtraKeys lora{.lora_name = "l"};
    const Both l = score_both(w.index, w.m, prompt, cands, lora);
    expect_same(l.cached, l.uncached, "lora");
    EXPECT_EQ(l.cached[1].blocks, 0u);
    EXPECT_EQ(w.counters().misses, 4u);
}

TEST(IndexScoreCache, ErrorsAreTheUncachedPathsAndCacheNothing) {
    World w;
    const auto prompt = tokens_from(2, 16 * 4);
    w.index.apply(w.a, w.m, batch_of({stored(w.index, prompt, 0, 4)}));
    std::vector<PodScore> out(1);
    const std::vector<PodId> two{w.a, w.b};
    try {
        w.index.score_tokens(w.m, prompt, {}, two, out);
        FAIL() << "a short output was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), KVC_ERR_BUFFER_TOO_SMALL);
    }
    auto bad = prompt;
    bad[3] = -1;
    EXPECT_THROW(w.index.score_tokens(w.m, bad, {}, std::span(two).first(1), out), Error);
    EXPECT_EQ(w.counters().hits + w.counters().misses, 0u);
}

// Each kind of write touching the keys that decided a cached result makes it stale: the next call
// recomputes (an invalidation) and returns the new uncached result.
TEST(IndexScoreCache, EveryWriteTouchingTheKeysInvalidates) {
    g_now = 1'000'000;
    World w;
    const auto prompt = tokens_from(3, 16 * 10);
    const std::vector<PodId> cands{w.a, w.b};
    const auto keys = w.index.request_keys(prompt, {});
    struct Step {
        const char* what;
        std::function<void()> write;
        uint32_t a_blocks, b_blocks;
    };
    const std::vector<Step> steps{
        {"stored: extends a's run at its first missing key",
         [&] { w.index.apply(w.a, w.m, batch_of({stored(w.index, prompt, 4, 3)})); }, 7, 2},
        {"removed: cuts a's run", [&] { w.index.apply(w.a, w.m, batch_of({removed(w.index, prompt, 5, 1)})); }, 5, 2},
        {"speculative: b's routing decision",
         [&] { w.index.add_speculative(w.m, std::span(keys).first(9), w.b, 1000 * kMs); }, 5, 9},
        {"cleared: a's engine restarts", [&] { w.index.apply(w.a, w.m, batch_of({AllBlocksCleared{}})); }, 0, 9},
        {"stored again", [&] { w.index.apply(w.a, w.m, batch_of({stored(w.index, prompt, 0, 10)})); }, 10, 9},
        {"pod removed", [&] { w.index.remove_pod(w.b); }, 10, 0},
    };
    w.index.apply(w.a, w.m, batch_of({stored(w.index, prompt, 0, 4)}));
    w.index.apply(w.b, w.m, batch_of({stored(w.index, prompt, 0, 2)}));
    uint64_t invalidations = 0;
    for (const Step& s : steps) {
        const Both before = score_both(w.index, w.m, prompt, cands);  // cached now (a hit or a miss)
        expect_same(before.cached, before.uncached, s.what);
        const uint64_t hits = w.counters().hits;
        ASSERT_EQ(score_cached(w.index, w.m, prompt, cands)[0].blocks, before.cached[0].blocks);
        ASSERT_EQ(w.counters().hits, hits + 1) << s.what << ": the record was not reused";
        s.write();
        const Both after = score_both(w.index, w.m, prompt, cands);
        expect_same(after.cached, after.uncached, s.what);
        EXPECT_EQ(after.cached[0].blocks, s.a_blocks) << s.what;
        EXPECT_EQ(after.cached[1].blocks, s.b_blocks) << s.what;
        EXPECT_EQ(w.counters().invalidations, ++invalidations) << s.what;
    }
}

// The generation buckets of the keys a scoring of prompt examines (every key, for a prompt held
// whole by a candidate).
std::set<Generations::Bucket> buckets_of(const Index& index, ModelId m, const std::vector<int32_t>& prompt) {
    std::set<Generations::Bucket> out;
    for (uint64_t k : index.request_keys(prompt, {}))
        out.insert(Generations::bucket(Index::entry_hash(m, KeyKind::kRequest, k)));
    return out;
}

TEST(IndexScoreCache, WritesToOtherBucketsLeaveTheRecord) {
    World w;
    const auto prompt = tokens_from(4, 16 * 6);
    w.index.apply(w.a, w.m, batch_of({stored(w.index, prompt, 0, 6)}));
    const auto mine = buckets_of(w.index, w.m, prompt);
    // Another prompt none of whose keys shares a bucket with this one's (2^20 buckets: found at once).
    std::vector<int32_t> other;
    for (uint32_t seed = 100; seed < 200 && other.empty(); ++seed) {
        auto candidate = tokens_from(seed, 16 * 6);
        const auto theirs = buckets_of(w.index, w.m, candidate);
        if (std::none_of(theirs.begin(), theirs.end(), [&](Generations::Bucket b) { return mine.count(b) != 0; }))
            other = std::move(candidate);
    }
    ASSERT_FALSE(other.empty());
    const std::vector<PodId> cands{w.a, w.b};
    score_cached(w.index, w.m, prompt, cands);
    w.index.apply(w.b, w.m, batch_of({stored(w.index, other, 0, 6)}));
    w.index.apply(w.a, w.m, batch_of({stored(w.index, other, 0, 3)}));
    w.index.apply(w.b, w.m, batch_of({removed(w.index, other, 2, 2)}));
    w.index.add_speculative(w.m, w.index.request_keys(other, {}), w.c, 1000 * kMs);
    const Both r = score_both(w.index, w.m, prompt, cands);
    expect_same(r.cached, r.uncached, "after unrelated writes");
    EXPECT_EQ(w.counters().hits, 1u);
    EXPECT_EQ(w.counters().invalidations, 0u);
    // A clear of a pod that held none of the prompt's keys leaves it too.
    w.index.apply(w.b, w.m, batch_of({AllBlocksCleared{}}));
    score_cached(w.index, w.m, prompt, cands);
    EXPECT_EQ(w.counters().hits, 2u);
}

TEST(IndexScoreCache, ResultsExpireAfterTheTtl) {
    g_now = 5'000'000;
    World w(cached_config(1024, 100));
    const auto prompt = tokens_from(5, 16 * 4);
    w.index.apply(w.a, w.m, batch_of({stored(w.index, prompt, 0, 4)}));
    const std::vector<PodId> cands{w.a};
    score_cached(w.index, w.m, prompt, cands);
    g_now += 99 * kMs;
    score_cached(w.index, w.m, prompt, cands);
    EXPECT_EQ(w.counters().hits, 1u);
    g_now += 1 * kMs;  // written 100 ms ago
    score_cached(w.index, w.m, prompt, cands);
    EXPECT_EQ(w.counters().hits, 1u);
    EXPECT_EQ(w.counters().misses, 2u);
    EXPECT_EQ(w.counters().invalidations, 0u);  // expired, not stale
}

TEST(IndexScoreCache, SpeculativeHoldersExpiringMakeTheResultStale) {
    g_now = 1'000'000;
    World w;
    const auto prompt = tokens_from(6, 16 * 5);
    const auto keys = w.index.request_keys(prompt, {});
    w.index.apply(w.a, w.m, batch_of({stored(w.index, prompt, 0, 2)}));
    w.index.add_speculative(w.m, keys, w.b, 10 * kMs);
    const std::vector<PodId> cands{w.a, w.b};
    EXPECT_EQ(score_cached(w.index, w.m, prompt, cands)[1].blocks, 5u);
    g_now += 10 * kMs - 1;
    EXPECT_EQ(score_cached(w.index, w.m, prompt, cands)[1].blocks, 5u);
    EXPECT_EQ(w.counters().hits, 1u);
    g_now += 1;  // b's decision expires, with no event
    const Both r = score_both(w.index, w.m, prompt, cands);
    expect_same(r.cached, r.uncached, "expired");
    EXPECT_EQ(r.cached[1].blocks, 0u);
    EXPECT_EQ(w.counters().invalidations, 1u);
}

TEST(IndexScoreCache, PodSetsPerPromptAndEntriesAreBounded) {
    World w(cached_config(3, 30000, 2));
    std::vector<std::vector<int32_t>> prompts;
    for (uint32_t i = 0; i < 4; ++i) {
        prompts.push_back(tokens_from(10 + i, 16 * 3));
        w.index.apply(w.a, w.m, batch_of({stored(w.index, prompts[i], 0, 3)}));
    }
    const std::vector<PodId> s1{w.a}, s2{w.a, w.b}, s3{w.b, w.a};
    g_now += 1;
    score_cached(w.index, w.m, prompts[0], s1);
    g_now += 1;
    score_cached(w.index, w.m, prompts[0], s2);
    g_now += 1;
    score_cached(w.index, w.m, prompts[0], s3);  // a permutation is its own pod set; s1 (oldest) goes
    EXPECT_EQ(w.counters().misses, 3u);
    score_cached(w.index, w.m, prompts[0], s3);
    score_cached(w.index, w.m, prompts[0], s2);
    EXPECT_EQ(w.counters().hits, 2u);
    score_cached(w.index, w.m, prompts[0], s1);
    EXPECT_EQ(w.counters().misses, 4u);
    // Three prompts at most (LRU): prompt 0 was used last, so the fourth evicts prompt 1.
    for (int i : {1, 2, 0, 3}) score_cached(w.index, w.m, prompts[i], s1);
    EXPECT_EQ(w.counters().misses, 7u);  // 1, 2 and 3 new; 0 a hit
    score_cached(w.index, w.m, prompts[0], s1);
    score_cached(w.index, w.m, prompts[2], s1);
    score_cached(w.index, w.m, prompts[3], s1);
    EXPECT_EQ(w.counters().hits, 6u);
    score_cached(w.index, w.m, prompts[1], s1);
    EXPECT_EQ(w.counters().misses, 8u);
}

TEST(IndexScoreCache, ConfigIsValidatedAndOffByDefault) {
    for (ScoreCacheConfig bad : {ScoreCacheConfig{1, 0, 5}, ScoreCacheConfig{1, 1000, 0}, ScoreCacheConfig{1, 1000, 65}}) {
        IndexConfig c = cached_config();
        c.score_cache = bad;
        try {
            Index index(c);
            FAIL() << "accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), KVC_ERR_INVALID_ARGUMENT);
        }
    }
    IndexConfig off = cached_config();
    off.score_cache = ScoreCacheConfig{0, 0, 0};
    World w(off);
    const auto prompt = tokens_from(7, 32);
    score_cached(w.index, w.m, prompt, {w.a});
    score_cached(w.index, w.m, prompt, {w.a});
    EXPECT_EQ(w.counters().hits + w.counters().misses, 0u);
}

// Random interleavings of every write and of scorings: the cached result equals the uncached one every
// time. A small byte budget adds evictions; few prompts, pods and buckets' worth of keys make records
// live long enough to be hit and invalidated often.
TEST(IndexScoreCache, RandomWritesAndScoringsAgreeWithTheUncachedPath) {
    for (uint32_t seed : {1u, 2u, 3u}) {
        g_now = 1'000'000;
        IndexConfig config = cached_config(16, 50, 3);
        if (seed == 3) config.byte_budget = 60 * Index::kKeyCharge;
        config.shards = seed == 2 ? 1 : 8;
        Index index(config);
        const ModelId m = index.intern_model("m");
        std::vector<std::string> names{"p0", "p1", "p2", "p3"};
        for (const auto& n : names) index.intern_pod(n);
        std::mt19937 rng(seed);
        const auto base = tokens_from(seed * 100, 16 * 12);
        std::vector<std::vector<int32_t>> prompts;
        for (uint32_t i = 0; i < 6; ++i) {  // prefixes shared in a tree
            auto p = std::vector<int32_t>(base.begin(), base.begin() + 16 * (2 * i));
            const auto tail = tokens_from(seed * 100 + i + 1, 16 * (8 - i));
            p.insert(p.end(), tail.begin(), tail.end());
            prompts.push_back(std::move(p));
        }
        const auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
        for (int step = 0; step < 3000; ++step) {
            const auto& prompt = prompts[pick(prompts.size())];
            const PodId pod = index.find_pod(names[pick(names.size())]);
            const size_t blocks = prompt.size() / 16;
            const size_t first = pick(blocks), n = 1 + pick(blocks - first);
            switch (pick(16)) {
                case 0: case 1: case 2:
                    index.apply(pod, m, batch_of({stored(index, prompt, first, n, pick(4) == 0 ? Medium::kCpu : Medium::kGpu)}));
                    break;
                case 3: case 4:
                    index.apply(pod, m, batch_of({removed(index, prompt, first, n)}));
                    break;
                case 5:
                    if (pick(4) == 0) index.apply(pod, m, batch_of({AllBlocksCleared{}}));
                    else if (pick(4) == 0) {
                        const std::string name = index.pod_name(pod);
                        index.remove_pod(pod);
                        index.intern_pod(name);
                    }
                    break;
                case 6: {
                    const auto keys = index.request_keys(prompt, {});
                    index.add_speculative(m, std::span(keys).first(first + 1), pod, (1 + pick(20)) * kMs);
                    break;
                }
                case 7:
                    g_now += pick(8) * kMs;
                    if (pick(8) == 0) index.expire_speculative();
                    break;
                default: {
                    // A few candidate lists (empty: every holder of key 0), so that records are reused.
                    static const std::vector<std::vector<size_t>> menu{{}, {0, 1}, {2, 0, 3, 0}, {1}, {3, 2, 1, 0}};
                    std::vector<PodId> cands;
                    for (size_t i : menu[pick(menu.size())]) cands.push_back(index.find_pod(names[i]));
                    std::vector<double> load;
                    if (!cands.empty() && pick(2) == 0)
                        for (size_t i = 0; i < cands.size(); ++i) load.push_back(double(pick(100)) / 8);
                    const Both r = score_both(index, m, prompt, cands, {}, load, 1 + 2 * pick(2));
                    expect_same(r.cached, r.uncached, "seed " + std::to_string(seed) + " step " + std::to_string(step));
                    if (HasFailure()) return;
                }
            }
        }
        index.check_invariants();
        const IndexCounters c = index.counters();
        // The run exercised both sides: records reused, and records found stale.
        EXPECT_GT(c.score_cache_hits, 100u) << seed;
        EXPECT_GT(c.score_cache_invalidations, 20u) << seed;
        std::printf("seed %u: %llu hits, %llu misses, %llu invalidations\n", seed,
                    (unsigned long long)c.score_cache_hits, (unsigned long long)c.score_cache_misses,
                    (unsigned long long)c.score_cache_invalidations);
        if (seed == 3) {
            EXPECT_GT(c.evictions, 0u);
        }
    }
}

// Scoring concurrent with ingest (run under the tsan preset too). The writer grows pod a's run over
// each prompt block by block, then shrinks it, publishing after each batch how many blocks a holds: a
// linearizable answer lies between what was published before the call and what was published after
// it (give or take the batch in flight). A stale record would answer an older run.
TEST(IndexScoreCache, ConcurrentIngestNeverServesAStaleResult) {
    IndexConfig config = cached_config(64, 30000, 2);
    config.clock = nullptr;
    config.shards = 8;
    Index index(config);
    const ModelId m = index.intern_model("m");
    const PodId a = index.intern_pod("a"), b = index.intern_pod("b");
    constexpr size_t kPrompts = 6, kBlocks = 40;
    std::vector<std::vector<int32_t>> prompts;
    for (uint32_t i = 0; i < kPrompts; ++i) prompts.push_back(tokens_from(40 + i, 16 * kBlocks));
    std::array<std::atomic<uint32_t>, kPrompts> held{};
    std::atomic<bool> shrinking{false}, done{false};
    std::atomic<uint64_t> wrong{0}, calls{0};
    const auto scorer = [&](uint32_t seed) {
        std::mt19937 rng(seed);
        for (int i = 0; i < 200000 && !done.load(); ++i) {
            const size_t p = rng() % kPrompts;
            const bool shrink_before = shrinking.load();
            const uint32_t before = held[p].load();
            const std::vector<PodId> cands{rng() % 2 ? a : b, a};
            const uint32_t run = score_cached(index, m, prompts[p], cands)[1].blocks;
            const uint32_t after = held[p].load();
            if (shrinking.load() != shrink_before) continue;  // the phase changed: no claim
            const bool ok = shrink_before ? run <= before && run + 1 >= after : run >= before && run <= after + 1;
            if (!ok) wrong.fetch_add(1);
            calls.fetch_add(1);
        }
    };
    std::thread s1(scorer, 1), s2(scorer, 2);
    // The scorers have run before the writers start, however busy the machine is (bounded wait).
    for (int spin = 0; spin < 10'000'000 && calls.load() < 200; ++spin) std::this_thread::yield();
    for (size_t k = 0; k < kBlocks; ++k) {
        for (size_t p = 0; p < kPrompts; ++p) {
            index.apply(a, m, batch_of({stored(index, prompts[p], k, 1)}));
            held[p].store(static_cast<uint32_t>(k + 1));
            if (k % 8 == 0) index.apply(b, m, batch_of({stored(index, prompts[p], 0, 1 + k)}));  // noise on b
        }
    }
    shrinking = true;
    for (size_t k = kBlocks; k-- > 0;) {
        for (size_t p = 0; p < kPrompts; ++p) {
            index.apply(a, m, batch_of({removed(index, prompts[p], k, 1)}));
            held[p].store(static_cast<uint32_t>(k));
        }
    }
    done = true;
    s1.join();
    s2.join();
    EXPECT_EQ(wrong.load(), 0u) << "of " << calls.load();
    EXPECT_GT(index.counters().score_cache_hits, 0u);
    for (const auto& p : prompts) {
        const Both r = score_both(index, m, p, {a, b});
        expect_same(r.cached, r.uncached, "after the writers");
    }
}

}  // namespace
}  // namespace kvcore::index
