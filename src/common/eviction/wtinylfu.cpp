/* SPDX-License-Identifier: Apache-2.0 */
#include "common/eviction/wtinylfu.h"

#include <algorithm>
#include <bit>

namespace kvcore::eviction {

namespace {
constexpr size_t kUnboundedCapacity = 4096;  // capacity 0: sized as a mid-sized cache
constexpr uint64_t kSeeds[4] = {0xc3a5c85c97cb3127ull, 0xb492b66fbe98f273ull, 0x9ae16a3b2f90404full,
                                0xcbf29ce484222325ull};

uint64_t mix(uint64_t x) noexcept {  // splitmix64's finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
}  // namespace

FrequencySketch::FrequencySketch(size_t capacity)
    : table_(std::bit_ceil(std::max<size_t>(capacity, 16))),
      mask_(table_.size() - 1),
      sample_size_(10 * uint64_t{std::max<size_t>(capacity, 1)}) {}

void FrequencySketch::increment(uint64_t key) noexcept {
    bool added = false;
    for (const uint64_t seed : kSeeds) {
        const uint64_t h = mix(key ^ seed);
        uint64_t& word = table_[h & mask_];
        const unsigned shift = static_cast<unsigned>(h >> 60) * 4;
        if (((word >> shift) & 15) != 15) {
            word += uint64_t{1} << shift;
            added = true;
        }
    }
    if (added && ++additions_ == sample_size_) {
        // Halve every counter: recent frequency outweighs old.
        for (uint64_t& word : table_) word = (word >> 1) & 0x7777777777777777ull;
        additions_ /= 2;
    }
}

uint32_t FrequencySketch::estimate(uint64_t key) const noexcept {
    uint32_t least = 15;
    for (const uint64_t seed : kSeeds) {
        const uint64_t h = mix(key ^ seed);
        least = std::min(least, static_cast<uint32_t>((table_[h & mask_] >> (static_cast<unsigned>(h >> 60) * 4)) & 15));
    }
    return least;
}

WTinyLfu::WTinyLfu(size_t capacity)
    : window_target_(std::max<size_t>(1, (capacity == 0 ? kUnboundedCapacity : capacity) / 100)),
      main_capacity_((capacity == 0 ? kUnboundedCapacity : capacity) - window_target_),
      protected_target_(main_capacity_ * 8 / 10),
      sketch_(capacity == 0 ? kUnboundedCapacity : capacity) {}

void WTinyLfu::move(uint32_t slot, List to) {
    Node& n = nodes_[slot];
    if (n.state == SlotState::kEvictable) lists_[n.list].unlink(nodes_, slot);
    --in_[n.list];
    n.list = to;
    ++in_[to];
    if (n.state == SlotState::kEvictable) lists_[to].push_newest(nodes_, slot);
}

void WTinyLfu::insert(uint32_t slot, uint64_t key, bool held) {
    Node& n = new_node(nodes_, slot);
    n.key = key;
    n.list = kWindow;
    ++in_[kWindow];
    n.state = held ? SlotState::kHeld : SlotState::kEvictable;
    if (!held) lists_[kWindow].push_newest(nodes_, slot);
    sketch_.increment(key);
}

void WTinyLfu::touch(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    sketch_.increment(n.key);
    move(slot, n.list == kWindow ? kWindow : kProtected);
    // Protected over its share: its oldest evictable item goes back on probation.
    if (in_[kProtected] > protected_target_ && lists_[kProtected].size > 0) move(lists_[kProtected].oldest, kProbation);
}

void WTinyLfu::hold(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state != SlotState::kEvictable) bad_hold("hold of a held slot");
    lists_[n.list].unlink(nodes_, slot);
    n.state = SlotState::kHeld;
}

void WTinyLfu::release(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state != SlotState::kHeld) bad_hold("release of an unheld slot");
    n.state = SlotState::kEvictable;
    lists_[n.list].push_newest(nodes_, slot);
}

void WTinyLfu::erase(uint32_t slot) {
    Node& n = resident_node(nodes_, slot);
    if (n.state == SlotState::kEvictable) lists_[n.list].unlink(nodes_, slot);
    --in_[n.list];
    n.state = SlotState::kAbsent;
}

uint32_t WTinyLfu::take(List from) {
    const uint32_t slot = lists_[from].oldest;
    lists_[from].unlink(nodes_, slot);
    --in_[from];
    nodes_[slot].state = SlotState::kAbsent;
    return slot;
}

std::optional<uint32_t> WTinyLfu::evict() {
    // While main has room, the window's overflow moves into probation without a contest (each item once).
    while (lists_[kWindow].size > 0 && in_[kWindow] > window_target_ && in_[kProbation] + in_[kProtected] < main_capacity_) {
        move(lists_[kWindow].oldest, kProbation);
    }
    const List main_victim = lists_[kProbation].size > 0 ? kProbation : kProtected;
    const bool main_has = lists_[main_victim].size > 0;
    if (lists_[kWindow].size > 0 && (in_[kWindow] > window_target_ || !main_has)) {
        const uint32_t candidate = lists_[kWindow].oldest;
        if (!main_has) return take(kWindow);
        // TinyLFU's admission: the window's oldest enters main only if it is used more than main's victim.
        if (sketch_.estimate(nodes_[candidate].key) > sketch_.estimate(nodes_[lists_[main_victim].oldest].key)) {
            const uint32_t victim = take(main_victim);
            move(candidate, kProbation);
            return victim;
        }
        return take(kWindow);
    }
    if (main_has) return take(main_victim);
    return std::nullopt;
}

}  // namespace kvcore::eviction
