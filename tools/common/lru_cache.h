/* SPDX-License-Identifier: Apache-2.0 */
// A plain LRU cache of keys, shaped like SmallMind's LruKvCacheStore (a hash map to list nodes, splice
// on a hit, evict the tail on a miss). Not part of libkvcore: it is the "cache not built on kvcore" that
// the demo and the benchmarks record through a kvc_recorder.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

class LruCache {
public:
    // The index is reserved up front only up to kReserveLimit entries: a large capacity is a bound, not a
    // size, and a cache of 10^8 entries holding one key must not take gigabytes of empty buckets.
    static constexpr size_t kReserveLimit = 64 * 1024;
    explicit LruCache(size_t capacity) : capacity_(capacity) {
        index_.reserve(std::min(capacity, kReserveLimit) * 2);
    }

    // True on a hit. On a miss the key is inserted; *evicted (when given) tells whether that pushed one out.
    bool access(uint64_t key, bool* evicted = nullptr) {
        if (evicted != nullptr) *evicted = false;
        if (auto it = index_.find(key); it != index_.end()) {
            order_.splice(order_.begin(), order_, it->second);
            return true;
        }
        if (index_.size() == capacity_) {
            index_.erase(order_.back());
            order_.pop_back();
            if (evicted != nullptr) *evicted = true;
        }
        order_.push_front(key);
        index_.emplace(key, order_.begin());
        return false;
    }

private:
    size_t capacity_;
    std::list<uint64_t> order_;
    std::unordered_map<uint64_t, std::list<uint64_t>::iterator> index_;
};
