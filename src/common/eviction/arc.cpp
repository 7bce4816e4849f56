/* SPDX-License-Identifier: Apache-2.0 */
#include "common/eviction/arc.h"

#include <algorithm>

namespace kvcore::eviction {

namespace {
constexpr size_t kUnboundedHistory = 4096;  // capacity 0: the history of a mid-sized cache
}

Arc::Arc(size_t capacity)
    : capacity_(capacity == 0 ? kUnboundedHistory : capacity), b1_(capacity_), b2_(capacity_) {}

void Arc::insert(uint32_t slot, uint64_t key, bool held) {
    Node& n = new_node(nodes_, slot);
    const size_t g1 = b1_.size(), g2 = b2_.size();
    if (b1_.remove(key)) {
        p_ = std::min(capacity_, p_ + std::max<size_t>(1, g2 / std::max<size_t>(g1, 1)));
        n.in_t2 = true;
    } else if (b2_.remove(key)) {
        const size_t step = std::max<size_t>(1, g1 / std::max<size_t>(g2, 1));
        p_ = p_ > step ? p_ - step : 0;
        n.in_t2 = true;
    } else {
        n.in_t2 = false;
    }
    n.key = key;
    ++(n.in_t2 ? in_t2_ : in_t1_);
    n.state = held ? SlotState::kHeld : SlotState::kEvictable;
    if (!held) queue_of(n).push_newest(nodes_, slot);
}

void Arc::touch(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state == SlotState::kEvictable) queue_of(n).unlink(nodes_, slot);
    if (!n.in_t2) {
        --in_t1_;
        ++in_t2_;
        n.in_t2 = true;
    }
    if (n.state == SlotState::kEvictable) t2_.push_newest(nodes_, slot);
}

void Arc::hold(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state != SlotState::kEvictable) bad_hold("hold of a held slot");
    queue_of(n).unlink(nodes_, slot);
    n.state = SlotState::kHeld;
}

void Arc::release(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state != SlotState::kHeld) bad_hold("release of an unheld slot");
    n.state = SlotState::kEvictable;
    queue_of(n).push_newest(nodes_, slot);
}

void Arc::erase(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state == SlotState::kEvictable) queue_of(n).unlink(nodes_, slot);
    --(n.in_t2 ? in_t2_ : in_t1_);
    n.state = SlotState::kAbsent;
}

uint32_t Arc::take(Queue& q, Ghosts& ghosts) {
    const uint32_t slot = q.oldest;
    q.unlink(nodes_, slot);
    Node& n = nodes_[slot];
    ghosts.add(n.key);
    --(n.in_t2 ? in_t2_ : in_t1_);
    n.state = SlotState::kAbsent;
    return slot;
}

std::optional<uint32_t> Arc::evict() {
    if (t1_.size > 0 && (in_t1_ > p_ || t2_.size == 0)) return take(t1_, b1_);
    if (t2_.size > 0) return take(t2_, b2_);
    return std::nullopt;
}

}  // namespace kvcore::eviction
