/* SPDX-License-Identifier: Apache-2.0 */
#include "index/index.h"
#include "index/index_plan.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <queue>
#include <shared_mutex>
#include <time.h>
#include <unordered_map>

#include "common/error.h"
#include "common/eviction/policy.h"
#include "index/score_cache.h"

namespace kvcore::index {
namespace {

constexpr uint32_t kNone = UINT32_MAX;

// The shards a batch or a window of keys touches, visited in ascending order (the lock order).
struct ShardSet {
    std::array<uint64_t, 4096 / 64> bits{};
    void add(uint32_t shard) noexcept { bits[shard >> 6] |= uint64_t{1} << (shard & 63); }
    void add_all(uint32_t n) noexcept {
        for (uint32_t i = 0; i < n; ++i) add(i);
    }
    template <class Fn>
    void each(Fn&& fn) const {
        for (uint32_t w = 0; w < bits.size(); ++w)
            for (uint64_t x = bits[w]; x != 0; x &= x - 1) fn(w * 64 + static_cast<uint32_t>(__builtin_ctzll(x)));
    }
};

uint64_t steady_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace

// ---- one shard of the entries -----------------------------------------------------------------------
struct Index::Shard {
    // 16 bytes: the key, its first holder or the arena offset of its pod set, (model, kind), and the
    // holder count (11 bits) with the pod set's capacity class (5 bits: capacity 1 << class, 0: inline).
    struct Entry {
        uint64_t key = 0;
        uint32_t pods = 0;
        uint16_t model = 0;
        uint16_t meta = 0;  // 0: a free slab slot (a live entry has at least one holder)
        [[nodiscard]] uint32_t count() const noexcept { return meta & 0x7FF; }
        [[nodiscard]] uint32_t cls() const noexcept { return meta >> 11; }
        void set(uint32_t n, uint32_t c) noexcept { meta = static_cast<uint16_t>(n | (c << 11)); }
    };
    static_assert(sizeof(Entry) == 16);
    static constexpr uint32_t kMaxHolders = 0x7FF;

    mutable std::shared_mutex mu;
    std::vector<uint32_t> table;  // entry index + 1; 0: empty
    size_t used = 0;
    std::vector<Entry> slab;
    std::vector<uint8_t> referenced;  // set by lookups under the shared lock (atomic_ref)
    std::vector<uint32_t> free_entries;
    std::vector<Ref> arena;
    std::array<std::vector<uint32_t>, 12> arena_free;  // per class 1..11
    std::unique_ptr<eviction::Policy> lru = eviction::make_policy(eviction::Kind::kLru, 0);
    uint64_t charged = 0, budget = 0, evictions = 0, expired = 0, holders = 0;
    // Speculative holders: (entry << 16 | pod) -> expiry, and a heap to expire them in order.
    std::unordered_map<uint64_t, uint64_t> spec;
    using Due = std::pair<uint64_t, uint64_t>;  // (expiry, entry << 16 | pod)
    std::priority_queue<Due, std::vector<Due>, std::greater<>> due;

    Shard() { table.assign(16, 0); }

    [[nodiscard]] size_t slot_of(uint64_t h) const noexcept { return h & (table.size() - 1); }

    [[nodiscard]] uint32_t find(uint64_t h, uint64_t key, uint16_t model) const noexcept {
        const size_t mask = table.size() - 1;
        for (size_t i = slot_of(h);; i = (i + 1) & mask) {
            const uint32_t v = table[i];
            if (v == 0) return kNone;
            const Entry& e = slab[v - 1];
            if (e.key == key && e.model == model) return v - 1;
        }
    }

    void place(uint32_t idx) noexcept {
        const size_t mask = table.size() - 1;
        size_t i = slot_of(mix(slab[idx].key, slab[idx].model));
        while (table[i] != 0) i = (i + 1) & mask;
        table[i] = idx + 1;
    }

    void grow() {
        std::vector<uint32_t> old(table.size() * 2, 0);
        old.swap(table);
        for (uint32_t v : old)
            if (v != 0) place(v - 1);
    }

    [[nodiscard]] Ref* refs(Entry& e) noexcept { return e.cls() == 0 ? &e.pods : arena.data() + e.pods; }
    [[nodiscard]] const Ref* refs(const Entry& e) const noexcept {
        return e.cls() == 0 ? &e.pods : arena.data() + e.pods;
    }

    uint32_t arena_alloc(uint32_t cls) {
        auto& fl = arena_free[cls];
        if (!fl.empty()) {
            const uint32_t off = fl.back();
            fl.pop_back();
            return off;
        }
        const size_t off = arena.size();
        if (off + (size_t{1} << cls) > UINT32_MAX) fail(KVC_ERR_CAPACITY, "index: shard pod-set arena is full");
        arena.resize(off + (size_t{1} << cls));
        return static_cast<uint32_t>(off);
    }

    uint32_t insert(uint64_t h, uint64_t key, uint16_t model, Ref first) {
        if ((used + 1) * 4 > table.size() * 3) grow();
        uint32_t idx;
        if (!free_entries.empty()) {
            idx = free_entries.back();
            free_entries.pop_back();
        } else {
            if (slab.size() >= UINT32_MAX - 1) fail(KVC_ERR_CAPACITY, "index: shard is full");
            idx = static_cast<uint32_t>(slab.size());
            slab.emplace_back();
            referenced.push_back(0);
        }
        Entry& e = slab[idx];
        e.key = key;
        e.model = model;
        e.pods = first;
        e.set(1, 0);
        std::atomic_ref<uint8_t>(referenced[idx]).store(0, std::memory_order_relaxed);
        const size_t mask = table.size() - 1;
        size_t i = slot_of(h);
        while (table[i] != 0) i = (i + 1) & mask;
        table[i] = idx + 1;
        ++used;
        ++holders;
        lru->insert(idx, key, false);
        charged += kKeyCharge;
        return idx;
    }

    void forget_spec(uint32_t idx, Ref r) {
        if (ref_spec(r)) spec.erase((uint64_t{idx} << 16) | ref_pod(r));
    }

    void erase(uint32_t idx) {
        Entry& e = slab[idx];
        const Ref* r = refs(e);
        for (uint32_t i = 0; i < e.count(); ++i) forget_spec(idx, r[i]);
        holders -= e.count();
        if (e.cls() != 0) {
            arena_free[e.cls()].push_back(e.pods);
            charged -= kHolderSlotCharge << e.cls();
        }
        // Backward-shift deletion keeps probe sequences unbroken without tombstones.
        const size_t mask = table.size() - 1;
        size_t i = slot_of(mix(e.key, e.model));
        while (table[i] != idx + 1) i = (i + 1) & mask;
        for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
            const uint32_t v = table[j];
            if (v == 0) break;
            const size_t home = slot_of(mix(slab[v - 1].key, slab[v - 1].model));
            // Move v into the hole at i unless its home lies cyclically in (i, j].
            const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!stays) {
                table[i] = v;
                i = j;
            }
        }
        table[i] = 0;
        --used;
        lru->erase(idx);
        e = Entry{};
        free_entries.push_back(idx);
        charged -= kKeyCharge;
    }

