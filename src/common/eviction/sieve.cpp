/* SPDX-License-Identifier: Apache-2.0 */
#include "common/eviction/sieve.h"

namespace kvcore::eviction {

void Sieve::insert(uint32_t slot, uint64_t /*key*/, bool held) {
    Node& n = new_node(nodes_, slot);
    n.visited = false;
    n.state = held ? SlotState::kHeld : SlotState::kEvictable;
    ++resident_;
    if (!held) queue_.push_newest(nodes_, slot);
}

void Sieve::touch(uint32_t slot) { resident_node(nodes_, slot).visited = true; }

void Sieve::unlink(uint32_t slot) noexcept {
    if (hand_ == slot) hand_ = nodes_[slot].next;
    queue_.unlink(nodes_, slot);
}

void Sieve::hold(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state != SlotState::kEvictable) bad_hold("hold of a held slot");
    unlink(slot);
    n.state = SlotState::kHeld;
}

void Sieve::release(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state != SlotState::kHeld) bad_hold("release of an unheld slot");
    n.state = SlotState::kEvictable;
    queue_.push_newest(nodes_, slot);
}

void Sieve::erase(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state == SlotState::kEvictable) unlink(slot);
    n.state = SlotState::kAbsent;
    --resident_;
}

std::optional<uint32_t> Sieve::evict() {
    if (queue_.size == 0) return std::nullopt;
    // Bounded: each step clears a bit that a touch set, and a full lap leaves none set.
    uint32_t slot = hand_ != kNoSlot ? hand_ : queue_.oldest;
    while (nodes_[slot].visited) {
        nodes_[slot].visited = false;
        slot = nodes_[slot].next != kNoSlot ? nodes_[slot].next : queue_.oldest;
    }
    hand_ = nodes_[slot].next;  // the next newer item; kNoSlot past the newest starts again at the oldest
    queue_.unlink(nodes_, slot);
    nodes_[slot].state = SlotState::kAbsent;
    --resident_;
    return slot;
}

}  // namespace kvcore::eviction
