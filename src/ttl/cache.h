/* SPDX-License-Identifier: Apache-2.0 */
// The TTL cache behind kvcore/ttl.h (read its comment for the contract). Entries are spread over shards by
// the hash of (namespace, key), computed once per call; each shard is a cache-line-aligned mutex over an
// open-addressing index into a slab of entries, and (when the cache is bounded) an eviction policy over the
// slab's slots. Keys are compared as (namespace length, namespace bytes, key bytes): never joined into
// one string, so no two pairs collide, and no key string is built for a lookup.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/eviction/policy.h"
#include "stats/recorder.h"

namespace kvcore::ttl {

using ClockFn = uint64_t (*)(void* user);

struct TtlConfig {
    uint64_t ttl_ms = 30000;
    uint64_t negative_ttl_ms = 5000;
    uint64_t max_entries = 10000;  // 0 = unbounded
    eviction::Kind policy = eviction::Kind::kLru;
    uint64_t cleanup_interval_ms = 0;  // 0 = no background thread
    ClockFn clock = nullptr;           // null = CLOCK_MONOTONIC_COARSE
    void* clock_user = nullptr;
    std::string component = "ttl";

    // Throws kvcore::Error(KVC_ERR_INVALID_ARGUMENT) naming the bad field.
    void validate() const;
};

// (namespace, key) with its hash, computed once per call.
struct Key {
    Key(std::string_view ns_, std::string_view key_) noexcept;
    std::string_view ns, key;
    uint64_t hash;
};

enum class Outcome { kMiss, kHit, kNegativeHit };

// A copy of one entry (get_all, and a lookup's result for callers without a buffer).
struct EntryCopy {
    std::string ns, key, value;
    bool valid = false;
    uint64_t written_ns = 0, expires_ns = 0;  // 0: not from a stored entry (another thread's load)
};

// Where a lookup's value goes: copied into buf under the shard lock when it fits, or, when copy is set,
// into that EntryCopy whatever its size.
struct ValueOut {
    uint8_t* buf = nullptr;
    size_t capacity = 0;
    size_t len = 0;
    bool valid = false;
    bool fits = false;  // the value was copied (or is empty)
    EntryCopy* copy = nullptr;

    void take(std::string_view value, bool is_valid, uint64_t written_ns = 0, uint64_t expires_ns = 0) {
        len = value.size();
        valid = is_valid;
        if (copy != nullptr) {
            copy->value.assign(value);
            copy->valid = is_valid;
            copy->written_ns = written_ns;
            copy->expires_ns = expires_ns;
            fits = true;
            return;
        }
        fits = value.size() <= capacity;
        if (fits && !value.empty()) std::memcpy(buf, value.data(), value.size());
    }
};

class Cache;

// One load in flight: the key, who began it, and (once finished) its result for the waiters.
struct Flight {
    Flight(const Key& k) : ns(k.ns), key(k.key), hash(k.hash), owner(std::this_thread::get_id()) {}
    std::string ns, key;
    uint64_t hash;
    std::thread::id owner;
    std::mutex mu;
    std::condition_variable done_cv;
    bool done = false;
    std::string value;
    bool valid = false;
};

// "You load it": finish() stores the result and wakes the waiters; destroying an unfinished ticket
// finishes it as a failed load with an empty value. Keeps the cache alive (it may outlive its handle).
class Ticket {
public:
    Ticket(std::shared_ptr<Cache> cache, std::shared_ptr<Flight> flight) noexcept
        : cache_(std::move(cache)), flight_(std::move(flight)) {}
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

    // Throws Error(KVC_ERR_INVALID_STATE) when already finished.
    void finish(std::string_view value, bool valid);
    [[nodiscard]] bool finished() const noexcept { return finished_; }

private:
    std::shared_ptr<Cache> cache_;
    std::shared_ptr<Flight> flight_;
    bool finished_ = false;
};

class Cache : public std::enable_shared_from_this<Cache> {
public:
    static constexpr unsigned kShards = 16;
    // Below this bound one shard keeps the policy's order exact over the whole cache.
    static constexpr uint64_t kShardedFrom = 1024;

    // Throws Error(KVC_ERR_INVALID_ARGUMENT) for a bad config, Error(KVC_ERR_UNSUPPORTED) for a policy
    // this build lacks (bounded caches only).
    static std::shared_ptr<Cache> create(TtlConfig config);
    explicit Cache(TtlConfig config, bool);  // use create()
    ~Cache();
    Cache(const Cache&) = delete;
    Cache& operator=(const Cache&) = delete;

