/* SPDX-License-Identifier: Apache-2.0 */
// The cluster KV-block index (issue 13): which pod holds which KV blocks, fed by the engines' decoded KV
// event batches (event_decoder.h), and the scoring of pods by cached prefix. Internal C++ for now; the C
// API maps onto it one to one: models and pods are small integer handles (ModelId, PodId) interned from
// names, every call either completes or throws kvcore::Error before changing anything it validates, and
// results go to caller-sized outputs (no callbacks).
//
// Keys. Entries are (model, key kind, 64-bit key) -> the pods holding the block, each with its tier
// (Medium) and data-parallel rank. Request keys are what the router computes from a prompt with the
// index's BlockHasher (algorithm, seed, block size); engine keys are the hashes in the events. In
// direct mode (IndexConfig::engine_keys_direct: the engines hash with sha256_cbor and the same seed and
// block size) an engine key is the request key and ingest hashes nothing. Otherwise each pod's engine
// keys map to request keys recomputed from the event's tokens, 1:1, many:1 (engine blocks smaller) or
// 1:many (engine blocks larger): see PodState in index.cpp.
//
// Unknown parents. A BlockStored whose parent the pod never reported (a router restart) is not dropped:
// its blocks are indexed at once under their engine keys (KeyKind::kEngine), and the event is kept
// (bounded) until its parent is stored; then request keys are derived, the engine-key entries move to
// them, and the orphans chained below it heal too.
//
// Concurrency. Entries live in `shards` shards (32 by default) by key hash, each with a reader-writer lock, an
// open-addressing table of 4-byte slots into a slab of 16-byte entries, an arena of pod sets, its LRU
// and its share of the byte budget. A batch is planned under its (pod, rank, model)'s mutex without any
// shard lock (hashing, engine-key mapping), then applied holding the exclusive locks of every shard it
// touches, taken in ascending order: other threads see a batch whole or not at all. Scoring takes the
// shared locks of the shards of a window of keys in ascending order (the first 16 keys, then the rest),
// so readers and writers never deadlock and scoring runs alongside ingest of other shards. Lookups
// cannot reorder an LRU under a shared lock: they set a reference byte, and eviction gives a
// referenced key a second chance (LRU with second chance).
//
// Score cache. With IndexConfig::score_cache enabled, score_tokens answers repeated prompts from
// score_cache.h's cache; every write to a key bumps that key's generation bucket under its shard's
// exclusive lock (execute(), clears, budget evictions), which is how cached results are never stale.
// Redis mode (IndexConfig::redis.url set; KVCORE_REDIS builds; redis_store.h). Several router replicas
// share one index in a Redis or Valkey server: each keeps its own names and per-pod engine-key mapping
// (PodState: the pods whose events it ingests) but stores and reads the entries in the server, by name,
// so every replica sees every replica's writes. A Plan goes to the server as one Lua script (atomic:
// other replicas see a batch whole or not at all); score and lookup send pipelined windows of keys and
// stop early like the shards do. Replicas may ingest disjoint pods or the same ones (the writes are
// idempotent). Speculative expiry is on the server's clock, so replicas agree without synchronised
// clocks; IndexConfig::clock does not apply to it. The byte budget is the server's: byte_budget must
// be 0, and the server is given `maxmemory` with `maxmemory-policy allkeys-lru` (volatile-lru only
// when key_ttl_ms > 0: it evicts keys with a TTL), which evicts the least recently used entries (a
// pod's key set is rewritten with each of its writes, so it is rarely the one evicted; if it is, a
// clear of that pod misses the keys it listed, which then live until evicted or expired; a server with
// noeviction refuses a batch over maxmemory whole: KVC_ERR_CAPACITY). With redis.key_ttl_ms > 0 every
// holder also expires key_ttl after its last write (a pod that vanished without a clear leaves nothing
// behind), at the cost of forgetting blocks an engine holds longer without announcing them again. In
// Redis mode the counters of entries (keys, holders, speculative, charged bytes, evictions, expired) are
// the server's and read as 0 here; expire_speculative() has nothing to do (expired holders are ignored by readers
// and dropped by the next write of their key). A call that cannot reach the server fails with
// KVC_ERR_IO naming it, after a bounded reconnect; an apply() that fails so keeps its batch's changes
// and sends them, in order, before that (pod, rank, model)'s next batch. Threads: the rules above hold
// unchanged; server calls run on a pool of connections guarded by a mutex (one thread per connection at
// a time, at most redis.max_connections, further calls wait for one), so scorers and ingest threads
// reach the server in parallel.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "index/event_decoder.h"
#include "pool/block_hash.h"

