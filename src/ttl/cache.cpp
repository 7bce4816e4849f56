// SPDX-License-Identifier: Apache-2.0
#include "ttl/cache.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kvcore::ttl {
namespace {

constexpr uint64_t kNsPerMs = 1'000'000;
constexpr uint64_t kMaxMs = 1'000'000'000'000ull;  // KVC_TTL_MAX_MS
// A new key under a full bound retries this many times when other threads keep taking the place that
// its evictions make; beyond it the write fails with KVC_ERR_CAPACITY (never seen outside a stress test).
constexpr unsigned kMaxPutRounds = 64;

constexpr uint64_t kMaxCleanupMs = 86'400'000;  // KVC_TTL_MAX_CLEANUP_INTERVAL_MS: keeps wait_for's deadline in range

void require_ms(uint64_t ms, const char* what, bool zero_ok, uint64_t max) {
    if ((ms == 0 && !zero_ok) || ms > max) {
        fail(KVC_ERR_INVALID_ARGUMENT, std::string(what) + " must be " + (zero_ok ? "0.." : "1..") +
                                           std::to_string(max) + " ms, got " + std::to_string(ms));
    }
}

}  // namespace

void TtlConfig::validate() const {
    require_ms(ttl_ms, "ttl", false, kMaxMs);
    require_ms(negative_ttl_ms, "negative ttl", false, kMaxMs);
    require_ms(cleanup_interval_ms, "cleanup interval", true, kMaxCleanupMs);
    if (max_entries > UINT32_MAX) {
        // Slots are 32-bit in the policies.
        fail(KVC_ERR_INVALID_ARGUMENT, "max entries must be 0..4294967295, got " + std::to_string(max_entries));
    }
    if (static_cast<uint32_t>(policy) > eviction::kLastKind) fail(KVC_ERR_INVALID_ARGUMENT, "unknown eviction policy");
    stats::RecorderConfig recorder;
    recorder.component = component;
    recorder.validate();
}

Key::Key(std::string_view ns_, std::string_view key_) noexcept
    : ns(ns_), key(key_), hash(XXH3_64bits_withSeed(key_.data(), key_.size(), XXH3_64bits(ns_.data(), ns_.size()))) {}

// ---- construction ----

std::shared_ptr<Cache> Cache::create(TtlConfig config) {
    config.validate();
    return std::make_shared<Cache>(std::move(config), true);
}

namespace {
stats::RecorderConfig recorder_config(const TtlConfig& c) {
    stats::RecorderConfig r;
    r.component = c.component;
    r.loads_values = true;
    return r;
}
}  // namespace

Cache::Cache(TtlConfig config, bool)
    : config_(std::move(config)),
      ttl_ns_(config_.ttl_ms * kNsPerMs),
      negative_ttl_ns_(config_.negative_ttl_ms * kNsPerMs),
      shard_count_(config_.max_entries != 0 && config_.max_entries < kShardedFrom ? 1 : kShards),
      shards_(std::make_unique<Shard[]>(shard_count_)),
      recorder_(recorder_config(config_)) {
    for (unsigned i = 0; i < shard_count_; ++i) {
        shards_[i].buckets.resize(16);
        if (config_.max_entries != 0) shards_[i].policy = eviction::make_policy(config_.policy, config_.max_entries);
    }
}

Cache::~Cache() = default;

uint64_t Cache::now_ns() const noexcept {
    return config_.clock != nullptr ? config_.clock(config_.clock_user) : stats::coarse_monotonic_ns();
}

// ---- the index: linear probing, tags, backward-shift deletion ----

uint32_t Cache::find(const Shard& s, const Key& k) const noexcept {
    const size_t mask = s.buckets.size() - 1;
    const auto tag = static_cast<uint32_t>(k.hash >> 32);
    // At most half the buckets are full, so an empty one ends the walk.
    for (size_t i = k.hash & mask;; i = (i + 1) & mask) {
        const Bucket b = s.buckets[i];
        if (b.slot == 0) return kNone;
        if (b.tag == tag && s.entries[b.slot - 1].matches(k)) return b.slot - 1;
    }
}

void Cache::index_insert(Shard& s, uint64_t hash, uint32_t slot) {
    if (2 * (s.indexed + 1) > s.buckets.size()) {
        std::vector<Bucket> old(s.buckets.size() * 2);
        old.swap(s.buckets);
        const size_t mask = s.buckets.size() - 1;
        for (const Bucket& b : old) {
            if (b.slot == 0) continue;
            size_t i = s.entries[b.slot - 1].hash & mask;
            while (s.buckets[i].slot != 0) i = (i + 1) & mask;
            s.buckets[i] = b;
        }
    }
    const size_t mask = s.buckets.size() - 1;
    size_t i = hash & mask;
    while (s.buckets[i].slot != 0) i = (i + 1) & mask;
    s.buckets[i] = {static_cast<uint32_t>(hash >> 32), slot + 1};
    ++s.indexed;
}

