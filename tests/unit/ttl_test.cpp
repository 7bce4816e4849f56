// SPDX-License-Identifier: Apache-2.0
// The TTL cache through its C API, on a fake clock (one test on the real one): the WVA defects it must
// not repeat (docs/design/store_ttl.md section 5), single flight, the bound, statistics.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "ttl_test_util.h"

namespace kvcore::ttl::testing {
namespace {

TEST(Ttl, ValidEntryLivesItsTtlExactly) {
    FakeClock clock;
    auto c = make_cache(&clock, {.ttl_ms = 1000});
    ASSERT_EQ(set(c.get(), "prod", "llama", "metrics"), KVC_OK);
    clock.advance_ms(999);
    const Got hit = get(c.get(), "prod", "llama");
    EXPECT_EQ(hit.status, KVC_OK);
    EXPECT_EQ(hit.value, "metrics");
    EXPECT_EQ(hit.valid, 1u);
    clock.advance_ms(1);
    const Got gone = get(c.get(), "prod", "llama");
    EXPECT_EQ(gone.status, KVC_ERR_NOT_FOUND);
    EXPECT_EQ(gone.valid, 0u);
    const Counts n = counts(c.get());
    EXPECT_EQ(n.hits, 1u);
    EXPECT_EQ(n.misses, 1u);
    EXPECT_EQ(n.expirations, 1u);  // removed by the lookup that found it expired
    EXPECT_EQ(n.bytes, 0u);
    uint64_t removed = 99;
    EXPECT_EQ(kvc_ttl_cleanup(c.get(), &removed), KVC_OK);
    EXPECT_EQ(removed, 0u);
}

TEST(Ttl, SetRestartsTheTimeToLive) {
    FakeClock clock;
    auto c = make_cache(&clock, {.ttl_ms = 1000});
    ASSERT_EQ(set(c.get(), "ns", "k", "v1"), KVC_OK);
    clock.advance_ms(800);
    ASSERT_EQ(set(c.get(), "ns", "k", "v2"), KVC_OK);
    clock.advance_ms(800);
    EXPECT_EQ(get(c.get(), "ns", "k").value, "v2");
    EXPECT_EQ(counts(c.get()).insertions, 1u);  // a replacement is not a new key
}

// WVA keys its map by "modelID:namespace": ("a:b", "c") and ("a", "b:c") were one entry.
TEST(Ttl, KeysWithSeparatorsNeverCollide) {
    FakeClock clock;
    auto c = make_cache(&clock, {});
    ASSERT_EQ(set(c.get(), "a:b", "c", "first"), KVC_OK);
    ASSERT_EQ(set(c.get(), "a", "b:c", "second"), KVC_OK);
    ASSERT_EQ(set(c.get(), "ab", "", "third"), KVC_OK);
    ASSERT_EQ(set(c.get(), "", "ab", "fourth"), KVC_OK);
    ASSERT_EQ(set(c.get(), "a", "b", "fifth"), KVC_OK);
    EXPECT_EQ(get(c.get(), "a:b", "c").value, "first");
    EXPECT_EQ(get(c.get(), "a", "b:c").value, "second");
    EXPECT_EQ(get(c.get(), "ab", "").value, "third");
    EXPECT_EQ(get(c.get(), "", "ab").value, "fourth");
    EXPECT_EQ(get(c.get(), "a", "b").value, "fifth");
    EXPECT_EQ(kvc_ttl_size(c.get()), 5u);
    EXPECT_EQ(kvc_ttl_invalidate(c.get(), "a:b", "c"), KVC_OK);
    EXPECT_EQ(get(c.get(), "a", "b:c").value, "second");
    EXPECT_EQ(kvc_ttl_invalidate(c.get(), "a:b", "c"), KVC_ERR_NOT_FOUND);
}

// WVA's Size() counts expired entries until Cleanup runs.
TEST(Ttl, SizeCountsLiveEntriesOnly) {
    FakeClock clock;
    auto c = make_cache(&clock, {.ttl_ms = 30000, .negative_ttl_ms = 5000});
    ASSERT_EQ(set(c.get(), "ns", "ok1", "x"), KVC_OK);
    ASSERT_EQ(set(c.get(), "ns", "ok2", "x"), KVC_OK);
    ASSERT_EQ(set(c.get(), "ns", "failed", "timeout", false), KVC_OK);
    EXPECT_EQ(kvc_ttl_size(c.get()), 3u);
    clock.advance_ms(5000);  // the failure's negative TTL is over
    EXPECT_EQ(kvc_ttl_size(c.get()), 2u);
    clock.advance_ms(25000);
    EXPECT_EQ(kvc_ttl_size(c.get()), 0u);
    EXPECT_EQ(counts(c.get()).expirations, 0u);  // nothing removed yet
    uint64_t removed = 0;
    EXPECT_EQ(kvc_ttl_cleanup(c.get(), &removed), KVC_OK);
    EXPECT_EQ(removed, 3u);
    EXPECT_EQ(counts(c.get()).expirations, 3u);
    EXPECT_EQ(counts(c.get()).bytes, 0u);
}

// A failed load: cached for the negative TTL (not the TTL) and served as a failure (WVA re-queried).
kvc_status failing_loader(void* user, const char*, const char*, kvc_ttl_value* out) {
    static_cast<std::atomic<int>*>(user)->fetch_add(1);
    const char why[] = "prometheus unreachable";
    (void)kvc_ttl_value_set(out, reinterpret_cast<const uint8_t*>(why), sizeof why - 1);
    return KVC_ERR_IO;
}

kvc_status counting_loader(void* user, const char* ns, const char* key, kvc_ttl_value* out) {
    const int n = static_cast<std::atomic<int>*>(user)->fetch_add(1) + 1;
    const std::string v = std::string(ns) + "/" + key + "#" + std::to_string(n);
    return kvc_ttl_value_set(out, reinterpret_cast<const uint8_t*>(v.data()), v.size());
}

struct Loaded {
    kvc_status status;
    std::string value;
    uint32_t valid;
};

Loaded get_or_load(kvc_ttl_cache* c, const char* ns, const char* key, kvc_ttl_loader loader, void* user) {
    uint8_t buf[128];
    size_t len = 0;
    uint32_t valid = 7;
    const kvc_status s = kvc_ttl_get_or_load(c, ns, key, loader, user, buf, sizeof buf, &len, &valid);
    return {s, std::string(reinterpret_cast<const char*>(buf), s == KVC_OK ? len : 0), valid};
}

TEST(Ttl, FailedLoadIsRetriedAfterTheNegativeTtlNotTheTtl) {
    FakeClock clock;
    auto c = make_cache(&clock, {.ttl_ms = 30000, .negative_ttl_ms = 5000});
    std::atomic<int> calls{0};
    const Loaded first = get_or_load(c.get(), "prod", "llama", failing_loader, &calls);
    EXPECT_EQ(first.status, KVC_OK);
    EXPECT_EQ(first.valid, 0u);
    EXPECT_EQ(first.value, "prometheus unreachable");
    clock.advance_ms(4999);
    const Loaded cached = get_or_load(c.get(), "prod", "llama", failing_loader, &calls);
    EXPECT_EQ(cached.valid, 0u);
    EXPECT_EQ(cached.value, "prometheus unreachable");
    EXPECT_EQ(calls.load(), 1);
    const Got plain = get(c.get(), "prod", "llama");  // a negative hit, told apart from a miss
    EXPECT_EQ(plain.status, KVC_OK);
    EXPECT_EQ(plain.valid, 0u);
    clock.advance_ms(1);
    EXPECT_EQ(get(c.get(), "prod", "llama").status, KVC_ERR_NOT_FOUND);
    std::atomic<int> good_calls{0};
    const Loaded retried = get_or_load(c.get(), "prod", "llama", counting_loader, &good_calls);
    EXPECT_EQ(retried.valid, 1u);
    EXPECT_EQ(retried.value, "prod/llama#1");
    // The success lives the full TTL: still cached well after the negative TTL.
    clock.advance_ms(29999);
    EXPECT_EQ(get_or_load(c.get(), "prod", "llama", counting_loader, &good_calls).value, "prod/llama#1");
    EXPECT_EQ(good_calls.load(), 1);
    clock.advance_ms(1);
    EXPECT_EQ(get_or_load(c.get(), "prod", "llama", counting_loader, &good_calls).value, "prod/llama#2");
}

TEST(Ttl, FailingBackendIsLoadedOnceWithinTheNegativeTtl) {
    FakeClock clock;
    auto c = make_cache(&clock, {});
    std::atomic<int> calls{0};
    for (int i = 0; i < 50; ++i) {
        const Loaded r = get_or_load(c.get(), "prod", "granite", failing_loader, &calls);
        ASSERT_EQ(r.status, KVC_OK);
        ASSERT_EQ(r.valid, 0u);
        clock.advance_ms(50);  // 50 reconciles within the 5 s negative TTL
    }
    EXPECT_EQ(calls.load(), 1);
    const Counts n = counts(c.get());
    EXPECT_EQ(n.loads, 1u);
    EXPECT_EQ(n.load_failures, 1u);
    EXPECT_EQ(n.negative_hits, 49u);
    EXPECT_EQ(n.misses, 1u);
    EXPECT_EQ(n.hits, 0u);
}

// Concurrent misses of one key: one load, every caller gets its result (WVA's check-then-load ran 100).
struct LatchedLoader {
    std::atomic<int> calls{0};
    kvc_ttl_cache* cache = nullptr;
    int callers = 0;
    bool all_waiting = false;
};

kvc_status latched_loader(void* user, const char*, const char*, kvc_ttl_value* out) {
    auto* l = static_cast<LatchedLoader*>(user);
    l->calls.fetch_add(1);
    // Every caller counts its miss before it waits: hold the load until all of them have.
    l->all_waiting = eventually([&] { return counts(l->cache).misses == static_cast<uint64_t>(l->callers); });
    const char v[] = "load-once";
    return kvc_ttl_value_set(out, reinterpret_cast<const uint8_t*>(v), sizeof v - 1);
}

TEST(Ttl, ConcurrentMissesLoadOnce) {
    FakeClock clock;
    auto c = make_cache(&clock, {});
    constexpr int kThreads = 100;
    LatchedLoader loader;
    loader.cache = c.get();
    loader.callers = kThreads;
    std::latch start(kThreads);
    std::vector<Loaded> results(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            start.arrive_and_wait();
            results[t] = get_or_load(c.get(), "prod", "llama", latched_loader, &loader);
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_TRUE(loader.all_waiting);
    EXPECT_EQ(loader.calls.load(), 1);
    for (const Loaded& r : results) {
        EXPECT_EQ(r.status, KVC_OK);
        EXPECT_EQ(r.valid, 1u);
        EXPECT_EQ(r.value, "load-once");
    }
    const Counts n = counts(c.get());
    EXPECT_EQ(n.loads, 1u);
    EXPECT_EQ(n.misses, 100u);
    EXPECT_EQ(n.load_failures, 0u);
}

TEST(Ttl, TicketDestroyedUnfinishedFailsItsWaiters) {
    FakeClock clock;
    auto c = make_cache(&clock, {});
    kvc_ttl_ticket* ticket = nullptr;
    size_t len = 9;
    uint32_t valid = 9;
    ASSERT_EQ(kvc_ttl_begin_load(c.get(), "ns", "k", nullptr, 0, &len, &valid, &ticket), KVC_OK);
    ASSERT_NE(ticket, nullptr);
    EXPECT_EQ(len, 0u);
    EXPECT_EQ(valid, 0u);
    constexpr int kWaiters = 3;
    std::vector<Got> results(kWaiters);
    std::vector<std::thread> waiters;
    for (int i = 0; i < kWaiters; ++i) {
        waiters.emplace_back([&, i] {
            uint8_t buf[16];
            size_t n = 99;
            uint32_t v = 9;
            kvc_ttl_ticket* mine = nullptr;
            const kvc_status s = kvc_ttl_begin_load(c.get(), "ns", "k", buf, sizeof buf, &n, &v, &mine);
            results[i] = {mine == nullptr ? s : KVC_ERR_INTERNAL, std::string(reinterpret_cast<char*>(buf), n), v};
            kvc_ttl_ticket_destroy(mine);
        });
    }
    ASSERT_TRUE(eventually([&] { return counts(c.get()).misses == 1 + kWaiters; }));
    kvc_ttl_ticket_destroy(ticket);  // the loader gave up (a binding's loader threw)
    for (auto& w : waiters) w.join();
    for (const Got& r : results) {
        EXPECT_EQ(r.status, KVC_OK);
        EXPECT_EQ(r.valid, 0u);
        EXPECT_EQ(r.value, "");
    }
    const Got cached = get(c.get(), "ns", "k");  // cached as a failure
    EXPECT_EQ(cached.status, KVC_OK);
    EXPECT_EQ(cached.valid, 0u);
    EXPECT_EQ(counts(c.get()).load_failures, 1u);
}

TEST(Ttl, TicketFinishesOnceAndMayOutliveItsCache) {
    FakeClock clock;
    auto c = make_cache(&clock, {});
    kvc_ttl_ticket* ticket = nullptr;
    ASSERT_EQ(kvc_ttl_begin_load(c.get(), "ns", "k", nullptr, 0, nullptr, nullptr, &ticket), KVC_OK);
    // This thread waiting for its own load would never return.
    kvc_ttl_ticket* again = nullptr;
    EXPECT_EQ(kvc_ttl_begin_load(c.get(), "ns", "k", nullptr, 0, nullptr, nullptr, &again), KVC_ERR_INVALID_STATE);
    EXPECT_EQ(again, nullptr);
    const uint8_t v[] = {1, 2, 3};
    ASSERT_EQ(kvc_ttl_ticket_finish(ticket, v, 3, 1), KVC_OK);
    EXPECT_EQ(kvc_ttl_ticket_finish(ticket, v, 3, 0), KVC_ERR_INVALID_STATE);
    EXPECT_EQ(get(c.get(), "ns", "k").value, std::string("\1\2\3"));
    kvc_ttl_ticket_destroy(ticket);

    ASSERT_EQ(kvc_ttl_begin_load(c.get(), "ns", "other", nullptr, 0, nullptr, nullptr, &ticket), KVC_OK);
    c.reset();  // a GC finalizer may destroy the cache first
    EXPECT_EQ(kvc_ttl_ticket_finish(ticket, v, 3, 1), KVC_OK);
    kvc_ttl_ticket_destroy(ticket);
}

TEST(Ttl, BufferTooSmallKeepsTheValueAndSaysHowMuch) {
    FakeClock clock;
    auto c = make_cache(&clock, {});
    ASSERT_EQ(set(c.get(), "ns", "k", "0123456789"), KVC_OK);
    size_t len = 0;
    uint32_t valid = 0;
    ASSERT_EQ(kvc_ttl_get(c.get(), "ns", "k", nullptr, 0, &len, &valid), KVC_OK);  // size query
    EXPECT_EQ(len, 10u);
    EXPECT_EQ(valid, 1u);
    uint8_t small[4] = {'z', 'z', 'z', 'z'};
    len = 0;
    EXPECT_EQ(kvc_ttl_get(c.get(), "ns", "k", small, sizeof small, &len, &valid), KVC_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(len, 10u);
    EXPECT_EQ(std::memcmp(small, "zzzz", 4), 0);  // untouched
    EXPECT_EQ(get(c.get(), "ns", "k").value, "0123456789");
    // The loader form: the loaded value is cached even when the caller's buffer is too small for it.
    std::atomic<int> calls{0};
    EXPECT_EQ(kvc_ttl_get_or_load(c.get(), "ns", "new", counting_loader, &calls, small, sizeof small, &len, &valid),
              KVC_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(len, std::string("ns/new#1").size());
    EXPECT_EQ(get(c.get(), "ns", "new").value, "ns/new#1");
    EXPECT_EQ(calls.load(), 1);
}

// WVA's GetAll hands out its internal pointers.
TEST(Ttl, EntriesAreDeepCopies) {
    FakeClock clock;
    auto c = make_cache(&clock, {.ttl_ms = 30000, .negative_ttl_ms = 5000});
    ASSERT_EQ(set(c.get(), "staging", "granite", "g1"), KVC_OK);
    clock.advance_ms(2000);
    ASSERT_EQ(set(c.get(), "prod", "llama", "l1"), KVC_OK);
    ASSERT_EQ(set(c.get(), "prod", "failed", "err", false), KVC_OK);
    kvc_ttl_entries* all = nullptr;
    ASSERT_EQ(kvc_ttl_get_all(c.get(), &all), KVC_OK);
    ASSERT_EQ(set(c.get(), "prod", "llama", "l2-longer"), KVC_OK);
    ASSERT_EQ(kvc_ttl_clear(c.get()), KVC_OK);
    EXPECT_EQ(kvc_ttl_size(c.get()), 0u);
    c.reset();

    ASSERT_EQ(kvc_ttl_entries_count(all), 3u);
    const char* expected[3][3] = {{"prod", "failed", "err"}, {"prod", "llama", "l1"}, {"staging", "granite", "g1"}};
    for (size_t i = 0; i < 3; ++i) {
        char text[32];
        size_t len = 0;
        ASSERT_EQ(kvc_ttl_entries_namespace(all, i, text, sizeof text, &len), KVC_OK);
        EXPECT_STREQ(text, expected[i][0]);
        EXPECT_EQ(len, std::strlen(expected[i][0]));
        ASSERT_EQ(kvc_ttl_entries_key(all, i, text, sizeof text, &len), KVC_OK);
        EXPECT_STREQ(text, expected[i][1]);
        uint8_t value[32];
        uint32_t valid = 9;
        ASSERT_EQ(kvc_ttl_entries_value(all, i, value, sizeof value, &len, &valid), KVC_OK);
        EXPECT_EQ(std::string(reinterpret_cast<char*>(value), len), expected[i][2]);
        EXPECT_EQ(valid, i == 0 ? 0u : 1u);
    }
    uint64_t age = 0, left = 0;
    ASSERT_EQ(kvc_ttl_entries_times(all, 2, &age, &left), KVC_OK);
    EXPECT_EQ(age, 2000u);
    EXPECT_EQ(left, 28000u);
    ASSERT_EQ(kvc_ttl_entries_times(all, 0, &age, &left), KVC_OK);
    EXPECT_EQ(age, 0u);
    EXPECT_EQ(left, 5000u);
    EXPECT_EQ(kvc_ttl_entries_times(all, 3, &age, &left), KVC_ERR_OUT_OF_RANGE);
    kvc_ttl_entries_destroy(all);
}

// WVA grows without bound; here max_entries holds exactly, and evictions start only at the bound.
TEST(Ttl, BoundHoldsExactly) {
    FakeClock clock;
    auto c = make_cache(&clock, {.max_entries = 100});
    for (int i = 0; i < 1000; ++i) {
        ASSERT_EQ(set(c.get(), "ns", ("model-" + std::to_string(i)).c_str(), "v"), KVC_OK);
        ASSERT_EQ(kvc_ttl_size(c.get()), static_cast<uint64_t>(std::min(i + 1, 100)));
        ASSERT_EQ(counts(c.get()).evictions, static_cast<uint64_t>(std::max(i + 1 - 100, 0)));
    }
    EXPECT_EQ(kvc_ttl_size(c.get()), 100u);
    EXPECT_EQ(counts(c.get()).evictions, 900u);
    // LRU: the 100 newest survive.
    EXPECT_EQ(get(c.get(), "ns", "model-899").status, KVC_ERR_NOT_FOUND);
    EXPECT_EQ(get(c.get(), "ns", "model-900").status, KVC_OK);
}

TEST(Ttl, BoundedCacheAcrossShardsStaysExact) {
    FakeClock clock;
    auto c = make_cache(&clock, {.max_entries = 2000});  // above one shard's range: 16 shards
    for (int i = 0; i < 5000; ++i) ASSERT_EQ(set(c.get(), "ns", std::to_string(i).c_str(), "v"), KVC_OK);
    EXPECT_EQ(kvc_ttl_size(c.get()), 2000u);
    EXPECT_EQ(counts(c.get()).evictions, 3000u);
}

TEST(Ttl, LruEvictsTheLeastRecentlyUsed) {
    FakeClock clock;
    auto c = make_cache(&clock, {.max_entries = 3});
    for (const char* k : {"a", "b", "c"}) ASSERT_EQ(set(c.get(), "ns", k, k), KVC_OK);
    EXPECT_EQ(get(c.get(), "ns", "a").status, KVC_OK);  // a is now the newest
    ASSERT_EQ(set(c.get(), "ns", "d", "d"), KVC_OK);
    EXPECT_EQ(get(c.get(), "ns", "b").status, KVC_ERR_NOT_FOUND);
    for (const char* k : {"a", "c", "d"}) EXPECT_EQ(get(c.get(), "ns", k).status, KVC_OK) << k;
}

// A victim that had already expired is an expiration, not an eviction.
TEST(Ttl, ExpiredVictimCountsAsExpiration) {
    FakeClock clock;
    auto c = make_cache(&clock, {.ttl_ms = 1000, .max_entries = 2});
    ASSERT_EQ(set(c.get(), "ns", "old", "v"), KVC_OK);
    clock.advance_ms(900);
    ASSERT_EQ(set(c.get(), "ns", "young", "v"), KVC_OK);
    clock.advance_ms(200);  // old has expired, young has not
    ASSERT_EQ(set(c.get(), "ns", "new", "v"), KVC_OK);
    const Counts n = counts(c.get());
    EXPECT_EQ(n.expirations, 1u);
    EXPECT_EQ(n.evictions, 0u);
    EXPECT_EQ(kvc_ttl_size(c.get()), 2u);
}

// Every policy the C API offers keeps the bound exactly.
TEST(Ttl, EveryPolicyKeepsTheBound) {
    for (kvc_eviction_policy p : {KVC_EVICTION_LRU, KVC_EVICTION_S3FIFO, KVC_EVICTION_ARC}) {
        FakeClock clock;
        kvc_status status;
        auto c = make_cache(&clock, {.max_entries = 100, .policy = p}, &status);
        ASSERT_EQ(status, KVC_OK) << kvc_eviction_policy_name(p);
        for (int i = 0; i < 1000; ++i) ASSERT_EQ(set(c.get(), "ns", std::to_string(i).c_str(), "v"), KVC_OK);
        EXPECT_EQ(kvc_ttl_size(c.get()), 100u) << kvc_eviction_policy_name(p);
        EXPECT_EQ(counts(c.get()).evictions, 900u) << kvc_eviction_policy_name(p);
    }
}

TEST(Ttl, StatsCountEveryOutcomeAndBytes) {
    FakeClock clock;
    auto c = make_cache(&clock, {.component = "wva_metrics"});
    ASSERT_EQ(set(c.get(), "ns", "k", "12345"), KVC_OK);  // 2 + 1 + 5 bytes
    EXPECT_EQ(counts(c.get()).bytes, 8u);
    ASSERT_EQ(set(c.get(), "ns", "k", "123"), KVC_OK);
    EXPECT_EQ(counts(c.get()).bytes, 6u);
    ASSERT_EQ(set(c.get(), "ns", "bad", "", false), KVC_OK);
    EXPECT_EQ(counts(c.get()).bytes, 11u);
    (void)get(c.get(), "ns", "k");
    (void)get(c.get(), "ns", "bad");
    (void)get(c.get(), "ns", "absent");
    ASSERT_EQ(kvc_ttl_invalidate(c.get(), "ns", "k"), KVC_OK);
    const Counts n = counts(c.get());
    EXPECT_EQ(n.hits, 1u);
    EXPECT_EQ(n.negative_hits, 1u);
    EXPECT_EQ(n.misses, 1u);
    EXPECT_EQ(n.insertions, 2u);
    EXPECT_EQ(n.evictions + n.expirations, 0u);  // invalidation is neither
    EXPECT_EQ(n.bytes, 5u);
    kvc_stats* s = nullptr;
    ASSERT_EQ(kvc_ttl_snapshot(c.get(), &s), KVC_OK);
    EXPECT_STREQ(kvc_stats_component(s), "wva_metrics");
    EXPECT_DOUBLE_EQ(kvc_stats_hit_rate(s), 0.5);  // negative hits are not in the rate
    size_t len = 0;
    ASSERT_EQ(kvc_stats_to_prometheus(s, nullptr, 0, &len), KVC_OK);
    std::string text(len + 1, '\0');
    ASSERT_EQ(kvc_stats_to_prometheus(s, text.data(), text.size(), &len), KVC_OK);
    EXPECT_NE(text.find("kvcore_negative_hits_total{component=\"wva_metrics\"} 1\n"), std::string::npos) << text;
    kvc_stats_destroy(s);
}

TEST(Ttl, OptionsRejectBadValues) {
    kvc_ttl_options* o = nullptr;
    ASSERT_EQ(kvc_ttl_options_create(&o), KVC_OK);
    EXPECT_EQ(kvc_ttl_options_set_ttl_ms(o, 0), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(kvc_ttl_options_set_ttl_ms(o, KVC_TTL_MAX_MS + 1), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(kvc_ttl_options_set_negative_ttl_ms(o, 0), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(kvc_ttl_options_set_cleanup_interval_ms(o, KVC_TTL_MAX_CLEANUP_INTERVAL_MS + 1), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(kvc_ttl_options_set_max_entries(o, uint64_t{1} << 32), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(kvc_ttl_options_set_component(o, "bad name"), KVC_ERR_INVALID_ARGUMENT);
    // An unknown policy value is tested from C (c_api_ttl): a C++ caller cannot even pass one without UB.
    // Nothing rejected changed the options: the defaults still create a cache with them.
    kvc_ttl_cache* c = nullptr;
    ASSERT_EQ(kvc_ttl_create(o, &c), KVC_OK);
    kvc_stats* s = nullptr;
    ASSERT_EQ(kvc_ttl_snapshot(c, &s), KVC_OK);
    EXPECT_STREQ(kvc_stats_component(s), "ttl");
    kvc_stats_destroy(s);
    kvc_ttl_destroy(c);
    kvc_ttl_options_destroy(o);
}

// The one real-time test: a short TTL, and the background thread removes the entry with no call.
TEST(Ttl, BackgroundCleanupRemovesExpiredEntriesOnTheRealClock) {
    auto c = make_cache(nullptr, {.ttl_ms = 200, .cleanup_interval_ms = 10});
    const auto written = std::chrono::steady_clock::now();
    ASSERT_EQ(set(c.get(), "ns", "k", "v"), KVC_OK);
    const uint64_t size_at_once = kvc_ttl_size(c.get());
    if (std::chrono::steady_clock::now() - written < std::chrono::milliseconds(150)) {
        EXPECT_EQ(size_at_once, 1u);
    }
    EXPECT_TRUE(eventually([&] { return counts(c.get()).expirations == 1; }));
    EXPECT_EQ(counts(c.get()).bytes, 0u);
    EXPECT_EQ(kvc_ttl_size(c.get()), 0u);
    uint64_t removed = 9;
    EXPECT_EQ(kvc_ttl_cleanup(c.get(), &removed), KVC_OK);
    EXPECT_EQ(removed, 0u);  // the thread got it first
}

}  // namespace
}  // namespace kvcore::ttl::testing
