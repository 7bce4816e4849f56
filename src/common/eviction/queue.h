/* SPDX-License-Identifier: Apache-2.0 */
// Building blocks the policies share: per-slot nodes with their resident state, intrusive queues over
// them (oldest to newest, O(1) push and unlink, no allocation), and the checks every policy makes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace kvcore::eviction {

inline constexpr uint32_t kNoSlot = UINT32_MAX;

enum class SlotState : uint8_t { kAbsent, kEvictable, kHeld };

// What every policy keeps per slot; a policy's node type adds its own fields.
struct NodeLinks {
    uint32_t prev = kNoSlot, next = kNoSlot;  // prev: older, next: newer
    SlotState state = SlotState::kAbsent;
};

// One queue over nodes that live in a policy's vector; a node is linked in at most one queue.
struct Queue {
    uint32_t oldest = kNoSlot, newest = kNoSlot;
    size_t size = 0;  // linked nodes

    template <class Node>
    void push_newest(std::vector<Node>& nodes, uint32_t slot) noexcept {
        Node& n = nodes[slot];
        n.prev = newest;
        n.next = kNoSlot;
        (newest == kNoSlot ? oldest : nodes[newest].next) = slot;
        newest = slot;
        ++size;
    }
    template <class Node>
    void unlink(std::vector<Node>& nodes, uint32_t slot) noexcept {
        Node& n = nodes[slot];
        (n.prev == kNoSlot ? oldest : nodes[n.prev].next) = n.next;
        (n.next == kNoSlot ? newest : nodes[n.next].prev) = n.prev;
        n.prev = n.next = kNoSlot;
        --size;
    }
};

// The node of a resident slot; throws kvcore::Error(INTERNAL) for a slot that is not resident.
template <class Node>
Node& resident_node(std::vector<Node>& nodes, uint32_t slot) {
    if (slot >= nodes.size() || nodes[slot].state == SlotState::kAbsent) [[unlikely]] {
        throw Error(KVC_ERR_INTERNAL, "eviction: slot " + std::to_string(slot) + " is not resident");
    }
    return nodes[slot];
}

// A node for a new resident slot (growing the vector); throws for a slot resident already.
template <class Node>
Node& new_node(std::vector<Node>& nodes, uint32_t slot) {
    if (slot == kNoSlot) [[unlikely]] throw Error(KVC_ERR_INTERNAL, "eviction: slot out of range");
    if (slot >= nodes.size()) nodes.resize(size_t{slot} + 1);
    if (nodes[slot].state != SlotState::kAbsent) [[unlikely]] {
        throw Error(KVC_ERR_INTERNAL, "eviction: slot " + std::to_string(slot) + " inserted twice");
    }
    return nodes[slot];
}

[[noreturn]] inline void bad_hold(const char* what) { throw Error(KVC_ERR_INTERNAL, std::string("eviction: ") + what); }

}  // namespace kvcore::eviction
