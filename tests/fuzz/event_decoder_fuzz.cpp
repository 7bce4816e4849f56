// SPDX-License-Identifier: Apache-2.0
// kvcore::index::decode_event_batch on arbitrary bytes (C++ internals: links kvcore_internal). Malformed
// input must raise kvcore::Error(INVALID_ARGUMENT) with a message and nothing else; a batch that decodes
// must keep the decoder's promises (hashes, block size, token count, extra keys per block), and
// written back (map or array form, by the input's last byte) it must decode to the same batch.
#include <cstring>
#include <string>
#include <vector>

#include "../unit/msgpack_writer.h"
#include "common/error.h"
#include "fuzz_input.h"
#include "index/event_decoder.h"

using namespace kvcore::index;
using kvcore::test::MsgpackWriter;

namespace {

const char* locality_text(Locality l) {
    switch (l) {
        case Locality::kLocal: return "LOCAL";
        case Locality::kRemote: return "remote";
        default: return "elsewhere";
    }
}

const char* kind_text(CacheSpecKind k) {
    switch (k) {
        case CacheSpecKind::kFullAttention: return "full_attention";
        case CacheSpecKind::kSlidingWindow: return "sliding_window";
        default: return "mamba";
    }
}

// Writes one field of vLLM's order (positionally: nil for an unset one; by name: left out).
struct EventWriter {
    MsgpackWriter& w;
    bool as_map;
    template <class Fn>
    void field(const char* name, bool set, Fn&& write) {
        if (as_map && !set) return;
        if (as_map) w.str(name);
        if (set) {
            write();
        } else {
            w.nil();
        }
    }
};

void write_hashes(MsgpackWriter& w, const std::vector<uint64_t>& hashes) {
    w.array(static_cast<uint32_t>(hashes.size()));
    for (uint64_t h : hashes) w.uint64_wide(h);
}

void write_event(MsgpackWriter& w, const Event& event, bool as_map) {
    auto open = [&](const char* type, size_t fields) {
        if (as_map) {
            w.map(static_cast<uint32_t>(fields + 1)).str("type").str(type);
        } else {
            w.array(static_cast<uint32_t>(fields + 1)).str(type);
        }
    };
    if (std::holds_alternative<AllBlocksCleared>(event)) {
        open("AllBlocksCleared", 0);
        return;
    }
    auto write_all = [&](auto&& field) {
        if (const auto* r = std::get_if<BlockRemoved>(&event)) {
            field("block_hashes", true, [&] { write_hashes(w, r->block_hashes); });
            field("medium", true, [&] { w.str(r->medium == Medium::kOther ? "NVME" : medium_name(r->medium)); });
            field("group_idx", true, [&] { w.uint(r->group_idx); });
            field("locality", r->locality != Locality::kUnspecified, [&] { w.str(locality_text(r->locality)); });
            return;
        }
        const auto& s = std::get<BlockStored>(event);
        field("block_hashes", true, [&] { write_hashes(w, s.block_hashes); });
        field("parent_block_hash", s.parent_block_hash.has_value(), [&] { w.uint(*s.parent_block_hash); });
        field("token_ids", true, [&] { w.uints(s.token_ids); });
        field("block_size", true, [&] { w.uint(s.block_size); });
        field("lora_id", s.lora_id.has_value(), [&] { w.sint(*s.lora_id); });
        field("medium", true, [&] { w.str(s.medium == Medium::kOther ? "NVME" : medium_name(s.medium)); });
        field("lora_name", !s.lora_name.empty(), [&] { w.str(s.lora_name); });
        field("extra_keys", !s.extra_keys.empty(), [&] {
            w.array(static_cast<uint32_t>(s.extra_keys.size()));
            for (const auto& block : s.extra_keys) {
                if (!block) {
                    w.nil();
                    continue;
                }
                w.array(static_cast<uint32_t>(block->size()));
                for (const ExtraKey& k : *block) {
                    if (k.kind == ExtraKey::Kind::kText) w.str(k.text);
                    if (k.kind == ExtraKey::Kind::kBytes) w.bin(std::vector<uint8_t>(k.text.begin(), k.text.end()));
                    if (k.kind == ExtraKey::Kind::kMultimodal) w.array(2).str(k.text).sint(k.offset);
                }
            }
        });
        field("group_idx", true, [&] { w.uint(s.group_idx); });
        field("kv_cache_spec_kind", s.spec_kind != CacheSpecKind::kUnspecified, [&] { w.str(kind_text(s.spec_kind)); });
        field("kv_cache_spec_sliding_window", s.sliding_window.has_value(), [&] { w.uint(*s.sliding_window); });
        field("locality", s.locality != Locality::kUnspecified, [&] { w.str(locality_text(s.locality)); });
    };
    size_t fields = 0;  // the container's header comes first
    write_all([&](const char*, bool set, auto&&) { fields += !as_map || set; });
    open(std::holds_alternative<BlockStored>(event) ? "BlockStored" : "BlockRemoved", fields);
    EventWriter out{w, as_map};
    write_all([&](const char* name, bool set, auto&& write) { out.field(name, set, write); });
}

std::vector<uint8_t> write_batch(const EventBatch& b, bool as_map) {
    MsgpackWriter w;
    if (as_map) {
        w.map(3).str("ts").f64(b.ts).str("events");
    } else {
        w.array(3).f64(b.ts);
    }
    w.array(static_cast<uint32_t>(b.events.size()));
    for (const Event& e : b.events) write_event(w, e, as_map);
    if (as_map) w.str("data_parallel_rank");
    if (b.data_parallel_rank) {
        w.sint(*b.data_parallel_rank);
    } else {
        w.nil();
    }
    return w.bytes;
}

void check_promises(const EventBatch& b) {
    for (const Event& e : b.events) {
        if (const auto* s = std::get_if<BlockStored>(&e)) {
            FUZZ_REQUIRE(!s->block_hashes.empty());
            FUZZ_REQUIRE(s->block_size > 0);
            FUZZ_REQUIRE(s->token_ids.empty() || s->token_ids.size() == s->block_hashes.size() * s->block_size);
            FUZZ_REQUIRE(s->extra_keys.empty() || s->extra_keys.size() == s->block_hashes.size());
            for (int32_t t : s->token_ids) FUZZ_REQUIRE(t >= 0);
        } else if (const auto* r = std::get_if<BlockRemoved>(&e)) {
            FUZZ_REQUIRE(!r->block_hashes.empty());
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    EventBatch batch;
    try {
        batch = decode_event_batch({data, size});
    } catch (const kvcore::Error& e) {
        FUZZ_REQUIRE(e.status() == KVC_ERR_INVALID_ARGUMENT);
        FUZZ_REQUIRE(std::strncmp(e.what(), "KV event batch", 14) == 0);
        return 0;
    }
    check_promises(batch);
    const bool as_map = size > 0 && data[size - 1] % 2;
    EventBatch again = decode_event_batch(write_batch(batch, as_map));
    again.unknown_events = batch.unknown_events;  // written back without the unknown events
    FUZZ_REQUIRE(again == batch);
    return 0;
}