    // Adds a holder; a real one replaces the pod's speculative one. Returns false when already there.
    void add(uint64_t h, uint64_t key, uint16_t model, Ref r, uint64_t expiry) {
        uint32_t idx = find(h, key, model);
        if (idx == kNone) {
            idx = insert(h, key, model, r);
            if (ref_spec(r)) note_spec(idx, r, expiry);
            return;
        }
        Entry& e = slab[idx];
        lru->touch(idx);
        Ref* rs = refs(e);
        const uint32_t n = e.count();
        for (uint32_t i = 0; i < n; ++i) {
            if (rs[i] == r) {
                if (ref_spec(r)) note_spec(idx, r, expiry);  // a new decision renews the TTL
                return;
            }
            if (!ref_spec(r) && ref_spec(rs[i]) && ref_pod(rs[i]) == ref_pod(r)) {
                forget_spec(idx, rs[i]);
                rs[i] = r;  // the engine's event replaces the routing decision
                return;
            }
            // A pod that holds the key for real gains nothing from a speculative holder.
            if (ref_spec(r) && !ref_spec(rs[i]) && ref_pod(rs[i]) == ref_pod(r)) return;
        }
        if (n == kMaxHolders) fail(KVC_ERR_CAPACITY, "index: a key has too many holders");
        const uint32_t cap = e.cls() == 0 ? 1u : 1u << e.cls();
        if (n == cap) {
            const uint32_t cls = e.cls() + 1;
            const uint32_t off = arena_alloc(cls);  // may reallocate the arena: rs is stale after it
            Ref* dst = arena.data() + off;
            const Ref* src = refs(e);
            std::copy(src, src + n, dst);
            if (e.cls() != 0) {
                arena_free[e.cls()].push_back(e.pods);
                charged -= kHolderSlotCharge << e.cls();
            }
            e.pods = off;
            e.set(n, cls);
            charged += kHolderSlotCharge << cls;
        }
        refs(e)[n] = r;
        e.set(n + 1, e.cls());
        ++holders;
        if (ref_spec(r)) note_spec(idx, r, expiry);
    }

    void note_spec(uint32_t idx, Ref r, uint64_t expiry) {
        const uint64_t id = (uint64_t{idx} << 16) | ref_pod(r);
        spec[id] = expiry;
        due.emplace(expiry, id);
    }

    // Removes holders matching pred from entry idx (erasing it when none is left). Returns how many.
    template <class Pred>
    uint32_t remove_if(uint32_t idx, Pred&& pred) {
        Entry& e = slab[idx];
        Ref* rs = refs(e);
        uint32_t n = e.count(), removed = 0;
        for (uint32_t i = 0; i < n;) {
            if (pred(rs[i])) {
                forget_spec(idx, rs[i]);
                rs[i] = rs[--n];
                ++removed;
            } else {
                ++i;
            }
        }
        if (removed == 0) return 0;
        holders -= removed;
        if (n == 0) {
            e.set(0, e.cls());  // nothing left for erase() to forget or count
            erase(idx);
            return removed;
        }
        if (e.cls() != 0 && n == 1) {  // back inline
            const Ref only = rs[0];
            arena_free[e.cls()].push_back(e.pods);
            charged -= kHolderSlotCharge << e.cls();
            e.pods = only;
            e.set(1, 0);
        } else {
            e.set(n, e.cls());
        }
        return removed;
    }

    // gens: the score cache's generations (null when off), bumped for each key that lost a holder.
    template <class Pred>
    void scan_remove(Pred&& pred, Generations* gens) {
        for (uint32_t idx = 0; idx < slab.size(); ++idx) {
            if (slab[idx].meta == 0) continue;
            const uint64_t h = mix(slab[idx].key, slab[idx].model);
            if (remove_if(idx, [&](Ref r) { return pred(slab[idx], r); }) != 0 && gens != nullptr) gens->bump(h);
        }
    }

    void expire(uint64_t now) {
        while (!due.empty() && due.top().first <= now) {
            const auto [expiry, id] = due.top();
            due.pop();
            auto it = spec.find(id);
            if (it == spec.end() || it->second != expiry) continue;  // renewed or gone
            const uint32_t idx = static_cast<uint32_t>(id >> 16);
            const PodId pod = static_cast<PodId>(id & 0xFFFF);
            if (remove_if(idx, [&](Ref r) { return ref_spec(r) && ref_pod(r) == pod; }) != 0) ++expired;
        }
    }

    [[nodiscard]] bool spec_live(uint32_t idx, Ref r, uint64_t now) const { return spec_expiry(idx, r) > now; }
    // 0 when the pod holds no speculative entry there.
    [[nodiscard]] uint64_t spec_expiry(uint32_t idx, Ref r) const {
        auto it = spec.find((uint64_t{idx} << 16) | ref_pod(r));
        return it != spec.end() ? it->second : 0;
    }

    // LRU with second chance: a key a lookup referenced since it was last considered goes to the
    // newest end once instead of leaving. Bounded: each pass clears a reference byte.
    void enforce_budget(Generations* gens) {
        if (budget == 0) return;
        for (size_t guard = 0; charged > budget && guard <= 2 * slab.size() + 1; ++guard) {
            const std::optional<uint32_t> victim = lru->evict();
            if (!victim) return;
            const uint32_t idx = *victim;
            std::atomic_ref<uint8_t> ref(referenced[idx]);
            if (ref.load(std::memory_order_relaxed) != 0) {
                ref.store(0, std::memory_order_relaxed);
                lru->insert(idx, slab[idx].key, false);
                continue;
            }
            lru->insert(idx, slab[idx].key, false);  // erase() expects it resident
            if (gens != nullptr) gens->bump(mix(slab[idx].key, slab[idx].model));
            erase(idx);
            ++evictions;
        }
    }

    void mark_referenced(uint32_t idx) const noexcept {
        std::atomic_ref<uint8_t> ref(const_cast<uint8_t&>(referenced[idx]));
        if (ref.load(std::memory_order_relaxed) == 0) ref.store(1, std::memory_order_relaxed);
    }

    [[nodiscard]] uint64_t memory() const noexcept {
        return table.capacity() * 4 + slab.capacity() * sizeof(Entry) + referenced.capacity() +
               slab.size() * 12 /* the LRU's node per slot */ + arena.capacity() * sizeof(Ref) +
               free_entries.capacity() * 4 + spec.size() * 48;
    }
};

// ---- per (pod, rank, model): engine keys and orphans ------------------------------------------------
namespace {

struct Contributor {
    uint64_t engine_key;
    uint64_t start, end;
};

// Tokens past the last index-block boundary (engine blocks smaller than index blocks, or not aligned
// to them), with what their hash will need.
struct Tail {
    std::vector<int32_t> tokens;
    std::vector<Contributor> contributors;
    std::string salt;
    std::vector<pool::MultimodalItem> mm;
};

struct Chain {
    pool::BlockHash hash;  // the index chain at the last boundary
    uint64_t pos = 0;      // tokens from the sequence's start through the last engine block
    Tail tail;
};

struct EngineBlock {
    pool::BlockHash chain;
    uint64_t pos = 0;
    uint8_t tiers = 0;  // bit per Medium the pod holds it in
    bool resolved = false;
    bool counted = false;  // its keys are reference counted (see KeyRefs)
    std::vector<uint64_t> keys;  // request keys of the complete index blocks overlapping it
    std::unique_ptr<Tail> tail;
};

// Engine blocks larger than index blocks (or not a multiple of them) can share an index block: two
// prompts that part in the middle of an engine block both hold its first index block. Such keys are
// counted per (pod, tier) so that removing one engine block keeps what the other still holds.
using KeyRefs = std::unordered_map<uint64_t, std::array<uint32_t, kNumTiers>>;

struct Orphan {
    uint64_t parent = 0;
    BlockStored event;
    bool alive = true;
};

}  // namespace

struct Index::PodState {
    std::mutex mu;
    std::unordered_map<uint64_t, EngineBlock> blocks;
    KeyRefs key_refs;
    std::unordered_map<uint64_t, std::vector<uint64_t>> orphans_by_parent;  // parent -> orphan ids
    std::unordered_map<uint64_t, Orphan> orphans;
    std::deque<uint64_t> orphan_order;
    uint64_t next_orphan = 0, orphan_blocks = 0;
    // Index::add's mapping (llm-d's explicit writes): engine key -> the tiers added and its request keys.
    // Apart from `blocks`, whose records carry the hash chain that later events continue.
    struct Added {
        uint8_t tiers = 0;  // bit per Medium
        std::vector<uint64_t> keys;
    };
    std::unordered_map<uint64_t, Added> added;
    Plan unsent;  // Redis mode: changes of a batch the server did not get, sent before the next one
};

struct Index::StateMap {
    std::unordered_map<uint64_t, PodState*> map;  // pod << 32 | rank << 16 | model
};

