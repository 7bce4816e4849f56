/* SPDX-License-Identifier: Apache-2.0 */
// W-TinyLFU (Einziger, Friedman and Manes, ACM ToS 2017; Caffeine's design): a small window LRU (1 %)
// takes new items, a segmented LRU main (probation 20 %, protected 80 %) keeps the proven ones, and a
// count-min sketch of 4-bit counters estimates every key's recent frequency. When the window overflows,
// its oldest item enters main only if the sketch rates it above main's next victim; otherwise it is the
// one evicted. Every count is halved after 10 x capacity increments, so the sketch forgets old history.
// A held item leaves its list and rejoins it at the newest end.
#pragma once

#include <vector>

#include "common/eviction/policy.h"
#include "common/eviction/queue.h"

namespace kvcore::eviction {

// Caffeine's sketch: 16 4-bit counters per 64-bit word, four counters per key, the minimum is the estimate.
class FrequencySketch {
public:
    explicit FrequencySketch(size_t capacity);
    void increment(uint64_t key) noexcept;
    [[nodiscard]] uint32_t estimate(uint64_t key) const noexcept;

private:
    std::vector<uint64_t> table_;
    size_t mask_;
    uint64_t additions_ = 0, sample_size_;
};

class WTinyLfu final : public Policy {
public:
    explicit WTinyLfu(size_t capacity);
    void insert(uint32_t slot, uint64_t key, bool held) override;
    void touch(uint32_t slot) override;
    void hold(uint32_t slot) override;
    void release(uint32_t slot) override;
    void erase(uint32_t slot) override;
    std::optional<uint32_t> evict() override;

    [[nodiscard]] size_t resident() const noexcept override { return in_[0] + in_[1] + in_[2]; }
    [[nodiscard]] size_t evictable() const noexcept override { return lists_[0].size + lists_[1].size + lists_[2].size; }
    [[nodiscard]] bool contains(uint32_t slot) const noexcept override {
        return slot < nodes_.size() && nodes_[slot].state != SlotState::kAbsent;
    }
    [[nodiscard]] Kind kind() const noexcept override { return Kind::kWTinyLfu; }

private:
    enum List : uint8_t { kWindow = 0, kProbation = 1, kProtected = 2 };
    struct Node : NodeLinks {
        uint64_t key = 0;
        List list = kWindow;
    };
    void move(uint32_t slot, List to);  // a resident slot to another list (linked at its newest end if evictable)
    uint32_t take(List from);

    std::vector<Node> nodes_;
    Queue lists_[3];
    size_t in_[3] = {0, 0, 0};  // resident per list, held ones included
    size_t window_target_, main_capacity_, protected_target_;
    FrequencySketch sketch_;
};

}  // namespace kvcore::eviction
