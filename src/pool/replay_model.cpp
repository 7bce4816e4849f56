/* SPDX-License-Identifier: Apache-2.0 */
#include "pool/replay_model.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace kvcore::pool {

namespace {
// A use is (request, block position): 2^23 positions hold the longest prompt (4 Mi tokens of 1-token blocks).
constexpr unsigned kPositionBits = 23;
constexpr uint64_t kNever = UINT64_MAX;
uint64_t use_of(size_t request, uint32_t position) { return uint64_t{request} << kPositionBits | position; }
}  // namespace

ReplayTrace::ReplayTrace(uint32_t block_size, HashAlgo algo, const std::string& seed)
    : hasher_(algo, seed), block_size_(block_size) {}

void ReplayTrace::add(std::span<const int32_t> prompt) {
    const auto full = static_cast<uint32_t>(prompt.size() / block_size_);
    scratch_.clear();
    hasher_.extend_chain(scratch_, prompt, block_size_, ExtraKeys{}, full);
    const Request r{prompt.size(), keys_.size(), full,
                    static_cast<uint32_t>(std::min<size_t>((prompt.size() - 1) / block_size_, full))};
    for (const BlockHash& h : scratch_) {
        uint64_t key;
        std::memcpy(&key, h.bytes.data(), sizeof key);
        keys_.push_back(key);
    }
    requests_.push_back(r);
}

ReplayTrace::Result ReplayTrace::replay(uint32_t num_blocks, Order order) const {
    // Next use of each recorded block: the next request that may hit its key (a block past the hittable
    // part is cached but cannot be hit by its own request).
    std::vector<uint64_t> next_use(order == Order::kFarthestNextUse ? keys_.size() : 0, kNever);
    if (order == Order::kFarthestNextUse) {
        std::unordered_map<uint64_t, uint64_t> later;  // key -> its first use after the request being swept
        later.reserve(keys_.size());
        for (size_t r = requests_.size(); r-- > 0;) {
            const Request& q = requests_[r];
            for (uint32_t i = 0; i < q.full; ++i) {
                const auto it = later.find(keys_[q.first + i]);
                next_use[q.first + i] = it == later.end() ? kNever : it->second;
            }
            for (uint32_t i = 0; i < q.hittable; ++i) later[keys_[q.first + i]] = use_of(r, i);
        }
    }
    const uint64_t usable = num_blocks - 1;
    // Cached blocks by eviction rank, the victim last; rank_of finds an entry to move it.
    std::set<std::pair<uint64_t, uint64_t>> ranked;
    std::unordered_map<uint64_t, uint64_t> rank_of;
    rank_of.reserve(usable * 2);
    std::unordered_set<uint64_t> held;
    Result out;
    for (size_t r = 0; r < requests_.size(); ++r) {
        const Request& q = requests_[r];
        ++out.requests;
        const uint64_t blocks = (q.tokens + block_size_ - 1) / block_size_;
        if (blocks > usable) {
            ++out.too_long;
            continue;
        }
        const uint64_t* keys = keys_.data() + q.first;
        uint32_t hits = 0;
        while (hits < q.hittable && rank_of.count(keys[hits]) != 0) ++hits;
        out.blocks_hit += hits;
        out.blocks_queried += q.full;
        out.tokens_hit += uint64_t{hits} * block_size_;
        out.tokens_queried += q.tokens;
        // A block's rank: its next use under Belady (farthest evicted first); under LRU the release order,
        // tail first, so a request's head is its most recent block (oldest evicted first).
        auto rank = [&](uint32_t i) {
            return order == Order::kFarthestNextUse ? next_use[q.first + i] : kNever - use_of(r, q.full - i);
        };
        auto place = [&](uint32_t i) {
            const uint64_t key = keys[i];
            if (const auto it = rank_of.find(key); it != rank_of.end()) ranked.erase({it->second, key});
            ranked.insert({rank_of[key] = rank(i), key});
        };
        held.clear();
        for (uint32_t i = 0; i < hits; ++i) held.insert(keys[i]);
        const uint64_t uncached_free = usable - rank_of.size();
        for (uint64_t need = blocks - hits; need > uncached_free; --need) {
            auto it = ranked.end();
            do --it;
            while (held.count(it->second) != 0);
            rank_of.erase(it->second);
            ranked.erase(it);
            ++out.evictions;
        }
        for (uint32_t i = 0; i < hits; ++i) place(i);
        for (uint32_t i = hits; i < q.full; ++i) {
            if (rank_of.count(keys[i]) == 0) place(i);  // content another block holds is not cached twice
        }
    }
    return out;
}

}  // namespace kvcore::pool