namespace kvcore::index {

using ModelId = uint16_t;
using PodId = uint16_t;
inline constexpr uint32_t kMaxModels = 1u << 15;       // one bit of the model field is the key kind
inline constexpr uint32_t kMaxPods = 65535;            // PodId 0xFFFF is "none"
inline constexpr uint32_t kMaxRank = (1u << 12) - 1;   // data-parallel ranks 0..4095
inline constexpr size_t kNumTiers = 5;                 // Medium's values

enum class KeyKind : uint8_t { kRequest = 0, kEngine = 1 };

// The prefix-to-pods score cache of score_tokens (score_cache.h). max_entries 0: off.
struct ScoreCacheConfig {
    uint32_t max_entries = 0;               // prompts, LRU
    uint64_t ttl_ms = 30000;                // 1..1e12 when enabled
    uint32_t max_pod_sets_per_prompt = 5;   // 1..64 when enabled
    void validate() const;
};

// The Redis/Valkey backend (see "Redis mode" above; the details in redis_store.h).
struct RedisConfig {
    // "": entries in this process. redis://[[user]:password@]host[:port][/db] (valkey:// alike; host may be
    // [ipv6]), or unix:///path/to/socket[?db=N].
    std::string url;
    std::string key_prefix = "kvc:";  // every key of the index in the server starts with it
    uint64_t key_ttl_ms = 0;          // 0: holders never expire by time; else key_ttl after their last write
    uint32_t connect_timeout_ms = 1000;
    uint32_t command_timeout_ms = 5000;
    uint32_t reconnect_attempts = 3;  // per failed call, 10 ms backoff doubling, each within connect_timeout
    uint32_t max_connections = 16;    // calls beyond it wait for a free connection
    // Keys per pipelined read: the first window, then each window `read_window_growth` times the last.
    // 1 and 1: one round trip per key (the benchmark's baseline).
    uint32_t read_window = 32;
    uint32_t read_window_growth = 4;
    void validate() const;  // KVC_ERR_UNSUPPORTED for a url in a build without KVCORE_REDIS
};

struct IndexConfig {
    pool::HashAlgo hash_algo = pool::HashAlgo::kXxh3;
    std::string hash_seed = "42";
    uint32_t block_size = 16;  // tokens per request key
    // Engine keys are request keys (the engines use sha256_cbor, hash_seed and block_size); events of
    // another block size still go through the mapping.
    bool engine_keys_direct = false;
    // Power of two, 1..4096. A clear locks every shard (plus its pod's mutex): ThreadSanitizer tracks at
    // most 64 locks held at once, so tests under it stay at or below 32.
    uint32_t shards = 32;
    uint64_t byte_budget = 0;        // 0: unbounded; split evenly between shards
    uint32_t max_orphan_blocks = 1u << 16;  // per (pod, rank, model): kept for healing, oldest dropped
    using Clock = uint64_t (*)() noexcept;  // monotonic ns; tests inject one (speculative TTLs)
    Clock clock = nullptr;
    ScoreCacheConfig score_cache;
    RedisConfig redis;
    void validate() const;
};

// What a holder of a key is: a pod, its rank, the tier, and whether it is a routing decision awaiting
// the engine's event.
struct Holder {
    PodId pod = 0;
    uint16_t rank = 0;
    Medium tier = Medium::kGpu;
    bool speculative = false;
    friend bool operator==(const Holder&, const Holder&) = default;
};

struct ScoreParams {
    // Weight of a block by tier, indexed by Medium. Speculative holders count as GPU.
    std::array<float, kNumTiers> tier_weight{1.0f, 0.8f, 0.6f, 0.4f, 0.5f};
    // Load-aware cost: (prompt blocks - cached run) x prefill_weight + decode_load[i].
    double prefill_weight = 1.0;
};

// The load-aware cost of a run of `blocks` cached blocks of a prompt of prompt_blocks blocks.
[[nodiscard]] inline double load_cost(size_t prompt_blocks, uint32_t blocks, double prefill_weight,
                                      double decode_load) noexcept {
    return double(prompt_blocks - blocks) * prefill_weight + decode_load;
}

class Generations;

// What decided a score (for the score cache): keys [0, keys_examined) were read, and the earliest
// expiry (Index clock) of a live speculative holder met, UINT64_MAX for none. With gens set, each
// examined key's generation bucket is appended to buckets and its generation, read under the key's
// shard lock together with the key, added to gen_sum.
struct ScoreTrace {
    const Generations* gens = nullptr;
    std::vector<uint32_t>* buckets = nullptr;
    size_t keys_examined = 0;
    uint64_t gen_sum = 0;
    uint64_t speculative_deadline = UINT64_MAX;
};

struct PodScore {
    PodId pod = 0;
    uint32_t blocks = 0;  // consecutive cached blocks from block 0
    double score = 0;     // the same run, each block weighted by the best tier the pod holds it in
    double cost = 0;      // load-aware cost (lower is better); 0 unless decode loads were given
};

// A pod's tally during a scoring walk (the shards' and Redis's): its run covers keys [0, blocks) and goes
// on at key i while blocks == i; best is the best tier weight it holds key i in (0: none yet).
struct ScoreTally {
    PodId pod = 0;
    uint32_t blocks = 0;
    double score = 0;
    float best = 0;
};

// The end of a scoring walk: per candidate its tally (slot_for[k] indexes tallies; duplicates share one)
// with its load-aware cost when decode loads are given; with no candidates, the pods met, best first, as
// many as out holds. Returns how many were written. Sorts tallies in the second case.
size_t finish_scores(std::span<ScoreTally> tallies, std::span<const uint16_t> slot_for,
                     std::span<const PodId> candidates, std::span<PodScore> out, size_t prompt_blocks,
                     double prefill_weight, std::span<const double> decode_load);

// llm-d's Lookup: per key, in order, the holders among the filter; stops at the first key without one.
struct LookupResult {
    size_t keys_found = 0;          // keys [0, keys_found) have at least one holder
    std::vector<uint32_t> offsets;  // keys_found + 1 offsets into holders
    std::vector<Holder> holders;
};

struct IndexCounters {
    uint64_t keys = 0;                 // (model, kind, key) entries
    uint64_t holders = 0;              // (key, holder) pairs
    uint64_t speculative = 0;          // live speculative holders
    uint64_t charged_bytes = 0;        // what the budget counts (see Index::kKeyCharge)
    uint64_t memory_bytes = 0;         // allocated by the shards (capacities), engine maps estimated
    uint64_t engine_blocks = 0;        // engine keys mapped (mapping mode)
    uint64_t orphan_blocks = 0;        // blocks waiting for their parent
    uint64_t evictions = 0;            // keys evicted by the byte budget
    uint64_t expired = 0;              // speculative holders expired
    uint64_t batches = 0, blocks_stored = 0, blocks_removed = 0, clears = 0;
    uint64_t orphans_healed = 0, orphans_dropped = 0, unknown_events = 0;
    uint64_t score_cache_hits = 0, score_cache_misses = 0, score_cache_invalidations = 0;
    // Redis mode: failed server calls (each retried once after a reconnect), reconnections made, and
    // round trips (pipelined windows and scripts).
    uint64_t redis_errors = 0, redis_reconnects = 0, redis_round_trips = 0;
};

class ScoreCache;

class Index {
public:
    // Each key costs its slab entry (16 B), its reference byte, its LRU node (12 B) and two table slots
    // (4 B each: the table is kept between 3/8 and 3/4 full); a pod set beyond the first holder costs
    // 4 B per slot of its power-of-two capacity. The budget counts exactly this.
    static constexpr uint64_t kKeyCharge = 16 + 1 + 12 + 8;
    static constexpr uint64_t kHolderSlotCharge = 4;

