/* SPDX-License-Identifier: Apache-2.0 */
// KV events in vLLM's wire format (docs/WIRE_FORMATS.md): the pool records BlockStored, BlockRemoved and
// AllBlocksCleared as they happen; encode() writes them as one msgpack EventBatch, always the positional
// array [ts, [event...], data_parallel_rank] (msgspec array_like), each event a tagged array (vLLM until
// mid-2026) or a map with "type" (vLLM after PR #42892).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "pool/block_hash.h"

namespace kvcore::pool {

enum class EventEncoding : uint32_t { kArray = 0, kMap = 1 };

struct KvEvent {
    enum class Kind : uint8_t { kBlockStored, kBlockRemoved, kAllBlocksCleared };
    Kind kind;
    std::vector<uint64_t> block_hashes;
    std::optional<uint64_t> parent_block_hash;  // BlockStored: the block before the first one
    std::vector<int32_t> token_ids;             // BlockStored: all blocks' tokens, concatenated
    uint32_t block_size = 0;
    int64_t lora_id = 0;  // 0: none (vLLM's LoRA int ids start at 1)
    // BlockStored: where its first block starts in the sequence and the keys that can apply to its
    // blocks (keys_for_range), from which each block's extra_keys entry and lora_name are written.
    uint64_t first_token = 0;
    ExtraKeys keys;
};

class EventLog {
public:
    // sliding_window: the pool's attention window in tokens (0: full attention), published as
    // kv_cache_spec_kind / kv_cache_spec_sliding_window.
    EventLog(bool enabled, std::string medium, size_t max_pending, int64_t data_parallel_rank,
             uint32_t sliding_window = 0)
        : enabled_(enabled),
          medium_(std::move(medium)),
          max_pending_(max_pending),
          dp_rank_(data_parallel_rank),
          sliding_window_(sliding_window) {}

    [[nodiscard]] bool enabled() const noexcept { return enabled_; }
    // Drops the oldest event when max_pending are waiting (counted in dropped()): a consumer that stops
    // draining must not grow the engine's memory without bound.
    void push(KvEvent event);

    // Encodes the pending events as one EventBatch (empty events array when none), ts in seconds. ts is
    // always a float64, so the size depends on the events alone: a size query and the drain that
    // follows it agree.
    [[nodiscard]] std::vector<uint8_t> encode(EventEncoding encoding, double ts) const;
    void clear() noexcept { pending_.clear(); }
    [[nodiscard]] size_t pending() const noexcept { return pending_.size(); }
    [[nodiscard]] uint64_t dropped() const noexcept { return dropped_; }

private:
    bool enabled_;
    std::string medium_;
    size_t max_pending_;
    int64_t dp_rank_;
    uint32_t sliding_window_;
    std::deque<KvEvent> pending_;
    uint64_t dropped_ = 0;
};

}  // namespace kvcore::pool
