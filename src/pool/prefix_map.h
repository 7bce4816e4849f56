/* SPDX-License-Identifier: Apache-2.0 */
// The prefix cache's index: block hash (within an isolation domain) -> block id. Open addressing with
// linear probing over a power-of-two table at most half full, and backward-shift deletion, so a lookup
// is one hash, usually one cache line, and no allocation ever happens after construction.
#pragma once

#include <cstdint>
#include <memory>

namespace kvcore::pool {

class PrefixMap {
public:
    // Holds up to max_entries (the pool's block count) without growing.
    explicit PrefixMap(uint32_t max_entries) {
        capacity_ = 16;
        while (capacity_ < 2 * static_cast<uint64_t>(max_entries)) capacity_ *= 2;
        slots_ = std::make_unique<Slot[]>(capacity_);
    }

    // Calls matches(block) for each block stored under key until it returns true; returns that block or -1.
    template <class Matches>
    [[nodiscard]] int32_t find(uint64_t key, Matches&& matches) const noexcept {
        key = nonzero(key);
        for (uint64_t i = key & (capacity_ - 1);; i = (i + 1) & (capacity_ - 1)) {
            const Slot& s = slots_[i];
            if (s.key == 0) return -1;
            if (s.key == key && matches(s.block)) return s.block;
        }
    }

    void insert(uint64_t key, int32_t block) noexcept {
        key = nonzero(key);
        uint64_t i = key & (capacity_ - 1);
        while (slots_[i].key != 0) i = (i + 1) & (capacity_ - 1);
        slots_[i] = {key, block};
        ++size_;
    }

    // Removes the entry of this block (which must be present under key).
    void erase(uint64_t key, int32_t block) noexcept {
        key = nonzero(key);
        uint64_t i = key & (capacity_ - 1);
        while (!(slots_[i].key == key && slots_[i].block == block)) i = (i + 1) & (capacity_ - 1);
        // Backward shift: move later entries of the probe run into the hole when that keeps them reachable.
        for (uint64_t j = (i + 1) & (capacity_ - 1);; j = (j + 1) & (capacity_ - 1)) {
            if (slots_[j].key == 0) break;
            const uint64_t home = slots_[j].key & (capacity_ - 1);
            // Movable when its home is not in (i, j] cyclically.
            if (((j - home) & (capacity_ - 1)) >= ((j - i) & (capacity_ - 1))) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i] = {};
        --size_;
    }

    void clear() noexcept {
        for (uint64_t i = 0; i < capacity_; ++i) slots_[i] = {};
        size_ = 0;
    }
    [[nodiscard]] uint32_t size() const noexcept { return size_; }

private:
    struct Slot {
        uint64_t key = 0;  // 0: empty
        int32_t block = -1;
    };
    static uint64_t nonzero(uint64_t key) noexcept { return key == 0 ? 1 : key; }

    uint64_t capacity_;
    uint32_t size_ = 0;
    std::unique_ptr<Slot[]> slots_;
};

}  // namespace kvcore::pool
