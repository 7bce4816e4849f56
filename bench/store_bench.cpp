// SPDX-License-Identifier: Apache-2.0
// Session store: a get_or_create that hits plus the lease's release, through the C API (libkvcore.so),
// at 1 and 2 threads; anchor in the same binary and run: std::mutex + std::unordered_map<std::string,
// Session> doing the same lookup and the same lease count up and down.
#include <benchmark/benchmark.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kvcore/store.h"

namespace {

constexpr size_t kSessions = 64;

const std::vector<std::string>& ids() {
    static const std::vector<std::string> v = [] {
        std::vector<std::string> out;
        for (size_t i = 0; i < kSessions; ++i) out.push_back("chat-session-" + std::to_string(i * 7919));
        return out;
    }();
    return v;
}

kvc_store* shared_store() {
    static kvc_store* store = [] {
        kvc_store* s = nullptr;
        if (kvc_store_create(nullptr, &s) != KVC_OK) std::abort();
        for (const auto& id : ids()) {
            kvc_session* x = nullptr;
            if (kvc_store_get_or_create(s, id.c_str(), 32, 8, 128, KVC_DTYPE_F16, 2048, &x, nullptr) != KVC_OK) std::abort();
            kvc_session_release(x);
        }
        return s;
    }();
    return store;
}

void BM_StoreGetOrCreate_Hit(benchmark::State& state) {
    kvc_store* store = shared_store();
    const auto& names = ids();
    size_t i = static_cast<size_t>(state.thread_index()) * 17;
    for (auto _ : state) {
        kvc_session* x = nullptr;
        uint32_t created = 0;
        const kvc_status st =
            kvc_store_get_or_create(store, names[i % kSessions].c_str(), 32, 8, 128, KVC_DTYPE_F16, 2048, &x, &created);
        if (st != KVC_OK || created != 0) state.SkipWithError("not a hit");
        benchmark::DoNotOptimize(x);
        kvc_session_release(x);
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreGetOrCreate_Hit)->Threads(1)->Threads(2)->UseRealTime();

// The anchor: what a hand-written store does for a hit and its release.
struct AnchorSession {
    uint32_t layers = 32, kv_heads = 8, head_dim = 128;
    uint32_t holders = 0;
    uint64_t last_use = 0;
};
struct Anchor {
    std::mutex mu;
    std::unordered_map<std::string, AnchorSession> sessions;
    uint64_t clock = 0, hits = 0;
};

Anchor& anchor() {
    static Anchor* a = [] {
        auto* x = new Anchor;  // process lifetime, like the store above
        for (const auto& id : ids()) x->sessions.emplace(id, AnchorSession{});
        return x;
    }();
    return *a;
}

void BM_Anchor_MutexUnorderedMap_Hit(benchmark::State& state) {
    Anchor& a = anchor();
    const auto& names = ids();
    size_t i = static_cast<size_t>(state.thread_index()) * 17;
    for (auto _ : state) {
        AnchorSession* s = nullptr;
        {
            std::lock_guard lock(a.mu);
            const auto it = a.sessions.find(names[i % kSessions]);  // a ready std::string key: no conversion
            if (it == a.sessions.end() || it->second.layers != 32) {
                state.SkipWithError("not a hit");
                break;
            }
            s = &it->second;
            ++s->holders;
            s->last_use = ++a.clock;
            ++a.hits;
        }
        benchmark::DoNotOptimize(s);
        {
            std::lock_guard lock(a.mu);
            --s->holders;
        }
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Anchor_MutexUnorderedMap_Hit)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
