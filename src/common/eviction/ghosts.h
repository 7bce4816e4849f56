/* SPDX-License-Identifier: Apache-2.0 */
// The keys of recently evicted items (a "ghost" history, as S3-FIFO and ARC keep): at most `capacity`
// keys, the oldest forgotten first. A ring of keys in eviction order plus an open-addressing index from
// key to ring position, so add, remove and lookup are O(1) and nothing is allocated after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvcore::eviction {

class Ghosts {
public:
    explicit Ghosts(size_t capacity);
    // Remembers a key (a key remembered already moves to the newest end); forgets the oldest when full.
    void add(uint64_t key);
    // Forgets a key; true when it was remembered (a ghost hit).
    bool remove(uint64_t key);
    [[nodiscard]] bool contains(uint64_t key) const noexcept { return find(key) != kEmpty; }
    [[nodiscard]] size_t size() const noexcept { return live_; }
    [[nodiscard]] size_t capacity() const noexcept { return ring_.size(); }

private:
    static constexpr uint32_t kEmpty = UINT32_MAX;
    [[nodiscard]] size_t bucket(uint64_t key) const noexcept;
    [[nodiscard]] uint32_t find(uint64_t key) const noexcept;  // index_ position, kEmpty when absent
    void erase_index(size_t at) noexcept;

    std::vector<uint64_t> ring_;    // keys in eviction order
    std::vector<uint8_t> dead_;     // a ring entry removed by a ghost hit, skipped when its turn comes
    size_t oldest_ = 0, used_ = 0;  // ring entries, dead ones included
    size_t live_ = 0;
    std::vector<uint32_t> index_;   // ring position, or kEmpty; linear probing
    size_t mask_ = 0;
    unsigned shift_ = 64;
};

}  // namespace kvcore::eviction
