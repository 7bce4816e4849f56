// SPDX-License-Identifier: Apache-2.0
// The TTL cache's get (hit) and set through libkvcore.so's C API, against the straightforward
// implementation measured in the same run: one std::mutex over a std::unordered_map<std::string, Entry>
// keyed by ns + '\0' + key, reading std::chrono::steady_clock on every call for expiry. Both copy the
// value into the caller's buffer on a get, both draw the same keys (1,024 WVA-like (namespace, model)
// pairs, 64-byte values) in the same pseudo-random order, and both are shared by the threads of a run.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kvcore/kvcore.h"

namespace {

constexpr size_t kKeys = 1024;
constexpr size_t kValueBytes = 64;

struct Keys {
    std::vector<std::string> ns, key;
    std::string value = std::string(kValueBytes, 'm');
    Keys() {
        const char* namespaces[] = {"production", "staging", "llm-d-inference", "default"};
        for (size_t i = 0; i < kKeys; ++i) {
            ns.emplace_back(namespaces[i % 4]);
            key.push_back("meta-llama/Llama-3.1-8B-Instruct-" + std::to_string(i));
        }
    }
};
const Keys& keys() {
    static const Keys k;
    return k;
}

// The same key stream for every variant, different per thread.
struct KeyStream {
    explicit KeyStream(int thread) : x(0x9E3779B97F4A7C15ull * static_cast<uint64_t>(thread + 1)) {}
    size_t next() noexcept {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x & (kKeys - 1);
    }
    uint64_t x;
};

// ---- anchor: mutex + unordered_map<std::string, Entry> ------------------------------------------------

class MutexMapCache {
public:
    struct Entry {
        std::string value;
        std::chrono::steady_clock::time_point expires;
        bool valid;
    };

    void set(const std::string& ns, const std::string& key, const std::string& value) {
        const auto expires = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        std::string k = ns + '\0' + key;
        std::lock_guard lock(mu_);
        Entry& e = map_[std::move(k)];
        e.value = value;
        e.expires = expires;
        e.valid = true;
    }
    // The value's length, or -1 on a miss.
    long get(const std::string& ns, const std::string& key, char* buf, size_t capacity) {
        const std::string k = ns + '\0' + key;
        std::lock_guard lock(mu_);
        const auto it = map_.find(k);
        if (it == map_.end() || std::chrono::steady_clock::now() >= it->second.expires) return -1;
        const std::string& v = it->second.value;
        if (v.size() <= capacity) std::memcpy(buf, v.data(), v.size());
        return static_cast<long>(v.size());
    }

private:
    std::mutex mu_;
    std::unordered_map<std::string, Entry> map_;
};

MutexMapCache& anchor() {
    static MutexMapCache* cache = [] {
        auto* c = new MutexMapCache;
        for (size_t i = 0; i < kKeys; ++i) c->set(keys().ns[i], keys().key[i], keys().value);
        return c;
    }();
    return *cache;
}

// ---- kvcore ----------------------------------------------------------------------------------------

kvc_ttl_cache* ttl_cache() {
    static kvc_ttl_cache* cache = [] {
        kvc_ttl_cache* c = nullptr;
        if (kvc_ttl_create(nullptr, &c) != KVC_OK) std::abort();  // the defaults: 30 s, 10,000 entries, LRU
        for (size_t i = 0; i < kKeys; ++i) {
            const std::string& v = keys().value;
            if (kvc_ttl_set(c, keys().ns[i].c_str(), keys().key[i].c_str(), reinterpret_cast<const uint8_t*>(v.data()),
                            v.size(), 1) != KVC_OK) {
                std::abort();
            }
        }
        return c;
    }();
    return cache;
}

void BM_Anchor_MutexUnorderedMap_Get(benchmark::State& state) {
    MutexMapCache& c = anchor();
    const Keys& k = keys();
    KeyStream stream(state.thread_index());
    char buf[kValueBytes];
    for (auto _ : state) {
        const size_t i = stream.next();
        benchmark::DoNotOptimize(c.get(k.ns[i], k.key[i], buf, sizeof buf));
    }
}
BENCHMARK(BM_Anchor_MutexUnorderedMap_Get)->Threads(1)->Threads(2)->UseRealTime();

void BM_TtlGet_Hit(benchmark::State& state) {
    kvc_ttl_cache* c = ttl_cache();
    const Keys& k = keys();
    KeyStream stream(state.thread_index());
    uint8_t buf[kValueBytes];
    size_t len = 0;
    uint32_t valid = 0;
    for (auto _ : state) {
        const size_t i = stream.next();
        if (kvc_ttl_get(c, k.ns[i].c_str(), k.key[i].c_str(), buf, sizeof buf, &len, &valid) != KVC_OK) {
            state.SkipWithError("miss");
            break;
        }
        benchmark::DoNotOptimize(len);
    }
}
BENCHMARK(BM_TtlGet_Hit)->Threads(1)->Threads(2)->UseRealTime();

void BM_Anchor_MutexUnorderedMap_Set(benchmark::State& state) {
    MutexMapCache& c = anchor();
    const Keys& k = keys();
    KeyStream stream(state.thread_index());
    for (auto _ : state) {
        const size_t i = stream.next();
        c.set(k.ns[i], k.key[i], k.value);
    }
}
BENCHMARK(BM_Anchor_MutexUnorderedMap_Set)->Threads(1)->Threads(2)->UseRealTime();

void BM_TtlSet(benchmark::State& state) {
    kvc_ttl_cache* c = ttl_cache();
    const Keys& k = keys();
    KeyStream stream(state.thread_index());
    const auto* v = reinterpret_cast<const uint8_t*>(k.value.data());
    for (auto _ : state) {
        const size_t i = stream.next();
        if (kvc_ttl_set(c, k.ns[i].c_str(), k.key[i].c_str(), v, k.value.size(), 1) != KVC_OK) {
            state.SkipWithError("set failed");
            break;
        }
    }
}
BENCHMARK(BM_TtlSet)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