void Cache::index_erase(Shard& s, uint32_t slot) noexcept {
    const size_t mask = s.buckets.size() - 1;
    size_t i = s.entries[slot].hash & mask;
    while (s.buckets[i].slot != slot + 1) i = (i + 1) & mask;
    // Shift later members of the probe run back so that no lookup stops early at the hole.
    for (size_t j = (i + 1) & mask; s.buckets[j].slot != 0; j = (j + 1) & mask) {
        const size_t home = s.entries[s.buckets[j].slot - 1].hash & mask;
        const bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            s.buckets[i] = s.buckets[j];
            i = j;
        }
    }
    s.buckets[i] = {};
    --s.indexed;
}

// ---- entries ----

void Cache::remove_locked(Shard& s, uint32_t slot, Removal why, uint64_t now, bool policy_dropped,
                          bool keep_reservation) noexcept {
    Entry& e = s.entries[slot];
    index_erase(s, slot);
    if (s.policy && !policy_dropped) s.policy->erase(slot);
    (void)recorder_.add_bytes(-static_cast<int64_t>(e.bytes()));
    if (why == Removal::kExpired || (why == Removal::kEvicted && now >= e.expires_ns)) {
        recorder_.record_expirations(1);
    } else if (why == Removal::kEvicted) {
        recorder_.record_evictions(1);
    }
    e.used = false;
    e.value = std::string();  // free the value now, not when the slot is reused
    e.text = std::string();
    s.free_slots.push_back(slot);  // capacity reserved in insert_locked: cannot throw
    if (!keep_reservation) stored_.fetch_sub(1, std::memory_order_relaxed);
}