// ---- construction, names ------------------------------------------------------------------------------
void IndexConfig::validate() const {
    if (block_size == 0 || block_size > (1u << 20)) fail(KVC_ERR_INVALID_ARGUMENT, "index: block_size out of range");
    if (shards == 0 || shards > 4096 || (shards & (shards - 1)) != 0)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: shards must be a power of two in 1..4096");
    if (engine_keys_direct && hash_algo != pool::HashAlgo::kSha256Cbor)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: engine keys are request keys only with sha256_cbor (vLLM's)");
    if (byte_budget != 0 && byte_budget / shards < Index::kKeyCharge)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: byte_budget leaves a shard less than one key");
    score_cache.validate();
    redis.validate();
    // The score cache learns of writes from this process's execute(); other replicas write to the server.
    if (!redis.url.empty() && score_cache.max_entries != 0)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: the score cache cannot see other replicas' writes in Redis mode: "
                                       "use one or the other");
    if (!redis.url.empty() && byte_budget != 0)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: in Redis mode the byte budget is the server's (maxmemory with "
                                       "maxmemory-policy volatile-lru or allkeys-lru): byte_budget must be 0");
}

Index::Index(IndexConfig config)
    : config_((config.validate(), std::move(config))),
      hasher_(config_.hash_algo, config_.hash_seed),
      state_map_(std::make_unique<StateMap>()) {
    shard_shift_ = 64;
    for (uint32_t s = config_.shards; s > 1; s >>= 1) --shard_shift_;
    for (uint32_t i = 0; i < config_.shards; ++i) {
        shards_.push_back(std::make_unique<Shard>());
        shards_.back()->budget = config_.byte_budget / config_.shards;
    }
    if (config_.score_cache.max_entries != 0) {
        score_cache_ = std::make_unique<ScoreCache>(config_.score_cache, config_.clock);
        gens_ = &score_cache_->generations();
    }
    if (!config_.redis.url.empty()) redis_open();
}

Index::~Index() = default;

uint64_t Index::entry_hash(ModelId model, KeyKind kind, uint64_t key) noexcept {
    return mix(key, model_field(model, kind));
}

uint64_t Index::now() const noexcept { return config_.clock ? config_.clock() : steady_ns(); }

ModelId Index::intern_model(std::string_view name) {
    std::lock_guard lock(names_mutex_);
    for (size_t i = 0; i < models_.size(); ++i)
        if (models_[i] == name) return static_cast<ModelId>(i);
    if (models_.size() >= kMaxModels) fail(KVC_ERR_CAPACITY, "index: too many models");
    models_.emplace_back(name);
    return static_cast<ModelId>(models_.size() - 1);
}

PodId Index::intern_pod(std::string_view name) {
    if (name.empty()) fail(KVC_ERR_INVALID_ARGUMENT, "index: empty pod name");
    std::lock_guard lock(names_mutex_);
    for (size_t i = 0; i < pods_.size(); ++i)
        if (pods_[i] == name) return static_cast<PodId>(i);
    if (!free_pods_.empty()) {
        const PodId id = free_pods_.back();
        free_pods_.pop_back();
        pods_[id] = std::string(name);
        return id;
    }
    if (pods_.size() >= kMaxPods) fail(KVC_ERR_CAPACITY, "index: too many pods");
    pods_.emplace_back(name);
    return static_cast<PodId>(pods_.size() - 1);
}

PodId Index::find_pod(std::string_view name) const {
    if (redis_ && !name.empty()) return const_cast<Index*>(this)->intern_pod(name);  // a cache of the server's names
    std::lock_guard lock(names_mutex_);
    for (size_t i = 0; i < pods_.size(); ++i)
        if (!pods_[i].empty() && pods_[i] == name) return static_cast<PodId>(i);
    return kNoPod;
}

std::string Index::pod_name(PodId pod) const {
    std::lock_guard lock(names_mutex_);
    return pod < pods_.size() ? pods_[pod] : std::string();
}

Index::PodState& Index::pod_state(PodId pod, uint16_t rank, ModelId model) {
    const uint64_t id = (uint64_t{pod} << 32) | (uint64_t{rank} << 16) | model;
    std::lock_guard lock(states_mutex_);
    auto [it, fresh] = state_map_->map.try_emplace(id, nullptr);
    if (fresh) {
        states_.push_back(std::make_unique<PodState>());
        it->second = states_.back().get();
    }
    return *it->second;
}

// ---- planning a batch ----------------------------------------------------------------------------------
namespace {

// The multimodal items of an event, at absolute token positions. vLLM lists an item in each block it
// overlaps with its offset from the block's start; its end is taken as the end of the last block that
// lists it, which is exact for the index's blocks when the block sizes are equal.
void event_items(const BlockStored& ev, uint64_t first_token, std::vector<pool::MultimodalItem>& out,
                 std::string& salt) {
    for (size_t j = 0; j < ev.extra_keys.size(); ++j) {
        if (!ev.extra_keys[j]) continue;
        const uint64_t block_start = first_token + j * ev.block_size;
        const uint64_t block_end = block_start + ev.block_size;
        bool lora_seen = false;
        for (const ExtraKey& k : *ev.extra_keys[j]) {
            if (k.kind == ExtraKey::Kind::kMultimodal) {
                const int64_t start = static_cast<int64_t>(block_start) + k.offset;
                const uint64_t s = start < 0 ? 0 : static_cast<uint64_t>(start);
                auto it = std::find_if(out.begin(), out.end(),
                                       [&](const pool::MultimodalItem& m) { return m.hash == k.text && m.offset == s; });
                if (it == out.end()) out.push_back(pool::MultimodalItem{k.text, s, block_end - s});
                else it->length = block_end - s;
            } else if (k.kind == ExtraKey::Kind::kText) {
                // vLLM's order: LoRA name first, the salt last and in block 0 only.
                if (!lora_seen && !ev.lora_name.empty() && k.text == ev.lora_name) lora_seen = true;
                else if (block_start == 0) salt = k.text;
            }
        }
    }
    std::sort(out.begin(), out.end(),
              [](const pool::MultimodalItem& a, const pool::MultimodalItem& b) { return a.offset < b.offset; });
}

uint8_t tier_bit(Medium m) noexcept { return static_cast<uint8_t>(1u << static_cast<unsigned>(m)); }

}  // namespace

