/* SPDX-License-Identifier: Apache-2.0 */
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
    // The component loads values on a miss (the TTL cache): its Prometheus text carries the negative-hit,
    // load, load-failure and expiration families. Others leave them out of a scrape (they read 0).
    bool loads_values = false;
    Clock clock = coarse_monotonic_ns;  // tests inject a fake one

    // Throws kvcore::Error(KVC_ERR_INVALID_ARGUMENT) naming the bad field.
    void validate() const;
};

class Recorder {
    struct Shard;

public:
    static constexpr unsigned kTimeBuckets = 60;
    // A thread checks the clock once per this many of its accesses (a batch call counts as one check),
    // so up to this many - 1 of them are dated to an earlier time bucket. Snapshots mark the time too,
    // which keeps the time window exact at low access rates as long as something reads it regularly
    // (a Prometheus scrape). Reading the clock costs more than the rest of a batch call inside a busy
    // lookup loop (bench/RESULTS.md), hence not once per call.
    static constexpr unsigned kClockEvery = 256;
    static constexpr size_t kMaxShards = 256;  // more concurrent recording threads share a locked shard

    explicit Recorder(RecorderConfig config);
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    void record_access(bool hit) noexcept {
        if (Shard* s = cached_shard()) [[likely]] {
            s->record_access(hit, *this);
        } else {
            record_access_slow(hit);
        }
    }
    // Many lookups at once (outcome != 0 is a hit), e.g. the blocks of one prefix lookup: one shard
    // look-up for the whole batch, packed 64 outcomes to a word.
    void record_accesses(const uint8_t* outcomes, size_t n) noexcept {
        with_shard([&](Shard& s) { s.record_accesses(outcomes, n, *this); });
    }
    // count (1..64) lookups whose outcomes are the low bits of `hits`, oldest at bit 0 (1 = hit).
    // Precondition: 1 <= count <= 64 (the C layer checks it).
    void record_access_bits(uint64_t hits, unsigned count) noexcept {
        with_shard([&](Shard& s) { s.record_bits(hits, count, *this); });
    }
    // A prefix lookup of hits + misses blocks: the first `hits` hit, the rest missed, which is the shape
    // of every lookup of chained block hashes. In order, like that many record_access calls, at the cost
    // of about one whatever the length. Precondition: hits + misses does not overflow (the C layer checks).
    void record_prefix_lookup(uint64_t hits, uint64_t misses) noexcept {
        with_shard([&](Shard& s) { s.record_prefix_lookup(hits, misses, *this); });
    }
    // A writer that is not a thread but one object whose calls its user serialises (a pool: one thread
    // at a time drives it) gets a shard of its own, so its calls skip the thread-cache look-up. The
    // recorder must outlive it; its counts stay in the recorder after it is gone.
    class ExclusiveWriter {
    public:
        explicit ExclusiveWriter(Recorder& recorder);  // throws kvcore::Error when no shard is left
        ~ExclusiveWriter();
        ExclusiveWriter(const ExclusiveWriter&) = delete;
        ExclusiveWriter& operator=(const ExclusiveWriter&) = delete;

        // As Recorder::record_prefix_lookup.
        void record_prefix_lookup(uint64_t hits, uint64_t misses) noexcept {
            shard_->record_prefix_lookup(hits, misses, recorder_);
        }

    private:
        const Recorder& recorder_;
        Shard* shard_;
    };

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
    // Caches that load values (the TTL cache): a cached failure found, loads started, loads that failed,
    // entries removed because they expired.
    void record_negative_hits(uint64_t n) noexcept { with_shard([&](Shard& s) { s.negative_hits.add(n); }); }
    void record_loads(uint64_t n) noexcept { with_shard([&](Shard& s) { s.loads.add(n); }); }
    void record_load_failures(uint64_t n) noexcept { with_shard([&](Shard& s) { s.load_failures.add(n); }); }
    void record_expirations(uint64_t n) noexcept { with_shard([&](Shard& s) { s.expirations.add(n); }); }

