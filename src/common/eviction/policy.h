/* SPDX-License-Identifier: Apache-2.0 */
// Eviction policies: which cached item goes when a component is full. One interface serves the session
// store (sessions), the TTL cache (entries) and the pool (free cached blocks); one file per policy.
//
// Items are named by slots 0, 1, 2, ... that the owning component assigns (a session's, an entry's or a
// block's index); a policy only orders them and grows its arrays as slots appear. An item is resident
// from insert() until evict() picks it or erase() drops it. A held item (a leased session, a block in
// use) stays resident but is never picked; hold()/release() bracket the lease.
//
// Every operation is O(1) amortised. Not thread-safe: the owner serialises calls (its own lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace kvcore::eviction {

// Every policy kvcore has. The first ones are kvc_eviction_policy's, value for value: those that reuse
// more blocks than LRU at every size measured (bench/RESULTS.md). SIEVE and W-TinyLFU reuse fewer on the
// reference trace, so the C API does not offer them; `kvcore simulate --policy` still compares them.
enum class Kind : uint32_t { kLru = 0, kS3Fifo = 1, kArc = 2, kSieve = 3, kWTinyLfu = 4 };
inline constexpr uint32_t kLastKind = 4;

// "lru", "s3fifo", ...; nullopt for an unknown name.
std::optional<Kind> kind_from_name(std::string_view name) noexcept;
const char* kind_name(Kind kind) noexcept;

class Policy {
public:
    virtual ~Policy() = default;

    // A new item enters, held or evictable. key: a stable identity of the item's content (a block hash,
    // a hash of the session id), which policies with a history of evicted items (ghosts) remember.
    // The slot must not be resident.
    virtual void insert(uint32_t slot, uint64_t key, bool held) = 0;
    // A hit on a resident item, held or not.
    virtual void touch(uint32_t slot) = 0;
    // The item may not be evicted until release(); both require a resident slot, hold an evictable one,
    // release a held one.
    virtual void hold(uint32_t slot) = 0;
    virtual void release(uint32_t slot) = 0;
    // The item leaves without being evicted (removed, invalidated, expired); no history is kept.
    virtual void erase(uint32_t slot) = 0;
    // Picks the next victim among evictable items and removes it; nullopt when there is none.
    virtual std::optional<uint32_t> evict() = 0;

    [[nodiscard]] virtual size_t resident() const noexcept = 0;
    [[nodiscard]] virtual size_t evictable() const noexcept = 0;
    [[nodiscard]] virtual bool contains(uint32_t slot) const noexcept = 0;
    [[nodiscard]] virtual Kind kind() const noexcept = 0;
};

// capacity: how many items the owner keeps at most (0: unbounded); size-relative policies (S3-FIFO's
// small queue, ARC's target, ghost history) scale with it.
std::unique_ptr<Policy> make_policy(Kind kind, size_t capacity);

}  // namespace kvcore::eviction
