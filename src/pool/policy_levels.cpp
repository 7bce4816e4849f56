/* SPDX-License-Identifier: Apache-2.0 */
#include "pool/policy_levels.h"

namespace kvcore::pool {

PolicyLevels::PolicyLevels(eviction::Kind kind, uint32_t levels, uint32_t capacity)
    : kind_(kind), capacity_(capacity), levels_(levels) {}

eviction::Policy& PolicyLevels::level(uint32_t level) {
    auto& policy = levels_[level];
    if (!policy) policy = eviction::make_policy(kind_, capacity_);
    return *policy;
}

void PolicyLevels::free_block(int32_t block, uint32_t from, uint32_t to, uint64_t key) {
    const auto slot = static_cast<uint32_t>(block);
    if (contains(block, from)) {
        if (from == to) {
            levels_[from]->release(slot);
            return;
        }
        levels_[from]->erase(slot);  // another retention level: its history starts again there
    }
    level(to).insert(slot, key, false);
}

void PolicyLevels::touch(int32_t block, uint32_t level) {
    if (contains(block, level)) levels_[level]->touch(static_cast<uint32_t>(block));
}

void PolicyLevels::hold(int32_t block, uint32_t level) { levels_[level]->hold(static_cast<uint32_t>(block)); }

std::optional<int32_t> PolicyLevels::evict(uint32_t level) {
    if (!levels_[level]) return std::nullopt;
    const std::optional<uint32_t> slot = levels_[level]->evict();
    if (!slot) return std::nullopt;
    return static_cast<int32_t>(*slot);
}

size_t PolicyLevels::evictable(uint32_t level) const noexcept { return levels_[level] ? levels_[level]->evictable() : 0; }

bool PolicyLevels::contains(int32_t block, uint32_t level) const noexcept {
    return levels_[level] && levels_[level]->contains(static_cast<uint32_t>(block));
}

void PolicyLevels::clear(std::vector<int32_t>& evicted) {
    for (auto& policy : levels_) {
        if (!policy) continue;
        while (const std::optional<uint32_t> slot = policy->evict()) evicted.push_back(static_cast<int32_t>(*slot));
        policy.reset();
    }
}

}  // namespace kvcore::pool
