/* SPDX-License-Identifier: Apache-2.0 */
// Least recently used: vLLM's and SmallMind's order. Evictable items form one list, oldest first; a
// touch or a release moves the item to the newest end.
#pragma once

#include <vector>

#include "common/eviction/policy.h"

namespace kvcore::eviction {

class Lru final : public Policy {
public:
    void insert(uint32_t slot, uint64_t key, bool held) override;
    void touch(uint32_t slot) override;
    void hold(uint32_t slot) override;
    void release(uint32_t slot) override;
    void erase(uint32_t slot) override;
    std::optional<uint32_t> evict() override;

    [[nodiscard]] size_t resident() const noexcept override { return resident_; }
    [[nodiscard]] size_t evictable() const noexcept override { return evictable_; }
    [[nodiscard]] bool contains(uint32_t slot) const noexcept override {
        return slot < nodes_.size() && nodes_[slot].state != State::kAbsent;
    }
    [[nodiscard]] Kind kind() const noexcept override { return Kind::kLru; }

private:
    enum class State : uint8_t { kAbsent, kEvictable, kHeld };
    struct Node {
        uint32_t prev = kNone, next = kNone;
        State state = State::kAbsent;
    };
    static constexpr uint32_t kNone = UINT32_MAX;

    Node& resident_node(uint32_t slot);
    void link_newest(uint32_t slot) noexcept;
    void unlink(uint32_t slot) noexcept;

    std::vector<Node> nodes_;
    uint32_t oldest_ = kNone, newest_ = kNone;
    size_t resident_ = 0, evictable_ = 0;
};

}  // namespace kvcore::eviction
