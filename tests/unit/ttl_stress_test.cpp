// SPDX-License-Identifier: Apache-2.0
// 100 threads on one TTL cache: get, set, get-or-load (both forms), invalidate, cleanup and a moving
// clock. Afterwards the statistics reconcile exactly with what the threads saw, and no thread ever read
// an older version of a key only it writes (no lost update). Run under the tsan preset too.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ttl_test_util.h"

namespace kvcore::ttl::testing {
namespace {

constexpr int kThreads = 100;
constexpr int kOpsPerThread = 2000;
constexpr int kOwnKeys = 20;
constexpr int kSharedKeys = 50;

struct SharedLoader {
    std::atomic<uint64_t> calls{0}, failures{0};
};

// Shared keys always load to "shared:<key>"; every fifth load fails.
kvc_status shared_loader(void* user, const char*, const char* key, kvc_ttl_value* out) {
    auto* l = static_cast<SharedLoader*>(user);
    if (l->calls.fetch_add(1) % 5 == 0) {
        l->failures.fetch_add(1);
        return KVC_ERR_IO;
    }
    const std::string v = std::string("shared:") + key;
    return kvc_ttl_value_set(out, reinterpret_cast<const uint8_t*>(v.data()), v.size());
}

// What one thread saw.
struct Tally {
    uint64_t lookups = 0;  // get + begin_load + get_or_load calls that succeeded
    uint64_t get_hits = 0, get_negative_hits = 0, get_misses = 0;
    uint64_t tickets = 0, ticket_failures = 0;  // tickets received; finished invalid or destroyed unfinished
    uint64_t invalidated = 0, cleaned = 0;
    uint64_t stale_reads = 0, wrong_values = 0, bad_statuses = 0;
};

void run_thread(kvc_ttl_cache* c, FakeClock& clock, SharedLoader& loader, int id, Tally& t) {
    std::mt19937 rng(static_cast<uint32_t>(id) * 7919u + 1);
    const std::string own_ns = "t" + std::to_string(id);
    uint64_t last_version[kOwnKeys] = {};  // 0: never written
    uint64_t next_version = 1;
    uint8_t buf[64];
    size_t len = 0;
    uint32_t valid = 0;
    auto check_shared = [&](const std::string& key) {
        if (valid != 0 && std::string(reinterpret_cast<char*>(buf), len) != "shared:" + key) ++t.wrong_values;
    };
    for (int op = 0; op < kOpsPerThread; ++op) {
        const unsigned r = rng() % 100;
        const int own = static_cast<int>(rng() % kOwnKeys);
        const std::string own_key = "k" + std::to_string(own);
        const std::string shared_key = "s" + std::to_string(rng() % kSharedKeys);
        if (r < 30) {  // read an own key: a hit must be the last version written
            const kvc_status s = kvc_ttl_get(c, own_ns.c_str(), own_key.c_str(), buf, sizeof buf, &len, &valid);
            ++t.lookups;
            if (s == KVC_OK) {
                ++t.get_hits;
                if (std::stoull(std::string(reinterpret_cast<char*>(buf), len)) != last_version[own]) ++t.stale_reads;
            } else if (s == KVC_ERR_NOT_FOUND) {
                ++t.get_misses;
            } else {
                ++t.bad_statuses;
            }
        } else if (r < 50) {
            const std::string v = std::to_string(next_version);
            if (set(c, own_ns.c_str(), own_key.c_str(), v) != KVC_OK) ++t.bad_statuses;
            last_version[own] = next_version++;
        } else if (r < 70) {
            const kvc_status s = kvc_ttl_get(c, "shared", shared_key.c_str(), buf, sizeof buf, &len, &valid);
            ++t.lookups;
            if (s == KVC_OK) {
                ++(valid ? t.get_hits : t.get_negative_hits);
                check_shared(shared_key);
            } else if (s == KVC_ERR_NOT_FOUND) {
                ++t.get_misses;
            } else {
                ++t.bad_statuses;
            }
        } else if (r < 85) {
            const kvc_status s =
                kvc_ttl_get_or_load(c, "shared", shared_key.c_str(), shared_loader, &loader, buf, sizeof buf, &len, &valid);
            ++t.lookups;
            if (s != KVC_OK) ++t.bad_statuses;
            check_shared(shared_key);
        } else if (r < 93) {  // the two-phase form, as the bindings drive it
            kvc_ttl_ticket* ticket = nullptr;
            const kvc_status s =
                kvc_ttl_begin_load(c, "shared", shared_key.c_str(), buf, sizeof buf, &len, &valid, &ticket);
            ++t.lookups;
            if (s != KVC_OK) ++t.bad_statuses;
            if (ticket == nullptr) {
                check_shared(shared_key);
                continue;
            }
            ++t.tickets;
            const unsigned how = rng() % 4;
            const std::string v = "shared:" + shared_key;
            if (how < 2) {
                if (kvc_ttl_ticket_finish(ticket, reinterpret_cast<const uint8_t*>(v.data()), v.size(), 1) != KVC_OK) {
                    ++t.bad_statuses;
                }
            } else if (how == 2) {
                if (kvc_ttl_ticket_finish(ticket, nullptr, 0, 0) != KVC_OK) ++t.bad_statuses;
                ++t.ticket_failures;
            } else {
                ++t.ticket_failures;  // destroyed unfinished
            }
            kvc_ttl_ticket_destroy(ticket);
        } else if (r < 97) {
            const kvc_status s = kvc_ttl_invalidate(c, "shared", shared_key.c_str());
            if (s == KVC_OK) {
                ++t.invalidated;
            } else if (s != KVC_ERR_NOT_FOUND) {
                ++t.bad_statuses;
            }
        } else if (r < 98) {
            uint64_t removed = 0;
            if (kvc_ttl_cleanup(c, &removed) != KVC_OK) ++t.bad_statuses;
            t.cleaned += removed;
        } else {
            clock.advance_ms(1);
        }
    }
}

// The clock moves about 4,000 ms during a run (2 % of 200,000 ops). With ttl_ms far below that, entries
// expire during the run; far above it, every key written stays live and the bound must evict.
constexpr uint64_t kClockTravelMs = kThreads * kOpsPerThread / 50;

void hammer(uint64_t max_entries, uint64_t ttl_ms) {
    FakeClock clock;
    auto c = make_cache(&clock, {.ttl_ms = ttl_ms, .negative_ttl_ms = 60, .max_entries = max_entries});
    SharedLoader loader;
    std::vector<Tally> tallies(kThreads);
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int id = 0; id < kThreads; ++id) {
        threads.emplace_back([&, id] {
            start.arrive_and_wait();
            run_thread(c.get(), clock, loader, id, tallies[id]);
        });
    }
    for (auto& th : threads) th.join();

