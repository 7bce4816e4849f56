/* SPDX-License-Identifier: Apache-2.0 */
// Decoder of the KV event batches that vLLM engines publish (docs/WIRE_FORMATS.md), for the cluster
// index: one msgpack payload in, one whole EventBatch out, or kvcore::Error(KVC_ERR_INVALID_ARGUMENT)
// naming the event and field, so nothing of a malformed batch is ever applied.
//
// Accepted, because each is in use: the batch as vLLM's positional array [ts, events, dp_rank] or a map
// with those names (forks); each event as a tagged array [type, fields...] (vLLM until mid-2026) or a map
// with "type" (vLLM after PR #42892); hashes as uint64, int64 (its two's-complement bits) or bytes (the
// last 8 bytes, big-endian, as vLLM's maybe_convert_block_hash); missing optional and trailing fields;
// unknown map fields and extra array elements (skipped); nil where vLLM writes None; BlockStored with
// empty token_ids (CPU offload); ts as float64 or float32, and as an integer too although vLLM never
// writes one (a fork that does should not lose its events).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace kvcore::index {

// Where a block lives. vLLM writes "GPU", "CPU", "FS", "OBJ" (any case) or nil (GPU). kOther keeps the
// events of a medium this decoder does not know yet (a connector's new tier) instead of rejecting the
// engine's every batch; the index decides what such a tier weighs.
enum class Medium : uint8_t { kGpu, kCpu, kFs, kObj, kOther };

// The event's locality ("LOCAL" / "REMOTE", any case); kUnspecified when absent or nil.
enum class Locality : uint8_t { kUnspecified, kLocal, kRemote, kOther };

// The KV cache group's kind (kv_cache_spec_kind); kUnspecified when absent or nil.
enum class CacheSpecKind : uint8_t { kUnspecified, kFullAttention, kSlidingWindow, kOther };

// One element of a block's extra_keys tuple, as vLLM hashed it: a text (LoRA name, cache salt), bytes
// (a prompt-embeds hash) or a multimodal pair (identifier, item offset - block start; negative when the
// item began in an earlier block).
struct ExtraKey {
    enum class Kind : uint8_t { kText, kBytes, kMultimodal };
    Kind kind = Kind::kText;
    std::string text;    // the text, the bytes, or the multimodal identifier
    int64_t offset = 0;  // kMultimodal only
    friend bool operator==(const ExtraKey&, const ExtraKey&) = default;
};

struct BlockStored {
    std::vector<uint64_t> block_hashes;           // never empty
    std::optional<uint64_t> parent_block_hash;    // nullopt: the chain's first block
    std::vector<int32_t> token_ids;               // every block's tokens concatenated; empty from CPU offload
    uint32_t block_size = 0;                      // > 0
    std::optional<int64_t> lora_id;               // deprecated by vLLM for lora_name, still written
    std::string lora_name;                        // empty: none
    Medium medium = Medium::kGpu;
    // One entry per block (nullopt: nil, the block's hash used no extra key), or empty when the event
    // carried none.
    std::vector<std::optional<std::vector<ExtraKey>>> extra_keys;
    uint32_t group_idx = 0;  // absent: 0, the only group of a model with one KV cache group
    CacheSpecKind spec_kind = CacheSpecKind::kUnspecified;
    std::optional<uint32_t> sliding_window;  // kv_cache_spec_sliding_window, in tokens
    Locality locality = Locality::kUnspecified;
    friend bool operator==(const BlockStored&, const BlockStored&) = default;
};

struct BlockRemoved {
    std::vector<uint64_t> block_hashes;  // never empty
    Medium medium = Medium::kGpu;
    uint32_t group_idx = 0;
    Locality locality = Locality::kUnspecified;
    friend bool operator==(const BlockRemoved&, const BlockRemoved&) = default;
};

struct AllBlocksCleared {
    friend bool operator==(const AllBlocksCleared&, const AllBlocksCleared&) = default;
};

using Event = std::variant<BlockStored, BlockRemoved, AllBlocksCleared>;

struct EventBatch {
    double ts = 0;                              // seconds since the epoch
    std::optional<int64_t> data_parallel_rank;  // nullopt: absent or nil
    std::vector<Event> events;
    // Events of a type this decoder does not know (a newer vLLM's), skipped and counted so that a
    // router can report them rather than reject the engine's every batch.
    uint32_t unknown_events = 0;
    friend bool operator==(const EventBatch&, const EventBatch&) = default;
};

// Decodes one payload. Throws kvcore::Error(KVC_ERR_INVALID_ARGUMENT) on malformed input: truncated or
// trailing bytes, wrong types, missing required fields (block_hashes; BlockStored's token_ids and
// block_size), an empty block_hashes, block_size 0, token_ids whose length is neither 0 nor
// block_hashes.size() x block_size (vLLM publishes full blocks only: it hashes a block once it is full,
// so a partial last block never appears), extra_keys with an entry count other than the block count,
// out-of-range integers. Never throws anything else but std::bad_alloc.
[[nodiscard]] EventBatch decode_event_batch(std::span<const uint8_t> payload);

[[nodiscard]] const char* medium_name(Medium medium) noexcept;  // "GPU", "CPU", "FS", "OBJ", "OTHER"

}  // namespace kvcore::index
