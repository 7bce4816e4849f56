/* SPDX-License-Identifier: Apache-2.0 */
// The pool's free cached blocks under an eviction policy other than LRU: one policy per retention
// level, made when a level is first used, so priorities still come first (the pool evicts from its
// lowest non-empty level) and the policy picks within a level. Under LRU the pool's own free lists are
// the order (its fast path) and this unit is not used.
//
// A cached block is resident in the policy of the level it was last freed into (Pool::Block::level)
// from that first free until it is evicted: held while in use, evictable while free, so the policy
// sees its whole history of hits. Blocks freed tail first enter tail first, so among blocks with the
// same history a chain's tail goes before its head.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/eviction/policy.h"

namespace kvcore::pool {

class PolicyLevels {
public:
    PolicyLevels(eviction::Kind kind, uint32_t levels, uint32_t capacity);

    // A cached block is freed into `level`; `from` is the level it was last freed into (it may be
    // resident there, held: then it is released there, or moves when the level differs).
    void free_block(int32_t block, uint32_t from, uint32_t level, uint64_t key);
    // A hit on a cached block, free or in use (one that was never freed has no history yet).
    void touch(int32_t block, uint32_t level);
    // A free cached block is taken (a hit or a move between levels): held until it is freed again.
    void hold(int32_t block, uint32_t level);
    // The next victim of a level, nullopt when it has no evictable block.
    [[nodiscard]] std::optional<int32_t> evict(uint32_t level);
    [[nodiscard]] size_t evictable(uint32_t level) const noexcept;
    [[nodiscard]] bool contains(int32_t block, uint32_t level) const noexcept;
    // Forgets every block and all history (the prefix cache was reset); `evicted` receives the blocks
    // that were evictable.
    void clear(std::vector<int32_t>& evicted);

private:
    eviction::Policy& level(uint32_t level);

    eviction::Kind kind_;
    uint32_t capacity_;
    std::vector<std::unique_ptr<eviction::Policy>> levels_;
};

}  // namespace kvcore::pool
