// SPDX-License-Identifier: Apache-2.0
#include "store/store.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "common/error.h"

namespace kvcore::store {

namespace {

std::string quoted(std::string_view id) {
    std::string out = "session \"";
    out.append(id.substr(0, 64));
    if (id.size() > 64) out += "...";
    return out + "\"";
}

uint64_t blocks_for(uint64_t tokens, uint32_t block_size) { return (tokens + block_size - 1) / block_size; }

std::string mib(uint64_t bytes) { return std::to_string(bytes) + " bytes"; }

}  // namespace

void StoreConfig::validate() const {
    auto range = [](const char* name, uint64_t v, uint64_t lo, uint64_t hi) {
        if (v < lo || v > hi) {
            fail(KVC_ERR_INVALID_ARGUMENT, std::string(name) + " must be " + std::to_string(lo) + ".." +
                                               std::to_string(hi) + ", got " + std::to_string(v));
        }
    };
    range("max_tokens_per_session", max_tokens_per_session, 1, uint64_t{1} << 24);
    range("max_sessions", max_sessions, 1, uint64_t{1} << 22);
    range("max_bytes_total", max_bytes_total, 1, UINT64_MAX);
    range("block_size", block_size, 1, 4096);
    range("eviction policy", static_cast<uint32_t>(policy), 0, eviction::kLastKind);
    if (memory != pool::Memory::kHost && memory != pool::Memory::kDevice) {
        fail(KVC_ERR_INVALID_ARGUMENT, "a store's memory is host or device, got kind " +
                                           std::to_string(static_cast<uint32_t>(memory)));
    }
    stats::RecorderConfig rc;
    rc.component = component;
    rc.validate();
}

std::shared_ptr<Store> Store::create(StoreConfig config) {
    config.validate();
    return std::shared_ptr<Store>(new Store(std::move(config)));
}

Store::Store(StoreConfig config)
    : config_(std::move(config)),
      policy_(eviction::make_policy(config_.policy, config_.max_sessions)),
      recorder_([&] {
          stats::RecorderConfig rc;
          rc.component = config_.component;
          return rc;
      }()) {
    pools_.reserve(kMaxShapes);
}

Store::~Store() = default;

// ---- pools and sessions ---------------------------------------------------------------------------

PoolEntry& Store::pool_for(const Shape& shape) {
    for (auto& pe : pools_) {
        if (pe->shape == shape) return *pe;
    }
    pool::PoolConfig pc;
    pc.block_size = config_.block_size;
    pc.layers = shape.layers;
    pc.kv_heads = shape.kv_heads;
    pc.head_dim = shape.head_dim;
    pc.dtype = shape.dtype;
    pc.memory = config_.memory;
    pc.prefix_caching = config_.prefix_sharing;  // off: no block is ever found, so none is shared
    pc.statistics = false;                       // the store records through its own recorder
    pc.num_blocks = 2;
    pc.validate();  // the shape, before its block size divides anything
    const uint64_t bpb = pc.bytes_per_block();
    if (bpb > config_.max_bytes_total) {
        fail(KVC_ERR_CAPACITY, "one block of this model shape takes " + mib(bpb) + ", more than max bytes total (" +
                                   mib(config_.max_bytes_total) + ")");
    }
    if (config_.max_bytes_per_session != 0 && bpb > config_.max_bytes_per_session) {
        fail(KVC_ERR_CAPACITY, "one block of this model shape takes " + mib(bpb) + ", more than max bytes per session (" +
                                   mib(config_.max_bytes_per_session) + ")");
    }
    if (pools_.size() == kMaxShapes) {
        fail(KVC_ERR_CAPACITY, "a store serves at most " + std::to_string(kMaxShapes) + " model shapes");
    }
    // As many blocks as the byte bound allows: blocks in use never pass it (make_room), so the pool never
    // runs out first. The host reservation is virtual until written; a device pool takes it all.
    const uint64_t by_bytes = config_.max_bytes_total / bpb;
    pc.num_blocks = static_cast<uint32_t>(std::min<uint64_t>(by_bytes, (uint64_t{1} << 30) - 1) + 1);
    auto pe = std::make_unique<PoolEntry>();
    pe->shape = shape;
    pe->bytes_per_block = bpb;
    pe->row_bytes = uint64_t{shape.kv_heads} * shape.head_dim * pool::dtype_bytes(shape.dtype);
    pe->tensor_block_bytes = pool::tensor_block_bytes(pc.block_size, shape.kv_heads, shape.head_dim, shape.dtype);
    pe->pool = std::make_unique<pool::Pool>(pc);  // validates the shape; UNSUPPORTED without a device
    pools_.push_back(std::move(pe));
    return *pools_.back();
}

Session& Store::new_session(std::string_view id, const Shape& shape, PoolEntry& pe, uint32_t max_tokens, bool attached) {
    auto s = std::make_unique<Session>();
    s->id.assign(id);
    s->shape = shape;
    s->pool = &pe;
    s->max_tokens = max_tokens;
    s->holders = 1;  // the creator's lease
    s->attached = attached;
    // Everything that may throw comes before the first change.
    if (free_slots_.empty()) slots_.reserve(slots_.size() + 1);
    free_slots_.reserve(free_slots_.size() + 1);  // free_session must not throw
    s->slot = free_slots_.empty() ? static_cast<uint32_t>(slots_.size()) : free_slots_.back();
    if (attached) {
        const auto [it, inserted] = by_id_.emplace(s->id, s->slot);
        try {
            policy_->insert(s->slot, std::hash<std::string>{}(s->id), true);
        } catch (...) {
            by_id_.erase(it);
            throw;
        }
    }
    const uint32_t slot = s->slot;
    if (free_slots_.empty()) {
        slots_.push_back(std::move(s));  // reserved above: cannot throw
    } else {
        free_slots_.pop_back();
        slots_[slot] = std::move(s);
    }
    num_sessions_.store(by_id_.size(), std::memory_order_relaxed);
    return *slots_[slot];
}

void Store::free_session(Session& s) noexcept {
    if (s.seq) s.pool->pool->free_sequence(*s.seq);
    const uint32_t slot = s.slot;
    slots_[slot].reset();
    free_slots_.push_back(slot);
}

void Store::detach(Session& s) noexcept {
    by_id_.erase(s.id);
    if (policy_->contains(s.slot)) policy_->erase(s.slot);
    s.attached = false;
    if (s.holders == 0) free_session(s);
    num_sessions_.store(by_id_.size(), std::memory_order_relaxed);
}

void Store::evict_one(uint32_t slot) {
    Session& victim = *slots_[slot];
    if (victim.holders != 0 || !victim.attached) {
        fail(KVC_ERR_INTERNAL, "the eviction policy picked " + quoted(victim.id) + ", which is held");
    }
    by_id_.erase(victim.id);
    free_session(victim);
    recorder_.record_evictions(1);
    num_sessions_.store(by_id_.size(), std::memory_order_relaxed);
    update_gauges();
}

Lease Store::acquire(Session& s) {
    if (s.attached) {
        if (s.holders == 0) policy_->hold(s.slot);
        policy_->touch(s.slot);
    }
    ++s.holders;
    return Lease{shared_from_this(), &s};
}

void Store::refuse(const std::string& message) {
    recorder_.record_memory_pressure();
    fail(KVC_ERR_CAPACITY, message);
}

void Store::update_gauges() noexcept {
    uint64_t bytes = 0;
    for (const auto& pe : pools_) bytes += uint64_t{pe->pool->counters().blocks_in_use} * pe->bytes_per_block;
    bytes_.store(bytes, std::memory_order_relaxed);
    if (bytes > peak_bytes_.load(std::memory_order_relaxed)) peak_bytes_.store(bytes, std::memory_order_relaxed);
    recorder_.set_bytes(bytes);
}

// ---- the store's calls ------------------------------------------------------------------------------

Lease Store::get_or_create(std::string_view id, const Shape& shape, uint32_t max_tokens, bool* created) {
    if (id.empty() || id.size() > kMaxSessionId) {
        fail(KVC_ERR_INVALID_ARGUMENT, "a session id is 1.." + std::to_string(kMaxSessionId) + " bytes, got " +
                                           std::to_string(id.size()));
    }
    if (max_tokens == 0) max_tokens = config_.max_tokens_per_session;
    if (max_tokens > config_.max_tokens_per_session) {
        fail(KVC_ERR_CAPACITY, "max tokens " + std::to_string(max_tokens) + " exceeds the store's max tokens per session (" +
                                   std::to_string(config_.max_tokens_per_session) + ")");
    }
    std::lock_guard lock(mu_);
    if (config_.enabled) {
        if (auto it = by_id_.find(id); it != by_id_.end()) {
            Session& s = *slots_[it->second];
            if (!(s.shape == shape)) {
                fail(KVC_ERR_INVALID_STATE, quoted(id) + " exists with another model shape");
            }
            if (s.tokens.size() > max_tokens) {
                fail(KVC_ERR_INVALID_STATE, quoted(id) + " holds " + std::to_string(s.tokens.size()) +
                                                " tokens, more than max tokens " + std::to_string(max_tokens));
            }
            s.max_tokens = max_tokens;
            recorder_.record_access(true);
            if (created != nullptr) *created = false;
            return acquire(s);
        }
    }
    PoolEntry& pe = pool_for(shape);  // before the miss is counted: a malformed request is not a lookup
    recorder_.record_access(false);
    if (config_.enabled && by_id_.size() >= config_.max_sessions) {
        const auto victim = policy_->evict();
        if (!victim) {
            refuse("max sessions (" + std::to_string(config_.max_sessions) + ") reached and every session is held: " +
                   quoted(id) + " cannot be created until one is released");
        }
        evict_one(*victim);
    }
    Session& s = new_session(id, shape, pe, max_tokens, config_.enabled);
    recorder_.record_insertions(1);
    if (created != nullptr) *created = true;
    return Lease{shared_from_this(), &s};
}

Lease Store::try_get(std::string_view id) {
    std::lock_guard lock(mu_);
    const auto it = config_.enabled ? by_id_.find(id) : by_id_.end();
    if (it == by_id_.end()) {
        recorder_.record_access(false);
        fail(KVC_ERR_NOT_FOUND, quoted(id) + " is not in the store");
    }
    recorder_.record_access(true);
    return acquire(*slots_[it->second]);
}

void Store::remove(std::string_view id) {
    std::lock_guard lock(mu_);
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) fail(KVC_ERR_NOT_FOUND, quoted(id) + " is not in the store");
    detach(*slots_[it->second]);
    update_gauges();
}