bool Cache::reserve_locked(Shard& s, uint64_t now) noexcept {
    if (config_.max_entries == 0) {
        stored_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    uint64_t n = stored_.load(std::memory_order_relaxed);
    while (n < config_.max_entries) {
        if (stored_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    // The bound is reached: this new key takes the place of the policy's victim in its shard.
    if (const auto victim = s.policy->evict()) {
        remove_locked(s, *victim, Removal::kEvicted, now, true, true);
        return true;
    }
    return false;
}

bool Cache::evict_elsewhere(const Shard& except, uint64_t now) noexcept {
    for (unsigned i = 0; i < shard_count_; ++i) {
        Shard& s = shards_[i];
        if (&s == &except) continue;
        std::lock_guard lock(s.mu);
        if (const auto victim = s.policy->evict()) {
            remove_locked(s, *victim, Removal::kEvicted, now, true, true);
            return true;
        }
    }
    return false;
}

void Cache::insert_locked(Shard& s, const Key& k, std::string_view value, bool valid, uint64_t now) {
    uint32_t slot;
    if (!s.free_slots.empty()) {
        slot = s.free_slots.back();
        s.free_slots.pop_back();
    } else {
        if (s.entries.size() >= UINT32_MAX - 1) fail(KVC_ERR_CAPACITY, "ttl cache shard is full");
        // Room for every slot in the free list first, so that remove_locked never allocates.
        s.free_slots.reserve(s.entries.size() + 1);
        s.entries.emplace_back();
        slot = static_cast<uint32_t>(s.entries.size() - 1);
    }
    Entry& e = s.entries[slot];
    try {
        e.text.reserve(k.ns.size() + k.key.size());
        e.text.assign(k.ns).append(k.key);
        e.value.assign(value);
        e.ns_len = static_cast<uint32_t>(k.ns.size());
        e.hash = k.hash;
        e.valid = valid;
        e.written_ns = now;
        e.expires_ns = expiry(valid, now);
        index_insert(s, k.hash, slot);
        if (s.policy) s.policy->insert(slot, k.hash, false);
    } catch (...) {
        // Leave the shard as it was; only the reservation is the caller's to return.
        if (s.indexed != 0 && find(s, k) == slot) index_erase(s, slot);
        e.text = std::string();
        e.value = std::string();
        s.free_slots.push_back(slot);
        throw;
    }
    e.used = true;
    (void)recorder_.add_bytes(static_cast<int64_t>(e.bytes()));
    recorder_.record_insertions(1);
}

void Cache::replace_locked(Shard& s, uint32_t slot, std::string_view value, bool valid, uint64_t now) {
    Entry& e = s.entries[slot];
    const int64_t delta = static_cast<int64_t>(value.size()) - static_cast<int64_t>(e.value.size());
    e.value.assign(value);
    e.valid = valid;
    e.written_ns = now;
    e.expires_ns = expiry(valid, now);
    if (s.policy) s.policy->touch(slot);
    if (delta != 0) (void)recorder_.add_bytes(delta);
}

void Cache::put(const Key& k, std::string_view value, bool valid) {
    Shard& s = shard_of(k);
    const uint64_t now = now_ns();
    bool reserved = false;  // a place under the bound, taken from another shard's victim
    for (unsigned round = 0;; ++round) {
        {
            std::lock_guard lock(s.mu);
            uint32_t slot = find(s, k);
            if (slot != kNone && now >= s.entries[slot].expires_ns) {
                remove_locked(s, slot, Removal::kExpired, now, false, false);
                slot = kNone;
            }
            if (slot != kNone) {
                if (reserved) stored_.fetch_sub(1, std::memory_order_relaxed);
                replace_locked(s, slot, value, valid, now);
                return;
            }
            if (!reserved) reserved = reserve_locked(s, now);
            if (reserved) {
                try {
                    insert_locked(s, k, value, valid, now);
                } catch (...) {
                    stored_.fetch_sub(1, std::memory_order_relaxed);
                    throw;
                }
                return;
            }
        }
        // Full, and this shard has nothing to evict: take a victim elsewhere (no two shard locks at once).
        if (round == kMaxPutRounds) {
            recorder_.record_memory_pressure();
            fail(KVC_ERR_CAPACITY, "ttl cache: no entry could be evicted for a new key");
        }
        reserved = evict_elsewhere(s, now);
    }
}

// ---- the calls ----

Outcome Cache::lookup_locked(Shard& s, const Key& k, uint64_t now, ValueOut& out) {
    const uint32_t slot = find(s, k);
    if (slot == kNone) return Outcome::kMiss;
    const Entry& e = s.entries[slot];
    if (now >= e.expires_ns) {
        remove_locked(s, slot, Removal::kExpired, now, false, false);
        return Outcome::kMiss;
    }
    out.take(e.value, e.valid, e.written_ns, e.expires_ns);
    if (s.policy) s.policy->touch(slot);
    return e.valid ? Outcome::kHit : Outcome::kNegativeHit;
}

void Cache::record_lookup(Outcome outcome) {
    if (outcome == Outcome::kNegativeHit) {
        recorder_.record_negative_hits(1);
    } else {
        recorder_.record_access(outcome == Outcome::kHit);
    }
}

Outcome Cache::get(const Key& k, ValueOut& out) {
    Shard& s = shard_of(k);
    const uint64_t now = now_ns();
    Outcome outcome;
    {
        std::lock_guard lock(s.mu);
        outcome = lookup_locked(s, k, now, out);
    }
    record_lookup(outcome);
    return outcome;
}

void Cache::set(const Key& k, std::string_view value, bool valid) { put(k, value, valid); }

bool Cache::invalidate(const Key& k) {
    Shard& s = shard_of(k);
    const uint64_t now = now_ns();
    std::lock_guard lock(s.mu);
    const uint32_t slot = find(s, k);
    if (slot == kNone) return false;
    const bool live = now < s.entries[slot].expires_ns;
    remove_locked(s, slot, live ? Removal::kInvalidated : Removal::kExpired, now, false, false);
    return live;
}

void Cache::clear() {
    const uint64_t now = now_ns();
    for (unsigned i = 0; i < shard_count_; ++i) {
        Shard& s = shards_[i];
        std::lock_guard lock(s.mu);
        for (uint32_t slot = 0; slot < s.entries.size(); ++slot) {
            if (s.entries[slot].used) remove_locked(s, slot, Removal::kCleared, now, false, false);
        }
    }
}

uint64_t Cache::size() const {
    const uint64_t now = now_ns();
    uint64_t live = 0;
    for (unsigned i = 0; i < shard_count_; ++i) {
        const Shard& s = shards_[i];
        std::lock_guard lock(s.mu);
        for (const Entry& e : s.entries) live += e.used && now < e.expires_ns;
    }
    return live;
}

uint64_t Cache::cleanup() {
    const uint64_t now = now_ns();
    uint64_t removed = 0;
    for (unsigned i = 0; i < shard_count_; ++i) {
        Shard& s = shards_[i];
        std::lock_guard lock(s.mu);
        for (uint32_t slot = 0; slot < s.entries.size(); ++slot) {
            const Entry& e = s.entries[slot];
            if (e.used && now >= e.expires_ns) {
                remove_locked(s, slot, Removal::kExpired, now, false, false);
                ++removed;
            }
        }
    }
    return removed;
}

std::vector<EntryCopy> Cache::get_all(uint64_t now) const {
    std::vector<EntryCopy> all;
    for (unsigned i = 0; i < shard_count_; ++i) {
        const Shard& s = shards_[i];
        std::lock_guard lock(s.mu);
        for (const Entry& e : s.entries) {
            if (!e.used || now >= e.expires_ns) continue;
            all.push_back({e.text.substr(0, e.ns_len), e.text.substr(e.ns_len), e.value, e.valid, e.written_ns,
                           e.expires_ns});
        }
    }
    std::sort(all.begin(), all.end(),
              [](const EntryCopy& a, const EntryCopy& b) { return std::tie(a.ns, a.key) < std::tie(b.ns, b.key); });
    return all;
}

// ---- loads ----

Cache::BeginResult Cache::begin_load(const Key& k, ValueOut& out) {
    Shard& s = shard_of(k);
    const uint64_t now = now_ns();
    std::shared_ptr<Flight> flight;
    bool mine = false;
    {
        std::lock_guard lock(s.mu);
        const Outcome outcome = lookup_locked(s, k, now, out);
        if (outcome != Outcome::kMiss) {
            record_lookup(outcome);
            return {outcome, nullptr};
        }
        for (const auto& f : s.flights) {
            if (f->hash == k.hash && f->ns == k.ns && f->key == k.key) {
                if (f->owner == std::this_thread::get_id()) {
                    fail(KVC_ERR_INVALID_STATE, "this thread began the unfinished load of this key: finish its ticket first");
                }
                flight = f;
                break;
            }
        }
        if (!flight) {
            flight = std::make_shared<Flight>(k);
            s.flights.push_back(flight);
            mine = true;
        }
    }
    recorder_.record_access(false);
    if (mine) {
        recorder_.record_loads(1);
        out.take({}, false);
        return {Outcome::kMiss, std::make_unique<Ticket>(shared_from_this(), std::move(flight))};
    }
    // The ticket's holder always finishes it (its destructor does when the holder gives up).
    std::unique_lock lock(flight->mu);
    flight->done_cv.wait(lock, [&] { return flight->done; });
    out.take(flight->value, flight->valid);
    return {Outcome::kMiss, nullptr};
}

void Cache::complete(Flight& f, std::string_view value, bool valid) noexcept {
    const Key k(f.ns, f.key);
    Shard& s = shard_of(k);
    {
        std::lock_guard lock(s.mu);
        const auto it = std::find_if(s.flights.begin(), s.flights.end(), [&](const auto& p) { return p.get() == &f; });
        if (it != s.flights.end()) s.flights.erase(it);
    }
    if (!valid) recorder_.record_load_failures(1);
    std::lock_guard lock(f.mu);
    try {
        f.value.assign(value);
        f.valid = valid;
    } catch (...) {  // out of memory for the waiters' copy: they get an empty failure instead of hanging
        f.value.clear();
        f.valid = false;
    }
    f.done = true;
    f.done_cv.notify_all();
}

void Ticket::finish(std::string_view value, bool valid) {
    if (finished_) fail(KVC_ERR_INVALID_STATE, "the load ticket is already finished");
    finished_ = true;
    // Stored before the flight ends, so that a caller arriving in between finds the entry, not a new load.
    try {
        cache_->put(Key(flight_->ns, flight_->key), value, valid);
    } catch (...) {
        cache_->complete(*flight_, value, valid);
        throw;
    }
    cache_->complete(*flight_, value, valid);
}

Ticket::~Ticket() {
    if (finished_) return;
    try {
        finish({}, false);
    } catch (...) {
        // finish() has woken the waiters before rethrowing; nothing is left to undo.
    }
}

// ---- background cleanup ----

CleanupThread::CleanupThread(std::shared_ptr<Cache> cache, uint64_t interval_ms) {
    thread_ = std::thread([this, cache = std::move(cache), interval = std::chrono::milliseconds(interval_ms)] {
        std::unique_lock lock(mu_);
        while (!stop_cv_.wait_for(lock, interval, [&] { return stop_; })) {
            lock.unlock();
            try {
                (void)cache->cleanup();
            } catch (...) {
                // Out of memory in a stats shard: the next round (or a lookup) removes the entries.
            }
            lock.lock();
        }
    });
}

CleanupThread::~CleanupThread() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    thread_.join();
}

}  // namespace kvcore::ttl
