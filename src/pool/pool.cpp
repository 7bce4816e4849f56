// SPDX-License-Identifier: Apache-2.0
#include "pool/pool.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <unordered_map>

#include "common/device_memory.h"
#include "common/error.h"

namespace kvcore::pool {

namespace {

// Nanoseconds of CLOCK_MONOTONIC (retention) or CLOCK_REALTIME (the events' ts), as a Pool::Clock.
template <clockid_t kClock>
uint64_t clock_ns() noexcept {
    timespec ts{};
    clock_gettime(kClock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// An id is stamp << 24 | slot. Every id of every pool takes a new stamp from this counter, so an id is
// never issued twice in a process (a per-slot generation and a per-pool tag wrapped, after 2^24 reuses
// of a slot and 65,535 pools, and then accepted stale and foreign ids).
constexpr uint32_t kSlotBits = 24;
constexpr uint64_t kSlotMask = (1u << kSlotBits) - 1;
static_assert(Pool::kIdStampLimit == uint64_t{1} << (64 - kSlotBits));
constexpr uint64_t kStampsReserved = 4096;  // per pool at a time: one atomic operation per 4096 ids
constexpr size_t kMaxStampRanges = 64;      // the id history a pool keeps to tell freed ids from foreign ones
std::atomic<uint64_t> next_id_stamp{1};     // 0 is no stamp
constexpr int32_t kNullBlock = 0;

std::string id_text(SequenceId id) { return std::to_string(id); }

// The message is built only when the check fails: these checks sit on hot paths.
#define KVC_ENSURE(ok, status, message)                  \
    do {                                                  \
        if (!(ok)) [[unlikely]] ::kvcore::fail((status), (message)); \
    } while (0)

}  // namespace

uint32_t dtype_bytes(DType dtype) noexcept {
    switch (dtype) {
        case DType::kF32: return 4;
        case DType::kF16:
        case DType::kBF16: return 2;
        case DType::kFP8:
        case DType::kInt8: return 1;
    }
    return 0;
}

void PoolConfig::validate() const {
    auto range = [](const char* name, uint64_t v, uint64_t lo, uint64_t hi) {
        KVC_ENSURE(v >= lo && v <= hi, KVC_ERR_INVALID_ARGUMENT,
                std::string(name) + " must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                    std::to_string(v));
    };
    range("num_blocks", num_blocks, 2, 1u << 30);  // block 0 is the null block
    range("block_size", block_size, 1, 4096);
    range("layers", layers, 1, 4096);
    range("kv_heads", kv_heads, 1, 4096);
    range("head_dim", head_dim, 1, 65536);
    range("sliding_window", sliding_window, 0, 1u << 30);
    range("max_pending_events", max_pending_events, 1, 1u << 30);
    range("window_requests", window_requests, 1, 1u << 20);
    range("eviction", static_cast<uint32_t>(eviction), 0, eviction::kLastKind);
    KVC_ENSURE(dtype_bytes(dtype) != 0, KVC_ERR_INVALID_ARGUMENT, "unknown dtype " + std::to_string(uint32_t(dtype)));
    KVC_ENSURE(memory == Memory::kMetadataOnly || memory == Memory::kHost || memory == Memory::kDevice,
            KVC_ERR_INVALID_ARGUMENT, "unknown memory kind " + std::to_string(uint32_t(memory)));
    KVC_ENSURE(hash_algo == HashAlgo::kXxh3 || hash_algo == HashAlgo::kSha256Cbor, KVC_ERR_INVALID_ARGUMENT,
            "unknown hash algorithm " + std::to_string(uint32_t(hash_algo)));
    KVC_ENSURE(!event_medium.empty() && event_medium.size() <= 32, KVC_ERR_INVALID_ARGUMENT,
            "event medium must be 1..32 characters");
    if (memory != Memory::kMetadataOnly) {
        // 2 * layers * heads * dim * block_size * 4 < 2^77 cannot overflow in 128 bits; cap at 16 TiB.
        const unsigned __int128 total = static_cast<unsigned __int128>(bytes_per_block()) * num_blocks;
        KVC_ENSURE(total <= (uint64_t{1} << 44), KVC_ERR_INVALID_ARGUMENT,
                "the pool's memory (num_blocks * bytes_per_block) exceeds 16 TiB");
    }
}

uint64_t int8_scale_offset(uint32_t block_size, uint32_t kv_heads, uint32_t head_dim) noexcept {
    return (uint64_t(block_size) * kv_heads * head_dim + 3) & ~uint64_t{3};
}

uint64_t tensor_block_bytes(uint32_t block_size, uint32_t kv_heads, uint32_t head_dim, DType dtype) noexcept {
    if (dtype == DType::kInt8) return int8_scale_offset(block_size, kv_heads, head_dim) + uint64_t(block_size) * kv_heads * 4;
    return uint64_t(block_size) * kv_heads * head_dim * dtype_bytes(dtype);
}

uint64_t PoolConfig::bytes_per_block() const noexcept {
    return 2ull * layers * tensor_block_bytes(block_size, kv_heads, head_dim, dtype);
}

Pool::Pool(PoolConfig config, Clock clock, Clock wall_clock)
    : config_((config.validate(), std::move(config))),
      clock_(clock != nullptr ? clock : clock_ns<CLOCK_MONOTONIC>),
      wall_clock_(wall_clock != nullptr ? wall_clock : clock_ns<CLOCK_REALTIME>),
      hasher_(config_.hash_algo, config_.hash_seed),
      blocks_(config_.num_blocks),
      links_(config_.num_blocks),
      free_lists_(kMaxPriority + 1),
      map_(config_.num_blocks),
      events_(config_.events, config_.event_medium, config_.max_pending_events, 0, config_.sliding_window),
      request_window_(config_.statistics ? config_.window_requests : 0) {
    if (config_.statistics) {
        stats::RecorderConfig rc;
        rc.component = "pool";
        recorder_ = std::make_unique<stats::Recorder>(rc);
        lookup_writer_.emplace(*recorder_);
    }
    if (config_.eviction != eviction::Kind::kLru) {
        policy_levels_ = std::make_unique<PolicyLevels>(config_.eviction, kMaxPriority + 1, config_.num_blocks - 1);
    }
    // Block 0 is the null block; the rest start free, in id order.
    for (uint32_t b = 1; b < config_.num_blocks; ++b) push_free(static_cast<int32_t>(b), kDefaultPriority);
    if (config_.memory == Memory::kHost) {
        const uint64_t bytes = (config_.bytes_per_block() * config_.num_blocks + 4095) & ~uint64_t{4095};
        storage_ = std::aligned_alloc(4096, bytes);
        KVC_ENSURE(storage_ != nullptr, KVC_ERR_NO_MEMORY, "cannot allocate " + std::to_string(bytes) + " bytes of host memory");
    } else if (config_.memory == Memory::kDevice) {
        storage_ = device::allocate(config_.bytes_per_block() * config_.num_blocks);
    }
}

Pool::~Pool() {
    if (config_.memory == Memory::kHost) std::free(storage_);
    if (config_.memory == Memory::kDevice) device::release(storage_);
}

// ---- free lists -----------------------------------------------------------------------------------

template <bool kLru>
inline void Pool::push_free(int32_t block, uint32_t level) {
    Block& b = blocks_[block];
    Link& l = links_[block];
    FreeList& list = free_lists_[level];
    if (!kLru && b.cached && policy_levels_ != nullptr) [[unlikely]] return free_to_policy(block, level);
    b.free = true;
    b.level = static_cast<uint8_t>(level);
    if (!b.cached && list.head != -1 && level == 0) {
        // Nothing to lose: blocks without a cached hash go first.
        l.prev = -1;
        l.next = list.head;
        links_[list.head].prev = block;
        list.head = block;
    } else {
        l.prev = list.tail;
        l.next = -1;
        (list.tail != -1 ? links_[list.tail].next : list.head) = block;
        list.tail = block;
    }
    nonempty_levels_[level / 64] |= uint64_t{1} << (level % 64);
    ++num_free_;
}

inline void Pool::unlink_free(int32_t block) {
    if (blocks_[block].cached && policy_levels_ != nullptr) [[unlikely]] return take_from_policy(block);
    unlink_listed(block);
}

inline void Pool::unlink_listed(int32_t block) noexcept {
    Block& b = blocks_[block];
    Link& l = links_[block];
    FreeList& list = free_lists_[b.level];
    (l.prev != -1 ? links_[l.prev].next : list.head) = l.next;
    (l.next != -1 ? links_[l.next].prev : list.tail) = l.prev;
    l.prev = l.next = -1;
    b.free = false;
    if (list.head == -1 && (policy_levels_ == nullptr || policy_levels_->evictable(b.level) == 0)) {
        clear_level_bit(b.level);
    }
    --num_free_;
}

// ---- free cached blocks under a policy other than LRU (pool/policy_levels.h) ----

void Pool::free_to_policy(int32_t block, uint32_t level) {
    Block& b = blocks_[block];
    policy_levels_->free_block(block, b.level, level, map_key(b.hash, b.domain));
    b.free = true;
    b.level = static_cast<uint8_t>(level);
    nonempty_levels_[level / 64] |= uint64_t{1} << (level % 64);
    ++num_free_;
}

void Pool::acquire_under_policy(int32_t block) {
    Block& b = blocks_[block];
    if (b.cached) policy_levels_->touch(block, b.level);  // a hit (or a fork's share) is a use
    if (b.ref == 0) {
        unlink_free(block);
        ++blocks_in_use_;
        tokens_stored_ += b.filled;
    }
    ++b.ref;
}

void Pool::take_from_policy(int32_t block) {
    Block& b = blocks_[block];
    policy_levels_->hold(block, b.level);
    b.free = false;
    if (free_lists_[b.level].head == -1 && policy_levels_->evictable(b.level) == 0) clear_level_bit(b.level);
    --num_free_;
}

int32_t Pool::take_policy_victim(uint32_t level) {
    const int32_t block = *policy_levels_->evict(level);  // the level's bit says it has one
    blocks_[block].free = false;
    if (policy_levels_->evictable(level) == 0) clear_level_bit(level);  // its free list is empty
    --num_free_;
    return block;
}

void Pool::refuse_for_memory(const std::string& message) {
    // stats.h: requests refused because memory was short, even after evicting what may be evicted (the
    // free lists hold every evictable block); evictions themselves are counted apart.
    if (recorder_) recorder_->record_memory_pressure();
    fail(KVC_ERR_CAPACITY, message);
}

void Pool::require_free_blocks(size_t needed) {
    if (needed <= num_free_) [[likely]] return;
    refuse_for_memory("needs " + std::to_string(needed) + " free blocks, " + std::to_string(num_free_) + " are free");
}

void Pool::expire_priorities() {
    const uint64_t now = clock_();
    auto later = [](const Expiry& a, const Expiry& b) { return a.at_ns > b.at_ns; };
    while (!expiries_.empty() && expiries_.front().at_ns <= now) {
        const Expiry e = expiries_.front();
        std::pop_heap(expiries_.begin(), expiries_.end(), later);
        expiries_.pop_back();
        Block& b = blocks_[e.block];
        if (b.free && b.expiry_stamp == e.stamp && b.level != kDefaultPriority) {
            unlink_free(e.block);
            push_free(e.block, kDefaultPriority);
        }
    }
}

template <bool kLru>
inline int32_t Pool::pop_free() {
    if (!expiries_.empty()) [[unlikely]] expire_priorities();
    const uint32_t level = nonempty_levels_[0] != 0 ? std::countr_zero(nonempty_levels_[0])
                                                    : 64 + std::countr_zero(nonempty_levels_[1]);
    int32_t block = free_lists_[level].head;
    if (kLru || block != -1) [[likely]] {
        unlink_listed(block);  // under a policy the lists hold only blocks without a hash
    } else {
        block = take_policy_victim(level);
    }
    Block& b = blocks_[block];
    if (b.cached) uncache(block);
    b.expiry_stamp = 0;
    b.filled = 0;
    b.ref = 1;
    ++blocks_in_use_;
    return block;
}

void Pool::uncache(int32_t block) {
    Block& b = blocks_[block];
    map_.erase(map_key(b.hash, b.domain), block);
    b.cached = false;
    if (events_.enabled()) {
        KvEvent e{.kind = KvEvent::Kind::kBlockRemoved, .block_hashes = {b.hash.event_value(config_.hash_algo)}};
        events_.push(std::move(e));
    }
}

void Pool::acquire(int32_t block) {
    if (block == kNullBlock) return;
    // Out of line, so that LRU's acquire stays a leaf function (it cost 13 more instructions a hit).
    if (policy_levels_ != nullptr) [[unlikely]] return acquire_under_policy(block);
    Block& b = blocks_[block];
    if (b.ref == 0) {
        unlink_listed(block);
        ++blocks_in_use_;
        tokens_stored_ += b.filled;
    }
    ++b.ref;
}

template <bool kLru>
inline void Pool::release(int32_t block, uint32_t priority, uint64_t duration_ms) {
    if (block == kNullBlock) return;
    Block& b = blocks_[block];
    if (--b.ref > 0) return;
    --blocks_in_use_;
    tokens_stored_ -= b.filled;
    b.raw = false;
    // A block without a cached hash holds nothing reusable: it goes first, whatever the priority.
    push_free<kLru>(block, b.cached ? priority : 0);
    if (b.cached && duration_ms > 0 && priority != kDefaultPriority) [[unlikely]] push_expiry(block, duration_ms);
}

void Pool::push_expiry(int32_t block, uint64_t duration_ms) {
    Block& b = blocks_[block];
    b.expiry_stamp = next_expiry_stamp_++;
    // Saturates: a duration of ~UINT64_MAX ms means "for good", not a wrapped deadline already past.
    const uint64_t now = clock_();
    const uint64_t at = duration_ms > (UINT64_MAX - now) / 1'000'000u ? UINT64_MAX : now + duration_ms * 1'000'000u;
    expiries_.push_back({at, block, b.expiry_stamp});
    std::push_heap(expiries_.begin(), expiries_.end(), [](const Expiry& x, const Expiry& y) { return x.at_ns > y.at_ns; });
}

// ---- prefix cache ---------------------------------------------------------------------------------

uint64_t Pool::map_key(const BlockHash& hash, uint64_t domain) const noexcept {
    uint64_t low;
    std::memcpy(&low, hash.bytes.data() + (config_.hash_algo == HashAlgo::kSha256Cbor ? 24 : 0), sizeof low);
    return low ^ (domain * 0x9E3779B97F4A7C15ull);
}

int32_t Pool::find_cached(const BlockHash& hash, uint64_t domain) const noexcept {
    return map_.find(map_key(hash, domain), [&](int32_t block) {
        const Block& b = blocks_[block];
        return b.domain == domain && b.hash == hash;
    });
}

size_t Pool::count_cached_prefix_blocks(const Sequence& seq, std::vector<int32_t>* found) const {
    if (!config_.prefix_caching || seq.prompt_len == 0) return 0;
    // At most prompt - 1 tokens, so that the last prompt token is computed and yields logits.
    const size_t max_blocks = std::min((seq.prompt_len - 1) / config_.block_size, seq.hashes.size());
    if (config_.sliding_window == 0) {
        size_t n = 0;
        if (found == nullptr) {  // a lookup only (kvc_pool_cached_prefix): the loop carries nothing else
            while (n < max_blocks && find_cached(seq.hashes[n], seq.domain) >= 0) ++n;
            return n;
        }
        for (; n < max_blocks; ++n) {
            const int32_t b = find_cached(seq.hashes[n], seq.domain);
            if (b < 0) break;
            found->push_back(b);
        }
        return n;
    }
    // Sliding window (vLLM's rule): the prefix may end where the last `needed` blocks are cached;
    // blocks before them are outside the window and become the null block. A window of one token needs
    // no earlier block, but the prefix still ends at a cached block, as in vLLM (whose search only
    // stops at a hit): without one, nothing is cached.
    const size_t needed =
        std::max<size_t>(1, (config_.sliding_window - 1 + config_.block_size - 1) / config_.block_size);
    size_t run = 0, end = 0;
    for (size_t i = max_blocks; i-- > 0;) {
        if (find_cached(seq.hashes[i], seq.domain) < 0) {
            run = 0;
            continue;
        }
        if (++run == needed || i == 0) {
            end = i + run;
            break;
        }
    }
    if (found != nullptr) {
        for (size_t i = 0; i < end; ++i) {
            found->push_back(i + needed < end ? kNullBlock : find_cached(seq.hashes[i], seq.domain));
        }
    }
    return end;
}

void Pool::ensure_hashes(Sequence& seq, size_t full_blocks) {
    hasher_.extend_chain(seq.hashes, seq.tokens, config_.block_size, seq.options.keys, full_blocks);
}

void Pool::cache_full_blocks(Sequence& seq, size_t upto_tokens) {
    if (!config_.prefix_caching) return;
    const uint32_t bs = config_.block_size;
    const size_t full = std::min(seq.slotted, upto_tokens) / bs;
    if (full <= seq.cached_blocks) return;
    ensure_hashes(seq, full);
    KvEvent stored{.kind = KvEvent::Kind::kBlockStored, .block_size = bs};
    auto flush = [&] {
        if (!stored.block_hashes.empty()) {
            stored.lora_id = seq.options.lora_id;
            stored.keys = keys_for_range(seq.options.keys, stored.first_token,
                                         stored.first_token + stored.block_hashes.size() * bs);
            events_.push(std::move(stored));
            stored = KvEvent{.kind = KvEvent::Kind::kBlockStored, .block_size = bs};
        }
    };
    uint64_t registered = 0;
    for (size_t i = seq.cached_blocks; i < full; ++i) {
        const int32_t block = seq.blocks[i];
        Block& b = blocks_[block];
        // Skip the null block, blocks that are cached already (hits), and content another block holds.
        if (block == kNullBlock || b.cached || find_cached(seq.hashes[i], seq.domain) >= 0) {
            flush();
            continue;
        }
        b.hash = seq.hashes[i];
        b.domain = seq.domain;
        b.cached = true;
        map_.insert(map_key(b.hash, b.domain), block);
        ++registered;
        if (events_.enabled()) {
            if (stored.block_hashes.empty()) {
                stored.first_token = i * bs;
                if (i > 0) stored.parent_block_hash = seq.hashes[i - 1].event_value(config_.hash_algo);
            }
            stored.block_hashes.push_back(b.hash.event_value(config_.hash_algo));
            stored.token_ids.insert(stored.token_ids.end(), seq.tokens.begin() + static_cast<ptrdiff_t>(i * bs),
                                    seq.tokens.begin() + static_cast<ptrdiff_t>((i + 1) * bs));
        }
    }
    flush();
    totals_.insertions += registered;
    seq.cached_blocks = full;
}

void Pool::reset_prefix_cache() {
    KVC_ENSURE(blocks_in_use_ == 0, KVC_ERR_INVALID_STATE,
            std::to_string(blocks_in_use_) + " blocks are in use: free every sequence before resetting the prefix cache");
    totals_.cleared_by_reset += map_.size();
    map_.clear();
    for (Block& b : blocks_) b.cached = false;
    if (policy_levels_ != nullptr) {
        // The policies held every cached free block: back to the free lists, as blocks without a hash.
        std::vector<int32_t> freed;
        policy_levels_->clear(freed);
        nonempty_levels_[0] = nonempty_levels_[1] = 0;
        for (uint32_t level = 0; level <= kMaxPriority; ++level) {
            if (free_lists_[level].head != -1) nonempty_levels_[level / 64] |= uint64_t{1} << (level % 64);
        }
        num_free_ -= static_cast<uint32_t>(freed.size());
        for (int32_t block : freed) push_free(block, 0);
    }
    events_.push(KvEvent{.kind = KvEvent::Kind::kAllBlocksCleared});
}

// ---- sequences ------------------------------------------------------------------------------------

void Pool::require_id() {
    if (next_stamp_ != stamp_end_) [[likely]] return;
    uint64_t first = next_id_stamp.load(std::memory_order_relaxed), end = 0;
    do {
        KVC_ENSURE(first < kIdStampLimit, KVC_ERR_CAPACITY,
                "sequence ids are exhausted: this process has created 2^40 - 1 sequences, and ids are never reused");
        end = first + std::min(kStampsReserved, kIdStampLimit - first);
    } while (!next_id_stamp.compare_exchange_weak(first, end, std::memory_order_relaxed));
    if (!stamp_ranges_.empty() && stamp_ranges_.back().second == first) {
        stamp_ranges_.back().second = end;
    } else {
        stamp_ranges_.emplace_back(first, end);  // may throw: the stamps are lost, the pool unchanged
        // Pools that reserve in turn never merge, so the history is kept bounded by merging its two
        // oldest ranges: an old foreign id in the gap then reads as freed (INVALID_STATE instead of
        // INVALID_ARGUMENT), still refused, and memory stays flat for a server's lifetime.
        if (stamp_ranges_.size() > kMaxStampRanges) {
            stamp_ranges_[1].first = stamp_ranges_[0].first;
            stamp_ranges_.erase(stamp_ranges_.begin());
        }
    }
    next_stamp_ = first;
    stamp_end_ = end;
}

SequenceId Pool::issue_id(uint32_t slot) noexcept {
    sequences_[slot].stamp = next_stamp_++;
    return sequences_[slot].stamp << kSlotBits | slot;
}

uint64_t Pool::restart_ids_for_testing(uint64_t next_stamp) {
    stamp_end_ = next_stamp_;
    // Ranges stay ascending for reject_id's search when the counter moves back.
    std::erase_if(stamp_ranges_, [&](const std::pair<uint64_t, uint64_t>& r) { return r.second > next_stamp; });
    return next_id_stamp.exchange(next_stamp, std::memory_order_relaxed);
}

void Pool::reject_id(SequenceId id) const {
    // A stamp this pool reserved was issued by this pool, and is not live any more.
    const uint64_t stamp = id >> kSlotBits;
    const auto after = std::upper_bound(stamp_ranges_.begin(), stamp_ranges_.end(), stamp,
                                        [](uint64_t s, const std::pair<uint64_t, uint64_t>& r) { return s < r.first; });
    const bool reserved = after != stamp_ranges_.begin() && stamp < std::prev(after)->second;
    const bool issued = reserved && !(stamp >= next_stamp_ && stamp < stamp_end_);
    const bool ours = issued && (id & kSlotMask) < sequences_.size();
    if (ours) fail(KVC_ERR_INVALID_STATE, "sequence " + id_text(id) + " was freed");
    fail(KVC_ERR_INVALID_ARGUMENT, "sequence " + id_text(id) + " does not belong to this pool");
}

const Pool::Sequence& Pool::live_sequence(SequenceId id) const {
    const uint64_t slot = id & kSlotMask;
    if (slot < sequences_.size() && sequences_[slot].live && sequences_[slot].stamp == id >> kSlotBits) [[likely]] {
        return sequences_[slot];
    }
    reject_id(id);
}

Pool::Sequence& Pool::live_sequence(SequenceId id) {
    return const_cast<Sequence&>(static_cast<const Pool*>(this)->live_sequence(id));
}

uint32_t Pool::take_sequence_slot() {
    if (!free_slots_.empty()) {
        const uint32_t slot = free_slots_.back();
        free_slots_.pop_back();
        return slot;
    }
    KVC_ENSURE(sequences_.size() < kSlotMask, KVC_ERR_CAPACITY, "too many live sequences (16 Mi)");
    sequences_.emplace_back();
    return static_cast<uint32_t>(sequences_.size() - 1);
}

void Pool::return_sequence_slot(uint32_t slot) {
    sequences_[slot] = Sequence{};
    free_slots_.push_back(slot);
}

void Pool::validate_tokens(std::span<const int32_t> tokens) const {
    // An OR of every id has the sign bit of any negative one. Eight lanes at a time, which g++ -O2
    // vectorises; checking each id in turn cost 6 instructions per token, 14 % of a request's admission.
    int32_t lanes[8] = {};
    size_t i = 0;
    for (; i + 8 <= tokens.size(); i += 8) {
        for (size_t k = 0; k < 8; ++k) lanes[k] |= tokens[i + k];
    }
    int32_t any_negative = 0;
    for (int32_t lane : lanes) any_negative |= lane;
    for (; i < tokens.size(); ++i) any_negative |= tokens[i];
    if (any_negative >= 0) [[likely]] return;
    for (size_t i = 0; i < tokens.size(); ++i) {
        KVC_ENSURE(tokens[i] >= 0, KVC_ERR_INVALID_ARGUMENT,
                "token " + std::to_string(i) + " is " + std::to_string(tokens[i]) + ": token ids must be >= 0");
    }
}

SequenceId Pool::create_sequence(std::span<const int32_t> prompt, SequenceOptions options) {
    KVC_ENSURE(!prompt.empty(), KVC_ERR_INVALID_ARGUMENT, "the prompt is empty");
    validate_tokens(prompt);
    KVC_ENSURE(options.priority <= kMaxPriority, KVC_ERR_INVALID_ARGUMENT,
            "priority must be 0..100, got " + std::to_string(options.priority));
    if (config_.sliding_window == 0 && blocks_for(prompt.size()) >= config_.num_blocks) [[unlikely]] {
        refuse_for_memory("a prompt of " + std::to_string(prompt.size()) + " tokens needs " +
                          std::to_string(blocks_for(prompt.size())) + " blocks; the pool has only " +
                          std::to_string(config_.num_blocks - 1));
    }
    uint64_t previous_end = 0;
    for (const MultimodalItem& m : options.keys.multimodal) {
        KVC_ENSURE(m.offset >= previous_end && m.length > 0 && !m.hash.empty(), KVC_ERR_INVALID_ARGUMENT,
                "multimodal items must be non-empty, have a hash, and be sorted without overlap");
        previous_end = m.offset + m.length;
    }
    require_id();
    const uint32_t slot = take_sequence_slot();
    Sequence& seq = sequences_[slot];
    try {
        seq.domain = options.keys.domain();
        seq.options = std::move(options);
        seq.tokens.assign(prompt.begin(), prompt.end());
        seq.prompt_len = prompt.size();
        seq.prompt_blocks = prompt.size() / config_.block_size;
        if (config_.prefix_caching) ensure_hashes(seq, seq.prompt_blocks);
    } catch (...) {
        return_sequence_slot(slot);
        throw;
    }
    seq.live = true;
    ++live_sequences_;
    return issue_id(slot);
}

size_t Pool::cached_prefix_tokens(SequenceId id) const {
    return count_cached_prefix_blocks(live_sequence(id), nullptr) * config_.block_size;
}

size_t Pool::blocks_to_grow(const Sequence& seq, size_t new_total, bool* copy_on_write, size_t keep) const {
    const uint32_t bs = config_.block_size;
    const size_t slotted = std::min(keep, seq.slotted);
    const size_t held = std::min(seq.blocks.size(), blocks_for(slotted));
    *copy_on_write = new_total > slotted && slotted % bs != 0 && held > 0 && blocks_[seq.blocks[held - 1]].ref > 1;
    const size_t wanted = blocks_for(new_total);
    return (wanted > held ? wanted - held : 0) + (*copy_on_write ? 1 : 0);
}

void Pool::grow(Sequence& seq, size_t new_total, bool copy_on_write) {
    if (copy_on_write) {
        const int32_t shared = seq.blocks.back();
        const int32_t copy = pop_free();
        // The sequence's own tokens of the block: a truncated sequence keeps fewer than the shared block holds.
        blocks_[copy].filled = static_cast<uint16_t>(seq.slotted % config_.block_size);
        tokens_stored_ += blocks_[copy].filled;
        copies_.emplace_back(shared, copy);
        release(shared, seq.options.priority, seq.options.priority_duration_ms);
        seq.blocks.back() = copy;
    }
    const size_t wanted = blocks_for(new_total);
    if (policy_levels_ == nullptr) [[likely]] {
        while (seq.blocks.size() < wanted) seq.blocks.push_back(pop_free<true>());
    } else {
        while (seq.blocks.size() < wanted) seq.blocks.push_back(pop_free());
    }
    const size_t from = seq.slotted;
    seq.slotted = std::max(seq.slotted, new_total);
    set_fill(seq, from);
}

void Pool::set_fill(Sequence& seq, size_t from_token) {
    const uint32_t bs = config_.block_size;
    for (size_t j = from_token / bs; j < seq.blocks.size() && j * bs < seq.slotted; ++j) {
        Block& b = blocks_[seq.blocks[j]];
        if (seq.blocks[j] == kNullBlock) continue;
        const auto filled = static_cast<uint16_t>(std::min<size_t>(bs, seq.slotted - j * bs));
        if (filled > b.filled) {
            tokens_stored_ += filled - b.filled;
            b.filled = filled;
        }
    }
}

void Pool::release_outside_window(Sequence& seq) {
    if (config_.sliding_window == 0 || seq.slotted < config_.sliding_window) return;
    const size_t first_useful_token = seq.slotted - config_.sliding_window + 1;
    const size_t outside = std::min(first_useful_token / config_.block_size, seq.blocks.size());
    for (; seq.window_released < outside; ++seq.window_released) {
        int32_t& block = seq.blocks[seq.window_released];
        release(block, seq.options.priority, seq.options.priority_duration_ms);
        block = kNullBlock;
    }
}

inline void Pool::record_prefix_lookup(const Sequence& seq, size_t hit_blocks) {
    const size_t prompt_len = seq.prompt_len, hit_tokens = hit_blocks * config_.block_size;
    // Statistics as vLLM (tokens) and TensorRT-LLM (blocks) count them: the prompt's full blocks, of
    // which the first hit_blocks hit.
    lookup_writer_->record_prefix_lookup(hit_blocks, seq.prompt_blocks - hit_blocks);
    totals_.tokens_queried += prompt_len;
    totals_.tokens_hit += hit_tokens;
    // The request window keeps running sums, so reading it is O(1).
    auto& slot = request_window_[request_window_pos_];
    window_tokens_queried_ -= slot.first;
    window_tokens_hit_ -= slot.second;
    slot = {static_cast<uint32_t>(std::min<size_t>(prompt_len, UINT32_MAX)),
            static_cast<uint32_t>(std::min<size_t>(hit_tokens, UINT32_MAX))};
    window_tokens_queried_ += slot.first;
    window_tokens_hit_ += slot.second;
    if (++request_window_pos_ == request_window_.size()) request_window_pos_ = 0;
    ++request_window_count_;
}

void Pool::allocate(SequenceId id, size_t num_tokens, size_t* cached_tokens) {
    Sequence& seq = live_sequence(id);
    KVC_ENSURE(!seq.frozen, KVC_ERR_INVALID_STATE, "sequence " + id_text(id) + " is a pinned prefix: it cannot grow");
    KVC_ENSURE(num_tokens <= seq.tokens.size(), KVC_ERR_OUT_OF_RANGE,
            "cannot allocate " + std::to_string(num_tokens) + " tokens: the sequence has " +
                std::to_string(seq.tokens.size()));
    const uint32_t bs = config_.block_size;
    if (!seq.admitted) {
        std::vector<int32_t> found;
        const Admission plan = plan_admission(seq, num_tokens, &found);
        const size_t hits = plan.hits, target = plan.target;
        require_free_blocks(plan.needed);
        for (int32_t b : found) {
            acquire(b);
            seq.blocks.push_back(b);
        }
        seq.cached_blocks = hits;
        seq.slotted = hits * bs;
        seq.admitted = true;
        if (recorder_) record_prefix_lookup(seq, hits);
        if (cached_tokens != nullptr) *cached_tokens = hits * bs;
        grow(seq, target, false);
        note_peak();  // before a sliding window gives blocks back: the call held them all
    } else {
        if (cached_tokens != nullptr) *cached_tokens = seq.cached_blocks * bs;
        if (num_tokens <= seq.slotted) return;
        bool cow = false;
        const size_t needed = blocks_to_grow(seq, num_tokens, &cow);
        require_free_blocks(needed);
        grow(seq, num_tokens, cow);
        note_peak();
    }
    if (!seq.options.defer_caching) cache_full_blocks(seq);
    release_outside_window(seq);
}

Pool::Admission Pool::plan_admission(const Sequence& seq, size_t num_tokens, std::vector<int32_t>* found) const {
    std::vector<int32_t> local;
    std::vector<int32_t>& hit_blocks = found != nullptr ? *found : local;
    Admission plan;
    plan.hits = count_cached_prefix_blocks(seq, &hit_blocks);
    plan.target = std::max(num_tokens, plan.hits * config_.block_size);
    size_t reviving = 0;  // hit blocks that are free now and leave the free list
    for (int32_t b : hit_blocks) reviving += b != kNullBlock && blocks_[b].ref == 0;
    plan.needed = blocks_for(plan.target) - plan.hits + reviving;
    return plan;
}

void Pool::append(SequenceId id, std::span<const int32_t> tokens) {
    Sequence& seq = live_sequence(id);
    KVC_ENSURE(!seq.frozen, KVC_ERR_INVALID_STATE, "sequence " + id_text(id) + " is a pinned prefix: it cannot grow");
    KVC_ENSURE(seq.admitted && seq.slotted == seq.tokens.size(), KVC_ERR_INVALID_STATE,
            "sequence " + id_text(id) + ": allocate all its prompt tokens before appending");
    validate_tokens(tokens);
    if (tokens.empty()) return;
    bool cow = false;
    const size_t new_total = seq.tokens.size() + tokens.size();
    const size_t needed = blocks_to_grow(seq, new_total, &cow);
    require_free_blocks(needed);
    seq.tokens.insert(seq.tokens.end(), tokens.begin(), tokens.end());
    grow(seq, new_total, cow);
    note_peak();  // before a sliding window gives blocks back: the call held them all
    if (!seq.options.defer_caching) cache_full_blocks(seq);
    release_outside_window(seq);
}

SequenceId Pool::fork(SequenceId id) {
    const Sequence& parent = live_sequence(id);
    KVC_ENSURE(!parent.frozen, KVC_ERR_INVALID_STATE, "sequence " + id_text(id) + " is a pinned prefix");
    require_id();
    const uint32_t slot = take_sequence_slot();
    Sequence& child = sequences_[slot];  // may have moved `parent`'s storage: re-read it
    const Sequence& p = live_sequence(id);
    try {
        child = p;
    } catch (...) {
        return_sequence_slot(slot);
        throw;
    }
    for (int32_t b : child.blocks) acquire(b);
    ++live_sequences_;
    return issue_id(slot);
}

SequenceId Pool::pin_prefix(SequenceId id) {
    const Sequence& source = live_sequence(id);
    KVC_ENSURE(source.admitted, KVC_ERR_INVALID_STATE, "sequence " + id_text(id) + " holds no blocks yet");
    require_id();
    const uint32_t slot = take_sequence_slot();
    Sequence& pin = sequences_[slot];
    const Sequence& s = live_sequence(id);
    const size_t n = s.cached_blocks;
    try {
        pin.options = s.options;
        pin.tokens.assign(s.tokens.begin(), s.tokens.begin() + static_cast<ptrdiff_t>(n * config_.block_size));
        pin.hashes.assign(s.hashes.begin(), s.hashes.begin() + static_cast<ptrdiff_t>(n));
        pin.blocks.assign(s.blocks.begin(), s.blocks.begin() + static_cast<ptrdiff_t>(n));
    } catch (...) {
        return_sequence_slot(slot);
        throw;
    }
    pin.live = pin.admitted = pin.frozen = true;
    pin.domain = s.domain;
    pin.prompt_len = pin.tokens.size();
    pin.prompt_blocks = n;
    pin.slotted = pin.tokens.size();
    pin.cached_blocks = n;
    pin.window_released = std::min(s.window_released, n);
    for (int32_t b : pin.blocks) acquire(b);
    ++live_sequences_;
    return issue_id(slot);
}

void Pool::free_sequence(SequenceId id) {
    Sequence& seq = live_sequence(id);
    // Tail first: the chain's tail reaches the free lists first and is evicted before its head.
    if (policy_levels_ == nullptr) [[likely]] {
        for (size_t i = seq.blocks.size(); i-- > 0;) {
            release<true>(seq.blocks[i], seq.options.priority, seq.options.priority_duration_ms);
        }
    } else {
        for (size_t i = seq.blocks.size(); i-- > 0;) {
            release(seq.blocks[i], seq.options.priority, seq.options.priority_duration_ms);
        }
    }
    return_sequence_slot(static_cast<uint32_t>(id & kSlotMask));
    --live_sequences_;
}

void Pool::truncate(SequenceId id, size_t tokens) {
    Sequence& seq = live_sequence(id);
    KVC_ENSURE(!seq.frozen, KVC_ERR_INVALID_STATE, "sequence " + id_text(id) + " is a pinned prefix: it cannot change");
    KVC_ENSURE(config_.sliding_window == 0, KVC_ERR_UNSUPPORTED,
            "truncating needs full attention: a sliding window has released the sequence's early blocks");
    KVC_ENSURE(seq.admitted && seq.slotted == seq.tokens.size(), KVC_ERR_INVALID_STATE,
            "sequence " + id_text(id) + ": allocate all its tokens before truncating");
    KVC_ENSURE(tokens <= seq.tokens.size(), KVC_ERR_OUT_OF_RANGE,
            "cannot truncate to " + std::to_string(tokens) + " tokens: the sequence has " + std::to_string(seq.tokens.size()));
    const uint32_t bs = config_.block_size;
    const size_t keep = blocks_for(tokens);
    // Tail first, as free_sequence: the chain's tail is evicted before its head.
    for (size_t i = seq.blocks.size(); i-- > keep;) release(seq.blocks[i], seq.options.priority, seq.options.priority_duration_ms);
    seq.blocks.resize(keep);
    if (tokens % bs != 0) {
        const int32_t last = seq.blocks.back();
        Block& b = blocks_[last];
        if (b.ref == 1) {  // ours alone: its tail will be rewritten, so it no longer holds its hash's content
            if (b.cached) uncache(last);
            const auto filled = static_cast<uint16_t>(tokens % bs);
            tokens_stored_ -= b.filled - std::min(b.filled, filled);
            b.filled = std::min(b.filled, filled);
        }  // shared: grow() copies it before the sequence writes into it
    }
    seq.tokens.resize(tokens);
    seq.slotted = tokens;
    seq.hashes.resize(std::min(seq.hashes.size(), tokens / bs));
    seq.cached_blocks = std::min(seq.cached_blocks, tokens / bs);
    seq.prompt_len = std::min(seq.prompt_len, tokens);
    seq.prompt_blocks = std::min(seq.prompt_blocks, tokens / bs);
}

size_t Pool::blocks_needed(SequenceId id, size_t new_total, size_t keep) const {
    const Sequence& seq = live_sequence(id);
    if (!seq.admitted) return plan_admission(seq, new_total, nullptr).needed;
    bool cow = false;
    return blocks_to_grow(seq, new_total, &cow, keep);
}

size_t Pool::blocks_freed_by_truncate(SequenceId id, size_t tokens) const {
    const Sequence& seq = live_sequence(id);
    size_t n = 0;
    for (size_t i = blocks_for(tokens); i < seq.blocks.size(); ++i) {
        n += seq.blocks[i] != kNullBlock && blocks_[seq.blocks[i]].ref == 1;
    }
    return n;
}

size_t Pool::reclaimable_blocks(std::span<const SequenceId> ids) const {
    std::unordered_map<int32_t, int32_t> refs;  // block -> references from `ids`
    for (SequenceId id : ids) {
        for (int32_t b : live_sequence(id).blocks) {
            if (b != kNullBlock) ++refs[b];
        }
    }
    size_t n = 0;
    for (const auto& [block, count] : refs) n += blocks_[block].ref == count;
    return n;
}

void Pool::commit(SequenceId id, size_t tokens) {
    Sequence& seq = live_sequence(id);
    KVC_ENSURE(tokens <= seq.slotted, KVC_ERR_OUT_OF_RANGE,
            "cannot commit " + std::to_string(tokens) + " tokens: the sequence has " + std::to_string(seq.slotted) + " slotted");
    cache_full_blocks(seq, tokens);
}

std::span<const int32_t> Pool::block_table(SequenceId id) const { return live_sequence(id).blocks; }
size_t Pool::num_tokens(SequenceId id) const { return live_sequence(id).slotted; }
size_t Pool::prompt_tokens(SequenceId id) const { return live_sequence(id).prompt_len; }

void Pool::slot_mapping(SequenceId id, size_t first, std::span<int64_t> out) const {
    const Sequence& seq = live_sequence(id);
    KVC_ENSURE(first <= seq.slotted && out.size() <= seq.slotted - first, KVC_ERR_OUT_OF_RANGE,
            "tokens [" + std::to_string(first) + ", " + std::to_string(first + out.size()) +
                ") are past the sequence's " + std::to_string(seq.slotted) + " slotted tokens");
    const uint32_t bs = config_.block_size;
    for (size_t i = 0; i < out.size(); ++i) {
        const size_t t = first + i;
        const int32_t block = seq.blocks[t / bs];
        out[i] = block == kNullBlock ? -1 : int64_t{block} * bs + static_cast<int64_t>(t % bs);
    }
}

std::vector<std::pair<int32_t, int32_t>> Pool::drain_copies() {
    std::vector<std::pair<int32_t, int32_t>> out;
    out.swap(copies_);
    return out;
}

// ---- raw blocks -----------------------------------------------------------------------------------

void Pool::allocate_blocks(std::span<int32_t> out) {
    require_free_blocks(out.size());
    if (policy_levels_ == nullptr) [[likely]] {
        for (int32_t& b : out) {
            b = pop_free<true>();
            blocks_[b].raw = true;
        }
    } else {
        for (int32_t& b : out) {
            b = pop_free();
            blocks_[b].raw = true;
        }
    }
    note_peak();
}

void Pool::free_blocks(std::span<const int32_t> ids) {
    // Validate everything first (marking each block, so an id twice in one call is a double free too),
    // then release: a bad id frees nothing.
    auto unmark = [&](size_t upto) {
        for (size_t i = 0; i < upto; ++i) blocks_[ids[i]].marked = false;
    };
    for (size_t i = 0; i < ids.size(); ++i) {
        const int32_t id = ids[i];
        if (id <= 0 || static_cast<uint32_t>(id) >= config_.num_blocks) {
            unmark(i);
            fail(KVC_ERR_OUT_OF_RANGE, "block " + std::to_string(id) + " is not a usable block id (1.." +
                                           std::to_string(config_.num_blocks - 1) + ")");
        }
        Block& b = blocks_[id];
        if (!b.raw || b.ref != 1 || b.marked) {
            unmark(i);
            fail(KVC_ERR_INVALID_STATE,
                 "block " + std::to_string(id) +
                     (b.marked ? " is freed twice in one call"
                               : b.ref == 0 ? " is already free" : " belongs to a sequence, not to allocate_blocks"));
        }
        b.marked = true;
    }
    for (int32_t id : ids) {
        blocks_[id].marked = false;
        release<true>(id, kDefaultPriority, 0);  // raw blocks hold no hash: never a policy's
    }
}

// ---- events, stats --------------------------------------------------------------------------------

std::vector<uint8_t> Pool::encode_events(EventEncoding encoding) const {
    KVC_ENSURE(events_.enabled(), KVC_ERR_INVALID_STATE,
            "events are off for this pool: create it with events on (kvc_pool_options_set_events) to drain them");
    const uint64_t ns = wall_clock_();
    return events_.encode(encoding, static_cast<double>(ns / 1'000'000'000u) + static_cast<double>(ns % 1'000'000'000u) * 1e-9);
}

stats::Snapshot Pool::snapshot() const {
    KVC_ENSURE(recorder_ != nullptr, KVC_ERR_INVALID_STATE,
            "this pool keeps no statistics: it was created with statistics off");
    Totals now = totals_;
    now.evictions = now.insertions - now.cleared_by_reset - map_.size();
    recorder_->record_insertions(now.insertions - reported_.insertions);
    recorder_->record_evictions(now.evictions - reported_.evictions);
    const uint64_t tokens_hit = now.tokens_hit - reported_.tokens_hit;
    recorder_->record_tokens(now.tokens_queried - reported_.tokens_queried, tokens_hit);
    recorder_->record_reused_tokens(tokens_hit);  // a prefix hit is reused, not recomputed
    reported_ = now;
    // The peak since creation first (set_bytes raises the recorder's peak), then what is in use now.
    recorder_->set_bytes(uint64_t{peak_blocks_in_use_} * config_.bytes_per_block());
    recorder_->set_bytes(uint64_t{blocks_in_use_} * config_.bytes_per_block());
    return recorder_->snapshot();
}

PoolCounters Pool::counters() const {
    PoolCounters c;
    c.num_blocks = config_.num_blocks;
    c.free_blocks = num_free_;
    c.blocks_in_use = blocks_in_use_;
    c.cached_blocks = map_.size();
    c.tokens_stored = tokens_stored_;
    c.memory_efficiency =
        blocks_in_use_ == 0 ? 0.0 : double(tokens_stored_) / (double(blocks_in_use_) * config_.block_size);
    c.window_requests = std::min<uint64_t>(request_window_count_, request_window_.size());
    c.window_tokens_queried = window_tokens_queried_;
    c.window_tokens_hit = window_tokens_hit_;
    c.live_sequences = live_sequences_;
    c.events_pending = events_.pending();
    c.events_dropped = events_.dropped();
    c.copies_pending = copies_.size();
    return c;
}

void Pool::check_invariants() const {
    auto broken = [](const std::string& what) { fail(KVC_ERR_INTERNAL, "pool invariant broken: " + what); };
    // Free lists: well linked, levels right, count right, bitmap right.
    uint32_t listed = 0;
    for (uint32_t level = 0; level < free_lists_.size(); ++level) {
        const FreeList& list = free_lists_[level];
        const bool marked = (nonempty_levels_[level / 64] >> (level % 64)) & 1;
        const size_t by_policy = policy_levels_ != nullptr ? policy_levels_->evictable(level) : 0;
        if (marked != (list.head != -1 || by_policy > 0)) broken("non-empty bitmap at level " + std::to_string(level));
        listed += static_cast<uint32_t>(by_policy);
        int32_t prev = -1;
        for (int32_t b = list.head; b != -1; prev = b, b = links_[b].next) {
            const Block& blk = blocks_[b];
            if (!blk.free || blk.ref != 0 || blk.level != level || links_[b].prev != prev ||
                (blk.cached && policy_levels_ != nullptr)) {
                broken("free list entry " + std::to_string(b));
            }
            if (++listed > config_.num_blocks) broken("free list cycle");
        }
        if (list.tail != prev) broken("free list tail at level " + std::to_string(level));
    }
    if (listed != num_free_) broken("free count " + std::to_string(num_free_) + " vs listed " + std::to_string(listed));
    // Reference counts: exactly the live sequences' block tables plus raw blocks.
    std::vector<int32_t> refs(config_.num_blocks, 0);
    for (const Sequence& s : sequences_) {
        if (!s.live) continue;
        if (s.blocks.size() != blocks_for(s.slotted)) broken("a sequence holds more blocks than its tokens need");
        for (int32_t b : s.blocks) ++refs[b];
    }
    uint32_t in_use = 0;
    uint64_t stored = 0;
    uint32_t cached = 0;
    for (uint32_t b = 1; b < config_.num_blocks; ++b) {
        const Block& blk = blocks_[b];
        if (blk.ref != refs[b] + (blk.raw ? 1 : 0)) broken("ref count of block " + std::to_string(b));
        if ((blk.ref == 0) != blk.free) broken("free flag of block " + std::to_string(b));
        if (policy_levels_ != nullptr && blk.free && blk.cached && !policy_levels_->contains(static_cast<int32_t>(b), blk.level)) {
            broken("free cached block " + std::to_string(b) + " is not in its level's policy");
        }
        if (blk.ref > 0) {
            ++in_use;
            stored += blk.filled;
        }
        if (blk.cached) {
            ++cached;
            if (find_cached(blk.hash, blk.domain) != static_cast<int32_t>(b)) broken("block " + std::to_string(b) + " not findable");
        }
    }
    if (blocks_[0].ref != 0 || blocks_[0].free || blocks_[0].cached) broken("the null block");
    if (in_use != blocks_in_use_) broken("blocks in use");
    if (stored != tokens_stored_) broken("tokens stored");
    if (cached != map_.size()) broken("prefix map size");
}

}  // namespace kvcore::pool