    Tally sum;
    for (const Tally& t : tallies) {
        sum.lookups += t.lookups;
        sum.get_hits += t.get_hits;
        sum.get_negative_hits += t.get_negative_hits;
        sum.get_misses += t.get_misses;
        sum.tickets += t.tickets;
        sum.ticket_failures += t.ticket_failures;
        sum.invalidated += t.invalidated;
        sum.cleaned += t.cleaned;
        sum.stale_reads += t.stale_reads;
        sum.wrong_values += t.wrong_values;
        sum.bad_statuses += t.bad_statuses;
    }
    EXPECT_EQ(sum.stale_reads, 0u) << "a thread read an older version of its own key";
    EXPECT_EQ(sum.wrong_values, 0u);
    EXPECT_EQ(sum.bad_statuses, 0u);

    // The clock stands still now: remove what has expired, then every stored entry is live.
    uint64_t removed = 0;
    ASSERT_EQ(kvc_ttl_cleanup(c.get(), &removed), KVC_OK);
    const Counts n = counts(c.get());
    EXPECT_EQ(n.hits + n.misses + n.negative_hits, sum.lookups);
    EXPECT_GE(n.hits, sum.get_hits);
    EXPECT_GE(n.negative_hits, sum.get_negative_hits);
    EXPECT_GE(n.misses, sum.get_misses);
    EXPECT_EQ(n.loads, loader.calls.load() + sum.tickets);
    EXPECT_EQ(n.load_failures, loader.failures.load() + sum.ticket_failures);
    EXPECT_GE(n.expirations, sum.cleaned + removed);

    kvc_ttl_entries* all = nullptr;
    ASSERT_EQ(kvc_ttl_get_all(c.get(), &all), KVC_OK);
    const size_t stored = kvc_ttl_entries_count(all);
    EXPECT_EQ(kvc_ttl_size(c.get()), stored);
    // Every entry stored has left by exactly one way, or is still there.
    EXPECT_EQ(n.insertions, n.evictions + n.expirations + sum.invalidated + stored);
    uint64_t bytes = 0;
    for (size_t i = 0; i < stored; ++i) {
        size_t ns_len = 0, key_len = 0, value_len = 0;
        ASSERT_EQ(kvc_ttl_entries_namespace(all, i, nullptr, 0, &ns_len), KVC_OK);
        ASSERT_EQ(kvc_ttl_entries_key(all, i, nullptr, 0, &key_len), KVC_OK);
        ASSERT_EQ(kvc_ttl_entries_value(all, i, nullptr, 0, &value_len, nullptr), KVC_OK);
        bytes += ns_len + key_len + value_len;
    }
    kvc_ttl_entries_destroy(all);
    EXPECT_EQ(n.bytes, bytes);
    if (max_entries != 0) EXPECT_LE(stored, max_entries);
    if (ttl_ms > 10 * kClockTravelMs) EXPECT_GT(n.evictions, 0u);  // 2,050 keys live outgrow the bound
    if (ttl_ms < kClockTravelMs / 10) EXPECT_GT(n.expirations, 0u);
    EXPECT_GT(n.loads, 0u);
}

TEST(TtlStress, HundredThreadsShardedBound) { hammer(1024, 60000); }
TEST(TtlStress, HundredThreadsOneShardSmallBound) { hammer(64, 60000); }
TEST(TtlStress, HundredThreadsUnboundedExpiring) { hammer(0, 300); }
TEST(TtlStress, HundredThreadsBoundedExpiring) { hammer(1024, 300); }

}  // namespace
}  // namespace kvcore::ttl::testing
