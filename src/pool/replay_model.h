/* SPDX-License-Identifier: Apache-2.0 */
// An offline model of `kvcore simulate`'s replay, for the ceiling it prints: Belady's optimum, which
// evicts the free cached block whose next use is farthest. Offline means two passes: the trace's block
// keys are recorded first (16 bytes per full block), so the next use of every block is known.
//
// It follows the pool's replay exactly: each request takes its longest cached prefix of full blocks (at
// most prompt length - 1 tokens), holds those blocks, takes the rest of its blocks (blocks without a
// cached hash first, then victims among the other cached blocks), caches its full blocks whose content
// no block holds yet, and finishes at once. A request needing more blocks than the pool has is counted,
// not admitted. With least-recent-use order instead of next use it gives the pool's LRU figures exactly
// (tested), which is what makes the ceiling comparable.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "pool/block_hash.h"

namespace kvcore::pool {

class ReplayTrace {
public:
    ReplayTrace(uint32_t block_size, HashAlgo algo, const std::string& seed);
    // Pass 1: one request's prompt (its full blocks are hashed as the pool hashes them).
    void add(std::span<const int32_t> prompt);
    [[nodiscard]] size_t requests() const noexcept { return requests_.size(); }

    enum class Order { kFarthestNextUse, kLeastRecentUse };
    struct Result {
        uint64_t requests = 0, too_long = 0;
        uint64_t blocks_hit = 0, blocks_queried = 0;  // full blocks, as the pool's block hit rate counts
        uint64_t tokens_hit = 0, tokens_queried = 0;
        uint64_t evictions = 0;
    };
    // Pass 2: the replay through num_blocks blocks (the null block included, as in PoolConfig).
    [[nodiscard]] Result replay(uint32_t num_blocks, Order order) const;

private:
    struct Request {
        uint64_t tokens;
        size_t first;       // its full blocks' keys start at keys_[first]
        uint32_t full;      // full blocks
        uint32_t hittable;  // full blocks a lookup may hit: at most prompt length - 1 tokens
    };
    BlockHasher hasher_;
    uint32_t block_size_;
    std::vector<Request> requests_;
    std::vector<uint64_t> keys_;  // of every request's full blocks, in order
    std::vector<BlockHash> scratch_;
};

}  // namespace kvcore::pool
