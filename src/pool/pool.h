/* SPDX-License-Identifier: Apache-2.0 */
// The paged KV block pool: num_blocks blocks of block_size tokens, reference counted, with a prefix
// cache over chained block hashes, copy-on-write forks, retention priorities, pinning, sliding-window
// release, KV events and statistics.
//
// Blocks: block 0 is the reserved null block (the placeholder for blocks a sliding window released);
// 1..num_blocks-1 are usable. A block with ref == 0 is free and sits at its retention priority's level;
// a block without a cached hash goes first, then the lowest non-empty level's victim, which the
// eviction policy (PoolConfig::eviction) picks within that level. Under LRU (the default, vLLM's order)
// the levels are the free lists themselves, evicted from the head; other policies keep a level's cached
// blocks in a policy (pool/policy_levels.h). Blocks are freed tail first, so among blocks with the same
// history a chain's tail goes before its head. A free block keeps its hash and stays hit-able until it
// is taken for new data.
//
// Sequences are named by 64-bit ids (stamp 40 | slot 24), not pointers, so a freed, stale or foreign id
// is detected and reported instead of corrupting memory. Stamps come from one process-wide counter
// (pools reserve them 4096 at a time), so no id is ever issued twice in a process, whichever pool
// issued it, until 2^40 - 1 sequences were created; then creating one fails with KVC_ERR_CAPACITY.
//
// Not thread-safe: one thread (the scheduler's) drives a pool, as in vLLM. Every failing call leaves the
// pool exactly as it was (checked before anything changes).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/eviction/policy.h"
#include "pool/block_hash.h"
#include "pool/events.h"
#include "pool/policy_levels.h"
#include "pool/prefix_map.h"
#include "stats/recorder.h"

namespace kvcore::pool {

enum class Memory : uint32_t { kMetadataOnly = 0, kHost = 1, kDevice = 2 };
enum class DType : uint32_t { kF16 = 0, kBF16 = 1, kF32 = 2, kFP8 = 3, kInt8 = 4 };
uint32_t dtype_bytes(DType dtype) noexcept;
// Bytes of one block of K (or V) of one layer: its elements, and for INT8 their per-token-per-head float
// scales after them (elements rounded up to 4 bytes first). The layout the ops kernels address
// (include/kvcore/ops.h).
uint64_t tensor_block_bytes(uint32_t block_size, uint32_t kv_heads, uint32_t head_dim, DType dtype) noexcept;
// Where an INT8 block's scales start: its elements' bytes rounded up to 4.
uint64_t int8_scale_offset(uint32_t block_size, uint32_t kv_heads, uint32_t head_dim) noexcept;

struct PoolConfig {
    uint32_t num_blocks = 1024;  // including the null block
    uint32_t block_size = 16;    // tokens per block
    uint32_t layers = 1, kv_heads = 8, head_dim = 128;
    DType dtype = DType::kF16;
    Memory memory = Memory::kMetadataOnly;
    HashAlgo hash_algo = HashAlgo::kXxh3;
    std::string hash_seed = "42";
    bool prefix_caching = true;
    uint32_t sliding_window = 0;  // tokens; 0: full attention
    bool events = false;
    std::string event_medium = "GPU";
    uint32_t max_pending_events = 100000;
    uint32_t window_requests = 1000;  // requests in the windowed token hit rate
    // Off: no recorder and no request window, so the pool pays nothing for them (vLLM's log_stats,
    // RocksDB's optional Statistics); snapshot() then fails with KVC_ERR_INVALID_STATE.
    bool statistics = true;
    // Which free cached block goes first within a retention level.
    eviction::Kind eviction = eviction::Kind::kLru;