void Store::clear() {
    std::lock_guard lock(mu_);
    // Allocates nothing: kvc_store_destroy (a void C function, often a finalizer) calls it.
    while (!by_id_.empty()) detach(*slots_[by_id_.begin()->second]);
    update_gauges();
}

void Store::release(Session* session) noexcept {
    std::lock_guard lock(mu_);
    Session& s = *session;
    if (--s.holders > 0) return;
    if (!s.attached) {
        free_session(s);
    } else if (!config_.persist_across_requests) {
        detach(s);  // frees it: nobody holds it
    } else {
        policy_->release(s.slot);  // kept: no block changes hands
        return;
    }
    update_gauges();
}

size_t Store::held_sessions() const {
    std::lock_guard lock(mu_);
    return static_cast<size_t>(std::count_if(slots_.begin(), slots_.end(), [](const auto& s) { return s && s->holders > 0; }));
}

// ---- turns ------------------------------------------------------------------------------------------

void Store::check_bounds(const Session& s, size_t tokens) const {
    if (tokens > s.max_tokens) {
        fail(KVC_ERR_CAPACITY, quoted(s.id) + ": " + std::to_string(tokens) + " tokens exceed its max tokens (" +
                                   std::to_string(s.max_tokens) + ")");
    }
    const uint64_t bytes = blocks_for(tokens, config_.block_size) * s.pool->bytes_per_block;
    if (config_.max_bytes_per_session != 0 && bytes > config_.max_bytes_per_session) {
        fail(KVC_ERR_CAPACITY, quoted(s.id) + ": " + std::to_string(tokens) + " tokens take " + mib(bytes) +
                                   ", more than max bytes per session (" + mib(config_.max_bytes_per_session) + ")");
    }
    if (bytes > config_.max_bytes_total) {
        fail(KVC_ERR_CAPACITY, quoted(s.id) + ": " + std::to_string(tokens) + " tokens take " + mib(bytes) +
                                   ", more than max bytes total (" + mib(config_.max_bytes_total) + ")");
    }
}

