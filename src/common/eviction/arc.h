/* SPDX-License-Identifier: Apache-2.0 */
// ARC (Megiddo and Modha, FAST 2003): items seen once (T1) and items seen again (T2) in two LRU lists,
// with ghost histories B1 and B2 of what each evicted. The target size p of T1 adapts: a ghost hit in B1
// (T1 was too short) raises it, one in B2 lowers it; eviction takes T1's oldest while T1 exceeds p.
// A key found in a ghost history enters T2. A held item leaves its list and rejoins it at the newest end.
#pragma once

#include <vector>

#include "common/eviction/ghosts.h"
#include "common/eviction/policy.h"
#include "common/eviction/queue.h"

namespace kvcore::eviction {

class Arc final : public Policy {
public:
    explicit Arc(size_t capacity);
    void insert(uint32_t slot, uint64_t key, bool held) override;
    void touch(uint32_t slot) override;
    void hold(uint32_t slot) override;
    void release(uint32_t slot) override;
    void erase(uint32_t slot) override;
    std::optional<uint32_t> evict() override;

    [[nodiscard]] size_t resident() const noexcept override { return in_t1_ + in_t2_; }
    [[nodiscard]] size_t evictable() const noexcept override { return t1_.size + t2_.size; }
    [[nodiscard]] bool contains(uint32_t slot) const noexcept override {
        return slot < nodes_.size() && nodes_[slot].state != SlotState::kAbsent;
    }
    [[nodiscard]] Kind kind() const noexcept override { return Kind::kArc; }
    [[nodiscard]] size_t target_t1() const noexcept { return p_; }  // for tests

private:
    struct Node : NodeLinks {
        uint64_t key = 0;
        bool in_t2 = false;
    };
    Queue& queue_of(const Node& n) noexcept { return n.in_t2 ? t2_ : t1_; }
    uint32_t take(Queue& q, Ghosts& ghosts);

    std::vector<Node> nodes_;
    Queue t1_, t2_;
    size_t in_t1_ = 0, in_t2_ = 0;  // resident, held ones included
    size_t capacity_;
    size_t p_ = 0;
    Ghosts b1_, b2_;
};

}  // namespace kvcore::eviction
