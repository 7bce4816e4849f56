/* SPDX-License-Identifier: Apache-2.0 */
// The Redis/Valkey store behind the cluster index's Redis mode (index.h, "Redis mode"); built only with
// KVCORE_REDIS (hiredis). It knows names, not the per-process ids, so that every router replica reads and
// writes the same entries.
//
// Layout, under the key prefix P (RedisConfig::key_prefix):
// - P "b:" <model> ":" <r|e> ":" <16 hex digits>: a hash per (model, key kind, key). Its fields are the
//   pods holding the block (by name); a field's value lists that pod's holders as items "rank.tier.expiry"
//   separated by spaces: tier is 0..4 (Medium) or "s" for the speculative holder (rank 0), expiry the
//   server's clock in ms past which the item is ignored (0: never).
// - P "p:" <pod>: a set of the entry keys the pod has items in, so that clearing a (pod, rank, model) or
//   removing a pod visits its keys only.
// The model name is everything between "b:" and the fixed-width tail, so any name is unambiguous.
//
// Expiry. A speculative item expires at the server's time of its write + its TTL; with key_ttl_ms > 0 every
// item does so at write + key_ttl. Each write also extends its hash's and its pod set's TTL to cover the
// item (PEXPIRE only ever later; none while an item never expires), so Redis deletes what nobody refreshed.
// Readers skip expired items; a write of a key rewrites the writing pod's items without the expired ones
// and, when the hash's field count reaches a power of two, prunes the other pods' expired items too (so a
// key kept alive by one pod sheds dead pods' fields at amortised O(1) per write).
//
// Writes. One call is one EVALSHA of a Lua script: Redis runs a script atomically, so other replicas see a
// batch whole or not at all; the script is declared `#!lua` (Redis >= 7.0, Valkey), so a server over its
// maxmemory with noeviction refuses it before it starts (KVC_ERR_CAPACITY). Every write is idempotent
// (set an item, drop an item, drop a pod's items), so a script retried after a lost reply changes
// nothing further. Clearing visits the pod set with SSCAN inside the script: it blocks the server for
// the time it takes (about a microsecond per key). Redis Cluster is not supported: a batch's keys span
// hash slots.
//
// Reads. read() sends TIME and then HGETALL for a window of keys in one pipeline (one round trip), hands
// each key's live items to the visitor in order, and sends the next, larger window only while the
// visitor wants more: scoring stops early as the shards do, wasting at most one window of reads.
//
// Failures. Every call runs on a pooled connection. A connection error (reset, timeout, server gone)
// drops that connection, reconnects (RedisConfig::reconnect_attempts tries, 10 ms backoff doubling,
// each bounded by connect_timeout_ms) and retries the round trip once; then the call fails with
// KVC_ERR_IO naming the server. An error reply fails the call at once (KVC_ERR_CAPACITY for OOM, else
// KVC_ERR_IO with the server's message), except NOSCRIPT (a restarted server), which reloads the script.
//
// Thread-safety: all members may be called from any number of threads. Connections come from a pool
// guarded by a mutex (at most max_connections; further callers wait for a free one); a connection is
// used by one thread at a time, so round trips of different threads run in parallel.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "index/index.h"

namespace kvcore::index {

// A parsed RedisConfig::url. KVC_ERR_INVALID_ARGUMENT for a malformed one (rediss:// TLS is
// KVC_ERR_UNSUPPORTED: hiredis 0.14 has no TLS).
struct RedisEndpoint {
    std::string host;       // TCP host (brackets of an IPv6 literal removed)
    int port = 6379;
    std::string unix_path;  // non-empty: a unix socket instead of TCP
    int db = 0;
    std::string user, password;  // AUTH when password is set (with user: Redis 6 ACL)
    std::string display;         // "host:port" or the socket path, for messages
};
RedisEndpoint parse_redis_url(std::string_view url);

// One change of a script (see "Layout").
struct RedisWrite {
    enum class Kind : char {
        kAdd = 'a',             // set item (rank, tier) of pod in key
        kAddSpeculative = 's',  // set pod's speculative item for ttl_ms, unless pod holds key for real
        kRemove = 'r',          // drop item (rank, tier) of pod from key
        kClearPodRank = 'c',    // drop pod's real items of rank from every key of a model (key: model_prefix)
        kRemovePod = 'p',       // drop every item of pod, and its pod set
    };
    Kind kind;
    uint8_t tier = 0;  // Medium; 's' items ignore it
    uint16_t rank = 0;
    uint64_t ttl_ms = 0;  // kAddSpeculative
    std::string key;
    std::string_view pod;  // must outlive the write() call
};

// A live holder read from the server; pod points into the reply, valid during the visit.
struct RedisItem {
    std::string_view pod;
    uint16_t rank = 0;
    Medium tier = Medium::kGpu;
    bool speculative = false;
};

class RedisStore {
public:
    // Connects once (KVC_ERR_IO naming the server when it cannot) and loads the script.
    explicit RedisStore(const RedisConfig& config);
    ~RedisStore();
    RedisStore(const RedisStore&) = delete;
    RedisStore& operator=(const RedisStore&) = delete;

    [[nodiscard]] std::string entry_key(std::string_view model, KeyKind kind, uint64_t key) const;
    // What every entry key of a model starts with (kClearPodRank's key).
    [[nodiscard]] std::string model_prefix(std::string_view model) const;
    [[nodiscard]] const std::string& server() const noexcept { return endpoint_.display; }

    // All of writes in one script, whole or not at all.
    void write(std::span<const RedisWrite> writes);

    // Visits keys in order, each with its live items (none: the key has no holder), in pipelined
    // windows; visit returns false to stop. A key is visited once even when a window is retried.
    using Visitor = std::function<bool(size_t index, std::span<const RedisItem> items)>;
    void read(std::span<const std::string> keys, const Visitor& visit);

    [[nodiscard]] uint64_t errors() const noexcept { return errors_.load(std::memory_order_relaxed); }
    [[nodiscard]] uint64_t reconnects() const noexcept { return reconnects_.load(std::memory_order_relaxed); }
    [[nodiscard]] uint64_t round_trips() const noexcept { return round_trips_.load(std::memory_order_relaxed); }

    struct Conn;

private:
    struct Lease;
    std::unique_ptr<Conn> acquire();
    void release(std::unique_ptr<Conn> conn) noexcept;
    void connect(Conn& conn);
    // Runs one round trip on conn; on a lost connection reconnects and runs it again once per call
    // (retried tracks that across the round trips of one call).
    template <class Fn>
    void exchange(Conn& conn, bool& retried, const char* what, Fn&& fn);

    RedisConfig config_;
    RedisEndpoint endpoint_;
    std::string script_sha_;
    std::mutex mu_;
    std::condition_variable freed_;
    std::vector<std::unique_ptr<Conn>> idle_;
    uint32_t open_ = 0;  // connections handed out or idle
    std::atomic<uint64_t> errors_{0}, reconnects_{0}, round_trips_{0};
};

}  // namespace kvcore::index