template <class Net>
void Store::make_room(const Session& s, Net&& net_blocks, uint64_t most_taken, uint64_t least_freed) {
    using Wide = __int128;
    const Wide bpb = s.pool->bytes_per_block, limit = config_.max_bytes_total;
    auto fits = [&](Wide net) { return Wide(bytes_.load(std::memory_order_relaxed)) + net * bpb <= limit; };
    if (fits(Wide(net_blocks()))) return;
    // Decide before evicting anything: what evicting every idle session frees, against the most this change
    // can take once they are gone (evictions only lower what the change's own sequence shares).
    Wide reclaimable = 0;
    for (const auto& pe : pools_) {
        std::vector<pool::SequenceId> idle;
        for (const auto& other : slots_) {
            if (other && other->pool == pe.get() && other->attached && other->holders == 0 && other->seq) {
                idle.push_back(*other->seq);
            }
        }
        if (!idle.empty()) reclaimable += Wide(pe->pool->reclaimable_blocks(idle)) * Wide(pe->bytes_per_block);
    }
    const Wide worst = Wide(bytes_.load(std::memory_order_relaxed)) - reclaimable +
                       (Wide(most_taken) - Wide(least_freed)) * bpb;
    if (worst > limit) {
        const size_t held = static_cast<size_t>(
            std::count_if(slots_.begin(), slots_.end(), [](const auto& x) { return x && x->holders > 0; }));
        refuse(quoted(s.id) + " needs " + mib(uint64_t(Wide(most_taken) * bpb)) + " more; " +
               mib(bytes_.load(std::memory_order_relaxed)) + " of max bytes total (" + mib(config_.max_bytes_total) +
               ") are in use, evicting every idle session would free " + mib(uint64_t(reclaimable)) + ", and " +
               std::to_string(held) + " sessions are held");
    }
    while (!fits(Wide(net_blocks()))) {
        const auto victim = policy_->evict();
        if (!victim) fail(KVC_ERR_INTERNAL, "store: idle sessions ran out before the room they were counted to free");
        evict_one(*victim);
    }
}

