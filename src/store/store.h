/* SPDX-License-Identifier: Apache-2.0 */
// The session store (kvcore/store.h): sessions named by id strings, each a sequence of a block pool (one
// pool per model shape), kept between requests under byte and session bounds, evicted through an
// eviction::Policy, handed out as leases that pin them.
//
// Thread-safety: one mutex guards every session's bookkeeping and the pools (a Pool is single-threaded).
// A held session's block table, token counts and shape are written only by calls through its lease
// (under the mutex) and read by the same lease's K/V copies without it: a session is used by one thread
// at a time, and nothing else touches a held session's blocks (eviction skips it).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/eviction/policy.h"
#include "pool/pool.h"
#include "stats/recorder.h"

namespace kvcore::store {

struct StoreConfig {
    bool enabled = true;
    uint32_t max_tokens_per_session = 4096;
    uint32_t max_sessions = 1000;
    uint64_t max_bytes_total = uint64_t{1} << 30;
    uint64_t max_bytes_per_session = 0;  // 0: no bound of its own
    eviction::Kind policy = eviction::Kind::kLru;
    bool persist_across_requests = true;
    bool prefix_sharing = true;
    uint32_t block_size = 16;
    pool::Memory memory = pool::Memory::kHost;
    std::string component = "store";

    void validate() const;  // throws kvcore::Error naming the bad field
};

struct Shape {
    uint32_t layers = 1, kv_heads = 1, head_dim = 1;
    pool::DType dtype = pool::DType::kF16;
    bool operator==(const Shape&) const = default;
};

inline constexpr size_t kMaxShapes = 8;       // pools per store: each reserves its bytes bound (virtually)
inline constexpr size_t kMaxSessionId = 1024;  // bytes

class Store;

struct PoolEntry {
    Shape shape;
    std::unique_ptr<pool::Pool> pool;
    uint64_t bytes_per_block = 0;
    uint64_t row_bytes = 0;  // one token's K (or V) in one layer
    uint64_t tensor_block_bytes = 0;  // one layer's K (or V) in a block: its rows (INT8: then their scales)
};

struct Session {
    std::string id;
    Shape shape;
    PoolEntry* pool = nullptr;  // fixed for the session's life (pools are never dropped)
    std::optional<pool::SequenceId> seq;
    uint32_t max_tokens = 0;
    uint32_t holders = 0;
    uint32_t slot = 0;      // in the store's slot table and its policy
    bool attached = false;  // reachable by id (in the map and, while idle, in the policy)
    // The lease's view: written under the store's mutex by calls through the lease, read by its K/V copies.
    std::vector<int32_t> tokens;  // token ids with slots
    std::vector<int32_t> blocks;  // block table
    size_t committed = 0;         // leading tokens whose K/V are written
};

// A lease: keeps the store's core alive and pins its session until released.
struct Lease {
    std::shared_ptr<Store> store;
    Session* session = nullptr;
};

class Store : public std::enable_shared_from_this<Store> {
public:
    static std::shared_ptr<Store> create(StoreConfig config);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    [[nodiscard]] const StoreConfig& config() const noexcept { return config_; }

    // max_tokens 0: the configured bound. *created: whether it was made now.
    Lease get_or_create(std::string_view id, const Shape& shape, uint32_t max_tokens, bool* created);
    Lease try_get(std::string_view id);  // KVC_ERR_NOT_FOUND (a counted miss)
    void remove(std::string_view id);
    void clear();
    // The kvc_store handle's end: what clear() does; leases keep this core alive until released.
    void close() { clear(); }
    void release(Session* session) noexcept;

    // Session operations, through a lease.
    size_t begin_turn(Session& s, std::span<const int32_t> tokens);
    void append(Session& s, std::span<const int32_t> tokens);
    void commit(Session& s);
    // K/V rows of one layer, [token][kv_head][head_dim]; no lock (the lease's own view, see above).
    void write_kv(const Session& s, uint32_t layer, size_t first, size_t n, const void* keys, const void* values) const;
    void read_kv(const Session& s, uint32_t layer, size_t first, size_t n, void* keys, void* values) const;

    [[nodiscard]] stats::Snapshot snapshot() const { return recorder_.snapshot(); }
    [[nodiscard]] uint64_t num_sessions() const noexcept { return num_sessions_.load(std::memory_order_relaxed); }
    [[nodiscard]] uint64_t bytes_in_use() const noexcept { return bytes_.load(std::memory_order_relaxed); }
    [[nodiscard]] uint64_t peak_bytes() const noexcept { return peak_bytes_.load(std::memory_order_relaxed); }
    [[nodiscard]] size_t held_sessions() const;
    // A hit of another lease may change it, hence under the mutex.
    [[nodiscard]] uint32_t max_tokens(const Session& s) const {
        std::lock_guard lock(mu_);
        return s.max_tokens;
    }

    // For tests: throws kvcore::Error(INTERNAL) describing the first broken invariant (the pools' too).
    void check_invariants() const;

private:
    explicit Store(StoreConfig config);

    Lease acquire(Session& s);
    PoolEntry& pool_for(const Shape& shape);
    Session& new_session(std::string_view id, const Shape& shape, PoolEntry& pe, uint32_t max_tokens, bool attached);
    void free_session(Session& s) noexcept;
    void detach(Session& s) noexcept;  // leaves the map and the policy; freed now if idle
    void evict_one(uint32_t slot);
    // Refuses a request for want of memory or session room: one pressure event, KVC_ERR_CAPACITY.
    [[noreturn]] void refuse(const std::string& message);
    // Makes room for a change of the session `s` that needs `needed(...)` more bytes than its pool frees
    // for it now: evicts idle sessions (policy order) until it fits. Decides first, from the blocks that
    // evicting every idle session would free and an upper bound of what the change takes once they are
    // gone, whether it can fit at all; if not, refuses without evicting anything.
    template <class Net>
    void make_room(const Session& s, Net&& net_blocks, uint64_t most_taken, uint64_t least_freed);
    // A session of `tokens` tokens against the token and byte bounds: KVC_ERR_CAPACITY, nothing recorded.
    void check_bounds(const Session& s, size_t tokens) const;
    void update_gauges() noexcept;
    void refresh_view(Session& s, std::span<const int32_t> tokens, size_t committed);
    void apply_copies(PoolEntry& pe);

    StoreConfig config_;
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<PoolEntry>> pools_;
    std::vector<std::unique_ptr<Session>> slots_;
    std::vector<uint32_t> free_slots_;
    // Looked up by string_view: a hit builds no std::string (ids past 15 bytes would allocate).
    struct IdHash {
        using is_transparent = void;
        size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
    };
    std::unordered_map<std::string, uint32_t, IdHash, std::equal_to<>> by_id_;
    std::unique_ptr<eviction::Policy> policy_;
    mutable stats::Recorder recorder_;
    std::atomic<uint64_t> num_sessions_{0}, bytes_{0}, peak_bytes_{0};
};

}  // namespace kvcore::store
