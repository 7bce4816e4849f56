// SPDX-License-Identifier: Apache-2.0
#include "pool/events.h"

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

void pack_string_or_nil(Packer& p, const std::string& s) {
    if (s.empty()) {
        p.pack_nil();
    } else {
        p.pack(s);
    }
}

// Fields in vLLM's order: BlockStored(block_hashes, parent_block_hash, token_ids, block_size, lora_id,
// medium, lora_name); BlockRemoved(block_hashes, medium); AllBlocksCleared().
void pack_event(Packer& p, const KvEvent& e, EventEncoding encoding, const std::string& medium) {
    const bool as_map = encoding == EventEncoding::kMap;
    auto key = [&](const char* name) {
        if (as_map) p.pack(name);
    };
    switch (e.kind) {
        case KvEvent::Kind::kBlockStored:
            as_map ? p.pack_map(8) : p.pack_array(8);
            break;
        case KvEvent::Kind::kBlockRemoved:
            as_map ? p.pack_map(3) : p.pack_array(3);
            break;
        case KvEvent::Kind::kAllBlocksCleared:
            as_map ? p.pack_map(1) : p.pack_array(1);
            break;
    }
    key("type");
    p.pack(type_name(e.kind));
    if (e.kind == KvEvent::Kind::kAllBlocksCleared) return;
    key("block_hashes");
    p.pack(e.block_hashes);
    if (e.kind == KvEvent::Kind::kBlockStored) {
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
        key("lora_id");
        p.pack_nil();
    }
    key("medium");
    p.pack(medium);
    if (e.kind == KvEvent::Kind::kBlockStored) {
        key("lora_name");
        pack_string_or_nil(p, e.lora_name);
    }
}

}  // namespace

std::vector<uint8_t> EventLog::encode(EventEncoding encoding, double ts) const {
    msgpack::sbuffer buffer;
    Packer p(buffer);
    if (encoding == EventEncoding::kMap) {
        p.pack_map(3);
        p.pack("ts");
        p.pack(ts);
        p.pack("events");
    } else {
        p.pack_array(3);
        p.pack(ts);
    }
    p.pack_array(static_cast<uint32_t>(pending_.size()));
    for (const KvEvent& e : pending_) pack_event(p, e, encoding, medium_);
    if (encoding == EventEncoding::kMap) p.pack("data_parallel_rank");
    p.pack(dp_rank_);
    const auto* data = reinterpret_cast<const uint8_t*>(buffer.data());
    return {data, data + buffer.size()};
}

}  // namespace kvcore::pool
