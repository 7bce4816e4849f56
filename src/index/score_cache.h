/* SPDX-License-Identifier: Apache-2.0 */
// The prefix-to-pods score cache of the cluster index (issue 13, "Scoring"; llm-d's pod-mapping cache):
// a repeated prompt skips hashing its blocks and looking them up; its scores come from a cached record
// that is proven current before it is used, so a cached result always equals what the uncached path
// would return at that moment (never stale, unlike a TTL alone).
//
// Key. One entry per (model, prompt): the prompt's tokens and extra keys (LoRA name, cache salt,
// multimodal items) are digested in one pass with XXH3-128 (not the chained per-block hash). The index
// itself names blocks by 64-bit hashes, so a 128-bit prompt digest adds no risk the index does not
// already take, and an entry holds 18 bytes of key instead of the whole prompt. The entry lives in
// kvcore's TTL cache (src/ttl): its LRU bound is max_entries prompts and its TTL ttl_ms.
//
// Records. An entry holds up to max_pod_sets_per_prompt records, one per candidate list (the pod set):
// the list as given (order and duplicates included: results are per candidate position, and routers
// pass their endpoint list in a stable order; a permutation is another record), the tier weights and,
// with no candidates, the output capacity. A record holds per position the pod's run of cached blocks
// and its weighted score. Instead of llm-d's "keys that hit and their pods" (a key -> pods map the hit
// path must score again) it keeps the scoring's outcome; the load-aware cost is recomputed from the run
// and the caller's decode loads on every hit. A new record replaces the one of the same pod set, then
// records that are no longer valid, then the oldest.
//
// Validity. Only the keys the scoring examined decide its result: keys [0, k] where k is the first key
// no remaining candidate holds (or all of them). The entry keeps the generation buckets of these keys
// (4 bytes each) and each record the sum of their generations when it was computed. Generations: one
// counter per bucket of entry hashes (the top 20 bits of the index's per-key hash, so a bucket belongs
// to exactly one index shard; 2^20 counters, 8 MB, allocated only with the cache). Index::execute and
// the shard operations under its exclusive locks bump the bucket of every key they add to, remove from,
// evict or clear. The counters only grow, so a record is current exactly when the sum of its buckets'
// counters is still the one it saw. A miss reads each examined key's counter inside Index::score, under
// the key's shard lock and together with the key, so the sum matches the state the score was computed
// from. A hit reads the counters only; if none moved since, its result equals the index's state at its
// first read (a write is visible to readers only once its locks are released, after its bumps).
// Speculative holders expire by time, not by an event: a record keeps the earliest expiry of the live
// speculative holders the scoring met and is not used from then on (expired holders are ignored by
// scoring, so their later removal needs no bump). A Redis-backed index changes without execute() and
// must not enable the cache.
//
// Buckets are shared: a write to another key of the same bucket invalidates a record too. A record
// that k keys decide survives an unrelated write with probability 1 - k / 2^20 (k = 512: 99.95 %); 2^16
// buckets cost the same on ingest within the noise of the measurement and would lose records 16 times
// as often.
//
// Costs. Ingest with the cache enabled pays one load and one plain store per touched key (about 10 % of
// ingest, bench/RESULTS.md; the bucket is owned by the shard whose lock the writer holds: no atomic
// read-modify-write); disabled, one null test per write.
// A hit pays the digest, one TTL-cache lookup (copying the entry out under its shard's mutex) and one
// counter load per examined key. A miss pays the uncached path plus the digest, one counter load per
// examined key and the rewrite of its entry.
//
// Thread safety: every member may be called concurrently with each other and with index writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "index/index.h"
#include "ttl/cache.h"

namespace kvcore::index {

// Per-bucket write generations of the index's keys.
class Generations {
public:
    static constexpr unsigned kBits = 20;
    static constexpr uint32_t kBuckets = 1u << kBits;
    using Bucket = uint32_t;  // ScoreTrace::buckets' type
    Generations() : gens_(std::make_unique<std::atomic<uint64_t>[]>(kBuckets)) {}

    // entry_hash: Index::entry_hash of the key. Its top bits select the index shard too (at most 4096
    // shards, 12 bits), so a bucket is only written under its shard's exclusive lock: a load and a store
    // suffice.
    [[nodiscard]] static constexpr Bucket bucket(uint64_t entry_hash) noexcept {
        return static_cast<Bucket>(entry_hash >> (64 - kBits));
    }
    void bump(uint64_t entry_hash) noexcept {
        std::atomic<uint64_t>& g = gens_[bucket(entry_hash)];
        g.store(g.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    [[nodiscard]] uint64_t read(Bucket bucket) const noexcept { return gens_[bucket].load(std::memory_order_acquire); }

private:
    std::unique_ptr<std::atomic<uint64_t>[]> gens_;
};

class ScoreCache {
public:
    // config: validated (ScoreCacheConfig::validate); clock: the index's (null: the TTL cache's own).
    ScoreCache(const ScoreCacheConfig& config, IndexConfig::Clock clock);
    ScoreCache(const ScoreCache&) = delete;
    ScoreCache& operator=(const ScoreCache&) = delete;

    [[nodiscard]] Generations& generations() noexcept { return gens_; }

    // Index::score_tokens through the cache: the same contract and results.
    size_t score_tokens(const Index& index, ModelId model, std::span<const int32_t> tokens,
                        const pool::ExtraKeys& extra, std::span<const PodId> candidates, std::span<PodScore> out,
                        const ScoreParams& params, std::span<const double> decode_load);

    // hits: scored from a record; misses: scored by the index (invalidations are misses too: a record
    // of the pod set was there but a write or a speculative expiry had made it stale).
    struct Counters {
        uint64_t hits = 0, misses = 0, invalidations = 0;
    };
    [[nodiscard]] Counters counters() const noexcept;

private:
    static uint64_t clock_trampoline(void* self);

    ScoreCacheConfig config_;
    IndexConfig::Clock clock_;
    Generations gens_;
    std::shared_ptr<ttl::Cache> entries_;
    uint64_t ttl_ns_;
    alignas(64) std::atomic<uint64_t> hits_{0};
    alignas(64) std::atomic<uint64_t> misses_{0};
    std::atomic<uint64_t> invalidations_{0};
};

}  // namespace kvcore::index