    explicit Index(IndexConfig config);
    ~Index();
    Index(const Index&) = delete;
    Index& operator=(const Index&) = delete;

    [[nodiscard]] const IndexConfig& config() const noexcept { return config_; }
    [[nodiscard]] const pool::BlockHasher& hasher() const noexcept { return hasher_; }

    // Interning: the same name always gives the same id while it is known. KVC_ERR_CAPACITY past the
    // limits; find_* return nullopt-like 0xFFFF for an unknown name.
    ModelId intern_model(std::string_view name);
    PodId intern_pod(std::string_view name);
    // In Redis mode every non-empty name may be in the shared index: find_pod interns it.
    [[nodiscard]] PodId find_pod(std::string_view name) const;
    [[nodiscard]] std::string pod_name(PodId pod) const;
    static constexpr PodId kNoPod = 0xFFFF;
    // The hash by which the index places a key (its shard and the score cache's generation bucket).
    [[nodiscard]] static uint64_t entry_hash(ModelId model, KeyKind kind, uint64_t key) noexcept;

    // Applies one decoded batch from (pod, model): wholly or, on a validation error
    // (KVC_ERR_INVALID_ARGUMENT), not at all. Batches of one pod must be applied in order (one thread
    // per pod at a time; IngestPool does this); batches of different pods may run concurrently.
    void apply(PodId pod, ModelId model, const EventBatch& batch);

