// SPDX-License-Identifier: Apache-2.0
// The session store (src/store): every option's effect, leases under pressure, bounds, multi-turn reuse,
// prefix sharing, threads. The defects table of docs/design/store_ttl.md section 5 maps to tests here.
#include "store/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <numeric>
#include <thread>

#include "common/error.h"

namespace {

using kvcore::Error;
using kvcore::store::Lease;
using kvcore::store::Shape;
using kvcore::store::Store;
using kvcore::store::StoreConfig;

// 2 layers x 2 KV heads x 4 dims of f32: rows of 32 bytes; blocks of 16 tokens take 2 * 2 * 16 * 32 = 2048 bytes.
const Shape kShape{2, 2, 4, kvcore::pool::DType::kF32};
constexpr uint64_t kBlockBytes = 2048;
constexpr size_t kRowFloats = 8;

StoreConfig small_config() {
    StoreConfig c;
    c.max_sessions = 16;
    c.max_tokens_per_session = 1024;
    c.max_bytes_total = 64 * kBlockBytes;
    return c;
}

// What a model would compute: the K/V of a token depend on the tokens up to it (here: its id and position).
std::vector<float> rows_for(const std::vector<int32_t>& tokens, size_t first, size_t n, uint32_t layer, uint32_t kv) {
    std::vector<float> out(n * kRowFloats);
    for (size_t t = 0; t < n; ++t) {
        for (size_t i = 0; i < kRowFloats; ++i) {
            out[t * kRowFloats + i] = float(tokens[first + t]) * 1000.f + float(first + t) + float(layer) * 0.5f +
                                      float(kv) * 0.25f + float(i) * 0.001f;
        }
    }
    return out;
}

std::vector<int32_t> seq(int32_t start, size_t n) {
    std::vector<int32_t> v(n);
    std::iota(v.begin(), v.end(), start);
    return v;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// One turn as an engine runs it: begin, compute K/V for the tokens not reused, commit.
size_t turn(Store& store, Lease& lease, const std::vector<int32_t>& tokens) {
    const size_t reused = store.begin_turn(*lease.session, tokens);
    const size_t n = tokens.size() - reused;
    for (uint32_t layer = 0; layer < kShape.layers; ++layer) {
        const auto k = rows_for(tokens, reused, n, layer, 0), v = rows_for(tokens, reused, n, layer, 1);
        store.write_kv(*lease.session, layer, reused, n, k.data(), v.data());
    }
    store.commit(*lease.session);
    return reused;
}

// The session's K/V equal what rows_for computes for `tokens` (byte for byte).
void expect_kv(Store& store, Lease& lease, const std::vector<int32_t>& tokens) {
    for (uint32_t layer = 0; layer < kShape.layers; ++layer) {
        std::vector<float> k(tokens.size() * kRowFloats), v(tokens.size() * kRowFloats);
        store.read_kv(*lease.session, layer, 0, tokens.size(), k.data(), v.data());
        const auto ek = rows_for(tokens, 0, tokens.size(), layer, 0), ev = rows_for(tokens, 0, tokens.size(), layer, 1);
        ASSERT_EQ(0, std::memcmp(k.data(), ek.data(), k.size() * sizeof(float))) << "layer " << layer << " K";
        ASSERT_EQ(0, std::memcmp(v.data(), ev.data(), v.size() * sizeof(float))) << "layer " << layer << " V";
    }
}

struct Released {
    void operator()(Lease* l) const {
        l->store->release(l->session);
        delete l;
    }
};
using Held = std::unique_ptr<Lease, Released>;

Held get(Store& store, const std::string& id, uint32_t max_tokens = 0, bool* created = nullptr) {
    return Held(new Lease(store.get_or_create(id, kShape, max_tokens, created)));
}

kvc_status status_of(auto&& call) {
    try {
        call();
        return KVC_OK;
    } catch (const Error& e) {
        return e.status();
    }
}

std::string message_of(auto&& call) {
    try {
        call();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// ---- every option has an effect ---------------------------------------------------------------------

TEST(StoreOptions, EnabledOnFindsTheSessionAgain) {
    auto store = Store::create(small_config());
    bool created = false;
    get(*store, "a", 0, &created);
    EXPECT_TRUE(created);
    get(*store, "a", 0, &created);
    EXPECT_FALSE(created);
    const auto snap = store->snapshot();
    EXPECT_EQ(snap.hits, 1u);
    EXPECT_EQ(snap.misses, 1u);
    EXPECT_EQ(store->num_sessions(), 1u);
}

TEST(StoreOptions, EnabledOffMakesEveryGetAMissAndKeepsNothing) {
    auto c = small_config();
    c.enabled = false;
    auto store = Store::create(c);
    bool created = false;
    {
        auto a = get(*store, "a", 0, &created);
        EXPECT_TRUE(created);
        turn(*store, *a, seq(1, 20));
        EXPECT_EQ(store->bytes_in_use(), 2 * kBlockBytes);
        EXPECT_EQ(store->num_sessions(), 0u);  // private to its lease
    }
    get(*store, "a", 0, &created);
    EXPECT_TRUE(created);
    EXPECT_EQ(status_of([&] { store->try_get("a"); }), KVC_ERR_NOT_FOUND);
    EXPECT_EQ(store->bytes_in_use(), 0u);
    const auto snap = store->snapshot();
    EXPECT_EQ(snap.hits, 0u);
    EXPECT_EQ(snap.misses, 3u);
    store->check_invariants();
}

TEST(StoreOptions, MaxSessionsEvictsTheLeastRecentlyUsedIdleSession) {
    auto c = small_config();
    c.max_sessions = 2;
    auto store = Store::create(c);
    get(*store, "a");
    get(*store, "b");
    get(*store, "c");
    EXPECT_EQ(store->num_sessions(), 2u);
    EXPECT_EQ(status_of([&] { store->try_get("a"); }), KVC_ERR_NOT_FOUND);
    EXPECT_EQ(status_of([&] { Held(new Lease(store->try_get("b"))); }), KVC_OK);
    EXPECT_EQ(store->snapshot().evictions, 1u);
    store->check_invariants();
}

TEST(StoreOptions, MaxTokensPerSessionBoundsEverySession) {
    auto c = small_config();
    c.max_tokens_per_session = 32;
    auto store = Store::create(c);
    EXPECT_EQ(status_of([&] { get(*store, "big", 33); }), KVC_ERR_CAPACITY);
    auto a = get(*store, "a");
    EXPECT_EQ(store->max_tokens(*a->session), 32u);
    turn(*store, *a, seq(1, 32));
    EXPECT_EQ(status_of([&] { store->append(*a->session, seq(100, 1)); }), KVC_ERR_CAPACITY);
    EXPECT_EQ(status_of([&] { store->begin_turn(*a->session, seq(1, 33)); }), KVC_ERR_CAPACITY);
    EXPECT_EQ(a->session->tokens.size(), 32u);
    auto b = get(*store, "b", 8);  // get_or_create's max_tokens lowers it for that session
    EXPECT_EQ(status_of([&] { store->begin_turn(*b->session, seq(1, 9)); }), KVC_ERR_CAPACITY);
    // A hit sets it anew, but never below what the session holds.
    EXPECT_EQ(status_of([&] { get(*store, "a", 16); }), KVC_ERR_INVALID_STATE);
    get(*store, "b", 24);
    EXPECT_EQ(store->max_tokens(*b->session), 24u);
    store->check_invariants();
}

TEST(StoreOptions, MaxBytesTotalEvictsIdleSessionsToMakeRoom) {
    auto c = small_config();
    c.max_bytes_total = 4 * kBlockBytes;
    auto store = Store::create(c);
    {
        auto a = get(*store, "a");
        turn(*store, *a, seq(1, 48));  // 3 blocks
    }
    auto b = get(*store, "b");
    turn(*store, *b, seq(1000, 32));  // 2 blocks: "a" must go
    EXPECT_EQ(store->bytes_in_use(), 2 * kBlockBytes);
    EXPECT_EQ(store->num_sessions(), 1u);
    EXPECT_EQ(store->snapshot().evictions, 1u);
    EXPECT_EQ(store->snapshot().memory_pressure_events, 0u);
    store->check_invariants();
}

TEST(StoreOptions, MaxBytesPerSessionBoundsOneSession) {
    auto c = small_config();
    c.max_bytes_per_session = 2 * kBlockBytes;
    auto store = Store::create(c);
    auto a = get(*store, "a");
    const std::string message = message_of([&] { store->begin_turn(*a->session, seq(1, 33)); });
    EXPECT_NE(message.find("max bytes per session"), std::string::npos) << message;
    EXPECT_EQ(turn(*store, *a, seq(1, 32)), 0u);
    EXPECT_EQ(store->bytes_in_use(), 2 * kBlockBytes);
    auto tiny = c;
    tiny.max_bytes_per_session = kBlockBytes - 1;  // not even one block of this shape
    auto store2 = Store::create(tiny);
    EXPECT_EQ(status_of([&] { get(*store2, "a"); }), KVC_ERR_CAPACITY);
}

TEST(StoreOptions, PolicyLruEvictsByRecencyOfUse) {
    auto c = small_config();
    c.max_sessions = 3;
    auto store = Store::create(c);
    get(*store, "a");
    get(*store, "b");
    get(*store, "c");
    Held(new Lease(store->try_get("a")));  // "a" is now the most recent: "b" goes first
    get(*store, "d");
    EXPECT_EQ(status_of([&] { store->try_get("b"); }), KVC_ERR_NOT_FOUND);
    EXPECT_EQ(status_of([&] { Held(new Lease(store->try_get("a"))); }), KVC_OK);
}

// The policy decides which idle session goes: a session found again (a hit) is kept by the scan-resistant
// policies, which evict the one-use session instead, where LRU evicts the least recent.
TEST(StoreOptions, PolicyPicksTheVictim) {
    const std::pair<kvcore::eviction::Kind, const char*> cases[] = {
        {kvcore::eviction::Kind::kLru, "a"}, {kvcore::eviction::Kind::kS3Fifo, "b"}, {kvcore::eviction::Kind::kArc, "b"}};
    for (const auto& [kind, victim] : cases) {
        auto c = small_config();
        c.max_sessions = 2;
        c.policy = kind;
        auto store = Store::create(c);
        get(*store, "a");
        get(*store, "a");  // found again
        get(*store, "b");
        get(*store, "c");  // full: one of a and b goes
        EXPECT_EQ(status_of([&] { store->try_get(victim); }), KVC_ERR_NOT_FOUND) << kvcore::eviction::kind_name(kind);
        EXPECT_EQ(store->num_sessions(), 2u);
    }
}

TEST(StoreOptions, PersistAcrossRequestsOffRemovesAReleasedSession) {
    auto c = small_config();
    c.persist_across_requests = false;
    auto store = Store::create(c);
    {
        auto a = get(*store, "a");
        turn(*store, *a, seq(1, 20));
        bool created = true;
        get(*store, "a", 0, &created);  // a second lease while the first is held finds it
        EXPECT_FALSE(created);
        EXPECT_EQ(store->num_sessions(), 1u);
    }
    EXPECT_EQ(status_of([&] { store->try_get("a"); }), KVC_ERR_NOT_FOUND);
    EXPECT_EQ(store->num_sessions(), 0u);
    EXPECT_EQ(store->bytes_in_use(), 0u);
    store->check_invariants();
}

TEST(StoreOptions, PrefixSharingOnStoresACommonSystemPromptOnce) {
    auto store = Store::create(small_config());
    const auto system = seq(500, 64);
    auto a = get(*store, "a"), b = get(*store, "b");
    EXPECT_EQ(turn(*store, *a, concat(system, seq(1, 10))), 0u);
    EXPECT_EQ(turn(*store, *b, concat(system, seq(2000, 10))), 64u);  // 4 full blocks found
    EXPECT_EQ(store->bytes_in_use(), 6 * kBlockBytes);  // 4 shared + 1 each: less than 2 x 5
    EXPECT_TRUE(std::equal(a->session->blocks.begin(), a->session->blocks.begin() + 4, b->session->blocks.begin()));
    expect_kv(*store, *b, concat(system, seq(2000, 10)));
    store->check_invariants();
}

TEST(StoreOptions, PrefixSharingOffIsolatesSessions) {
    auto c = small_config();
    c.prefix_sharing = false;
    auto store = Store::create(c);
    const auto system = seq(500, 64);
    auto a = get(*store, "a"), b = get(*store, "b");
    turn(*store, *a, concat(system, seq(1, 10)));
    EXPECT_EQ(turn(*store, *b, concat(system, seq(2000, 10))), 0u);
    EXPECT_EQ(store->bytes_in_use(), 10 * kBlockBytes);
    for (int32_t block : a->session->blocks) {
        EXPECT_EQ(std::count(b->session->blocks.begin(), b->session->blocks.end(), block), 0);
    }
}

TEST(StoreOptions, BlockSizeSetsTheUnitOfMemory) {
    auto c = small_config();
    c.block_size = 8;
    auto store = Store::create(c);
    auto a = get(*store, "a");
    turn(*store, *a, seq(1, 10));
    EXPECT_EQ(a->session->blocks.size(), 2u);
    EXPECT_EQ(store->bytes_in_use(), 2 * kBlockBytes / 2);
    expect_kv(*store, *a, seq(1, 10));
}

TEST(StoreOptions, DeviceMemoryIsRefusedWhereNoDeviceIsUsableAndKvCopiesAreHostOnly) {
    auto c = small_config();
    c.memory = kvcore::pool::Memory::kDevice;
    auto store = Store::create(c);
    std::unique_ptr<Lease> lease;
    const kvc_status status = status_of([&] { lease = std::make_unique<Lease>(store->get_or_create("a", kShape, 0, nullptr)); });
    if (status == KVC_OK) {  // a machine with a CUDA device: the pool is on it, copies go through the storage
        store->begin_turn(*lease->session, seq(1, 4));
        float rows[4 * kRowFloats] = {};
        EXPECT_EQ(status_of([&] { store->write_kv(*lease->session, 0, 0, 4, rows, rows); }), KVC_ERR_UNSUPPORTED);
        store->release(lease->session);
    } else {
        EXPECT_EQ(status, KVC_ERR_UNSUPPORTED);
        EXPECT_EQ(store->num_sessions(), 0u);
    }
    auto meta = small_config();
    meta.memory = kvcore::pool::Memory::kMetadataOnly;
    EXPECT_EQ(status_of([&] { Store::create(meta); }), KVC_ERR_INVALID_ARGUMENT);
}

TEST(StoreOptions, ComponentNamesTheStats) {
    auto c = small_config();
    EXPECT_EQ(Store::create(c)->snapshot().component, "store");
    c.component = "chat_sessions";
    EXPECT_EQ(Store::create(c)->snapshot().component, "chat_sessions");
    c.component = "bad name";
    EXPECT_EQ(status_of([&] { Store::create(c); }), KVC_ERR_INVALID_ARGUMENT);
}

// ---- leases ---------------------------------------------------------------------------------------

TEST(StoreLeases, AHeldSessionSurvivesPressureWithItsKvIntact) {
    auto c = small_config();
    c.max_bytes_total = 8 * kBlockBytes;
    auto store = Store::create(c);
    const auto conversation = seq(1, 48);
    auto a = get(*store, "a");
    turn(*store, *a, conversation);  // 3 blocks, held throughout
    for (int i = 0; i < 10; ++i) {   // each needs 3 of the 5 blocks left: idle ones are evicted, "a" never
        auto other = get(*store, "other" + std::to_string(i));
        turn(*store, *other, seq(10000 * (i + 1), 48));
    }
    EXPECT_GE(store->snapshot().evictions, 9u);
    EXPECT_LE(store->bytes_in_use(), 8 * kBlockBytes);
    expect_kv(*store, *a, conversation);
    // Held again through a hit after being idle: the same protection.
    a.reset();
    auto again = get(*store, "a");
    for (int i = 10; i < 20; ++i) {
        auto other = get(*store, "other" + std::to_string(i));
        turn(*store, *other, seq(10000 * (i + 1), 48));
    }
    expect_kv(*store, *again, conversation);
    bool created = true;
    get(*store, "a", 0, &created);
    EXPECT_FALSE(created);
    store->check_invariants();
}

TEST(StoreLeases, EveryCandidateHeldRefusesWithOnePressureEventAndChangesNothing) {
    auto c = small_config();
    c.max_bytes_total = 6 * kBlockBytes;
    c.max_sessions = 3;
    auto store = Store::create(c);
    auto a = get(*store, "a"), b = get(*store, "b");
    turn(*store, *a, seq(1, 48));
    turn(*store, *b, seq(100, 32));
    auto x = get(*store, "x");
    const auto before = store->snapshot();
    const auto blocks_before = x->session->blocks;
    const std::string message = message_of([&] { store->begin_turn(*x->session, seq(1000, 32)); });
    EXPECT_NE(message.find("held"), std::string::npos) << message;
    const auto after = store->snapshot();
    EXPECT_EQ(after.memory_pressure_events, before.memory_pressure_events + 1);
    EXPECT_EQ(after.evictions, before.evictions);
    EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
    EXPECT_EQ(store->num_sessions(), 3u);
    EXPECT_EQ(x->session->tokens.size(), 0u);
    EXPECT_EQ(x->session->blocks, blocks_before);
    expect_kv(*store, *a, seq(1, 48));
    // A session that holds tokens and would grow past the room left: its tokens and K/V stay as they were.
    EXPECT_EQ(status_of([&] { store->begin_turn(*a->session, seq(1, 80)); }), KVC_ERR_CAPACITY);
    EXPECT_EQ(a->session->tokens.size(), 48u);
    EXPECT_EQ(a->session->committed, 48u);
    expect_kv(*store, *a, seq(1, 48));
    // The session bound too: a fourth session while all three are held.
    EXPECT_EQ(status_of([&] { get(*store, "d"); }), KVC_ERR_CAPACITY);
    EXPECT_EQ(store->snapshot().memory_pressure_events, before.memory_pressure_events + 3);
    EXPECT_EQ(store->num_sessions(), 3u);
    store->check_invariants();
}

TEST(StoreLeases, RemoveAndClearDetachAHeldSessionUntilItsRelease) {
    auto store = Store::create(small_config());
    auto a = get(*store, "a");
    turn(*store, *a, seq(1, 20));
    store->remove("a");
    EXPECT_EQ(store->num_sessions(), 0u);
    EXPECT_EQ(status_of([&] { store->remove("a"); }), KVC_ERR_NOT_FOUND);
    bool created = false;
    get(*store, "a", 0, &created);  // the id is free at once
    EXPECT_TRUE(created);
    turn(*store, *a, concat(seq(1, 20), seq(50, 5)));  // the detached session still works for its holder
    expect_kv(*store, *a, concat(seq(1, 20), seq(50, 5)));
    auto b = get(*store, "b");
    turn(*store, *b, seq(300, 16));
    store->clear();
    EXPECT_EQ(store->num_sessions(), 0u);
    EXPECT_EQ(store->bytes_in_use(), 3 * kBlockBytes);  // a's 2 + b's 1, held
    a.reset();
    b.reset();
    EXPECT_EQ(store->bytes_in_use(), 0u);
    store->check_invariants();
}

TEST(StoreLeases, ClosingTheStoreWhileSessionsAreHeldIsSafe) {
    auto store = Store::create(small_config());
    auto a = get(*store, "a");
    turn(*store, *a, seq(1, 20));
    std::weak_ptr<Store> weak = store;
    store->close();
    store.reset();
    ASSERT_FALSE(weak.expired());  // the lease keeps the core alive
    turn(*a->store, *a, concat(seq(1, 20), seq(7, 3)));
    expect_kv(*a->store, *a, concat(seq(1, 20), seq(7, 3)));
    a.reset();
    EXPECT_TRUE(weak.expired());
}

// ---- memory and bounds ------------------------------------------------------------------------------

TEST(StoreMemory, CountsBlocksUsedNotReservedCapacity) {
    auto c = small_config();
    c.max_tokens_per_session = 4096;
    auto store = Store::create(c);
    auto a = get(*store, "a", 2048);
    turn(*store, *a, seq(1, 10));
    EXPECT_EQ(store->bytes_in_use(), kBlockBytes);
    EXPECT_EQ(store->snapshot().bytes_in_use, kBlockBytes);
}

TEST(StoreMemory, OverBoundRequestFailsAtOnceAndChangesNothing) {
    auto c = small_config();
    c.max_bytes_total = 4 * kBlockBytes;
    auto store = Store::create(c);
    {
        auto idle = get(*store, "idle");
        turn(*store, *idle, seq(1, 30));
    }
    auto a = get(*store, "a");
    const auto before = store->snapshot();
    const std::string message = message_of([&] { store->begin_turn(*a->session, seq(1, 5 * 16)); });
    EXPECT_NE(message.find("max bytes total"), std::string::npos) << message;
    const auto after = store->snapshot();
    EXPECT_EQ(after.hits, before.hits);
    EXPECT_EQ(after.misses, before.misses);
    EXPECT_EQ(after.evictions, before.evictions);
    EXPECT_EQ(after.memory_pressure_events, before.memory_pressure_events);
    EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
    EXPECT_EQ(after.peak_bytes, before.peak_bytes);
    EXPECT_EQ(store->num_sessions(), 2u);  // "idle" was not evicted for a request that fails anyway
    store->check_invariants();
}

TEST(StoreMemory, AStoreServesAtMostEightModelShapes) {
    auto store = Store::create(small_config());
    for (uint32_t dim = 1; dim <= kvcore::store::kMaxShapes; ++dim) {
        Lease l = store->get_or_create("s" + std::to_string(dim), Shape{1, 1, dim, kvcore::pool::DType::kF16}, 0, nullptr);
        store->release(l.session);
    }
    const std::string message = message_of([&] {
        store->get_or_create("s9", Shape{1, 1, 9, kvcore::pool::DType::kF16}, 0, nullptr);
    });
    EXPECT_NE(message.find("8 model shapes"), std::string::npos) << message;
    EXPECT_EQ(store->num_sessions(), kvcore::store::kMaxShapes);
    EXPECT_EQ(status_of([&] { store->get_or_create("s1", Shape{1, 1, 2, kvcore::pool::DType::kF16}, 0, nullptr); }),
              KVC_ERR_INVALID_STATE);  // an id is one shape
}

TEST(StoreMemory, PeakBytesFollowTheMostInUse) {
    auto store = Store::create(small_config());
    {
        auto a = get(*store, "a");
        turn(*store, *a, seq(1, 64));
    }
    store->remove("a");
    EXPECT_EQ(store->bytes_in_use(), 0u);
    EXPECT_EQ(store->peak_bytes(), 4 * kBlockBytes);
    EXPECT_EQ(store->snapshot().peak_bytes, 4 * kBlockBytes);
}

// ---- turns ------------------------------------------------------------------------------------------

TEST(StoreTurns, ReusedTokensCountExactlyTheCommonPrefix) {
    auto store = Store::create(small_config());
    auto a = get(*store, "a");
    const auto first = seq(1, 100);
    EXPECT_EQ(turn(*store, *a, first), 0u);
    auto next = concat(seq(1, 60), seq(5000, 30));  // shares 60 tokens, then differs
    EXPECT_EQ(store->begin_turn(*a->session, next), 60u);
    EXPECT_EQ(a->session->committed, 60u);
    EXPECT_EQ(a->session->tokens.size(), 90u);
    EXPECT_EQ(store->snapshot().tokens_reused, 60u);
    for (uint32_t layer = 0; layer < kShape.layers; ++layer) {
        const auto k = rows_for(next, 60, 30, layer, 0), v = rows_for(next, 60, 30, layer, 1);
        store->write_kv(*a->session, layer, 60, 30, k.data(), v.data());
    }
    store->commit(*a->session);
    expect_kv(*store, *a, next);
    EXPECT_EQ(store->bytes_in_use(), 6 * kBlockBytes);  // 90 tokens; the first turn's tail was given back
    store->check_invariants();
}

TEST(StoreTurns, AppendedTokensAreReusedOnceCommitted) {
    auto store = Store::create(small_config());
    auto a = get(*store, "a");
    auto tokens = seq(1, 20);
    turn(*store, *a, tokens);
    for (int32_t t = 900; t < 905; ++t) {  // decode
        store->append(*a->session, std::vector<int32_t>{t});
        tokens.push_back(t);
        for (uint32_t layer = 0; layer < kShape.layers; ++layer) {
            const auto k = rows_for(tokens, tokens.size() - 1, 1, layer, 0), v = rows_for(tokens, tokens.size() - 1, 1, layer, 1);
            store->write_kv(*a->session, layer, tokens.size() - 1, 1, k.data(), v.data());
        }
        store->commit(*a->session);
    }
    EXPECT_EQ(store->begin_turn(*a->session, concat(tokens, seq(7, 3))), 25u);
    EXPECT_EQ(status_of([&] { store->append(*a->session, std::vector<int32_t>{-1}); }), KVC_ERR_INVALID_ARGUMENT);
    auto b = get(*store, "b");
    EXPECT_EQ(status_of([&] { store->append(*b->session, std::vector<int32_t>{1}); }), KVC_ERR_INVALID_STATE);
}

TEST(StoreTurns, AnEmptyTurnGivesEverythingBack) {
    auto store = Store::create(small_config());
    auto a = get(*store, "a");
    turn(*store, *a, seq(1, 40));
    EXPECT_EQ(store->begin_turn(*a->session, {}), 0u);
    EXPECT_EQ(store->bytes_in_use(), 0u);
    EXPECT_TRUE(a->session->blocks.empty());
    EXPECT_EQ(status_of([&] { store->append(*a->session, seq(1, 1)); }), KVC_ERR_INVALID_STATE);
    store->check_invariants();
}

TEST(StoreTurns, UncommittedTokensAreNotReused) {
    auto store = Store::create(small_config());
    auto a = get(*store, "a");
    turn(*store, *a, seq(1, 20));
    store->append(*a->session, seq(100, 4));  // K/V never written
    EXPECT_EQ(store->begin_turn(*a->session, concat(seq(1, 20), seq(100, 4))), 20u);
}

TEST(StoreTurns, CommittedKvAreNotRewritten) {
    auto store = Store::create(small_config());
    auto a = get(*store, "a");
    turn(*store, *a, seq(1, 20));
    std::vector<float> rows(kRowFloats);
    EXPECT_EQ(status_of([&] { store->write_kv(*a->session, 0, 19, 1, rows.data(), rows.data()); }), KVC_ERR_OUT_OF_RANGE);
    EXPECT_EQ(status_of([&] { store->read_kv(*a->session, 2, 0, 1, rows.data(), rows.data()); }), KVC_ERR_OUT_OF_RANGE);
    EXPECT_EQ(status_of([&] { store->read_kv(*a->session, 0, 20, 1, rows.data(), rows.data()); }), KVC_ERR_OUT_OF_RANGE);
}

TEST(StoreTurns, ACutInsideASharedBlockCopiesItAndLeavesTheOtherSessionIntact) {
    auto store = Store::create(small_config());
    const auto system = seq(500, 64);
    auto a = get(*store, "a"), b = get(*store, "b");
    turn(*store, *a, concat(system, seq(1, 4)));
    EXPECT_EQ(turn(*store, *b, concat(system, seq(2, 4))), 64u);
    const int32_t shared = b->session->blocks[2];
    EXPECT_EQ(shared, a->session->blocks[2]);
    // b's next turn keeps 40 tokens: block 2 is cut inside and a still uses it, so b writes into a copy.
    const auto next = concat(seq(500, 40), seq(7000, 10));
    EXPECT_EQ(turn(*store, *b, next), 40u);
    EXPECT_NE(b->session->blocks[2], shared);
    expect_kv(*store, *b, next);
    expect_kv(*store, *a, concat(system, seq(1, 4)));
    store->check_invariants();
}

TEST(StoreTurns, AnEvictedSessionsCommittedBlocksServeItsNextTurn) {
    auto c = small_config();
    c.max_sessions = 1;
    auto store = Store::create(c);
    const auto conversation = seq(1, 40);
    {
        auto a = get(*store, "a");
        turn(*store, *a, conversation);
    }
    get(*store, "b");  // evicts "a"; its blocks stay cached while free
    auto a = get(*store, "a");
    EXPECT_EQ(turn(*store, *a, concat(conversation, seq(90, 2))), 32u);
    expect_kv(*store, *a, concat(conversation, seq(90, 2)));
}

// ---- threads ----------------------------------------------------------------------------------------

TEST(StoreThreads, ALeaseIsReleasedOnAnotherThread) {
    auto store = Store::create(small_config());
    auto* lease = new Lease(store->get_or_create("a", kShape, 0, nullptr));
    turn(*store, *lease, seq(1, 20));
    store->close();  // as kvc_store_destroy: the lease still holds the core
    std::thread finalizer([lease] { Held released(lease); });  // a GC finalizer thread
    finalizer.join();
    EXPECT_EQ(store->bytes_in_use(), 0u);
    EXPECT_EQ(store->held_sessions(), 0u);
    store->check_invariants();
}

TEST(StoreThreads, ManyThreadsGetAndReleaseOnOneStore) {
    auto c = small_config();
    c.max_sessions = 8;
    c.max_bytes_total = 24 * kBlockBytes;
    auto store = Store::create(c);
    constexpr int kThreads = 4, kIterations = 400;
    std::atomic<uint64_t> refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kIterations; ++i) {
                // Sessions shared by all threads are only looked up; a thread's own ones also run turns
                // (a session is used by one thread at a time). 4 shared + 4 x 3 own > 8: evictions happen.
                const bool own = i % 2 == 0;
                const std::string id = own ? "t" + std::to_string(t) + "-" + std::to_string(i % 3)
                                           : "shared" + std::to_string(i % 4);
                try {
                    auto lease = get(*store, id);
                    if (own) {  // a system prompt all threads share (2 blocks), then the thread's own tokens
                        const auto tokens = concat(seq(1, 32), seq(int32_t(1000 + t * 100 + i % 3), 1 + size_t(i % 20)));
                        turn(*store, *lease, tokens);
                        expect_kv(*store, *lease, tokens);
                    }
                } catch (const Error& e) {
                    // Every evictable session held by other threads: the store says so and moves on.
                    ASSERT_EQ(e.status(), KVC_ERR_CAPACITY) << e.what();
                    refused.fetch_add(1);
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    const auto snap = store->snapshot();
    EXPECT_EQ(snap.hits + snap.misses, uint64_t{kThreads} * kIterations);  // one lookup per get
    EXPECT_LE(snap.insertions, snap.misses);
    EXPECT_GT(snap.evictions, 0u);
    EXPECT_EQ(snap.memory_pressure_events, refused.load());
    EXPECT_EQ(store->held_sessions(), 0u);
    EXPECT_LE(store->num_sessions(), 8u);
    store->check_invariants();
}

// Found by the store_ops fuzzer: a turn that shares nothing with the session replaces its sequence. The
// pool holds exactly the byte bound, so the old blocks must go back before the new ones are taken; the
// turn fits (alone, or by evicting an idle session) and must not be refused.
TEST(StoreTurns, ATurnThatSharesNothingReplacesTheSessionWithinTheBound) {
    auto c = small_config();
    c.max_bytes_total = 2 * kBlockBytes;
    auto store = Store::create(c);
    auto a = get(*store, "a");
    turn(*store, *a, seq(1, 32));  // both blocks
    EXPECT_EQ(turn(*store, *a, seq(500, 32)), 0u);  // shares nothing: the same two blocks' worth again
    expect_kv(*store, *a, seq(500, 32));
    EXPECT_EQ(store->bytes_in_use(), 2 * kBlockBytes);

    // An idle session makes way for a replacing turn: "a" idle on one block, "b" replaces its one block
    // with two.
    EXPECT_EQ(turn(*store, *a, seq(1, 16)), 0u);
    a.reset();
    auto b = get(*store, "b");
    turn(*store, *b, seq(900, 16));
    EXPECT_EQ(turn(*store, *b, seq(700, 20)), 0u);
    expect_kv(*store, *b, seq(700, 20));
    EXPECT_EQ(status_of([&] { store->try_get("a"); }), KVC_ERR_NOT_FOUND);
    EXPECT_EQ(store->snapshot().evictions, 1u);
    EXPECT_EQ(store->snapshot().memory_pressure_events, 0u);
}

}  // namespace