    // False (and nothing changes) when bytes in use would drop below zero or pass UINT64_MAX.
    [[nodiscard]] bool add_bytes(int64_t delta) noexcept;
    void set_bytes(uint64_t bytes) noexcept;

    // Also marks the time in every shard for later snapshots (see kClockEvery); safe from any thread.
    [[nodiscard]] Snapshot snapshot() const;
    [[nodiscard]] const RecorderConfig& config() const noexcept { return config_; }

private:
    // Written by one thread with load+store (plain adds), read by any thread.
    // Counts saturate at UINT64_MAX instead of wrapping (stats.h promises it): one flag test per add.
    struct Counter {
        std::atomic<uint64_t> value{0};
        void add(uint64_t n) noexcept {
            value.store(saturating_add(value.load(std::memory_order_relaxed), n), std::memory_order_relaxed);
        }
        [[nodiscard]] uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
    };

    // The shard's cumulative counts when a time bucket began: the time window is "now minus the mark of
    // the oldest bucket still inside it", so an access never touches a bucket.
    struct TimeMark {
        std::atomic<uint64_t> epoch{UINT64_MAX};  // bucket-width intervals since the clock's zero
        std::atomic<uint64_t> hits{0}, misses{0};
    };

    struct alignas(64) Shard {
        Shard(const RecorderConfig& config, uint64_t now_epoch);
        void record_access(bool hit, const Recorder& owner) noexcept;
        void record_accesses(const uint8_t* outcomes, size_t n, const Recorder& owner) noexcept;
        void record_bits(uint64_t hits, unsigned count, const Recorder& owner) noexcept;
        inline void record_prefix_lookup(uint64_t hits, uint64_t misses, const Recorder& owner) noexcept;
        // Its ring part for more than 64 outcomes.
        void write_long_prefix(uint64_t hits, uint64_t misses) noexcept;
        // n outcomes all equal to `hit` into the ring, up to 64 at a time.
        void write_run(bool hit, uint64_t n) noexcept;
        // The clock rule for a batch of n (>= 1) accesses: check, once, when it brings the accesses since
        // the last check to kClockEvery.
        void check_clock(size_t n, const Recorder& owner) noexcept {
            if (n < clock_credit) [[likely]] {
                clock_credit -= static_cast<uint32_t>(n);
                return;
            }
            clock_credit = kClockEvery;
            mark_time(owner);
        }
        void mark_time(const Recorder& owner) noexcept;
        // Counts count (1..64) outcomes, the low bits of `hits` (bits above are ignored), into the ring.
        void write_bits(uint64_t hits, unsigned count) noexcept;
        // The ring part of write_bits: the caller has counted them; bits of `hits` above count must be 0.
        inline void write_ring(uint64_t hits, unsigned count) noexcept;
        // The first ring position of the word after the one holding `pos`, wrapping at the ring's end.
        [[nodiscard]] uint32_t next_word_start(uint32_t pos) const noexcept {
            const uint32_t next = pos - pos % 64 + 64;
            return next == ring_bits ? 0 : next;
        }
        // Sets the bits under `mask` in the count-window word holding position `pos` (both shifted into place).
        void store_window(uint32_t pos, uint64_t bits, uint64_t mask) noexcept {
            Counter& word = window_bits[pos / 64];
            word.value.store((word.get() & ~mask) | bits, std::memory_order_relaxed);
        }
        // Hits among the last `window` (<= ring_bits) outcomes; safe to call from any thread.
        [[nodiscard]] uint64_t window_hits(uint32_t window) const noexcept;