namespace {

// Derives request keys for an event's blocks, chaining from `chain`; records the blocks in `state` and
// emits add ops for the tiers each block is held in (tiers_of). Returns the chain after the event.
// Everything an event's blocks need is in it or in chain.tail, so healing an orphan is the same call.
template <class AddFn, class TiersFn>
Chain derive(const pool::BlockHasher& hasher, uint32_t index_block, Chain chain, const BlockStored& ev,
             std::unordered_map<uint64_t, EngineBlock>& blocks, KeyRefs& refs, TiersFn&& tiers_of, AddFn&& add) {
    const bool counted = index_block % ev.block_size != 0;
    pool::ExtraKeys keys;
    keys.lora_name = ev.lora_name;
    std::string salt = chain.tail.salt;
    std::vector<pool::MultimodalItem> items = chain.tail.mm;
    event_items(ev, chain.pos, items, salt);
    std::sort(items.begin(), items.end(),
              [](const pool::MultimodalItem& a, const pool::MultimodalItem& b) { return a.offset < b.offset; });
    keys.multimodal = std::move(items);
    const pool::HashAlgo algo = hasher.algo();
    const uint32_t be = ev.block_size;
    for (size_t j = 0; j < ev.block_hashes.size(); ++j) {
        const uint64_t e = ev.block_hashes[j];
        const uint64_t start = chain.pos, end = start + be;
        const uint8_t tiers = tiers_of(e);
        auto& tail = chain.tail;
        tail.tokens.insert(tail.tokens.end(), ev.token_ids.begin() + j * be, ev.token_ids.begin() + (j + 1) * be);
        tail.contributors.push_back(Contributor{e, start, end});
        std::vector<uint64_t> own;
        while (tail.tokens.size() >= index_block) {
            const uint64_t s = end - tail.tokens.size();
            keys.cache_salt = s == 0 ? salt : std::string();
            chain.hash = hasher.hash_block(chain.hash, std::span<const int32_t>(tail.tokens.data(), index_block), s, keys);
            const uint64_t key = chain.hash.event_value(algo);
            for (const Contributor& c : tail.contributors) {
                if (!(c.start < s + index_block && s < c.end)) continue;
                if (c.engine_key == e) {
                    own.push_back(key);
                    continue;
                }
                auto it = blocks.find(c.engine_key);  // an earlier block, now part of a complete one
                if (it != blocks.end() && it->second.resolved) it->second.keys.push_back(key);
            }
            tail.tokens.erase(tail.tokens.begin(), tail.tokens.begin() + index_block);
            const uint64_t boundary = s + index_block;
            std::erase_if(tail.contributors, [&](const Contributor& c) { return c.end <= boundary; });
        }
        chain.pos = end;
        if (tail.tokens.empty()) {
            tail.salt.clear();
            tail.mm.clear();
        } else {
            const uint64_t boundary = end - tail.tokens.size();
            tail.salt = boundary == 0 ? salt : std::string();
            tail.mm.clear();
            for (const auto& m : keys.multimodal)
                if (m.offset + m.length > boundary) tail.mm.push_back(m);
        }
        if (tiers == 0) {
            blocks.erase(e);  // removed before its parent came: nothing to map
            continue;
        }
        EngineBlock& b = blocks[e];
        // Tiers it was already counted in (a replayed or repeated store) are not counted twice.
        const uint8_t had = (b.resolved && b.counted) ? b.tiers : 0;
        for (unsigned t = 0; t < kNumTiers; ++t) {
            if (!(tiers & (1u << t))) continue;
            for (uint64_t key : own) {
                if (counted && !(had & (1u << t))) ++refs[key][t];
                add(key, static_cast<Medium>(t));
            }
        }
        b.counted = counted;
        b.chain = chain.hash;
        b.pos = chain.pos;
        b.tiers = tiers;
        b.resolved = true;
        b.keys = std::move(own);
        b.tail = tail.tokens.empty() ? nullptr : std::make_unique<Tail>(tail);
    }
    return chain;
}

Chain chain_of(const EngineBlock& b) {
    Chain c;
    c.hash = b.chain;
    c.pos = b.pos;
    if (b.tail) c.tail = *b.tail;
    return c;
}

}  // namespace

void Index::plan_batch(PodState& st, PodId pod, uint16_t rank, ModelId model, const EventBatch& batch, Plan& plan) {
    const uint16_t req_model = model_field(model, KeyKind::kRequest);
    const uint16_t eng_model = model_field(model, KeyKind::kEngine);
    auto add_ops_for = [&](uint64_t key, uint16_t m, uint8_t tiers, Plan::Type type) {
        for (unsigned t = 0; t < kNumTiers; ++t)
            if (tiers & (1u << t)) plan.add(type, key, m, make_ref(pod, rank, static_cast<Medium>(t), false));
    };
    // Heals the orphans waiting for `parent`, then theirs (a worklist: no recursion depth to bound).
    auto heal_below = [&](uint64_t parent_key, const Chain& parent_chain) {
        std::vector<std::pair<uint64_t, Chain>> work{{parent_key, parent_chain}};
        for (size_t guard = 0; !work.empty() && guard <= st.orphans.size() + 1; ++guard) {
            auto [key, chain] = std::move(work.back());
            work.pop_back();
            auto waiting = st.orphans_by_parent.find(key);
            if (waiting == st.orphans_by_parent.end()) continue;
            std::vector<uint64_t> ids = std::move(waiting->second);
            st.orphans_by_parent.erase(waiting);
            for (uint64_t id : ids) {
                auto o = st.orphans.find(id);
                if (o == st.orphans.end()) continue;
                Orphan orphan = std::move(o->second);
                st.orphans.erase(o);
                st.orphan_blocks -= orphan.event.block_hashes.size();
                // Its blocks leave the engine-key entries for request keys, tier by tier.
                std::vector<uint8_t> tiers;
                for (uint64_t e : orphan.event.block_hashes) {
                    auto b = st.blocks.find(e);
                    const uint8_t t = (b != st.blocks.end() && !b->second.resolved) ? b->second.tiers : 0;
                    tiers.push_back(t);
                    add_ops_for(e, eng_model, t, Plan::Type::kRemove);
                }
                size_t j = 0;
                std::vector<uint64_t> hashes = orphan.event.block_hashes;
                Chain after = derive(
                    hasher_, config_.block_size, chain, orphan.event, st.blocks, st.key_refs,
                    [&](uint64_t) { return tiers[j++]; },
                    [&](uint64_t k, Medium t) { plan.add(Plan::Type::kAdd, k, req_model, make_ref(pod, rank, t, false)); });
                orphans_healed_.fetch_add(hashes.size(), std::memory_order_relaxed);
                // Each of its blocks may be the parent of further orphans.
                if (!hashes.empty()) work.emplace_back(hashes.back(), after);
                for (size_t i = 0; i + 1 < hashes.size(); ++i) {
                    auto b = st.blocks.find(hashes[i]);
                    if (b != st.blocks.end() && st.orphans_by_parent.count(hashes[i]))
                        work.emplace_back(hashes[i], chain_of(b->second));
                }
            }
        }
    };

    for (const Event& event : batch.events) {
        if (const auto* stored = std::get_if<BlockStored>(&event)) {
            const uint8_t bit = tier_bit(stored->medium);
            blocks_stored_.fetch_add(stored->block_hashes.size(), std::memory_order_relaxed);
            if (config_.engine_keys_direct && stored->block_size == config_.block_size) {
                for (uint64_t e : stored->block_hashes) add_ops_for(e, req_model, bit, Plan::Type::kAdd);
                continue;
            }
            if (stored->token_ids.empty()) {  // an offload: the same blocks in another tier
                for (uint64_t e : stored->block_hashes) {
                    EngineBlock& b = st.blocks[e];
                    const bool fresh = !(b.tiers & bit);
                    b.tiers |= bit;
                    if (b.resolved)
                        for (uint64_t k : b.keys) {
                            if (b.counted && fresh) ++st.key_refs[k][size_t(stored->medium)];
                            add_ops_for(k, req_model, bit, Plan::Type::kAdd);
                        }
                    else
                        add_ops_for(e, eng_model, bit, Plan::Type::kAdd);
                }
                continue;
            }
            std::optional<Chain> start;
            if (!stored->parent_block_hash) {
                start.emplace();
                start->hash = hasher_.none_hash();
            } else if (auto p = st.blocks.find(*stored->parent_block_hash);
                       p != st.blocks.end() && p->second.resolved) {
                start = chain_of(p->second);
            }
            if (!start) {
                // Unknown parent: index by engine key now, keep the event to heal later.
                for (uint64_t e : stored->block_hashes) {
                    EngineBlock& b = st.blocks[e];
                    b.tiers |= bit;
                    add_ops_for(e, eng_model, bit, Plan::Type::kAdd);
                }
                const uint64_t id = st.next_orphan++;
                st.orphans.emplace(id, Orphan{*stored->parent_block_hash, *stored, true});
                st.orphans_by_parent[*stored->parent_block_hash].push_back(id);
                st.orphan_order.push_back(id);
                st.orphan_blocks += stored->block_hashes.size();
                for (size_t guard = 0; st.orphan_blocks > config_.max_orphan_blocks && !st.orphan_order.empty() &&
                                       guard < st.orphan_order.size() + 1;
                     ++guard) {
                    const uint64_t old = st.orphan_order.front();
                    st.orphan_order.pop_front();
                    auto o = st.orphans.find(old);
                    if (o == st.orphans.end()) continue;  // healed already
                    st.orphan_blocks -= o->second.event.block_hashes.size();
                    orphans_dropped_.fetch_add(o->second.event.block_hashes.size(), std::memory_order_relaxed);
                    st.orphans.erase(o);  // its blocks stay under their engine keys
                }
                continue;
            }
            // A block stored again (replay, another tier) keeps the tiers it had.
            std::vector<uint8_t> tiers;
            for (uint64_t e : stored->block_hashes) {
                auto b = st.blocks.find(e);
                uint8_t t = bit;
                if (b != st.blocks.end()) {
                    if (!b->second.resolved) add_ops_for(e, eng_model, b->second.tiers, Plan::Type::kRemove);
                    t |= b->second.tiers;
                }
                tiers.push_back(t);
            }
            size_t j = 0;
            Chain after = derive(
                hasher_, config_.block_size, std::move(*start), *stored, st.blocks, st.key_refs, [&](uint64_t) { return tiers[j++]; },
                [&](uint64_t k, Medium t) { plan.add(Plan::Type::kAdd, k, req_model, make_ref(pod, rank, t, false)); });
            if (!st.orphans_by_parent.empty()) {
                const auto& hs = stored->block_hashes;
                for (size_t i = 0; i < hs.size(); ++i) {
                    if (!st.orphans_by_parent.count(hs[i])) continue;
                    auto b = st.blocks.find(hs[i]);
                    if (i + 1 == hs.size()) heal_below(hs[i], after);
                    else if (b != st.blocks.end()) heal_below(hs[i], chain_of(b->second));
                }
            }
        } else if (const auto* removed = std::get_if<BlockRemoved>(&event)) {
            const uint8_t bit = tier_bit(removed->medium);
            blocks_removed_.fetch_add(removed->block_hashes.size(), std::memory_order_relaxed);
            for (uint64_t e : removed->block_hashes) {
                auto b = st.blocks.find(e);
                if (b == st.blocks.end()) {
                    // Direct keys, or an orphan's block whose record went: remove what there may be.
                    add_ops_for(e, config_.engine_keys_direct ? req_model : eng_model, bit, Plan::Type::kRemove);
                    continue;
                }
                if (!(b->second.tiers & bit)) continue;
                b->second.tiers &= static_cast<uint8_t>(~bit);
                if (b->second.resolved)
                    for (uint64_t k : b->second.keys) {
                        if (auto r = st.key_refs.find(k); b->second.counted && r != st.key_refs.end()) {
                            uint32_t& n = r->second[size_t(removed->medium)];
                            if (n > 1) {  // another engine block of this pod still holds it
                                --n;
                                continue;
                            }
                            n = 0;
                            if (std::all_of(r->second.begin(), r->second.end(), [](uint32_t x) { return x == 0; }))
                                st.key_refs.erase(r);
                        }
                        add_ops_for(k, req_model, bit, Plan::Type::kRemove);
                    }
                else
                    add_ops_for(e, eng_model, bit, Plan::Type::kRemove);
                // A mapping nobody holds is dropped, unless an orphan still needs it as its parent.
                if (b->second.tiers == 0 && !st.orphans_by_parent.count(e)) st.blocks.erase(b);
            }
        } else {
            clears_.fetch_add(1, std::memory_order_relaxed);
            st.added.clear();
            st.blocks.clear();
            st.key_refs.clear();
            st.orphans.clear();
            st.orphans_by_parent.clear();
            st.orphan_order.clear();
            st.orphan_blocks = 0;
            plan.ops.push_back(Plan::Op{Plan::Type::kClearPodRank, model, make_ref(pod, rank, Medium::kGpu, false), 0, 0, 0});
            plan.all_shards = true;
        }
    }
}