void Store::refresh_view(Session& s, std::span<const int32_t> tokens, size_t committed) {
    s.tokens.assign(tokens.begin(), tokens.end());
    if (s.seq) {
        const auto table = s.pool->pool->block_table(*s.seq);
        s.blocks.assign(table.begin(), table.end());
    } else {
        s.blocks.clear();
    }
    s.committed = committed;
}

void Store::apply_copies(PoolEntry& pe) {
    // A kept block that others share is copied before this session writes into it (copy-on-write).
    const auto copies = pe.pool->drain_copies();
    auto* base = static_cast<uint8_t*>(pe.pool->storage());
    for (const auto& [src, dst] : copies) {
        std::memcpy(base + uint64_t(dst) * pe.bytes_per_block, base + uint64_t(src) * pe.bytes_per_block, pe.bytes_per_block);
    }
}

namespace {
// Token ids are >= 0 (the pool's rule), checked before the store's lock is taken.
void check_tokens(std::span<const int32_t> tokens) {
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0) {
            fail(KVC_ERR_INVALID_ARGUMENT, "token " + std::to_string(i) + " is " + std::to_string(tokens[i]) +
                                               ": token ids must be >= 0");
        }
    }
}
}  // namespace

size_t Store::begin_turn(Session& s, std::span<const int32_t> tokens) {
    check_tokens(tokens);
    std::lock_guard lock(mu_);
    check_bounds(s, tokens.size());
    pool::Pool& pool = *s.pool->pool;
    const size_t n = tokens.size();
    if (n == 0) {
        if (s.seq) pool.free_sequence(*s.seq);
        s.seq.reset();
        refresh_view(s, tokens, 0);
        update_gauges();
        return 0;
    }
    size_t lcp = 0;
    const size_t limit = std::min(n, s.committed);
    while (lcp < limit && tokens[lcp] == s.tokens[lcp]) ++lcp;
    // Device memory cannot copy a shared block that the cut leaves partly filled: cut at a block boundary.
    if (config_.memory == pool::Memory::kDevice) lcp -= lcp % config_.block_size;
    size_t reused = 0;
    if (s.seq && lcp > 0) {
        const pool::SequenceId seq = *s.seq;
        const uint64_t taken = pool.blocks_needed(seq, n, lcp), freed = pool.blocks_freed_by_truncate(seq, lcp);
        make_room(
            s, [&] { return int64_t(pool.blocks_needed(seq, n, lcp)) - int64_t(pool.blocks_freed_by_truncate(seq, lcp)); },
            taken, freed);
        pool.truncate(seq, lcp);
        if (n > lcp) {
            try {
                pool.append(seq, tokens.subspan(lcp));
            } catch (...) {  // room was made for it; still, leave a consistent session behind
                refresh_view(s, tokens.first(lcp), lcp);
                update_gauges();
                throw;
            }
            apply_copies(*s.pool);
        }
        reused = lcp;
    } else {
        // A new sequence for the whole conversation: it starts with the committed full blocks of any
        // session that shares its prefix (prefix sharing on).
        pool::SequenceOptions options;
        options.defer_caching = true;
        const pool::SequenceId fresh = pool.create_sequence(tokens, std::move(options));
        const std::optional<pool::SequenceId> old = s.seq;
        try {
            const uint64_t freed = old ? pool.reclaimable_blocks(std::span(&*old, 1)) : 0;
            make_room(
                s,
                [&] {
                    return int64_t(pool.blocks_needed(fresh, n)) -
                           int64_t(old ? pool.reclaimable_blocks(std::span(&*old, 1)) : 0);
                },
                blocks_for(n, config_.block_size), freed);
        } catch (...) {
            pool.free_sequence(fresh);
            update_gauges();
            throw;
        }
        // The room was counted with the old sequence's blocks given back, and the pool holds exactly the
        // store's byte bound, so the old blocks go back before the new ones are taken.
        if (old) {
            pool.free_sequence(*old);
            s.seq.reset();
        }
        try {
            pool.allocate(fresh, n, &reused);
        } catch (...) {  // out of memory only (room was made): the session is left empty, consistent
            pool.free_sequence(fresh);
            refresh_view(s, tokens.first(0), 0);
            update_gauges();
            throw;
        }
        s.seq = fresh;
    }
    refresh_view(s, tokens, reused);
    update_gauges();
    recorder_.record_reused_tokens(reused);
    return reused;
}

