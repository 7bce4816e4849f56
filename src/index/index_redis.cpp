/* SPDX-License-Identifier: Apache-2.0 */
// Index in Redis mode (index.h, "Redis mode"): Plans become RedisStore writes, reads walk the keys the
// store hands back in pipelined windows. Built without KVCORE_REDIS, a url is KVC_ERR_UNSUPPORTED.
#include <algorithm>
#include <deque>
#include <unordered_map>

#include "common/error.h"
#include "index/index.h"
#include "index/index_plan.h"
#ifdef KVCORE_HAVE_REDIS
#include "index/redis_store.h"
#endif

namespace kvcore::index {

// The same ranges in both builds, so an option is refused alike with and without Redis.
void RedisConfig::validate() const {
#ifdef KVCORE_HAVE_REDIS
    if (!url.empty()) (void)parse_redis_url(url);
#else
    if (!url.empty()) fail(KVC_ERR_UNSUPPORTED, "index: built without Redis (KVCORE_REDIS=OFF)");
#endif
    auto check = [](bool ok, const char* what) {
        if (!ok) fail(KVC_ERR_INVALID_ARGUMENT, std::string("index: redis ") + what);
    };
    check(connect_timeout_ms >= 1 && connect_timeout_ms <= 600000, "connect timeout must be 1..600000 ms");
    check(command_timeout_ms >= 1 && command_timeout_ms <= 600000, "command timeout must be 1..600000 ms");
    check(reconnect_attempts >= 1 && reconnect_attempts <= 100, "reconnect attempts must be 1..100");
    check(max_connections >= 1 && max_connections <= 1024, "max connections must be 1..1024");
    check(read_window >= 1 && read_window <= (1u << 20), "read window must be 1..1048576 keys");
    check(read_window_growth >= 1 && read_window_growth <= 1024, "read window growth must be 1..1024");
    check(key_ttl_ms <= (uint64_t{1} << 40), "key TTL must be at most 2^40 ms");
}

#ifndef KVCORE_HAVE_REDIS

struct Index::Redis {};
void Index::RedisDelete::operator()(Redis* r) const noexcept { delete r; }

void Index::redis_open() { config_.redis.validate(); }
void Index::redis_execute(Plan&, Plan*) { fail(KVC_ERR_UNSUPPORTED, "index: built without Redis"); }
size_t Index::redis_score(ModelId, std::span<const uint64_t>, std::span<const PodId>, std::span<PodScore>,
                          const ScoreParams&, KeyKind, std::span<const double>) const {
    fail(KVC_ERR_UNSUPPORTED, "index: built without Redis");
}
LookupResult Index::redis_lookup(ModelId, std::span<const uint64_t>, std::span<const PodId>, KeyKind) const {
    fail(KVC_ERR_UNSUPPORTED, "index: built without Redis");
}
std::vector<Holder> Index::redis_holders(ModelId, uint64_t, KeyKind) const {
    fail(KVC_ERR_UNSUPPORTED, "index: built without Redis");
}
void Index::redis_counters(IndexCounters&) const {}

#else

struct Index::Redis {
    RedisStore store;
    explicit Redis(const RedisConfig& c) : store(c) {}
};
void Index::RedisDelete::operator()(Redis* r) const noexcept { delete r; }


void Index::redis_open() { redis_.reset(new Redis(config_.redis)); }

namespace {
// The names of the ids a call uses, read under the names lock once per distinct id. A deque: writes keep
// views of the names while more are added.
template <class Lookup>
struct NameCache {
    Lookup lookup;
    std::deque<std::pair<uint16_t, std::string>> names;
    const std::string& operator()(uint16_t id) {
        for (const auto& [i, n] : names)
            if (i == id) return n;
        names.emplace_back(id, lookup(id));
        return names.back().second;
    }
};
template <class Lookup>
NameCache(Lookup) -> NameCache<Lookup>;

// More unsent ops than this per (pod, rank, model) while the server is away: they are dropped (see
// redis_execute) rather than grow without bound.
constexpr size_t kMaxUnsentOps = size_t{1} << 20;
}  // namespace

void Index::redis_execute(Plan& plan, Plan* unsent) {
    RedisStore& store = redis_->store;
    if (unsent != nullptr && !unsent->ops.empty()) {
        // What failed to reach the server earlier goes first, in order.
        unsent->ops.insert(unsent->ops.end(), plan.ops.begin(), plan.ops.end());
        plan.ops.swap(unsent->ops);
        unsent->ops.clear();
    }
    if (plan.ops.empty()) return;
    NameCache model_name{[&](uint16_t m) {
        std::lock_guard lock(names_mutex_);
        return m < models_.size() ? models_[m] : std::string();
    }};
    NameCache pod_name_of{[&](uint16_t p) { return pod_name(p); }};
    std::vector<RedisWrite> writes;
    writes.reserve(plan.ops.size());
    for (const Plan::Op& op : plan.ops) {
        RedisWrite w{};
        w.pod = pod_name_of(ref_pod(op.ref));
        w.rank = ref_rank(op.ref);
        w.tier = static_cast<uint8_t>(ref_tier(op.ref));
        switch (op.type) {
            case Plan::Type::kAdd:
                if (ref_spec(op.ref)) {
                    w.kind = RedisWrite::Kind::kAddSpeculative;
                    w.ttl_ms = std::max<uint64_t>(1, (op.expiry + 999999) / 1000000);  // a TTL in ns here
                } else {
                    w.kind = RedisWrite::Kind::kAdd;
                }
                w.key = store.entry_key(model_name(field_model(op.model)), field_kind(op.model), op.key);
                break;
            case Plan::Type::kRemove:
                if (ref_spec(op.ref)) continue;  // plans remove only engines' holders
                w.kind = RedisWrite::Kind::kRemove;
                w.key = store.entry_key(model_name(field_model(op.model)), field_kind(op.model), op.key);
                break;
            case Plan::Type::kClearPodRank:
                w.kind = RedisWrite::Kind::kClearPodRank;
                w.key = store.model_prefix(model_name(field_model(op.model)));
                break;
            case Plan::Type::kRemovePod:
                w.kind = RedisWrite::Kind::kRemovePod;
                break;
        }
        if (w.pod.empty()) continue;  // a pod forgotten meanwhile: nothing of it to write
        writes.push_back(std::move(w));
    }
    try {
        store.write(writes);
    } catch (const Error& e) {
        if (unsent == nullptr || (e.status() != KVC_ERR_IO && e.status() != KVC_ERR_CAPACITY)) throw;
        if (plan.ops.size() > kMaxUnsentOps) {
            fail(e.status(), std::string(e.what()) + "; more than " + std::to_string(kMaxUnsentOps) +
                                 " changes of this pod are unsent: they are dropped, and its entries in the server may "
                                 "be stale until its next AllBlocksCleared or their key TTL");
        }
        unsent->ops.swap(plan.ops);
        fail(e.status(), std::string(e.what()) + "; the batch's changes are kept and sent before this pod's next batch");
    }
}

namespace {
// Pod ids of the names a read meets: every name in the shared index is interned (another replica may
// have written it), once per call.
struct PodIds {
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    Index& index;
    std::unordered_map<std::string, PodId, Hash, std::equal_to<>> ids{};
    PodId operator()(std::string_view name) {
        auto it = ids.find(name);
        if (it != ids.end()) return it->second;
        const PodId id = index.intern_pod(name);
        ids.emplace(std::string(name), id);
        return id;
    }
};

// Candidate slots by pod id for one call, per thread (no allocation once warm), reset on the way out
// even when a read fails.
struct Slots {
    std::vector<uint16_t>& of;
    std::vector<PodId> set;
    Slots() : of(table()) {}
    ~Slots() {
        for (PodId p : set) of[p] = 0xFFFF;
    }
    static std::vector<uint16_t>& table() {
        thread_local std::vector<uint16_t> t(kMaxPods + 1, 0xFFFF);
        return t;
    }
    uint16_t find(PodId p) const noexcept { return of[p]; }
    void put(PodId p, uint16_t slot) {
        set.push_back(p);
        of[p] = slot;
    }
};

std::vector<std::string> entry_keys(const RedisStore& store, const std::string& model, KeyKind kind,
                                    std::span<const uint64_t> keys) {
    std::vector<std::string> out;
    out.reserve(keys.size());
    for (uint64_t k : keys) out.push_back(store.entry_key(model, kind, k));
    return out;
}
}  // namespace

size_t Index::redis_score(ModelId model, std::span<const uint64_t> keys, std::span<const PodId> candidates,
                          std::span<PodScore> out, const ScoreParams& params, KeyKind kind,
                          std::span<const double> decode_load) const {
    const RedisStore& store = redis_->store;
    std::string model_name;
    {
        std::lock_guard lock(names_mutex_);
        if (model >= models_.size()) fail(KVC_ERR_NOT_FOUND, "index: unknown model id");
        model_name = models_[model];
    }
    // The rule of Index::score, over the tallies it keeps (ScoreTally).
    using Cand = ScoreTally;
    std::vector<Cand> cands;
    Slots slots;
    std::vector<uint16_t> slot_for;
    for (PodId p : candidates) {
        if (slots.find(p) == 0xFFFF) {
            slots.put(p, static_cast<uint16_t>(cands.size()));
            cands.push_back(Cand{p});
        }
        slot_for.push_back(slots.find(p));
    }
    bool open = candidates.empty();
    std::array<float, 16> weight_of{};
    for (uint32_t b = 0; b < 16; ++b) {
        const uint32_t tier = (b >> 1) & 7;
        weight_of[b] = (b & 1) ? params.tier_weight[0] : tier < kNumTiers ? params.tier_weight[tier] : 0.0f;
    }
    if (!keys.empty() && (open || !cands.empty())) {
        PodIds ids{*const_cast<Index*>(this), {}};  // names are a cache of the shared index's
        std::vector<uint16_t> hits;
        const std::vector<std::string> names = entry_keys(store, model_name, kind, keys);
        redis_->store.read(names, [&](size_t i, std::span<const RedisItem> items) {
            hits.clear();
            for (const RedisItem& item : items) {
                const PodId pod = ids(item.pod);
                uint16_t slot = slots.find(pod);
                if (slot == 0xFFFF) {
                    if (!open) continue;
                    slot = static_cast<uint16_t>(cands.size());
                    slots.put(pod, slot);
                    cands.push_back(Cand{pod});
                }
                Cand& c = cands[slot];
                if (c.blocks != i) continue;
                if (c.best == 0) hits.push_back(slot);
                c.best = std::max(c.best, weight_of[make_ref(pod, item.rank, item.tier, item.speculative) & 15]);
            }
            open = false;
            size_t going = 0;
            for (uint16_t h : hits) {
                Cand& c = cands[h];
                if (c.best > 0) {
                    c.score += c.best;
                    ++c.blocks;
                    ++going;
                }
                c.best = 0;
            }
            return going != 0;
        });
    }
    return finish_scores(cands, slot_for, candidates, out, keys.size(), params.prefill_weight, decode_load);
}

LookupResult Index::redis_lookup(ModelId model, std::span<const uint64_t> keys, std::span<const PodId> filter,
                                 KeyKind kind) const {
    std::string model_name;
    {
        std::lock_guard lock(names_mutex_);
        if (model >= models_.size()) fail(KVC_ERR_NOT_FOUND, "index: unknown model id");
        model_name = models_[model];
    }
    LookupResult res;
    res.offsets.push_back(0);
    if (keys.empty()) return res;
    PodIds ids{*const_cast<Index*>(this), {}};
    const std::vector<std::string> names = entry_keys(redis_->store, model_name, kind, keys);
    redis_->store.read(names, [&](size_t, std::span<const RedisItem> items) {
        const size_t before = res.holders.size();
        for (const RedisItem& item : items) {
            const PodId pod = ids(item.pod);
            if (!filter.empty() && std::find(filter.begin(), filter.end(), pod) == filter.end()) continue;
            res.holders.push_back(Holder{pod, item.rank, item.tier, item.speculative});
        }
        if (res.holders.size() == before) return false;
        res.offsets.push_back(static_cast<uint32_t>(res.holders.size()));
        ++res.keys_found;
        return true;
    });
    return res;
}

std::vector<Holder> Index::redis_holders(ModelId model, uint64_t key, KeyKind kind) const {
    const uint64_t one[1] = {key};
    LookupResult r = redis_lookup(model, one, {}, kind);
    return std::move(r.holders);
}

void Index::redis_counters(IndexCounters& c) const {
    c.redis_errors = redis_->store.errors();
    c.redis_reconnects = redis_->store.reconnects();
    c.redis_round_trips = redis_->store.round_trips();
}

#endif

}  // namespace kvcore::index
