/* SPDX-License-Identifier: Apache-2.0 */
// S3-FIFO (Yang et al., SOSP 2023): new items enter a small FIFO; one that was hit there moves to the
// main FIFO when it reaches the end, one that was not is evicted and its key joins a ghost history; a
// key found in a ghost history re-enters straight into main. Main is a FIFO with a 2-bit hit counter
// that gives hit items another round. Most items are used once: they leave after a short stay in small.
//
// The small queue's share adapts as ARC's target does (Megiddo and Modha, FAST 2003): a hit in the
// ghosts of small's evictions says small is too short and grows it, a hit in the ghosts of main's
// evictions shrinks it. It starts at the paper's 10 %.
//
// A held item leaves its queue and rejoins the newest end of it when released.
#pragma once

#include <vector>

#include "common/eviction/ghosts.h"
#include "common/eviction/policy.h"
#include "common/eviction/queue.h"

namespace kvcore::eviction {

class S3Fifo final : public Policy {
public:
    explicit S3Fifo(size_t capacity);
    void insert(uint32_t slot, uint64_t key, bool held) override;
    void touch(uint32_t slot) override;
    void hold(uint32_t slot) override;
    void release(uint32_t slot) override;
    void erase(uint32_t slot) override;
    std::optional<uint32_t> evict() override;

    [[nodiscard]] size_t resident() const noexcept override { return in_small_ + in_main_; }
    [[nodiscard]] size_t evictable() const noexcept override { return small_.size + main_.size; }
    [[nodiscard]] bool contains(uint32_t slot) const noexcept override {
        return slot < nodes_.size() && nodes_[slot].state != SlotState::kAbsent;
    }
    [[nodiscard]] Kind kind() const noexcept override { return Kind::kS3Fifo; }
    // For tests: the small queue's current target, in items.
    [[nodiscard]] size_t small_target() const noexcept { return small_target_; }

private:
    struct Node : NodeLinks {
        uint64_t key = 0;
        bool in_main = false;
        uint8_t hits = 0;  // saturates at 3
    };
    Queue& queue_of(const Node& n) noexcept { return n.in_main ? main_ : small_; }
    void forget(uint32_t slot, Ghosts& ghosts);

    std::vector<Node> nodes_;
    Queue small_, main_;
    size_t in_small_ = 0, in_main_ = 0;  // resident, held ones included
    size_t capacity_;
    size_t small_target_;
    Ghosts small_ghosts_, main_ghosts_;
};

}  // namespace kvcore::eviction