void Index::execute(Plan& plan) {
    if (redis_) return redis_execute(plan, nullptr);
    if (plan.ops.empty()) return;
    ShardSet set;
    if (plan.all_shards) {
        set.add_all(static_cast<uint32_t>(shards_.size()));
    } else {
        for (const auto& op : plan.ops) set.add(shard_shift_ == 64 ? 0 : static_cast<uint32_t>(op.h >> shard_shift_));
    }
    std::vector<uint32_t> ids;
    set.each([&](uint32_t id) { ids.push_back(id); });
    // Ascending order for every writer and reader: no deadlock.
    for (uint32_t id : ids) shards_[id]->mu.lock();
    struct Unlock {
        Index* self;
        std::vector<uint32_t>& ids;
        ~Unlock() {
            for (auto it = ids.rbegin(); it != ids.rend(); ++it) self->shards_[*it]->mu.unlock();
        }
    } unlock{this, ids};
    const uint64_t t = now();
    for (uint32_t id : ids) shards_[id]->expire(t);
    // The score cache's invalidation: every key this batch adds to or removes from (clears and budget
    // evictions bump theirs as they go). Under the shards' exclusive locks, see Generations.
    if (gens_ != nullptr)
        for (const auto& op : plan.ops)
            if (op.type == Plan::Type::kAdd || op.type == Plan::Type::kRemove) gens_->bump(op.h);
    for (const auto& op : plan.ops) {
        switch (op.type) {
            case Plan::Type::kAdd: {
                Shard& s = *shards_[shard_shift_ == 64 ? 0 : op.h >> shard_shift_];
                s.add(op.h, op.key, op.model, op.ref, op.expiry);
                s.enforce_budget(gens_);
                break;
            }
            case Plan::Type::kRemove: {
                Shard& s = *shards_[shard_shift_ == 64 ? 0 : op.h >> shard_shift_];
                const uint32_t idx = s.find(op.h, op.key, op.model);
                if (idx != kNone) s.remove_if(idx, [&](Ref r) { return r == op.ref; });
                break;
            }
            case Plan::Type::kClearPodRank: {
                const PodId pod = ref_pod(op.ref);
                const uint16_t rank = ref_rank(op.ref);
                for (uint32_t id : ids)
                    shards_[id]->scan_remove([&](const Shard::Entry& e, Ref r) {
                        return (e.model & 0x7FFF) == op.model && ref_pod(r) == pod && ref_rank(r) == rank && !ref_spec(r);
                    }, gens_);
                break;
            }
            case Plan::Type::kRemovePod: {
                const PodId pod = ref_pod(op.ref);
                for (uint32_t id : ids)
                    shards_[id]->scan_remove([&](const Shard::Entry&, Ref r) { return ref_pod(r) == pod; }, gens_);
                break;
            }
        }
    }
}

// ---- public writes ------------------------------------------------------------------------------------
void Index::apply(PodId pod, ModelId model, const EventBatch& batch) {
    {
        std::lock_guard lock(names_mutex_);
        if (pod >= pods_.size() || pods_[pod].empty()) fail(KVC_ERR_NOT_FOUND, "index: unknown pod id");
        if (model >= models_.size()) fail(KVC_ERR_NOT_FOUND, "index: unknown model id");
    }
    const int64_t rank64 = batch.data_parallel_rank.value_or(0);
    if (rank64 < 0 || rank64 > kMaxRank)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: data_parallel_rank " + std::to_string(rank64) + " out of 0..4095");
    // Validate everything before anything changes, so a bad batch applies nothing.
    for (size_t i = 0; i < batch.events.size(); ++i) {
        const auto* s = std::get_if<BlockStored>(&batch.events[i]);
        if (!s) continue;
        if (s->block_hashes.empty() || s->block_size == 0 ||
            (!s->token_ids.empty() && s->token_ids.size() != s->block_hashes.size() * s->block_size))
            fail(KVC_ERR_INVALID_ARGUMENT, "index: event " + std::to_string(i) + ": inconsistent BlockStored");
        for (int32_t t : s->token_ids)
            if (t < 0) fail(KVC_ERR_INVALID_ARGUMENT, "index: event " + std::to_string(i) + ": negative token id");
    }
    const auto rank = static_cast<uint16_t>(rank64);
    PodState& st = pod_state(pod, rank, model);
    std::lock_guard lock(st.mu);  // batches of one (pod, rank, model) apply in order
    Plan plan;
    size_t blocks = 0;
    for (const Event& e : batch.events) {
        if (const auto* s = std::get_if<BlockStored>(&e)) blocks += s->block_hashes.size();
        else if (const auto* r = std::get_if<BlockRemoved>(&e)) blocks += r->block_hashes.size();
    }
    plan.ops.reserve(blocks);
    plan_batch(st, pod, rank, model, batch, plan);
    if (redis_) redis_execute(plan, &st.unsent);
    else execute(plan);
    batches_.fetch_add(1, std::memory_order_relaxed);
    unknown_events_.fetch_add(batch.unknown_events, std::memory_order_relaxed);
}