    // Removes every entry of the pod (all models, ranks, tiers) and its engine-key state; the id may be
    // reused by the next new name.
    void remove_pod(PodId pod);

    // The router's routing decision: the pod (rank 0, GPU) holds these request keys for ttl_ns, or until
    // the engine's event for the key arrives from that pod.
    void add_speculative(ModelId model, std::span<const uint64_t> keys, PodId pod, uint64_t ttl_ns);
    // Removes expired speculative holders now (they are ignored by scoring from their expiry anyway).
    void expire_speculative();

    // llm-d's explicit writes, for a router that decodes events itself or learns of blocks another way.
    // add: every holder (pod, rank, tier; `speculative` must be false) holds each request key, and each
    // holder's pod maps engine_keys to request_keys, so that evict can name a block by its engine key.
    // The mapping by lengths (E engine keys, R >= 1 request keys):
    //   E == 0                 no mapping: request keys only (llm-d's nil engineKeys);
    //   E == R                 1:1, engine_keys[i] -> request_keys[i];
    //   E == k*R (k > 1)       many:1 (engine blocks k times smaller), engine_keys[i] -> request_keys[i / k];
    //   R == k*E (k > 1)       1:many (engine blocks k times larger), engine_keys[i] -> request_keys[i*k, i*k+k);
    //   anything else          KVC_ERR_INVALID_ARGUMENT.
    // An engine key added again for the same (pod, rank) keeps its earlier request keys as well. The
    // mapping lives per (pod, rank, model), beside the events' own (an engine key is the same hash on
    // every engine only when their seeds agree), and goes with kvc_index_clear / remove_pod.
    // Each (pod, rank)'s part is applied whole, one after the other; a failing check changes nothing.
    void add(ModelId model, std::span<const uint64_t> engine_keys, std::span<const uint64_t> request_keys,
             std::span<const Holder> holders);
    // add's rule on the counts alone (KVC_ERR_INVALID_ARGUMENT), for callers that check before naming anything.
    static void check_key_counts(size_t engine_keys, size_t request_keys);
    // evict: removes the holders from one key. kRequest: the key itself. kEngine: each holder's pod
    // resolves it through add's mapping (removing the holder from every request key it maps to, and the
    // mapping once no tier is left), else through the events' own mapping, as a BlockRemoved of that pod
    // would. A speculative holder of a pod counts as (rank 0, gpu). Holders that hold nothing are ignored.
    void evict(ModelId model, uint64_t key, KeyKind kind, std::span<const Holder> holders);
    // Withdraws a routing decision: the pod's speculative holders of these request keys go (its
    // confirmed ones stay).
    void remove_speculative(ModelId model, std::span<const uint64_t> keys, PodId pod);