    void validate() const;  // throws kvcore::Error naming the bad field
    // K and V of every layer for one block.
    [[nodiscard]] uint64_t bytes_per_block() const noexcept;
};

// Retention priority of a sequence's blocks once freed (TensorRT-LLM's scale): 0..100, higher stays
// longer; after duration_ms (0: forever) it falls back to the default.
inline constexpr uint32_t kMaxPriority = 100;
inline constexpr uint32_t kDefaultPriority = 35;

struct SequenceOptions {
    ExtraKeys keys;
    int64_t lora_id = 0;  // the engine's integer adapter id, published in events only (0: none)
    uint32_t priority = kDefaultPriority;
    uint64_t priority_duration_ms = 0;
    // Full blocks enter the prefix cache only at commit(), once the embedder has written their K/V, so
    // no other request can hit a block whose K/V are not there yet (the session store's sequences).
    bool defer_caching = false;
};

using SequenceId = uint64_t;

struct PoolCounters {
    uint32_t num_blocks = 0, free_blocks = 0, blocks_in_use = 0, cached_blocks = 0;
    uint64_t tokens_stored = 0;    // tokens held by blocks in use
    double memory_efficiency = 0;  // tokens_stored / (blocks_in_use * block_size); 0 with none in use
    uint64_t window_requests = 0, window_tokens_queried = 0, window_tokens_hit = 0;
    uint64_t live_sequences = 0, events_pending = 0, events_dropped = 0, copies_pending = 0;
};

class Pool {
public:
    using Clock = uint64_t (*)() noexcept;  // ns; tests inject them

    // clock: monotonic (retention durations); wall_clock: since the epoch (the events' ts).
    explicit Pool(PoolConfig config, Clock clock = nullptr, Clock wall_clock = nullptr);
    ~Pool();
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    [[nodiscard]] const PoolConfig& config() const noexcept { return config_; }
    [[nodiscard]] const BlockHasher& hasher() const noexcept { return hasher_; }

    // ---- sequences ----
    SequenceId create_sequence(std::span<const int32_t> prompt, SequenceOptions options);
    // Longest cached prefix in tokens (whole blocks, at most prompt length - 1). Changes nothing.
    [[nodiscard]] size_t cached_prefix_tokens(SequenceId id) const;
    // Slots for tokens [0, num_tokens) of the prompt. The first call takes the cached prefix (returned
    // in *cached_tokens when not null). All-or-nothing: KVC_ERR_CAPACITY changes nothing.
    void allocate(SequenceId id, size_t num_tokens, size_t* cached_tokens = nullptr);
    // Adds generated tokens and slots for them; blocks that fill up are hashed and cached. A shared,
    // partly filled last block is copied first (see drain_copies). All-or-nothing.
    void append(SequenceId id, std::span<const int32_t> tokens);
    SequenceId fork(SequenceId id);
    // A frozen holder of the sequence's full cached blocks: they are never evicted until it is freed.
    SequenceId pin_prefix(SequenceId id);
    void free_sequence(SequenceId id);

    // ---- turns: a sequence kept across requests (the session store) ----
    // Cuts an allocated sequence to its first `tokens` tokens: blocks past them are released tail first;
    // a kept block that the cut leaves partly filled is dropped from the prefix cache when only this
    // sequence holds it (its tail will be overwritten), and copied on the next growth when others share
    // it. Full attention only (KVC_ERR_UNSUPPORTED with a sliding window). All-or-nothing.
    void truncate(SequenceId id, size_t tokens);
    // Blocks that taking the sequence to new_total slotted tokens would take from the free lists (the
    // blocks in use grow by exactly this): for a sequence not yet allocated, its first allocate with its
    // cached prefix (free cached blocks it revives count, blocks in use elsewhere do not); otherwise new
    // blocks plus a copy-on-write copy. Changes nothing.
    // keep < num_tokens: the same, after truncate(id, keep).
    [[nodiscard]] size_t blocks_needed(SequenceId id, size_t new_total, size_t keep = SIZE_MAX) const;
    // Blocks that truncate(id, tokens) would return to the free lists (those only this sequence holds).
    [[nodiscard]] size_t blocks_freed_by_truncate(SequenceId id, size_t tokens) const;
    // Blocks that freeing every sequence in `ids` would return to the free lists: those no other holder
    // references, each counted once however many of `ids` share it. Changes nothing.
    [[nodiscard]] size_t reclaimable_blocks(std::span<const SequenceId> ids) const;
    // For a sequence created with defer_caching: registers its full blocks among the first `tokens`
    // slotted tokens in the prefix cache (their K/V are written). Blocks already cached stay as they are.
    void commit(SequenceId id, size_t tokens);