void Index::remove_pod(PodId pod) {
    std::vector<PodState*> states;
    {
        std::lock_guard lock(states_mutex_);
        for (auto it = state_map_->map.begin(); it != state_map_->map.end(); ++it)
            if ((it->first >> 32) == pod) states.push_back(it->second);
    }
    std::vector<std::unique_lock<std::mutex>> locks;
    for (PodState* s : states) locks.emplace_back(s->mu);
    for (PodState* s : states) {
        s->added.clear();
        s->blocks.clear();
        s->key_refs.clear();
        s->orphans.clear();
        s->orphans_by_parent.clear();
        s->orphan_order.clear();
        s->orphan_blocks = 0;
        s->unsent.ops.clear();
    }
    Plan plan;
    plan.ops.push_back(Plan::Op{Plan::Type::kRemovePod, 0, make_ref(pod, 0, Medium::kGpu, false), 0, 0, 0});
    plan.all_shards = true;
    execute(plan);
    std::lock_guard lock(names_mutex_);
    if (pod < pods_.size() && !pods_[pod].empty()) {
        pods_[pod].clear();
        free_pods_.push_back(pod);
    }
}

void Index::add_speculative(ModelId model, std::span<const uint64_t> keys, PodId pod, uint64_t ttl_ns) {
    {
        std::lock_guard lock(names_mutex_);
        if (pod >= pods_.size() || pods_[pod].empty()) fail(KVC_ERR_NOT_FOUND, "index: unknown pod id");
        if (model >= models_.size()) fail(KVC_ERR_NOT_FOUND, "index: unknown model id");
    }
    const uint64_t expiry = redis_ ? ttl_ns : now() + ttl_ns;  // Redis: the server's clock makes it absolute
    Plan plan;
    for (uint64_t k : keys)
        plan.add(Plan::Type::kAdd, k, model_field(model, KeyKind::kRequest), make_ref(pod, 0, Medium::kGpu, true), expiry);
    execute(plan);
}

// ---- llm-d's explicit writes --------------------------------------------------------------------------
namespace {

// Holders sorted by (pod, rank): each run is one PodState's share of an add or evict.
std::vector<Holder> by_pod_and_rank(std::span<const Holder> holders) {
    std::vector<Holder> sorted(holders.begin(), holders.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const Holder& a, const Holder& b) {
        return a.pod != b.pod ? a.pod < b.pod : a.rank < b.rank;
    });
    return sorted;
}

template <class Fn>
void each_pod_and_rank(const std::vector<Holder>& sorted, Fn&& fn) {
    for (size_t first = 0, end = 0; first < sorted.size(); first = end) {
        end = first + 1;
        while (end < sorted.size() && sorted[end].pod == sorted[first].pod && sorted[end].rank == sorted[first].rank)
            ++end;
        fn(std::span<const Holder>(sorted.data() + first, end - first));
    }
}

}  // namespace

void Index::check_holders(ModelId model, std::span<const Holder> holders) const {
    std::lock_guard lock(names_mutex_);
    if (model >= models_.size()) fail(KVC_ERR_NOT_FOUND, "index: unknown model id");
    for (const Holder& h : holders) {
        if (h.pod >= pods_.size() || pods_[h.pod].empty()) fail(KVC_ERR_NOT_FOUND, "index: unknown pod id");
        if (h.rank > kMaxRank) fail(KVC_ERR_INVALID_ARGUMENT, "index: data-parallel rank must be 0..4095");
        if (static_cast<size_t>(h.tier) >= kNumTiers) fail(KVC_ERR_INVALID_ARGUMENT, "index: unknown tier");
    }
}

void Index::check_key_counts(size_t ne, size_t nr) {
    if (nr == 0) fail(KVC_ERR_INVALID_ARGUMENT, "index: add needs at least one request key");
    if (ne != 0 && ne % nr != 0 && nr % ne != 0)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: " + std::to_string(ne) + " engine keys do not map onto " +
                                           std::to_string(nr) + " request keys (equal counts, or one a multiple of the other)");
}

void Index::add(ModelId model, std::span<const uint64_t> engine_keys, std::span<const uint64_t> request_keys,
                std::span<const Holder> holders) {
    const size_t ne = engine_keys.size(), nr = request_keys.size();
    check_key_counts(ne, nr);
    if (holders.empty()) fail(KVC_ERR_INVALID_ARGUMENT, "index: add needs at least one entry");
    for (const Holder& h : holders)
        if (h.speculative) fail(KVC_ERR_INVALID_ARGUMENT, "index: add takes confirmed holders; see add_speculative");
    check_holders(model, holders);
    const uint16_t req_model = model_field(model, KeyKind::kRequest);
    auto plan_adds = [&](Plan& plan, std::span<const Holder> hs) {
        plan.ops.reserve(plan.ops.size() + nr * hs.size());
        for (const Holder& h : hs)
            for (uint64_t k : request_keys) plan.add(Plan::Type::kAdd, k, req_model, make_ref(h.pod, h.rank, h.tier, false));
    };
    if (ne == 0) {
        Plan plan;
        plan_adds(plan, holders);
        execute(plan);
        return;
    }
    each_pod_and_rank(by_pod_and_rank(holders), [&](std::span<const Holder> hs) {
        uint8_t tiers = 0;
        for (const Holder& h : hs) tiers |= tier_bit(h.tier);
        PodState& st = pod_state(hs[0].pod, hs[0].rank, model);
        std::lock_guard lock(st.mu);  // ordered with the pod's batches, as one of them
        Plan plan;
        plan_adds(plan, hs);
        execute(plan);
        for (size_t i = 0; i < ne; ++i) {
            // Request keys [first, first + count) of engine key i, by the length rule in index.h.
            const size_t first = ne >= nr ? i / (ne / nr) : i * (nr / ne);
            const size_t count = ne >= nr ? 1 : nr / ne;
            PodState::Added& a = st.added[engine_keys[i]];
            a.tiers |= tiers;
            for (size_t k = first; k < first + count; ++k)
                if (std::find(a.keys.begin(), a.keys.end(), request_keys[k]) == a.keys.end())
                    a.keys.push_back(request_keys[k]);
        }
    });
}

void Index::evict(ModelId model, uint64_t key, KeyKind kind, std::span<const Holder> holders) {
    if (holders.empty()) fail(KVC_ERR_INVALID_ARGUMENT, "index: evict needs at least one entry");
    check_holders(model, holders);
    const uint16_t req_model = model_field(model, KeyKind::kRequest);
    // The holder's entry, and the pod's speculative one where the holder is (rank 0, gpu).
    auto plan_removal = [&](Plan& plan, uint64_t k, const Holder& h) {
        plan.add(Plan::Type::kRemove, k, req_model, make_ref(h.pod, h.rank, h.tier, false));
        if (h.rank == 0 && h.tier == Medium::kGpu)
            plan.add(Plan::Type::kRemove, k, req_model, make_ref(h.pod, 0, Medium::kGpu, true));
    };
    if (kind == KeyKind::kRequest) {
        Plan plan;
        for (const Holder& h : holders) plan_removal(plan, key, h);
        execute(plan);
        return;
    }
    each_pod_and_rank(by_pod_and_rank(holders), [&](std::span<const Holder> hs) {
        PodState& st = pod_state(hs[0].pod, hs[0].rank, model);
        std::lock_guard lock(st.mu);
        Plan plan;
        for (const Holder& h : hs) {
            const uint8_t bit = tier_bit(h.tier);
            if (auto a = st.added.find(key); a != st.added.end() && (a->second.tiers & bit)) {
                for (uint64_t k : a->second.keys) plan_removal(plan, k, h);
                a->second.tiers &= static_cast<uint8_t>(~bit);
                if (a->second.tiers == 0) st.added.erase(a);
                continue;
            }
            // Not added explicitly: the engine's own removal of the block, through the events' mapping.
            EventBatch removal;
            removal.events.emplace_back(BlockRemoved{{key}, h.tier});
            plan_batch(st, h.pod, h.rank, model, removal, plan);
        }
        execute(plan);
    });
}