        // What every recorded access touches, in the shard's first cache line.
        Counter by_outcome[2];  // [0] misses, [1] hits
        // The count window: a ring of one bit per access (1 = hit), written by the owner, counted by
        // snapshots over its last window_accesses positions. Its size is window_accesses rounded up to
        // whole words, so that a batch of up to 64 outcomes is at most two word updates and never splits
        // at the window's end.
        std::unique_ptr<Counter[]> window_bits;
        std::atomic<uint32_t> window_pos{0};  // where the next outcome goes: owner-written, read by snapshots
        uint32_t ring_bits;                  // a multiple of 64, >= 64
        uint64_t marked_epoch = UINT64_MAX;  // owner-only: the epoch of the newest mark
        uint64_t epoch_end_ns = 0;           // owner-only: when the epoch last seen by a clock check ends
        uint32_t clock_credit = 1;           // owner-only: accesses left before the next clock check
        std::unique_ptr<TimeMark[]> marks;
        // The shard's counts when a snapshot first saw each bucket: written and read by snapshots only,
        // under the mutex that guards the shard list (shards_mu_, or overflow_mu_ for the overflow shard).
        struct SeenMark {
            uint64_t epoch = UINT64_MAX, hits = 0, misses = 0;
        };
        std::unique_ptr<SeenMark[]> seen;
        Counter insertions, evictions, memory_pressure, tokens_queried, tokens_hit, tokens_reused;
        Counter negative_hits, loads, load_failures, expirations;
        std::unique_ptr<Counter[]> layer_counts;  // [2*layer] hits, [2*layer+1] misses
        std::atomic<bool> owned{false};           // claimed by a live thread
    };

    template <class Body>
    void with_shard(Body&& body) noexcept {
        if (Shard* s = cached_shard()) [[likely]] {
            body(*s);
            return;
        }
        if (Shard* s = claim_shard()) {
            body(*s);
            return;
        }
        std::lock_guard lock(overflow_mu_);
        body(*overflow_);
    }

    Shard* cached_shard() const noexcept;   // this thread's shard if the thread cache knows it, else null
    Shard* claim_shard() noexcept;          // finds or claims one; null when all are taken
    Shard* take_free_shard();               // an unowned or new shard, now owned; null when all are taken
    [[gnu::cold]] [[gnu::noinline]] void record_access_slow(bool hit) noexcept;
    [[nodiscard]] uint64_t now_epoch() const noexcept { return config_.clock() / bucket_width_ns_; }
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

inline Recorder::Shard* Recorder::cached_shard() const noexcept {
    const detail::ShardCacheEntry& e = detail::shard_cache[id_ & (detail::kShardCacheSlots - 1)];
    return e.recorder_id == id_ ? static_cast<Shard*>(e.shard) : nullptr;
}

inline void Recorder::Shard::record_access(bool hit, const Recorder& owner) noexcept {
    const uint32_t pos = window_pos.load(std::memory_order_relaxed);
    check_clock(1, owner);
    by_outcome[hit].add(1);
    store_window(pos, uint64_t{hit} << (pos % 64), uint64_t{1} << (pos % 64));
    window_pos.store(pos + 1 == ring_bits ? 0 : pos + 1, std::memory_order_relaxed);
}

// Inline, so that a pool's admission records its prefix lookup without a call (bench/RESULTS.md, session 6).
inline void Recorder::Shard::write_ring(uint64_t hits, unsigned count) noexcept {
    // The word holding pos, and the next one when the batch runs past it.
    const uint64_t mask = ~uint64_t{0} >> (64 - count);
    const uint32_t pos = window_pos.load(std::memory_order_relaxed);
    const unsigned offset = pos % 64;
    store_window(pos, hits << offset, mask << offset);
    if (offset + count > 64) store_window(next_word_start(pos), hits >> (64 - offset), mask >> (64 - offset));
    window_pos.store(pos + count < ring_bits ? pos + count : pos + count - ring_bits, std::memory_order_relaxed);
}

inline void Recorder::Shard::record_prefix_lookup(uint64_t hits, uint64_t misses, const Recorder& owner) noexcept {
    check_clock(1, owner);  // dated as one batch, like one record_bits call
    by_outcome[1].add(hits);
    by_outcome[0].add(misses);
    const uint64_t n = hits + misses;
    if (n > 64) [[unlikely]] {
        write_long_prefix(hits, misses);
    } else if (n > 0) {  // most prompts: one pattern, at most two word updates
        write_ring(hits == 0 ? 0 : ~uint64_t{0} >> (64 - hits), static_cast<unsigned>(n));
    }
}

}  // namespace kvcore::stats