    [[nodiscard]] std::span<const int32_t> block_table(SequenceId id) const;
    [[nodiscard]] size_t num_tokens(SequenceId id) const;  // tokens with slots
    [[nodiscard]] size_t prompt_tokens(SequenceId id) const;
    // Slot (block * block_size + offset) of each token in [first, first + out.size()).
    void slot_mapping(SequenceId id, size_t first, std::span<int64_t> out) const;
    // Copy-on-write copies (src block, dst block) to perform before the next forward pass.
    std::vector<std::pair<int32_t, int32_t>> drain_copies();

    // ---- raw blocks, for embedders that keep their own block tables ----
    void allocate_blocks(std::span<int32_t> out);  // all-or-nothing
    void free_blocks(std::span<const int32_t> blocks);

    // ---- prefix cache ----
    // Drops every cached hash; only when no block is in use. Emits AllBlocksCleared.
    void reset_prefix_cache();

    // ---- events, stats, memory ----
    // KVC_ERR_INVALID_STATE when the pool records no events (an empty batch would read as "nothing
    // happened" to a router).
    [[nodiscard]] std::vector<uint8_t> encode_events(EventEncoding encoding) const;
    void clear_events() noexcept { events_.clear(); }
    [[nodiscard]] stats::Snapshot snapshot() const;
    [[nodiscard]] PoolCounters counters() const;
    [[nodiscard]] void* storage() const noexcept { return storage_; }

    // For tests: throws kvcore::Error(INTERNAL) describing the first broken invariant.
    void check_invariants() const;
    // For tests: the process-wide id counter continues at next_stamp and this pool's reserved ids are
    // dropped, so ids far apart (a wrap, exhaustion) are reached without creating billions. Returns the
    // counter's previous value.
    uint64_t restart_ids_for_testing(uint64_t next_stamp);
    static constexpr uint64_t kIdStampLimit = uint64_t{1} << 40;  // stamps run 1 .. 2^40 - 1
    // For tests: how many ranges of reserved ids this pool remembers (bounded).
    [[nodiscard]] size_t id_ranges_for_testing() const noexcept { return stamp_ranges_.size(); }

private:
    struct Block {
        int32_t ref = 0;
        uint8_t level = 0;             // the free list it sits in
        bool free = false;
        bool cached = false;  // hash registered in the prefix map
        bool raw = false;     // handed out by allocate_blocks, not part of a sequence
        bool marked = false;  // free_blocks: seen earlier in the same call (a double free)
        uint16_t filled = 0;  // tokens written
        uint64_t domain = 0;
        uint64_t expiry_stamp = 0;  // identifies the block's priority-expiry entry
        BlockHash hash;
    };
    // Free-list links, apart from Block: popping walks them like a linked list, and 8-byte entries keep
    // that walk in L1 where 72-byte blocks would spill to L2.
    struct Link {
        int32_t prev = -1, next = -1;
    };
    struct FreeList {
        int32_t head = -1, tail = -1;
    };
    struct Sequence {
        uint64_t stamp = 0;  // of its id; 0 while the slot is free (no id has stamp 0)
        bool live = false, admitted = false, frozen = false;
        SequenceOptions options;
        uint64_t domain = 0;
        size_t prompt_len = 0;
        size_t prompt_blocks = 0;  // full blocks of the prompt
        std::vector<int32_t> tokens;
        std::vector<BlockHash> hashes;  // of full blocks, as far as known
        std::vector<int32_t> blocks;
        size_t slotted = 0;        // tokens with slots
        size_t cached_blocks = 0;  // leading blocks registered (or found) in the prefix cache
        size_t window_released = 0;  // leading blocks a sliding window gave back (now the null block)
    };
    struct Expiry {
        uint64_t at_ns;
        int32_t block;
        uint64_t stamp;
    };