void Store::append(Session& s, std::span<const int32_t> tokens) {
    check_tokens(tokens);
    std::lock_guard lock(mu_);
    if (!s.seq) fail(KVC_ERR_INVALID_STATE, quoted(s.id) + " holds no tokens: begin a turn first");
    const size_t n = s.tokens.size() + tokens.size();
    check_bounds(s, n);
    pool::Pool& pool = *s.pool->pool;
    const pool::SequenceId seq = *s.seq;
    const uint64_t taken = pool.blocks_needed(seq, n);
    make_room(s, [&] { return int64_t(pool.blocks_needed(seq, n)); }, taken, 0);
    pool.append(seq, tokens);
    apply_copies(*s.pool);
    s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
    const auto table = pool.block_table(seq);
    s.blocks.assign(table.begin(), table.end());
    update_gauges();
}

void Store::commit(Session& s) {
    std::lock_guard lock(mu_);
    if (s.seq && config_.prefix_sharing) s.pool->pool->commit(*s.seq, s.tokens.size());
    s.committed = s.tokens.size();
}

// ---- K/V ----------------------------------------------------------------------------------------------

namespace {

// Calls copy(block_offset_bytes, rows_offset_bytes, bytes) for each run of tokens [first, first + n) of
// one layer's K (kv 0) or V (kv 1) that lies in one block.
template <class Copy>
void for_each_run(const Session& s, uint32_t layer, uint32_t kv, size_t first, size_t n, uint32_t block_size,
                  Copy&& copy) {
    const PoolEntry& pe = *s.pool;
    size_t t = first;
    while (t < first + n) {
        const size_t offset = t % block_size;
        const size_t run = std::min<size_t>(block_size - offset, first + n - t);
        const uint64_t at = uint64_t(s.blocks[t / block_size]) * pe.bytes_per_block +
                            (uint64_t{layer} * 2 + kv) * pe.tensor_block_bytes + offset * pe.row_bytes;
        copy(at, (t - first) * pe.row_bytes, run * pe.row_bytes);
        t += run;
    }
}

void check_kv(const Session& s, pool::Memory memory, uint32_t layer, size_t first, size_t n, size_t lowest) {
    if (memory != pool::Memory::kHost) {
        fail(KVC_ERR_UNSUPPORTED, "K/V copies need host memory: with device memory use the block table and storage");
    }
    if (layer >= s.shape.layers) {
        fail(KVC_ERR_OUT_OF_RANGE, "layer " + std::to_string(layer) + " is past the model's " +
                                       std::to_string(s.shape.layers) + " layers");
    }
    const size_t tokens = s.tokens.size();
    if (first < lowest || first > tokens || n > tokens - first) {
        fail(KVC_ERR_OUT_OF_RANGE, "tokens [" + std::to_string(first) + ", " + std::to_string(first) + " + " +
                                       std::to_string(n) + ") are outside [" + std::to_string(lowest) + ", " +
                                       std::to_string(tokens) + ")" +
                                       (lowest > 0 ? ": committed K/V may be shared and are not rewritten" : ""));
    }
}

}  // namespace