    Outcome get(const Key& k, ValueOut& out);
    void set(const Key& k, std::string_view value, bool valid);
    // True when a live entry was removed.
    bool invalidate(const Key& k);
    void clear();
    [[nodiscard]] uint64_t size() const;
    uint64_t cleanup();
    // Copies of the entries live at `now` (a now_ns() reading), sorted by (namespace, key).
    [[nodiscard]] std::vector<EntryCopy> get_all(uint64_t now) const;
    [[nodiscard]] stats::Snapshot snapshot() const { return recorder_.snapshot(); }
    [[nodiscard]] uint64_t now_ns() const noexcept;
    // When an entry written at now (valid or a cached failure) expires.
    [[nodiscard]] uint64_t expiry(bool valid, uint64_t now) const noexcept {
        return stats::saturating_add(now, valid ? ttl_ns_ : negative_ttl_ns_);  // a fake clock may start anywhere
    }
    [[nodiscard]] const TtlConfig& config() const noexcept { return config_; }

    // A live entry: kHit/kNegativeHit, value in out, ticket null. Another thread's load in flight: waits
    // for it, kMiss with its result in out, ticket null. Otherwise kMiss and a ticket: the caller loads.
    // Throws Error(KVC_ERR_INVALID_STATE) when this thread began the unfinished load of the key.
    struct BeginResult {
        Outcome outcome;
        std::unique_ptr<Ticket> ticket;
    };
    BeginResult begin_load(const Key& k, ValueOut& out);

private:
    friend class Ticket;
    struct Entry {
        std::string text;  // namespace bytes then key bytes
        std::string value;
        uint64_t hash = 0;
        uint64_t written_ns = 0;
        uint64_t expires_ns = 0;
        uint32_t ns_len = 0;
        bool valid = false;
        bool used = false;

        [[nodiscard]] bool matches(const Key& k) const noexcept {
            // string_view compares: an empty namespace may have a null data() (memcmp must not see it).
            const std::string_view t(text);
            return hash == k.hash && ns_len == k.ns.size() && t.size() == k.ns.size() + k.key.size() &&
                   t.substr(0, ns_len) == k.ns && t.substr(ns_len) == k.key;
        }
        [[nodiscard]] size_t bytes() const noexcept { return text.size() + value.size(); }
    };
    struct Bucket {
        uint32_t tag = 0;   // the hash's high half: most mismatches end here, without touching the entry
        uint32_t slot = 0;  // entry index + 1; 0 = empty
    };
    static constexpr uint32_t kNone = UINT32_MAX;
    enum class Removal { kExpired, kEvicted, kInvalidated, kCleared };

    struct alignas(64) Shard {
        mutable std::mutex mu;
        std::vector<Bucket> buckets;  // a power of two, at most half full
        size_t indexed = 0;
        std::vector<Entry> entries;    // the slab: index = policy slot
        std::vector<uint32_t> free_slots;
        std::unique_ptr<eviction::Policy> policy;  // null when unbounded
        std::vector<std::shared_ptr<Flight>> flights;  // loads in flight (few at a time)
    };

    Shard& shard_of(const Key& k) noexcept { return shards_[(k.hash >> 28) & (shard_count_ - 1)]; }
    uint32_t find(const Shard& s, const Key& k) const noexcept;
    void index_insert(Shard& s, uint64_t hash, uint32_t slot);
    void index_erase(Shard& s, uint32_t slot) noexcept;
    // The live entry of k into out (touching it for the policy), removing it when expired. Shard locked.
    Outcome lookup_locked(Shard& s, const Key& k, uint64_t now, ValueOut& out);
    void record_lookup(Outcome outcome);
    // Takes the entry out of the shard (index, slab, policy unless the policy already dropped it) and
    // counts it. keep_reservation: the entry's place in the bound passes to the caller's new entry.
    void remove_locked(Shard& s, uint32_t slot, Removal why, uint64_t now, bool policy_dropped,
                       bool keep_reservation) noexcept;
    // A place under the bound for a new entry, by the counter or by evicting in this shard.
    bool reserve_locked(Shard& s, uint64_t now) noexcept;
    // Evicts one entry of another shard and keeps its place for the caller; false when none was found.
    bool evict_elsewhere(const Shard& except, uint64_t now) noexcept;
    void insert_locked(Shard& s, const Key& k, std::string_view value, bool valid, uint64_t now);
    void replace_locked(Shard& s, uint32_t slot, std::string_view value, bool valid, uint64_t now);
    // set()'s body; also the first half of a ticket's finish.
    void put(const Key& k, std::string_view value, bool valid);
    // The second half: drop the flight from its shard and hand the result to its waiters.
    void complete(Flight& f, std::string_view value, bool valid) noexcept;

    TtlConfig config_;
    uint64_t ttl_ns_, negative_ttl_ns_;
    unsigned shard_count_;
    std::unique_ptr<Shard[]> shards_;
    alignas(64) std::atomic<uint64_t> stored_{0};  // entries stored, live or expired: what the bound counts
    mutable stats::Recorder recorder_;
};

// Runs cache.cleanup() every interval until destroyed (the destructor joins it).
class CleanupThread {
public:
    CleanupThread(std::shared_ptr<Cache> cache, uint64_t interval_ms);
    ~CleanupThread();
    CleanupThread(const CleanupThread&) = delete;
    CleanupThread& operator=(const CleanupThread&) = delete;

private:
    std::mutex mu_;
    std::condition_variable stop_cv_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace kvcore::ttl