    Sequence& live_sequence(SequenceId id);
    [[nodiscard]] const Sequence& live_sequence(SequenceId id) const;
    [[noreturn]] void reject_id(SequenceId id) const;
    // Makes sure an id can be issued (reserving stamps), before a creation changes anything.
    void require_id();
    // The slot's next id, once its creation can no longer fail.
    [[nodiscard]] SequenceId issue_id(uint32_t slot) noexcept;
    uint32_t take_sequence_slot();
    // Empties a slot (its sequence freed, or its creation undone) and makes it free for reuse.
    void return_sequence_slot(uint32_t slot);
    void validate_tokens(std::span<const int32_t> tokens) const;

    [[nodiscard]] uint64_t map_key(const BlockHash& hash, uint64_t domain) const noexcept;
    [[nodiscard]] int32_t find_cached(const BlockHash& hash, uint64_t domain) const noexcept;
    [[nodiscard]] size_t count_cached_prefix_blocks(const Sequence& seq, std::vector<int32_t>* found) const;

    // Throws KVC_ERR_CAPACITY (and counts memory pressure) unless `needed` blocks are free.
    void require_free_blocks(size_t needed);
    // KVC_ERR_CAPACITY for want of blocks: what memory pressure counts, once per refused call.
    [[noreturn]] void refuse_for_memory(const std::string& message);
    // The recorder's peak reads peak_blocks_in_use_ at a snapshot; calls that take blocks note it.
    void note_peak() noexcept {
        if (blocks_in_use_ > peak_blocks_in_use_) peak_blocks_in_use_ = blocks_in_use_;
    }
    // The per-block steps of every allocate and free: inlined into their loops (a call each cost ~20 %
    // of a batched allocate + free).
    // kLru: the caller checked that the pool evicts by LRU (no policy_levels_), so the free lists are
    // the whole story: the loops that free or take many blocks test that once, not once a block.
    template <bool kLru = false>
    [[gnu::always_inline]] inline void push_free(int32_t block, uint32_t level);
    [[gnu::always_inline]] inline void unlink_free(int32_t block);
    [[gnu::always_inline]] inline void unlink_listed(int32_t block) noexcept;  // out of its free list
    template <bool kLru = false>
    [[gnu::always_inline]] inline int32_t pop_free();  // evicts the block's hash if it had one
    // Not LRU, out of line so that LRU's inlined paths stay as they were: a cached block freed into its
    // level's policy, taken out of it (a hit), and the policy's victim of a level whose free list is empty.
    [[gnu::noinline, gnu::cold]] void free_to_policy(int32_t block, uint32_t level);
    [[gnu::noinline, gnu::cold]] void take_from_policy(int32_t block);
    [[gnu::noinline, gnu::cold]] void acquire_under_policy(int32_t block);
    [[gnu::noinline, gnu::cold]] int32_t take_policy_victim(uint32_t level);
    void clear_level_bit(uint32_t level) noexcept {
        nonempty_levels_[level / 64] &= ~(uint64_t{1} << (level % 64));
    }
    void expire_priorities();
    void acquire(int32_t block);  // ref++, leaving the free list on 0 -> 1
    template <bool kLru = false>
    [[gnu::always_inline]] inline void release(int32_t block, uint32_t priority, uint64_t duration_ms);
    void push_expiry(int32_t block, uint64_t duration_ms);
    void uncache(int32_t block);