    // Request keys of a prompt: the chain of its full blocks with the index's hasher.
    [[nodiscard]] std::vector<uint64_t> request_keys(std::span<const int32_t> tokens,
                                                     const pool::ExtraKeys& keys) const;

    // Scores candidates (empty: every pod holding key 0) by their longest run of cached blocks from
    // key 0. out must have candidates.size() elements (or, with no candidates, receives at most
    // out.size() pods, best first); returns how many were written. decode_load: empty, or one per
    // candidate (then cost is computed).
    size_t score(ModelId model, std::span<const uint64_t> keys, std::span<const PodId> candidates,
                 std::span<PodScore> out, const ScoreParams& params = {}, KeyKind kind = KeyKind::kRequest,
                 std::span<const double> decode_load = {}, ScoreTrace* trace = nullptr) const;
    // Through the score cache when IndexConfig::score_cache enables it (same results; score_cache.h).
    size_t score_tokens(ModelId model, std::span<const int32_t> tokens, const pool::ExtraKeys& extra,
                        std::span<const PodId> candidates, std::span<PodScore> out, const ScoreParams& params = {},
                        std::span<const double> decode_load = {}) const;

    // filter: empty for every pod.
    [[nodiscard]] LookupResult lookup(ModelId model, std::span<const uint64_t> keys, std::span<const PodId> filter,
                                      KeyKind kind = KeyKind::kRequest) const;
    // Every holder of one key (no filter, no stopping), for tests and tools.
    [[nodiscard]] std::vector<Holder> holders(ModelId model, uint64_t key, KeyKind kind = KeyKind::kRequest) const;

    [[nodiscard]] IndexCounters counters() const;

    // For tests: throws kvcore::Error(INTERNAL) on the first broken invariant (tables, charges, LRU).
    void check_invariants() const;

    struct Shard;
    struct PodState;
    struct Plan;

private:
    friend class ScoreCache;
    [[nodiscard]] uint64_t now() const noexcept;
    PodState& pod_state(PodId pod, uint16_t rank, ModelId model);
    // add's and evict's checks: the model and pods known, ranks and tiers in range.
    void check_holders(ModelId model, std::span<const Holder> holders) const;
    void plan_batch(PodState& state, PodId pod, uint16_t rank, ModelId model, const EventBatch& batch, Plan& plan);
    void execute(Plan& plan);

    // Redis mode (index_redis.cpp): the dispatch targets of execute, score, lookup, holders, counters.
    struct Redis;
    struct RedisDelete {
        void operator()(Redis* r) const noexcept;
    };
    std::unique_ptr<Redis, RedisDelete> redis_;
    void redis_open();
    void redis_execute(Plan& plan, Plan* unsent);
    size_t redis_score(ModelId model, std::span<const uint64_t> keys, std::span<const PodId> candidates,
                       std::span<PodScore> out, const ScoreParams& params, KeyKind kind,
                       std::span<const double> decode_load) const;
    [[nodiscard]] LookupResult redis_lookup(ModelId model, std::span<const uint64_t> keys,
                                            std::span<const PodId> filter, KeyKind kind) const;
    [[nodiscard]] std::vector<Holder> redis_holders(ModelId model, uint64_t key, KeyKind kind) const;
    void redis_counters(IndexCounters& c) const;

    IndexConfig config_;
    pool::BlockHasher hasher_;
    std::vector<std::unique_ptr<Shard>> shards_;
    uint32_t shard_shift_;

    mutable std::mutex names_mutex_;
    std::vector<std::string> models_;
    std::vector<std::string> pods_;  // "" for a free id
    std::vector<PodId> free_pods_;

    mutable std::mutex states_mutex_;
    std::vector<std::unique_ptr<PodState>> states_;  // per (pod, rank, model), found by a small map
    struct StateMap;
    std::unique_ptr<StateMap> state_map_;

    std::unique_ptr<ScoreCache> score_cache_;  // null when disabled
    Generations* gens_ = nullptr;              // score_cache_'s, bumped by every write

    std::atomic<uint64_t> batches_{0}, blocks_stored_{0}, blocks_removed_{0}, clears_{0}, orphans_healed_{0},
        orphans_dropped_{0}, unknown_events_{0};
};

}  // namespace kvcore::index
