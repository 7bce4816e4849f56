// SPDX-License-Identifier: Apache-2.0
#include "stats/recorder.h"

#include <time.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cctype>
#include <unordered_set>

#include "common/error.h"
#include "kvcore/stats.h"

namespace kvcore::stats {

namespace {

// Bits set. std::popcount is a libgcc call unless the build targets the POPCNT instruction.
inline unsigned count_ones(uint64_t x) noexcept {
#if defined(__POPCNT__)
    return static_cast<unsigned>(std::popcount(x));
#else
    x -= (x >> 1) & 0x5555555555555555ull;
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return static_cast<unsigned>((x * 0x0101010101010101ull) >> 56);
#endif
}

// count (<= 64) outcome bytes to bits, a byte load each (bit i set when byte i is not 0).
inline uint64_t pack_outcome_bytes(const uint8_t* outcomes, unsigned count) noexcept {
    uint64_t hits = 0;
    for (unsigned i = 0; i < count; ++i) hits |= static_cast<uint64_t>(outcomes[i] != 0) << i;
    return hits;
}

// 64 outcome bytes to 64 bits, 16 at a time where SSE2 is there.
inline uint64_t pack_outcomes(const uint8_t* outcomes) noexcept {
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    uint64_t misses = 0;
    for (unsigned i = 0; i < 4; ++i) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(outcomes + 16 * i));
        misses |= static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, zero)))) << (16 * i);
    }
    return ~misses;
#else
    return pack_outcome_bytes(outcomes, 64);
#endif
}

}  // namespace

uint64_t coarse_monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

void RecorderConfig::validate() const {
    if (component.empty() || component.size() > KVC_STATS_MAX_COMPONENT_NAME ||
        !std::all_of(component.begin(), component.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; })) {
        fail(KVC_ERR_INVALID_ARGUMENT, "component name must be 1..63 characters of [A-Za-z0-9_], got \"" +
                                           component.substr(0, 80) + "\"");
    }
    if (window_accesses == 0 || window_accesses > KVC_STATS_MAX_WINDOW_ACCESSES) {
        fail(KVC_ERR_INVALID_ARGUMENT, "window_accesses must be 1.." + std::to_string(KVC_STATS_MAX_WINDOW_ACCESSES) +
                                           ", got " + std::to_string(window_accesses));
    }
    if (window_seconds == 0 || window_seconds > KVC_STATS_MAX_WINDOW_SECONDS) {
        fail(KVC_ERR_INVALID_ARGUMENT, "window_seconds must be 1.." + std::to_string(KVC_STATS_MAX_WINDOW_SECONDS) +
                                           ", got " + std::to_string(window_seconds));
    }
    if (layers > KVC_STATS_MAX_LAYERS) {
        fail(KVC_ERR_INVALID_ARGUMENT,
             "layers must be 0.." + std::to_string(KVC_STATS_MAX_LAYERS) + ", got " + std::to_string(layers));
    }
    if (clock == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, "clock is NULL");
}

namespace {

// Which recorders are alive, so that a thread exiting after its recorder died touches no freed shard.
struct Registry {
    std::mutex mu;
    std::unordered_set<uint64_t> live;
    uint64_t next_id = 1;  // 0 marks an empty thread-cache entry
};

Registry& registry() {
    static Registry* r = new Registry;  // leaked on purpose: threads may exit after static destructors ran
    return *r;
}

}  // namespace

// The shards this thread owns; released for reuse by other threads when it exits.
struct ThreadClaims {
    struct Claim {
        uint64_t recorder_id;
        Recorder::Shard* shard;
    };
    std::vector<Claim> claims;

    ~ThreadClaims() {
        Registry& reg = registry();
        std::lock_guard lock(reg.mu);
        for (const Claim& c : claims) {
            if (reg.live.contains(c.recorder_id)) c.shard->owned.store(false, std::memory_order_release);
        }
    }
};

namespace {
thread_local ThreadClaims thread_claims;
}  // namespace

