/* SPDX-License-Identifier: Apache-2.0 */
#include "common/eviction/lru.h"

#include "common/error.h"

namespace kvcore::eviction {

Lru::Node& Lru::resident_node(uint32_t slot) {
    if (slot >= nodes_.size() || nodes_[slot].state == State::kAbsent) {
        throw Error(KVC_ERR_INTERNAL, "eviction: slot " + std::to_string(slot) + " is not resident");
    }
    return nodes_[slot];
}

void Lru::link_newest(uint32_t slot) noexcept {
    Node& node = nodes_[slot];
    node.prev = newest_;
    node.next = kNone;
    (newest_ == kNone ? oldest_ : nodes_[newest_].next) = slot;
    newest_ = slot;
}

void Lru::unlink(uint32_t slot) noexcept {
    Node& node = nodes_[slot];
    (node.prev == kNone ? oldest_ : nodes_[node.prev].next) = node.next;
    (node.next == kNone ? newest_ : nodes_[node.next].prev) = node.prev;
    node.prev = node.next = kNone;
}

void Lru::insert(uint32_t slot, uint64_t /*key*/, bool held) {
    if (slot >= nodes_.size()) nodes_.resize(size_t{slot} + 1);
    Node& node = nodes_[slot];
    if (node.state != State::kAbsent) {
        throw Error(KVC_ERR_INTERNAL, "eviction: slot " + std::to_string(slot) + " inserted twice");
    }
    ++resident_;
    if (held) {
        node.state = State::kHeld;
        return;
    }
    node.state = State::kEvictable;
    ++evictable_;
    link_newest(slot);
}

void Lru::touch(uint32_t slot) {
    if (resident_node(slot).state != State::kEvictable) return;  // a held item is placed at release
    unlink(slot);
    link_newest(slot);
}

void Lru::hold(uint32_t slot) {
    Node& node = resident_node(slot);
    if (node.state != State::kEvictable) throw Error(KVC_ERR_INTERNAL, "eviction: hold of a held slot");
    unlink(slot);
    node.state = State::kHeld;
    --evictable_;
}

void Lru::release(uint32_t slot) {
    Node& node = resident_node(slot);
    if (node.state != State::kHeld) throw Error(KVC_ERR_INTERNAL, "eviction: release of an unheld slot");
    node.state = State::kEvictable;
    ++evictable_;
    link_newest(slot);
}

void Lru::erase(uint32_t slot) {
    Node& node = resident_node(slot);
    if (node.state == State::kEvictable) {
        unlink(slot);
        --evictable_;
    }
    node.state = State::kAbsent;
    --resident_;
}

std::optional<uint32_t> Lru::evict() {
    if (oldest_ == kNone) return std::nullopt;
    const uint32_t victim = oldest_;
    unlink(victim);
    nodes_[victim].state = State::kAbsent;
    --evictable_;
    --resident_;
    return victim;
}

}  // namespace kvcore::eviction
