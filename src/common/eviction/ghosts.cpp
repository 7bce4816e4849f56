/* SPDX-License-Identifier: Apache-2.0 */
#include "common/eviction/ghosts.h"

#include <algorithm>
#include <bit>

namespace kvcore::eviction {

Ghosts::Ghosts(size_t capacity) : ring_(capacity), dead_(capacity) {
    // At most half full: short probe runs.
    const size_t buckets = std::bit_ceil(std::max<size_t>(2 * capacity, 2));
    index_.assign(buckets, kEmpty);
    mask_ = buckets - 1;
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(buckets));
}

size_t Ghosts::bucket(uint64_t key) const noexcept {
    // Fibonacci hashing: keys that differ only in low bits still spread.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
}

uint32_t Ghosts::find(uint64_t key) const noexcept {
    if (ring_.empty()) return kEmpty;
    for (size_t i = bucket(key);; i = (i + 1) & mask_) {
        if (index_[i] == kEmpty) return kEmpty;
        if (ring_[index_[i]] == key) return static_cast<uint32_t>(i);
    }
}

void Ghosts::erase_index(size_t at) noexcept {
    // Backward-shift deletion keeps every probe run unbroken without tombstones.
    for (size_t j = at;;) {
        j = (j + 1) & mask_;
        if (index_[j] == kEmpty) break;
        const size_t home = bucket(ring_[index_[j]]);
        const bool stays = at <= j ? (home > at && home <= j) : (home > at || home <= j);
        if (!stays) {
            index_[at] = index_[j];
            at = j;
        }
    }
    index_[at] = kEmpty;
}

bool Ghosts::remove(uint64_t key) {
    const uint32_t at = find(key);
    if (at == kEmpty) return false;
    dead_[index_[at]] = 1;
    erase_index(at);
    --live_;
    return true;
}

void Ghosts::add(uint64_t key) {
    if (ring_.empty()) return;
    remove(key);
    if (used_ == ring_.size()) {  // forget the oldest entry
        if (!dead_[oldest_]) {
            erase_index(find(ring_[oldest_]));
            --live_;
        }
        oldest_ = (oldest_ + 1) % ring_.size();
        --used_;
    }
    const size_t pos = (oldest_ + used_) % ring_.size();
    ring_[pos] = key;
    dead_[pos] = 0;
    ++used_;
    ++live_;
    size_t i = bucket(key);
    while (index_[i] != kEmpty) i = (i + 1) & mask_;
    index_[i] = static_cast<uint32_t>(pos);
}

}  // namespace kvcore::eviction
