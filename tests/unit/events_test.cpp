// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <string>
#include <vector>

#include "pool/events.h"

using namespace kvcore::pool;

namespace {

msgpack::object_handle decode(const std::vector<uint8_t>& bytes) {
    return msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// A map's keys in the order they were written.
std::vector<std::string> keys_of(const msgpack::object& map) {
    std::vector<std::string> keys;
    EXPECT_EQ(map.type, msgpack::type::MAP);
    if (map.type != msgpack::type::MAP) return keys;
    for (uint32_t i = 0; i < map.via.map.size; ++i) keys.push_back(map.via.map.ptr[i].key.as<std::string>());
    return keys;
}

const msgpack::object& value_of(const msgpack::object& map, const std::string& key) {
    for (uint32_t i = 0; i < map.via.map.size; ++i) {
        if (map.via.map.ptr[i].key.as<std::string>() == key) return map.via.map.ptr[i].val;
    }
    throw std::runtime_error("no key " + key);
}

KvEvent stored_event() {
    KvEvent e{.kind = KvEvent::Kind::kBlockStored, .block_hashes = {11, 12}, .parent_block_hash = 10,
              .token_ids = {1, 2, 3, 4, 5, 6, 7, 8}, .block_size = 4};
    e.first_token = 4;  // the sequence's blocks 1 and 2
    return e;
}

EventLog log_with(std::vector<KvEvent> events, uint32_t sliding_window = 0) {
    EventLog log(true, "GPU", 100, 0, sliding_window);
    for (KvEvent& e : events) log.push(std::move(e));
    return log;
}

}  // namespace

// vLLM's EventBatch is msgspec array_like: [ts, events, data_parallel_rank] whatever the events' encoding,
// and ts a float64 even on a whole second (msgpack-c's pack_double would write 1700000000 as a uint32).
TEST(Events, BatchIsAPositionalArrayWithAFloat64TsInBothEncodings) {
    const EventLog log = log_with({stored_event(), KvEvent{.kind = KvEvent::Kind::kAllBlocksCleared}});
    for (EventEncoding encoding : {EventEncoding::kArray, EventEncoding::kMap}) {
        const std::vector<uint8_t> bytes = log.encode(encoding, 1700000000.0);
        ASSERT_GE(bytes.size(), 10u);
        EXPECT_EQ(bytes[0], 0x93);  // a 3-element array
        EXPECT_EQ(bytes[1], 0xcb);  // float64
        const msgpack::object_handle oh = decode(bytes);
        const msgpack::object& batch = oh.get();
        ASSERT_EQ(batch.type, msgpack::type::ARRAY);
        ASSERT_EQ(batch.via.array.size, 3u);
        EXPECT_EQ(batch.via.array.ptr[0].type, msgpack::type::FLOAT64);
        EXPECT_EQ(batch.via.array.ptr[0].as<double>(), 1700000000.0);
        EXPECT_EQ(batch.via.array.ptr[1].via.array.size, 2u);
        EXPECT_EQ(batch.via.array.ptr[2].as<int>(), 0);
        // The size depends on the events only: a size query and the drain after it agree.
        for (double ts : {0.0, 1.0, 1700000000.25, 4102444800.0}) EXPECT_EQ(log.encode(encoding, ts).size(), bytes.size());
    }
}

// Current vLLM (PR #42892): map events with "type" first, then the fields in declaration order;
// required ones always (nil when unset), optional ones only when set.
TEST(Events, MapEventsWriteVllmsFieldsInOrder) {
    const EventLog log = log_with({stored_event(), KvEvent{.kind = KvEvent::Kind::kBlockRemoved, .block_hashes = {11}},
                                   KvEvent{.kind = KvEvent::Kind::kAllBlocksCleared}});
    const msgpack::object_handle oh = decode(log.encode(EventEncoding::kMap, 1.0));
    const msgpack::object& events = oh.get().via.array.ptr[1];
    ASSERT_EQ(events.via.array.size, 3u);
    const msgpack::object& stored = events.via.array.ptr[0];
    EXPECT_EQ(keys_of(stored), (std::vector<std::string>{"type", "block_hashes", "parent_block_hash", "token_ids",
                                                         "block_size", "lora_id", "medium", "lora_name", "extra_keys",
                                                         "group_idx", "kv_cache_spec_kind"}));
    EXPECT_EQ(value_of(stored, "type").as<std::string>(), "BlockStored");
    EXPECT_EQ(value_of(stored, "block_hashes").as<std::vector<uint64_t>>(), (std::vector<uint64_t>{11, 12}));
    EXPECT_EQ(value_of(stored, "parent_block_hash").as<uint64_t>(), 10u);
    EXPECT_EQ(value_of(stored, "block_size").as<uint32_t>(), 4u);
    EXPECT_TRUE(value_of(stored, "lora_id").is_nil());
    EXPECT_EQ(value_of(stored, "medium").as<std::string>(), "GPU");
    EXPECT_TRUE(value_of(stored, "lora_name").is_nil());
    const msgpack::object& extra = value_of(stored, "extra_keys");
    ASSERT_EQ(extra.type, msgpack::type::ARRAY);
    ASSERT_EQ(extra.via.array.size, 2u);  // one entry per block, nil without keys
    EXPECT_TRUE(extra.via.array.ptr[0].is_nil());
    EXPECT_TRUE(extra.via.array.ptr[1].is_nil());
    EXPECT_EQ(value_of(stored, "group_idx").as<int>(), 0);
    EXPECT_EQ(value_of(stored, "kv_cache_spec_kind").as<std::string>(), "full_attention");
    const msgpack::object& removed = events.via.array.ptr[1];
    EXPECT_EQ(keys_of(removed), (std::vector<std::string>{"type", "block_hashes", "medium", "group_idx"}));
    EXPECT_EQ(value_of(removed, "type").as<std::string>(), "BlockRemoved");
    EXPECT_EQ(keys_of(events.via.array.ptr[2]), (std::vector<std::string>{"type"}));
    EXPECT_EQ(value_of(events.via.array.ptr[2], "type").as<std::string>(), "AllBlocksCleared");
}

// vLLM until mid-2026: tagged arrays, every field by position (msgspec's array_like writes them all,
// nil when unset, omit_defaults notwithstanding).
TEST(Events, ArrayEventsCarryTheSameFieldsByPosition) {
    const EventLog log = log_with({stored_event(), KvEvent{.kind = KvEvent::Kind::kBlockRemoved, .block_hashes = {11}}});
    const msgpack::object_handle oh = decode(log.encode(EventEncoding::kArray, 1.0));
    const msgpack::object& events = oh.get().via.array.ptr[1];
    const auto& stored = events.via.array.ptr[0].via.array;
    ASSERT_EQ(stored.size, 13u);
    EXPECT_EQ(stored.ptr[0].as<std::string>(), "BlockStored");
    EXPECT_EQ(stored.ptr[3].as<std::vector<int32_t>>(), (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_TRUE(stored.ptr[5].is_nil());  // lora_id
    EXPECT_EQ(stored.ptr[6].as<std::string>(), "GPU");
    EXPECT_EQ(stored.ptr[8].via.array.size, 2u);  // extra_keys
    EXPECT_EQ(stored.ptr[9].as<int>(), 0);        // group_idx
    EXPECT_EQ(stored.ptr[10].as<std::string>(), "full_attention");
    EXPECT_TRUE(stored.ptr[11].is_nil());  // kv_cache_spec_sliding_window
    EXPECT_TRUE(stored.ptr[12].is_nil());  // locality
    const auto& removed = events.via.array.ptr[1].via.array;
    ASSERT_EQ(removed.size, 5u);
    EXPECT_EQ(removed.ptr[2].as<std::string>(), "GPU");
    EXPECT_EQ(removed.ptr[3].as<int>(), 0);
    EXPECT_TRUE(removed.ptr[4].is_nil());
}

TEST(Events, SlidingWindowEventsNameTheirWindow) {
    const EventLog log = log_with({stored_event()}, 128);
    const msgpack::object_handle map_oh = decode(log.encode(EventEncoding::kMap, 1.0));
    const msgpack::object& stored = map_oh.get().via.array.ptr[1].via.array.ptr[0];
    EXPECT_EQ(value_of(stored, "kv_cache_spec_kind").as<std::string>(), "sliding_window");
    EXPECT_EQ(value_of(stored, "kv_cache_spec_sliding_window").as<uint32_t>(), 128u);
    EXPECT_EQ(keys_of(stored).back(), "kv_cache_spec_sliding_window");
    const msgpack::object_handle array_oh = decode(log.encode(EventEncoding::kArray, 1.0));
    const auto& positional = array_oh.get().via.array.ptr[1].via.array.ptr[0].via.array;
    ASSERT_EQ(positional.size, 13u);
    EXPECT_EQ(positional.ptr[11].as<uint32_t>(), 128u);
}

// Each block's entry is the tuple its hash used: LoRA name, (identifier, offset) pairs, the salt on
// block 0 only. Here blocks 0..2 of 4 tokens, an image at tokens [2, 9) and another at [10, 11).
TEST(Events, ExtraKeysListEachBlocksKeys) {
    KvEvent e{.kind = KvEvent::Kind::kBlockStored, .block_hashes = {1, 2, 3}, .token_ids = std::vector<int32_t>(12, 5),
              .block_size = 4};
    e.keys.lora_name = "adapter";
    e.keys.cache_salt = "tenant";
    e.keys.multimodal = {{"img", 2, 7}, {"dot", 10, 1}};
    const EventLog log = log_with({e});
    const msgpack::object_handle oh = decode(log.encode(EventEncoding::kMap, 1.0));
    const msgpack::object& stored = oh.get().via.array.ptr[1].via.array.ptr[0];
    EXPECT_EQ(value_of(stored, "lora_name").as<std::string>(), "adapter");
    const auto& blocks = value_of(stored, "extra_keys").via.array;
    ASSERT_EQ(blocks.size, 3u);
    std::vector<std::string> seen;
    for (uint32_t b = 0; b < blocks.size; ++b) {
        std::string text;
        for (uint32_t k = 0; k < blocks.ptr[b].via.array.size; ++k) {
            const msgpack::object& key = blocks.ptr[b].via.array.ptr[k];
            if (key.type == msgpack::type::ARRAY) {
                ASSERT_EQ(key.via.array.size, 2u);
                text += "(" + key.via.array.ptr[0].as<std::string>() + "," +
                        std::to_string(key.via.array.ptr[1].as<int64_t>()) + ")";
            } else {
                text += key.as<std::string>();
            }
            text += " ";
        }
        seen.push_back(text);
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"adapter (img,2) tenant ", "adapter (img,-2) ", "adapter (img,-6) (dot,2) "}));
}

TEST(Events, AFullQueueDropsTheOldestAndCountsIt) {
    EventLog log(true, "CPU", 2, 0);
    for (uint64_t h = 1; h <= 3; ++h) log.push(KvEvent{.kind = KvEvent::Kind::kBlockRemoved, .block_hashes = {h}});
    EXPECT_EQ(log.pending(), 2u);
    EXPECT_EQ(log.dropped(), 1u);
    const msgpack::object_handle oh = decode(log.encode(EventEncoding::kArray, 1.0));
    const auto& events = oh.get().via.array.ptr[1].via.array;
    EXPECT_EQ(events.ptr[0].via.array.ptr[1].as<std::vector<uint64_t>>(), std::vector<uint64_t>{2});
    EXPECT_EQ(events.ptr[0].via.array.ptr[2].as<std::string>(), "CPU");
}
