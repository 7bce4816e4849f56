// SPDX-License-Identifier: Apache-2.0
#include "pool/events.h"

#include <cstring>
#include <msgpack.hpp>

namespace kvcore::pool {

void EventLog::push(KvEvent event) {
    if (!enabled_) return;
    if (pending_.size() >= max_pending_) {
        pending_.pop_front();
        ++dropped_;
    }
    pending_.push_back(std::move(event));
}

namespace {

const char* type_name(KvEvent::Kind kind) {
    switch (kind) {
        case KvEvent::Kind::kBlockStored: return "BlockStored";
        case KvEvent::Kind::kBlockRemoved: return "BlockRemoved";
        case KvEvent::Kind::kAllBlocksCleared: return "AllBlocksCleared";
    }
    return "";
}

using Packer = msgpack::packer<msgpack::sbuffer>;

// kvcore's pool is one KV cache group.
constexpr uint32_t kGroupIdx = 0;

void pack_string_or_nil(Packer& p, const std::string& s) {
    if (s.empty()) {
        p.pack_nil();
    } else {
        p.pack(s);
    }
}

// msgpack-c's pack_double writes an integral double as an integer (1700000000.0 as a uint32): vLLM's
// ts is a float64, and the batch's size must not depend on the clock. So the 9 bytes by hand.
void pack_float64(msgpack::sbuffer& buffer, double v) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    char bytes[9];
    bytes[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) bytes[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
    buffer.write(bytes, sizeof bytes);
}

// One block's entry of extra_keys: nil, or the tuple of keys its hash used (a multimodal key as the
// pair [identifier, offset]), as vLLM's generate_block_hash_extra_keys returns it; written by the same
// write_extra_keys as the hash input.
void pack_block_keys(Packer& p, const ExtraKeys& keys, uint64_t begin, uint64_t end) {
    struct MsgpackOut {
        Packer& p;
        void null() { p.pack_nil(); }
        void array(size_t n) { p.pack_array(static_cast<uint32_t>(n)); }
        void text(const std::string& s) { p.pack(s); }
        void integer(int64_t v) { p.pack(v); }
    } out{p};
    write_extra_keys(out, keys, begin, end);
}

// Fields in vLLM's order (msgspec, omit_defaults: required fields always, optional ones when set):
// BlockStored(block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium, lora_name,
// extra_keys, group_idx, kv_cache_spec_kind, kv_cache_spec_sliding_window, locality); BlockRemoved(
// block_hashes, medium, group_idx, locality); AllBlocksCleared(). Array events carry every field after
// the tag, nil when unset: msgspec's array_like ignores omit_defaults (it writes nfields + tag).
void pack_event(Packer& p, const KvEvent& e, EventEncoding encoding, const std::string& medium,
                uint32_t sliding_window) {
    const bool as_map = encoding == EventEncoding::kMap;
    auto key = [&](const char* name) {
        if (as_map) p.pack(name);
    };
    // Unset optional fields (locality, a window under full attention): left out of a map, nil in an array.
    switch (e.kind) {
        case KvEvent::Kind::kBlockStored:
            as_map ? p.pack_map(sliding_window != 0 ? 12 : 11) : p.pack_array(13);
            break;
        case KvEvent::Kind::kBlockRemoved: as_map ? p.pack_map(4) : p.pack_array(5); break;
        case KvEvent::Kind::kAllBlocksCleared: as_map ? p.pack_map(1) : p.pack_array(1); break;
    }
    key("type");
    p.pack(type_name(e.kind));
    if (e.kind == KvEvent::Kind::kAllBlocksCleared) return;
    key("block_hashes");
    p.pack(e.block_hashes);
    if (e.kind == KvEvent::Kind::kBlockRemoved) {
        key("medium");
        p.pack(medium);
        key("group_idx");
        p.pack(kGroupIdx);
        if (!as_map) p.pack_nil();  // locality
        return;
    }
    key("parent_block_hash");
    if (e.parent_block_hash) {
        p.pack(*e.parent_block_hash);
    } else {
        p.pack_nil();
    }
    key("token_ids");
    p.pack(e.token_ids);
    key("block_size");
    p.pack(e.block_size);
    key("lora_id");  // vLLM's integer adapter id (deprecated there for lora_name, still written)
    if (e.lora_id > 0) {
        p.pack(e.lora_id);
    } else {
        p.pack_nil();
    }
    key("medium");
    p.pack(medium);
    key("lora_name");
    pack_string_or_nil(p, e.keys.lora_name);
    key("extra_keys");  // one entry per block, so a router can recompute each hash
    p.pack_array(static_cast<uint32_t>(e.block_hashes.size()));
    for (size_t i = 0; i < e.block_hashes.size(); ++i) {
        const uint64_t begin = e.first_token + i * e.block_size;
        pack_block_keys(p, e.keys, begin, begin + e.block_size);
    }
    key("group_idx");
    p.pack(kGroupIdx);
    key("kv_cache_spec_kind");
    p.pack(sliding_window != 0 ? "sliding_window" : "full_attention");
    if (sliding_window != 0) {
        key("kv_cache_spec_sliding_window");
        p.pack(sliding_window);
    } else if (!as_map) {
        p.pack_nil();
    }
    if (!as_map) p.pack_nil();  // locality
}

}  // namespace

std::vector<uint8_t> EventLog::encode(EventEncoding encoding, double ts) const {
    msgpack::sbuffer buffer;
    Packer p(buffer);
    // vLLM's EventBatch is array_like in both encodings: only the events became maps (PR #42892).
    p.pack_array(3);
    pack_float64(buffer, ts);
    p.pack_array(static_cast<uint32_t>(pending_.size()));
    for (const KvEvent& e : pending_) pack_event(p, e, encoding, medium_, sliding_window_);
    p.pack(dp_rank_);
    const auto* data = reinterpret_cast<const uint8_t*>(buffer.data());
    return {data, data + buffer.size()};
}

}  // namespace kvcore::pool