    // Blocks that growing to new_total takes, from the sequence as it is or cut to its first keep tokens.
    [[nodiscard]] size_t blocks_to_grow(const Sequence& seq, size_t new_total, bool* copy_on_write,
                                        size_t keep = SIZE_MAX) const;
    void grow(Sequence& seq, size_t new_total, bool copy_on_write);
    void ensure_hashes(Sequence& seq, size_t full_blocks);
    // Registers full blocks among the first upto_tokens slotted tokens (all of them by default).
    void cache_full_blocks(Sequence& seq, size_t upto_tokens = SIZE_MAX);
    // What a first allocate of num_tokens takes: the cached prefix (into *found) and its hit count, the
    // slotted target, and the blocks taken from the free lists. allocate and blocks_needed share it.
    struct Admission {
        size_t hits = 0, target = 0, needed = 0;
    };
    [[nodiscard]] Admission plan_admission(const Sequence& seq, size_t num_tokens, std::vector<int32_t>* found) const;
    // An admitted request's prefix lookup into the recorder and the request window (statistics on).
    [[gnu::always_inline]] inline void record_prefix_lookup(const Sequence& seq, size_t hit_blocks);
    void set_fill(Sequence& seq, size_t from_token);
    void release_outside_window(Sequence& seq);
    [[nodiscard]] size_t blocks_for(size_t tokens) const noexcept {
        return (tokens + config_.block_size - 1) / config_.block_size;
    }

    PoolConfig config_;
    Clock clock_;
    Clock wall_clock_;
    BlockHasher hasher_;
    // Ids: the stamps reserved and not yet issued, and every range this pool reserved (ascending,
    // contiguous ones merged), which tells a freed id (INVALID_STATE) from a foreign one.
    uint64_t next_stamp_ = 0, stamp_end_ = 0;
    std::vector<std::pair<uint64_t, uint64_t>> stamp_ranges_;
    std::vector<Block> blocks_;
    std::vector<Link> links_;  // parallel to blocks_
    std::vector<FreeList> free_lists_;  // one per priority level
    uint64_t nonempty_levels_[2] = {0, 0};
    uint32_t num_free_ = 0;
    // Null under LRU; otherwise the cached free blocks, which the free lists then never hold.
    std::unique_ptr<PolicyLevels> policy_levels_;
    PrefixMap map_;
    std::vector<Expiry> expiries_;  // min-heap on at_ns
    uint64_t next_expiry_stamp_ = 1;
    std::vector<Sequence> sequences_;
    std::vector<uint32_t> free_slots_;
    uint64_t live_sequences_ = 0;
    std::vector<std::pair<int32_t, int32_t>> copies_;
    uint64_t tokens_stored_ = 0;
    uint32_t blocks_in_use_ = 0;
    uint32_t peak_blocks_in_use_ = 0;  // since creation, noted when a call has taken its blocks
    EventLog events_;
    std::unique_ptr<stats::Recorder> recorder_;  // null when config_.statistics is off
    // The pool's own shard of recorder_ for its prefix lookups (one thread at a time drives a pool).
    std::optional<stats::Recorder::ExclusiveWriter> lookup_writer_;
    // Counts without a window are plain running totals, handed to the recorder when a snapshot reads
    // it (one thread drives the pool, so nothing is lost); only block hits and misses go to the recorder
    // as they happen, because its windows date them. Evictions are not counted at all: every cached
    // hash was inserted once and leaves by eviction, by a reset, or is still cached, so a snapshot
    // derives them.
    struct Totals {
        uint64_t insertions = 0, cleared_by_reset = 0, tokens_queried = 0, tokens_hit = 0;
        uint64_t evictions = 0;  // derived by snapshot()
    };
    // What an admission's statistics touch sits together, from lookup_writer_ to the window sums.
    Totals totals_;
    std::vector<std::pair<uint32_t, uint32_t>> request_window_;  // (queried, hit) tokens, a ring
    size_t request_window_pos_ = 0;
    uint64_t request_window_count_ = 0;
    uint64_t window_tokens_queried_ = 0, window_tokens_hit_ = 0;  // sums over request_window_
    mutable Totals reported_;  // what the recorder has been given
    void* storage_ = nullptr;
};

}  // namespace kvcore::pool