void Index::remove_speculative(ModelId model, std::span<const uint64_t> keys, PodId pod) {
    const Holder h[1] = {Holder{pod, 0, Medium::kGpu, true}};
    check_holders(model, h);
    const uint16_t req_model = model_field(model, KeyKind::kRequest);
    Plan plan;
    for (uint64_t k : keys) plan.add(Plan::Type::kRemove, k, req_model, make_ref(pod, 0, Medium::kGpu, true));
    execute(plan);
}

void Index::expire_speculative() {
    const uint64_t t = now();
    for (auto& s : shards_) {
        std::unique_lock lock(s->mu);
        s->expire(t);
    }
}

// ---- reads --------------------------------------------------------------------------------------------
std::vector<uint64_t> Index::request_keys(std::span<const int32_t> tokens, const pool::ExtraKeys& keys) const {
    for (int32_t t : tokens)
        if (t < 0) fail(KVC_ERR_INVALID_ARGUMENT, "index: negative token id");
    const auto hashes = hasher_.hash_blocks(tokens, config_.block_size, keys);
    std::vector<uint64_t> out(hashes.size());
    for (size_t i = 0; i < hashes.size(); ++i) out[i] = hashes[i].event_value(hasher_.algo());
    return out;
}

namespace {
// Shared locks of the shards of a window of keys, ascending (the writers' order).
struct ReadWindow {
    ShardSet set;
    const std::vector<std::unique_ptr<Index::Shard>>* shards = nullptr;
    void lock(const std::vector<std::unique_ptr<Index::Shard>>& all, std::span<const uint32_t> shard_of) {
        shards = &all;
        for (uint32_t id : shard_of) set.add(id);
        set.each([&](uint32_t id) { all[id]->mu.lock_shared(); });
    }
    void unlock() {
        if (!shards) return;
        set.each([&](uint32_t id) { (*shards)[id]->mu.unlock_shared(); });
        shards = nullptr;
    }
    ~ReadWindow() { unlock(); }
};
constexpr size_t kFirstWindow = 16;
}  // namespace

size_t Index::score(ModelId model, std::span<const uint64_t> keys, std::span<const PodId> candidates,
                    std::span<PodScore> out, const ScoreParams& params, KeyKind kind,
                    std::span<const double> decode_load, ScoreTrace* trace) const {
    if (!candidates.empty() && out.size() < candidates.size())
        fail(KVC_ERR_BUFFER_TOO_SMALL, "index: score needs one output per candidate");
    if (!decode_load.empty() && decode_load.size() != candidates.size())
        fail(KVC_ERR_INVALID_ARGUMENT, "index: decode_load needs one value per candidate");
    if (candidates.size() > 0xFFFE) fail(KVC_ERR_INVALID_ARGUMENT, "index: too many candidates");
    for (PodId p : candidates)
        if (p == kNoPod) fail(KVC_ERR_INVALID_ARGUMENT, "index: candidate is not a pod");
    if (redis_) return redis_score(model, keys, candidates, out, params, kind, decode_load);
    const uint16_t mf = model_field(model, kind);
    using Cand = ScoreTally;
    // Per-thread scratch, so a call allocates nothing once warm: candidate slot by pod id (0xFFFF: not
    // a candidate, restored before returning), keys' hashes and shards, candidates, the candidates
    // holding the current key.
    struct Scratch {
        std::vector<uint16_t> slot_of = std::vector<uint16_t>(kMaxPods + 1, 0xFFFF);
        std::vector<uint32_t> shard_of;
        std::vector<uint64_t> hash_of;
        std::vector<Cand> cands;
        std::vector<uint16_t> slot_for;  // per candidate (duplicates share a slot)
        std::vector<uint16_t> hits = std::vector<uint16_t>(kMaxPods + 1);  // at most one per candidate
    };
    thread_local Scratch tl;
    Scratch& sc = tl;  // one thread-local lookup, not one per use
    auto& slot_of = sc.slot_of;
    auto& cands = sc.cands;
    uint16_t* const hits = sc.hits.data();
    cands.clear();
    sc.slot_for.clear();
    bool open = candidates.empty();  // candidates come from key 0's holders
    for (PodId p : candidates) {
        if (slot_of[p] == 0xFFFF) {
            slot_of[p] = static_cast<uint16_t>(cands.size());
            cands.push_back(Cand{p, 0, 0, 0});
        }
        sc.slot_for.push_back(slot_of[p]);
    }
    sc.hash_of.resize(keys.size());
    sc.shard_of.resize(keys.size());
    const uint64_t* hash_of = sc.hash_of.data();
    const uint32_t* shard_of = sc.shard_of.data();
    for (size_t i = 0; i < keys.size(); ++i) {
        sc.hash_of[i] = mix(keys[i], mf);
        sc.shard_of[i] = shard_shift_ == 64 ? 0 : static_cast<uint32_t>(sc.hash_of[i] >> shard_shift_);
    }
    uint64_t t = 0;  // read only when a speculative holder is met
    uint64_t deadline = UINT64_MAX;  // the earliest expiry of a live speculative holder met
    const auto live = [&](const Shard& s, uint32_t idx, Ref r) {
        if (t == 0) t = now();
        const uint64_t expiry = s.spec_expiry(idx, r);
        if (expiry <= t) return false;
        deadline = std::min(deadline, expiry);
        return true;
    };
    // A holder's weight by its low 4 bits (tier, speculative), copied out of params so that the
    // stores into cands cannot make the compiler reload it per holder.
    std::array<float, 16> weight_of{};
    for (uint32_t b = 0; b < 16; ++b) {
        const uint32_t tier = (b >> 1) & 7;
        weight_of[b] = (b & 1) ? params.tier_weight[0] : tier < kNumTiers ? params.tier_weight[tier] : 0.0f;
    }
    bool running = !keys.empty() && (open || !cands.empty());
    size_t i = 0, examined = 0;
    const Generations* const gens = trace != nullptr ? trace->gens : nullptr;
    uint64_t gen_sum = 0;
    for (size_t window_end = std::min(keys.size(), kFirstWindow); running && i < keys.size();
         window_end = keys.size()) {
        ReadWindow window;
        window.lock(shards_, std::span<const uint32_t>(shard_of + i, window_end - i));
        for (; i < window_end; ++i) {
            examined = i + 1;
            if (gens != nullptr) {  // under the shard's shared lock: consistent with the entry read below
                const uint32_t b = Generations::bucket(hash_of[i]);
                gen_sum += gens->read(b);
                trace->buckets->push_back(b);
            }
            const Shard& s = *shards_[shard_of[i]];
            const uint32_t idx = s.find(hash_of[i], keys[i], mf);
            if (idx == kNone) {
                running = false;
                break;
            }
            s.mark_referenced(idx);
            const Shard::Entry& e = s.slab[idx];
            const Ref* rs = s.refs(e);
            size_t nhits = 0;
            const uint32_t count = e.count();
            for (uint32_t h = 0; h < count; ++h) {
                const Ref r = rs[h];
                if (ref_spec(r) && !live(s, idx, r)) continue;
                uint16_t slot = slot_of[ref_pod(r)];
                if (slot == 0xFFFF) {
                    if (!open) continue;
                    slot = static_cast<uint16_t>(cands.size());
                    slot_of[ref_pod(r)] = slot;
                    cands.push_back(Cand{ref_pod(r), 0, 0, 0});
                }
                Cand& c = cands[slot];
                if (c.blocks != i) continue;  // its run ended before this key
                if (c.best == 0) hits[nhits++] = slot;  // once per candidate: best is 0 until committed
                c.best = std::max(c.best, weight_of[r & 15]);
            }
            open = false;
            // Only the candidates holding this key with a positive weight go on; none: the walk is over.
            size_t going = 0;
            for (size_t k = 0; k < nhits; ++k) {
                Cand& c = cands[hits[k]];
                if (c.best > 0) {
                    c.score += c.best;
                    ++c.blocks;
                    ++going;
                }
                c.best = 0;
            }
            if (going == 0) {
                running = false;
                break;
            }
        }
    }
    for (const Cand& c : cands) slot_of[c.pod] = 0xFFFF;
    if (trace != nullptr) {
        trace->keys_examined = examined;
        trace->gen_sum = gen_sum;
        trace->speculative_deadline = deadline;
    }
    const size_t prompt_blocks = keys.size();
    return finish_scores(cands, sc.slot_for, candidates, out, prompt_blocks, params.prefill_weight, decode_load);
}