void Store::write_kv(const Session& s, uint32_t layer, size_t first, size_t n, const void* keys, const void* values) const {
    check_kv(s, config_.memory, layer, first, n, s.committed);
    auto* base = static_cast<uint8_t*>(s.pool->pool->storage());
    const void* rows[2] = {keys, values};
    for (uint32_t kv = 0; kv < 2; ++kv) {
        for_each_run(s, layer, kv, first, n, config_.block_size, [&](uint64_t at, uint64_t from, uint64_t bytes) {
            std::memcpy(base + at, static_cast<const uint8_t*>(rows[kv]) + from, bytes);
        });
    }
}

void Store::read_kv(const Session& s, uint32_t layer, size_t first, size_t n, void* keys, void* values) const {
    check_kv(s, config_.memory, layer, first, n, 0);
    const auto* base = static_cast<const uint8_t*>(s.pool->pool->storage());
    void* rows[2] = {keys, values};
    for (uint32_t kv = 0; kv < 2; ++kv) {
        for_each_run(s, layer, kv, first, n, config_.block_size, [&](uint64_t at, uint64_t to, uint64_t bytes) {
            std::memcpy(static_cast<uint8_t*>(rows[kv]) + to, base + at, bytes);
        });
    }
}

// ---- invariants ---------------------------------------------------------------------------------------

void Store::check_invariants() const {
    std::lock_guard lock(mu_);
    auto broken = [](const std::string& what) { fail(KVC_ERR_INTERNAL, "store invariant broken: " + what); };
    for (const auto& pe : pools_) pe->pool->check_invariants();
    size_t attached = 0, idle = 0;
    for (const auto& s : slots_) {
        if (!s) continue;
        if (s->attached) {
            ++attached;
            const auto it = by_id_.find(s->id);
            if (it == by_id_.end() || it->second != s->slot) broken(quoted(s->id) + " is not under its id");
            if (!policy_->contains(s->slot)) broken(quoted(s->id) + " is not in the eviction policy");
            idle += s->holders == 0;
        } else if (s->holders == 0) {
            broken(quoted(s->id) + " is detached and idle but not freed");
        }
        if (s->tokens.size() > s->max_tokens || s->committed > s->tokens.size()) broken(quoted(s->id) + "'s token counts");
        if (s->seq && s->pool->pool->num_tokens(*s->seq) != s->tokens.size()) broken(quoted(s->id) + "'s view of its tokens");
        if (!s->seq && !s->tokens.empty()) broken(quoted(s->id) + " has tokens and no sequence");
    }
    if (attached != by_id_.size() || attached > config_.max_sessions) broken("session count");
    if (policy_->resident() != attached || policy_->evictable() != idle) broken("the eviction policy's counts");
    uint64_t bytes = 0;
    for (const auto& pe : pools_) bytes += uint64_t{pe->pool->counters().blocks_in_use} * pe->bytes_per_block;
    if (bytes != bytes_.load() || bytes > config_.max_bytes_total) broken("bytes in use");
}

}  // namespace kvcore::store
