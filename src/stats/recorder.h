// The statistics recorder. Recording is a handful of plain adds into a shard that only the calling
// thread writes, found through a tiny thread-local cache: no atomic read-modify-write, no lock, and no
// cache line shared between two recording threads. Snapshots sum the shards with relaxed loads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "stats/snapshot.h"

namespace kvcore::stats {

using Clock = uint64_t (*)() noexcept;  // nanoseconds on a monotonic clock

// CLOCK_MONOTONIC_COARSE: a few ns to read, ms resolution, enough for buckets of >= 16 ms.
uint64_t coarse_monotonic_ns() noexcept;

struct RecorderConfig {
    std::string component = "cache";
    uint32_t window_accesses = 1000;
    uint32_t window_seconds = 60;
    uint32_t layers = 0;
    Clock clock = coarse_monotonic_ns;  // tests inject a fake one

    // Throws kvcore::Error(KVC_ERR_INVALID_ARGUMENT) naming the bad field.
    void validate() const;
};

class Recorder {
public:
    static constexpr unsigned kTimeBuckets = 60;
    // Accesses between two clock reads on one thread; bounds how many land in a stale time bucket.
    static constexpr unsigned kClockEvery = 16;
    static constexpr size_t kMaxShards = 256;  // more concurrent recording threads share a locked shard

    explicit Recorder(RecorderConfig config);
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    void record_access(bool hit) noexcept {
        if (Shard* s = local_shard()) [[likely]] {
            s->record_access(hit, *this);
        } else {
            std::lock_guard lock(overflow_mu_);
            overflow_->record_access(hit, *this);
        }
    }
    // Precondition: layer < config().layers (the C layer checks it).
    void record_layer_access(uint32_t layer, bool hit) noexcept {
        with_shard([&](Shard& s) {
            s.record_access(hit, *this);
            s.layer_counts[2 * layer + (hit ? 0 : 1)].add(1);
        });
    }
    // Precondition: hit <= queried.
    void record_tokens(uint64_t queried, uint64_t hit) noexcept {
        with_shard([&](Shard& s) {
            s.tokens_queried.add(queried);
            s.tokens_hit.add(hit);
        });
    }
    void record_reused_tokens(uint64_t n) noexcept { with_shard([&](Shard& s) { s.tokens_reused.add(n); }); }
    void record_insertions(uint64_t n) noexcept { with_shard([&](Shard& s) { s.insertions.add(n); }); }
    void record_evictions(uint64_t n) noexcept { with_shard([&](Shard& s) { s.evictions.add(n); }); }
    void record_memory_pressure() noexcept { with_shard([&](Shard& s) { s.memory_pressure.add(1); }); }

    // False (and nothing changes) when bytes in use would drop below zero.
    [[nodiscard]] bool add_bytes(int64_t delta) noexcept;
    void set_bytes(uint64_t bytes) noexcept;

    [[nodiscard]] Snapshot snapshot() const;
    [[nodiscard]] const RecorderConfig& config() const noexcept { return config_; }

private:
    // Written by one thread with load+store (plain adds), read by any thread.
    struct Counter {
        std::atomic<uint64_t> value{0};
        void add(uint64_t n) noexcept { value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
        void set(uint64_t n) noexcept { value.store(n, std::memory_order_relaxed); }
        [[nodiscard]] uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
    };

    struct TimeBucket {
        std::atomic<uint64_t> epoch{UINT64_MAX};  // which bucket-width interval the counts belong to
        Counter hits, misses;
    };

    struct alignas(64) Shard {
        explicit Shard(const RecorderConfig& config);
        void record_access(bool hit, const Recorder& owner) noexcept;
        void refresh_time_bucket(const Recorder& owner) noexcept;

        Counter hits, misses, insertions, evictions, memory_pressure, tokens_queried, tokens_hit, tokens_reused;
        Counter window_hits;  // hits among the last window_accesses accesses of this shard
        std::unique_ptr<uint8_t[]> window_ring;  // 1 = hit; owner-only
        uint32_t window_pos = 0;                 // owner-only
        uint32_t clock_countdown = 1;            // owner-only: accesses until the next clock read
        TimeBucket* current_bucket = nullptr;    // owner-only
        std::unique_ptr<TimeBucket[]> buckets;
        std::unique_ptr<Counter[]> layer_counts;  // [2*layer] hits, [2*layer+1] misses
        std::atomic<bool> owned{false};           // claimed by a live thread
    };

    template <class Body>
    void with_shard(Body&& body) noexcept {
        if (Shard* s = local_shard()) [[likely]] {
            body(*s);
        } else {
            std::lock_guard lock(overflow_mu_);
            body(*overflow_);
        }
    }

    Shard* local_shard() noexcept;
    Shard* claim_shard() noexcept;
    friend struct ThreadClaims;

    RecorderConfig config_;
    uint64_t id_;  // unique for the process lifetime, never reused: keys the thread-local cache
    uint64_t bucket_width_ns_;
    mutable std::mutex shards_mu_;
    std::vector<std::unique_ptr<Shard>> shards_;
    mutable std::mutex overflow_mu_;
    std::unique_ptr<Shard> overflow_;

    alignas(64) std::atomic<uint64_t> bytes_in_use_{0};
    std::atomic<uint64_t> peak_bytes_{0};
};

namespace detail {
// Per thread: which shard this thread owns in a recorder, direct-mapped by recorder id. initial-exec
// TLS makes the look-up one %fs-relative load; the table is small enough for glibc's static TLS reserve
// even when libkvcore is dlopen'ed (Mono, the JVM).
struct ShardCacheEntry {
    uint64_t recorder_id;
    void* shard;
};
inline constexpr unsigned kShardCacheSlots = 8;
[[gnu::tls_model("initial-exec")]] inline thread_local ShardCacheEntry shard_cache[kShardCacheSlots];
}  // namespace detail

inline Recorder::Shard* Recorder::local_shard() noexcept {
    const detail::ShardCacheEntry& e = detail::shard_cache[id_ & (detail::kShardCacheSlots - 1)];
    if (e.recorder_id == id_) [[likely]] return static_cast<Shard*>(e.shard);
    return claim_shard();
}

inline void Recorder::Shard::record_access(bool hit, const Recorder& owner) noexcept {
    (hit ? hits : misses).add(1);

    // Count window: the ring remembers the outcome each slot held, so the window's hit count updates in O(1).
    uint8_t& slot = window_ring[window_pos];
    window_hits.add(static_cast<uint64_t>(hit) - slot);  // wraps to -1 when a hit leaves the window
    slot = hit;
    if (++window_pos == owner.config_.window_accesses) window_pos = 0;

    // Time window: read the clock only every kClockEvery accesses.
    if (--clock_countdown == 0) refresh_time_bucket(owner);
    (hit ? current_bucket->hits : current_bucket->misses).add(1);
}

}  // namespace kvcore::stats