size_t finish_scores(std::span<ScoreTally> tallies, std::span<const uint16_t> slot_for,
                     std::span<const PodId> candidates, std::span<PodScore> out, size_t prompt_blocks,
                     double prefill_weight, std::span<const double> decode_load) {
    if (!candidates.empty()) {
        for (size_t k = 0; k < candidates.size(); ++k) {
            const ScoreTally& c = tallies[slot_for[k]];
            const double cost =
                decode_load.empty() ? 0.0 : load_cost(prompt_blocks, c.blocks, prefill_weight, decode_load[k]);
            out[k] = PodScore{candidates[k], c.blocks, c.score, cost};
        }
        return candidates.size();
    }
    std::sort(tallies.begin(), tallies.end(), [](const ScoreTally& a, const ScoreTally& b) {
        return a.score != b.score ? a.score > b.score : a.pod < b.pod;
    });
    const size_t n = std::min(out.size(), tallies.size());
    for (size_t k = 0; k < n; ++k) out[k] = PodScore{tallies[k].pod, tallies[k].blocks, tallies[k].score, 0};
    return n;
}

size_t Index::score_tokens(ModelId model, std::span<const int32_t> tokens, const pool::ExtraKeys& extra,
                           std::span<const PodId> candidates, std::span<PodScore> out, const ScoreParams& params,
                           std::span<const double> decode_load) const {
    if (score_cache_ != nullptr)
        return score_cache_->score_tokens(*this, model, tokens, extra, candidates, out, params, decode_load);
    const auto keys = request_keys(tokens, extra);
    return score(model, keys, candidates, out, params, KeyKind::kRequest, decode_load);
}

LookupResult Index::lookup(ModelId model, std::span<const uint64_t> keys, std::span<const PodId> filter,
                           KeyKind kind) const {
    if (redis_) return redis_lookup(model, keys, filter, kind);
    const uint16_t mf = model_field(model, kind);
    LookupResult res;
    res.offsets.push_back(0);
    std::vector<uint64_t> hs(keys.size());
    std::vector<uint32_t> sh(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
        hs[i] = mix(keys[i], mf);
        sh[i] = shard_shift_ == 64 ? 0 : static_cast<uint32_t>(hs[i] >> shard_shift_);
    }
    const uint64_t t = now();
    size_t i = 0;
    bool stop = false;
    for (size_t window_end = std::min(keys.size(), kFirstWindow); i < keys.size() && !stop; window_end = keys.size()) {
        ReadWindow window;
        window.lock(shards_, std::span<const uint32_t>(sh.data() + i, window_end - i));
        for (; i < window_end; ++i) {
            const Shard& s = *shards_[sh[i]];
            const uint32_t idx = s.find(hs[i], keys[i], mf);
            const size_t before = res.holders.size();
            if (idx != kNone) {
                s.mark_referenced(idx);
                const Shard::Entry& e = s.slab[idx];
                const Ref* rs = s.refs(e);
                for (uint32_t h = 0; h < e.count(); ++h) {
                    if (ref_spec(rs[h]) && !s.spec_live(idx, rs[h], t)) continue;
                    if (!filter.empty() && std::find(filter.begin(), filter.end(), ref_pod(rs[h])) == filter.end())
                        continue;
                    res.holders.push_back(to_holder(rs[h]));
                }
            }
            if (res.holders.size() == before) {
                stop = true;
                break;
            }
            res.offsets.push_back(static_cast<uint32_t>(res.holders.size()));
            ++res.keys_found;
        }
    }
    return res;
}

std::vector<Holder> Index::holders(ModelId model, uint64_t key, KeyKind kind) const {
    if (redis_) return redis_holders(model, key, kind);
    const uint16_t mf = model_field(model, kind);
    const uint64_t h = mix(key, mf);
    const Shard& s = *shards_[shard_shift_ == 64 ? 0 : h >> shard_shift_];
    std::shared_lock lock(s.mu);
    std::vector<Holder> out;
    const uint32_t idx = s.find(h, key, mf);
    if (idx == kNone) return out;
    const uint64_t t = now();
    const Shard::Entry& e = s.slab[idx];
    for (uint32_t i = 0; i < e.count(); ++i) {
        const Ref r = s.refs(e)[i];
        if (ref_spec(r) && !s.spec_live(idx, r, t)) continue;
        out.push_back(to_holder(r));
    }
    return out;
}

IndexCounters Index::counters() const {
    IndexCounters c;
    for (const auto& s : shards_) {
        std::shared_lock lock(s->mu);
        c.keys += s->used;
        c.holders += s->holders;
        c.speculative += s->spec.size();
        c.charged_bytes += s->charged;
        c.memory_bytes += s->memory();
        c.evictions += s->evictions;
        c.expired += s->expired;
    }
    {
        std::lock_guard lock(states_mutex_);
        for (const auto& st : states_) {
            std::lock_guard sl(st->mu);
            c.engine_blocks += st->blocks.size() + st->added.size();
            c.orphan_blocks += st->orphan_blocks;
            // Node, key, value and bucket pointer per mapped block, plus its request keys.
            for (const auto& [k, b] : st->blocks)
                c.memory_bytes += sizeof(k) + sizeof(b) + 2 * sizeof(void*) + b.keys.capacity() * 8;
            for (const auto& [k, a] : st->added)
                c.memory_bytes += sizeof(k) + sizeof(a) + 2 * sizeof(void*) + a.keys.capacity() * 8;
        }
    }
    c.batches = batches_.load();
    c.blocks_stored = blocks_stored_.load();
    c.blocks_removed = blocks_removed_.load();
    c.clears = clears_.load();
    c.orphans_healed = orphans_healed_.load();
    c.orphans_dropped = orphans_dropped_.load();
    c.unknown_events = unknown_events_.load();
    if (score_cache_ != nullptr) {
        const ScoreCache::Counters sc = score_cache_->counters();
        c.score_cache_hits = sc.hits;
        c.score_cache_misses = sc.misses;
        c.score_cache_invalidations = sc.invalidations;
    }
    if (redis_) redis_counters(c);
    return c;
}

void Index::check_invariants() const {
    auto bad = [](const std::string& m) { fail(KVC_ERR_INTERNAL, "index invariant: " + m); };
    for (const auto& sp : shards_) {
        const Shard& s = *sp;
        std::shared_lock lock(s.mu);
        uint64_t live = 0, holders = 0, charged = 0;
        for (uint32_t idx = 0; idx < s.slab.size(); ++idx) {
            const Shard::Entry& e = s.slab[idx];
            if (e.meta == 0) continue;
            ++live;
            holders += e.count();
            charged += kKeyCharge + (e.cls() ? kHolderSlotCharge << e.cls() : 0);
            if (e.cls() == 0 && e.count() != 1) bad("inline pod set with " + std::to_string(e.count()) + " holders");
            if (e.cls() != 0 && e.count() > (1u << e.cls())) bad("pod set over its capacity");
            if (s.find(mix(e.key, e.model), e.key, e.model) != idx) bad("entry not reachable from the table");
            if (!s.lru->contains(idx)) bad("entry not in the LRU");
            const Ref* rs = s.refs(e);
            for (uint32_t a = 0; a < e.count(); ++a)
                for (uint32_t b = a + 1; b < e.count(); ++b)
                    if (rs[a] == rs[b]) bad("duplicate holder");
        }
        if (live != s.used) bad("table count differs from live entries");
        if (holders != s.holders) bad("holder count differs");
        if (charged != s.charged) bad("charged bytes differ: " + std::to_string(charged) + " vs " + std::to_string(s.charged));
        if (s.lru->resident() != live) bad("LRU residents differ from live entries");
        if (s.budget != 0 && s.charged > s.budget) bad("shard over its byte budget");
    }
}

}  // namespace kvcore::index
