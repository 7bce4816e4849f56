/* SPDX-License-Identifier: Apache-2.0 */
#include "common/eviction/s3fifo.h"

#include <algorithm>

namespace kvcore::eviction {

namespace {
// capacity 0 (unbounded): the history of a mid-sized cache.
constexpr size_t kUnboundedHistory = 4096;
}  // namespace

S3Fifo::S3Fifo(size_t capacity)
    : capacity_(capacity == 0 ? kUnboundedHistory : capacity),
      small_target_(std::max<size_t>(1, capacity_ / 10)),
      small_ghosts_(capacity_),
      main_ghosts_(capacity_) {}

void S3Fifo::insert(uint32_t slot, uint64_t key, bool held) {
    Node& n = new_node(nodes_, slot);
    // ARC's step sizes: the rarer ghost list's hit moves the target further.
    const size_t sg = small_ghosts_.size(), mg = main_ghosts_.size();
    // The target stays within 1 .. capacity - 1, so neither queue is ever starved for good.
    if (small_ghosts_.remove(key)) {
        small_target_ = std::min(std::max<size_t>(capacity_, 2) - 1,
                                 small_target_ + std::max<size_t>(1, mg / std::max<size_t>(sg, 1)));
        n.in_main = true;
    } else if (main_ghosts_.remove(key)) {
        const size_t step = std::max<size_t>(1, sg / std::max<size_t>(mg, 1));
        small_target_ = small_target_ > step ? small_target_ - step : 1;
        n.in_main = true;
    } else {
        n.in_main = false;
    }
    n.key = key;
    n.hits = 0;
    ++(n.in_main ? in_main_ : in_small_);
    n.state = held ? SlotState::kHeld : SlotState::kEvictable;
    if (!held) queue_of(n).push_newest(nodes_, slot);
}

void S3Fifo::touch(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.hits < 3) ++n.hits;
}

void S3Fifo::hold(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state != SlotState::kEvictable) bad_hold("hold of a held slot");
    queue_of(n).unlink(nodes_, slot);
    n.state = SlotState::kHeld;
}

void S3Fifo::release(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state != SlotState::kHeld) bad_hold("release of an unheld slot");
    n.state = SlotState::kEvictable;
    queue_of(n).push_newest(nodes_, slot);
}

void S3Fifo::erase(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state == SlotState::kEvictable) queue_of(n).unlink(nodes_, slot);
    --(n.in_main ? in_main_ : in_small_);
    n.state = SlotState::kAbsent;
}

void S3Fifo::forget(uint32_t slot, Ghosts& ghosts) {
    Node& n = nodes_[slot];
    ghosts.add(n.key);
    --(n.in_main ? in_main_ : in_small_);
    n.state = SlotState::kAbsent;
}

std::optional<uint32_t> S3Fifo::evict() {
    // Bounded: every round either evicts, moves an item from small to main (once per stay), or spends
    // one of an item's at most 3 hits.
    for (;;) {
        if (small_.size > 0 && (in_small_ >= small_target_ || main_.size == 0)) {
            const uint32_t slot = small_.oldest;
            small_.unlink(nodes_, slot);
            Node& n = nodes_[slot];
            if (n.hits > 0) {  // used again while on probation: keep it
                n.in_main = true;
                n.hits = 0;
                --in_small_;
                ++in_main_;
                main_.push_newest(nodes_, slot);
                continue;
            }
            forget(slot, small_ghosts_);
            return slot;
        }
        if (main_.size == 0) return std::nullopt;
        const uint32_t slot = main_.oldest;
        main_.unlink(nodes_, slot);
        Node& n = nodes_[slot];
        if (n.hits > 0) {
            --n.hits;
            main_.push_newest(nodes_, slot);
            continue;
        }
        forget(slot, main_ghosts_);
        return slot;
    }
}

}  // namespace kvcore::eviction
