/* SPDX-License-Identifier: Apache-2.0 */
// Helpers shared by the TTL cache tests: a fake clock, caches through the C API, and stats as a struct.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "kvcore/ttl.h"

namespace kvcore::ttl::testing {

struct FakeClock {
    std::atomic<uint64_t> ns{1'000'000'000};  // not 0: expiry must not rely on the clock's zero
    void advance_ms(uint64_t ms) { ns.fetch_add(ms * 1'000'000); }
    static uint64_t read(void* user) { return static_cast<FakeClock*>(user)->ns.load(); }
};

struct CacheDeleter {
    void operator()(kvc_ttl_cache* c) const { kvc_ttl_destroy(c); }
};
using CachePtr = std::unique_ptr<kvc_ttl_cache, CacheDeleter>;

struct CacheSpec {
    uint64_t ttl_ms = 30000;
    uint64_t negative_ttl_ms = 5000;
    uint64_t max_entries = 10000;
    kvc_eviction_policy policy = KVC_EVICTION_LRU;
    uint64_t cleanup_interval_ms = 0;
    const char* component = "ttl";
};

// status receives kvc_ttl_create's result; the cache is null unless it is KVC_OK.
inline CachePtr make_cache(FakeClock* clock, const CacheSpec& spec, kvc_status* status = nullptr) {
    kvc_ttl_options* o = nullptr;
    EXPECT_EQ(kvc_ttl_options_create(&o), KVC_OK);
    EXPECT_EQ(kvc_ttl_options_set_ttl_ms(o, spec.ttl_ms), KVC_OK);
    EXPECT_EQ(kvc_ttl_options_set_negative_ttl_ms(o, spec.negative_ttl_ms), KVC_OK);
    EXPECT_EQ(kvc_ttl_options_set_max_entries(o, spec.max_entries), KVC_OK);
    EXPECT_EQ(kvc_ttl_options_set_eviction_policy(o, spec.policy), KVC_OK);
    EXPECT_EQ(kvc_ttl_options_set_cleanup_interval_ms(o, spec.cleanup_interval_ms), KVC_OK);
    EXPECT_EQ(kvc_ttl_options_set_component(o, spec.component), KVC_OK);
    if (clock != nullptr) {
        EXPECT_EQ(kvc_ttl_options_set_clock(o, FakeClock::read, clock), KVC_OK);
    }
    kvc_ttl_cache* c = nullptr;
    const kvc_status s = kvc_ttl_create(o, &c);
    kvc_ttl_options_destroy(o);
    if (status != nullptr) {
        *status = s;
    } else {
        EXPECT_EQ(s, KVC_OK) << kvc_last_error_message();
    }
    return CachePtr(c);
}

inline kvc_status set(kvc_ttl_cache* c, const char* ns, const char* key, const std::string& value, bool valid = true) {
    return kvc_ttl_set(c, ns, key, reinterpret_cast<const uint8_t*>(value.data()), value.size(), valid ? 1 : 0);
}

// A lookup's result: the status, the value and its valid flag.
struct Got {
    kvc_status status;
    std::string value;
    uint32_t valid;
};

inline Got get(kvc_ttl_cache* c, const char* ns, const char* key) {
    uint8_t buf[256];
    size_t len = 12345;
    uint32_t valid = 7;
    const kvc_status s = kvc_ttl_get(c, ns, key, buf, sizeof buf, &len, &valid);
    return {s, std::string(reinterpret_cast<const char*>(buf), s == KVC_OK ? len : 0), valid};
}

struct Counts {
    uint64_t hits, misses, negative_hits, loads, load_failures, evictions, expirations, insertions, bytes;
};

inline Counts counts(const kvc_ttl_cache* c) {
    kvc_stats* s = nullptr;
    EXPECT_EQ(kvc_ttl_snapshot(c, &s), KVC_OK);
    const Counts n{kvc_stats_hits(s),        kvc_stats_misses(s),      kvc_stats_negative_hits(s),
                   kvc_stats_loads(s),       kvc_stats_load_failures(s), kvc_stats_evictions(s),
                   kvc_stats_expirations(s), kvc_stats_insertions(s),  kvc_stats_bytes_in_use(s)};
    kvc_stats_destroy(s);
    return n;
}

// Polls until pred() holds or `seconds` pass; returns pred()'s last value. For waits on other threads
// that have no event to block on.
template <class Pred>
bool eventually(Pred pred, double seconds = 10.0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace kvcore::ttl::testing
