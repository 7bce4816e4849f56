/* SPDX-License-Identifier: Apache-2.0 */
// SIEVE (Zhang et al., NSDI 2024): one FIFO with a visited bit per item and a hand that walks from the
// oldest item towards the newest, clearing visited bits and evicting the first unvisited item; hits only
// set the bit, so nothing moves on a hit. A held item leaves the queue and rejoins it at the newest end.
#pragma once

#include <vector>

#include "common/eviction/policy.h"
#include "common/eviction/queue.h"

namespace kvcore::eviction {

class Sieve final : public Policy {
public:
    void insert(uint32_t slot, uint64_t key, bool held) override;
    void touch(uint32_t slot) override;
    void hold(uint32_t slot) override;
    void release(uint32_t slot) override;
    void erase(uint32_t slot) override;
    std::optional<uint32_t> evict() override;

    [[nodiscard]] size_t resident() const noexcept override { return resident_; }
    [[nodiscard]] size_t evictable() const noexcept override { return queue_.size; }
    [[nodiscard]] bool contains(uint32_t slot) const noexcept override {
        return slot < nodes_.size() && nodes_[slot].state != SlotState::kAbsent;
    }
    [[nodiscard]] Kind kind() const noexcept override { return Kind::kSieve; }

private:
    struct Node : NodeLinks {
        bool visited = false;
    };
    void unlink(uint32_t slot) noexcept;  // moves the hand off the slot first

    std::vector<Node> nodes_;
    Queue queue_;
    uint32_t hand_ = kNoSlot;  // kNoSlot: start from the oldest
    size_t resident_ = 0;
};

}  // namespace kvcore::eviction