Recorder::Shard::Shard(const RecorderConfig& config, uint64_t now_epoch)
    : window_bits(new Counter[(config.window_accesses + 63) / 64]),
      ring_bits((config.window_accesses + 63) / 64 * 64),
      marks(new TimeMark[kTimeBuckets]),
      seen(new SeenMark[kTimeBuckets]),
      layer_counts(new Counter[2 * static_cast<size_t>(config.layers)]) {
    // Accesses before the owner's first clock check date from the shard's creation.
    marks[now_epoch % kTimeBuckets].epoch.store(now_epoch, std::memory_order_release);
    marked_epoch = now_epoch;
}

void Recorder::Shard::mark_time(const Recorder& owner) noexcept {
    const uint64_t now = owner.config_.clock();
    if (now < epoch_end_ns) return;  // still inside the marked bucket: no division
    const uint64_t epoch = now / owner.bucket_width_ns_;
    epoch_end_ns = (epoch + 1) * owner.bucket_width_ns_;
    if (epoch == marked_epoch) return;
    marked_epoch = epoch;
    TimeMark& mark = marks[epoch % kTimeBuckets];
    // A reader that sees this epoch (acquire) sees these counts; one that raced sees the epoch change.
    mark.epoch.store(UINT64_MAX, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    mark.hits.store(by_outcome[1].get(), std::memory_order_relaxed);
    mark.misses.store(by_outcome[0].get(), std::memory_order_relaxed);
    mark.epoch.store(epoch, std::memory_order_release);
}

void Recorder::Shard::record_bits(uint64_t hits, unsigned count, const Recorder& owner) noexcept {
    check_clock(count, owner);
    write_bits(hits, count);
}

void Recorder::Shard::write_bits(uint64_t hits, unsigned count) noexcept {
    const uint64_t mask = ~uint64_t{0} >> (64 - count);
    hits &= mask;
    const unsigned hit_count = count_ones(hits);
    by_outcome[1].add(hit_count);
    by_outcome[0].add(count - hit_count);
    write_ring(hits, count);
}

void Recorder::Shard::write_long_prefix(uint64_t hits, uint64_t misses) noexcept {
    // Outcomes older than the ring's length would be overwritten: write only the newest ring_bits.
    const uint64_t misses_kept = std::min<uint64_t>(misses, ring_bits);
    write_run(true, std::min<uint64_t>(hits, ring_bits - misses_kept));
    write_run(false, misses_kept);
}

void Recorder::Shard::write_run(bool hit, uint64_t n) noexcept {
    while (n > 0) {
        const auto count = static_cast<unsigned>(std::min<uint64_t>(n, 64));
        write_ring(hit ? ~uint64_t{0} >> (64 - count) : 0, count);
        n -= count;
    }
}

uint64_t Recorder::Shard::window_hits(uint32_t window) const noexcept {
    // Every bit in the ring but the ring_bits - window (< 64) oldest ones, which start at the write
    // position: masked out of the (at most two) words holding them. Each word is read once.
    const uint32_t pos = window_pos.load(std::memory_order_relaxed);
    const uint32_t stale = ring_bits - window;
    const unsigned offset = pos % 64;
    const uint64_t mask = stale == 0 ? 0 : ~uint64_t{0} >> (64 - stale);
    const uint32_t first = pos / 64, second = next_word_start(pos) / 64;
    const uint64_t first_stale = mask << offset, second_stale = offset == 0 ? 0 : mask >> (64 - offset);
    uint64_t hits = 0;
    for (uint32_t w = 0; w < ring_bits / 64; ++w) {
        uint64_t bits = window_bits[w].get();
        if (w == first) bits &= ~first_stale;
        if (w == second) bits &= ~second_stale;
        hits += count_ones(bits);
    }
    return hits;
}

void Recorder::Shard::record_accesses(const uint8_t* outcomes, size_t n, const Recorder& owner) noexcept {
    check_clock(n, owner);  // the whole batch is dated by one check, like one record_bits call
    // 64 outcomes to a word. The caller has usually just stored them one byte at a time, and a wide load
    // of bytes still in the store buffer misses store forwarding and waits for those stores to retire,
    // behind the caller's own cache misses. So the last kStoreBufferTail outcomes are packed with byte
    // loads, and everything before them 16 at a time.
    constexpr size_t kStoreBufferTail = 128;
    size_t done = 0;
    for (; n - done > kStoreBufferTail + 63; done += 64) write_bits(pack_outcomes(outcomes + done), 64);
    while (done < n) {
        const unsigned count = static_cast<unsigned>(std::min<size_t>(n - done, 64));
        write_bits(pack_outcome_bytes(outcomes + done, count), count);
        done += count;
    }
}

Recorder::Recorder(RecorderConfig config) : config_(std::move(config)) {
    config_.validate();
    bucket_width_ns_ = static_cast<uint64_t>(config_.window_seconds) * 1'000'000'000u / kTimeBuckets;
    overflow_ = std::make_unique<Shard>(config_, now_epoch());
    Registry& reg = registry();
    std::lock_guard lock(reg.mu);
    id_ = reg.next_id++;
    reg.live.insert(id_);
}

Recorder::~Recorder() {
    Registry& reg = registry();
    std::lock_guard lock(reg.mu);
    reg.live.erase(id_);
}

Recorder::Shard* Recorder::claim_shard() noexcept {
    try {
        std::vector<ThreadClaims::Claim>& mine = thread_claims.claims;
        Shard* shard = nullptr;
        for (const auto& c : mine) {
            if (c.recorder_id == id_) shard = c.shard;  // evicted from the direct-mapped cache only
        }
        if (shard == nullptr) {
            mine.reserve(mine.size() + 1);  // the only allocation that could fail after claiming
            shard = take_free_shard();
            if (shard == nullptr) return nullptr;
            Registry& reg = registry();
            std::lock_guard lock(reg.mu);
            std::erase_if(mine, [&reg](const ThreadClaims::Claim& c) { return !reg.live.contains(c.recorder_id); });
            mine.push_back({id_, shard});
        }
        detail::shard_cache[id_ & (detail::kShardCacheSlots - 1)] = {id_, shard};
        return shard;
    } catch (...) {
        return nullptr;  // out of memory: record through the locked overflow shard instead
    }
}

Recorder::Shard* Recorder::take_free_shard() {
    std::lock_guard lock(shards_mu_);
    Shard* shard = nullptr;
    for (const auto& s : shards_) {
        if (!s->owned.load(std::memory_order_acquire)) {  // sees what its last owner wrote
            shard = s.get();
            break;
        }
    }
    if (shard == nullptr) {
        if (shards_.size() >= kMaxShards) return nullptr;
        shards_.push_back(std::make_unique<Shard>(config_, now_epoch()));
        shard = shards_.back().get();
    }
    shard->owned.store(true, std::memory_order_relaxed);
    return shard;
}

Recorder::ExclusiveWriter::ExclusiveWriter(Recorder& recorder) : recorder_(recorder), shard_(recorder.take_free_shard()) {
    if (shard_ == nullptr) {
        fail(KVC_ERR_CAPACITY, "the recorder has no shard left for another writer (" + std::to_string(kMaxShards) +
                                   " are in use)");
    }
}

Recorder::ExclusiveWriter::~ExclusiveWriter() {
    shard_->owned.store(false, std::memory_order_release);  // a thread may take it over, counts and all
}

void Recorder::record_access_slow(bool hit) noexcept {
    if (Shard* s = claim_shard()) {
        s->record_access(hit, *this);
        return;
    }
    std::lock_guard lock(overflow_mu_);
    overflow_->record_access(hit, *this);
}

bool Recorder::add_bytes(int64_t delta) noexcept {
    uint64_t current = bytes_in_use_.load(std::memory_order_relaxed);
    uint64_t next;
    do {
        if (delta >= 0) {
            if (__builtin_add_overflow(current, static_cast<uint64_t>(delta), &next)) return false;
        } else {
            const uint64_t down = static_cast<uint64_t>(-(delta + 1)) + 1;  // |delta|, INT64_MIN included
            if (current < down) return false;
            next = current - down;
        }
    } while (!bytes_in_use_.compare_exchange_weak(current, next, std::memory_order_relaxed));
    uint64_t peak = peak_bytes_.load(std::memory_order_relaxed);
    while (next > peak && !peak_bytes_.compare_exchange_weak(peak, next, std::memory_order_relaxed)) {
    }
    return true;
}

void Recorder::set_bytes(uint64_t bytes) noexcept {
    bytes_in_use_.store(bytes, std::memory_order_relaxed);
    uint64_t peak = peak_bytes_.load(std::memory_order_relaxed);
    while (bytes > peak && !peak_bytes_.compare_exchange_weak(peak, bytes, std::memory_order_relaxed)) {
    }
}

Snapshot Recorder::snapshot() const {
    Snapshot s;
    s.component = config_.component;
    s.loads_values = config_.loads_values;
    s.window_size = config_.window_accesses;
    s.window_seconds = config_.window_seconds;
    s.layer_hits.assign(config_.layers, 0);
    s.layer_misses.assign(config_.layers, 0);
    const uint64_t epoch_now = now_epoch();

    const uint64_t window = config_.window_accesses;
    auto add = [&](Shard& shard) {
        // The earliest time mark inside the window, the shard's own or a snapshot's; read before the
        // counters, which only grow.
        uint64_t mark_hits = 0, mark_misses = 0, oldest = UINT64_MAX;
        const auto consider = [&](uint64_t epoch, uint64_t h, uint64_t m) {
            if (epoch > epoch_now || epoch_now - epoch >= kTimeBuckets) return;
            if (epoch < oldest || (epoch == oldest && h + m < mark_hits + mark_misses)) {
                oldest = epoch;
                mark_hits = h;
                mark_misses = m;
            }
        };
        for (unsigned b = 0; b < kTimeBuckets; ++b) {
            consider(shard.seen[b].epoch, shard.seen[b].hits, shard.seen[b].misses);
            const TimeMark& mark = shard.marks[b];
            const uint64_t epoch = mark.epoch.load(std::memory_order_acquire);
            const uint64_t h = mark.hits.load(std::memory_order_relaxed);
            const uint64_t m = mark.misses.load(std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (mark.epoch.load(std::memory_order_relaxed) != epoch) continue;  // rewritten meanwhile
            consider(epoch, h, m);
        }
        const uint64_t hits = shard.by_outcome[1].get(), misses = shard.by_outcome[0].get();
        if (oldest != UINT64_MAX) {
            const uint64_t lookups = saturating_add(hits, misses);
            s.time_window_hits = saturating_add(s.time_window_hits, hits - std::min(mark_hits, hits));
            s.time_window_lookups = saturating_add(
                s.time_window_lookups, lookups - std::min(saturating_add(mark_hits, mark_misses), lookups));
        }
        // This snapshot marks the time for later ones, unless one already saw this bucket.
        Shard::SeenMark& seen = shard.seen[epoch_now % kTimeBuckets];
        if (seen.epoch != epoch_now) seen = {epoch_now, hits, misses};
        s.hits = saturating_add(s.hits, hits);
        s.misses = saturating_add(s.misses, misses);
        s.insertions = saturating_add(s.insertions, shard.insertions.get());
        s.evictions = saturating_add(s.evictions, shard.evictions.get());
        s.memory_pressure_events = saturating_add(s.memory_pressure_events, shard.memory_pressure.get());
        s.tokens_queried = saturating_add(s.tokens_queried, shard.tokens_queried.get());
        s.tokens_hit = saturating_add(s.tokens_hit, shard.tokens_hit.get());
        s.tokens_reused = saturating_add(s.tokens_reused, shard.tokens_reused.get());
        s.negative_hits = saturating_add(s.negative_hits, shard.negative_hits.get());
        s.loads = saturating_add(s.loads, shard.loads.get());
        s.load_failures = saturating_add(s.load_failures, shard.load_failures.get());
        s.expirations = saturating_add(s.expirations, shard.expirations.get());
        const uint64_t filled = std::min<uint64_t>(saturating_add(hits, misses), window);
        s.window_lookups += filled;
        s.window_hits += shard.window_hits(config_.window_accesses);
        for (uint32_t layer = 0; layer < config_.layers; ++layer) {
            s.layer_hits[layer] = saturating_add(s.layer_hits[layer], shard.layer_counts[2 * layer].get());
            s.layer_misses[layer] = saturating_add(s.layer_misses[layer], shard.layer_counts[2 * layer + 1].get());
        }
    };
    {
        std::lock_guard lock(shards_mu_);
        for (const auto& shard : shards_) add(*shard);
    }
    {
        std::lock_guard lock(overflow_mu_);
        add(*overflow_);
    }
    s.bytes_in_use = bytes_in_use_.load(std::memory_order_relaxed);
    s.peak_bytes = peak_bytes_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace kvcore::stats
