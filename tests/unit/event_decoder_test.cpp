// SPDX-License-Identifier: Apache-2.0
#include "index/event_decoder.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "msgpack_writer.h"
#include "pool/events.h"

using namespace kvcore::index;
using kvcore::pool::EventEncoding;
using kvcore::pool::EventLog;
using kvcore::pool::KvEvent;
using kvcore::test::MsgpackWriter;

namespace {

EventBatch decode(const std::vector<uint8_t>& bytes) { return decode_event_batch(bytes); }

// The message of the INVALID_ARGUMENT error that decoding must raise; fails the test otherwise.
std::string decode_error(const std::vector<uint8_t>& bytes) {
    try {
        (void)decode_event_batch(bytes);
    } catch (const kvcore::Error& e) {
        EXPECT_EQ(e.status(), KVC_ERR_INVALID_ARGUMENT) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "decoded a malformed batch of " << bytes.size() << " bytes";
    return {};
}

const BlockStored& stored(const EventBatch& b, size_t i) { return std::get<BlockStored>(b.events.at(i)); }
const BlockRemoved& removed(const EventBatch& b, size_t i) { return std::get<BlockRemoved>(b.events.at(i)); }

ExtraKey text(std::string s) { return {ExtraKey::Kind::kText, std::move(s), 0}; }
ExtraKey mm(std::string id, int64_t offset) { return {ExtraKey::Kind::kMultimodal, std::move(id), offset}; }

// Blocks 1 and 2 (4 tokens each) of a sequence with a LoRA, a salt and two images: tokens [2, 9) and [10, 11).
KvEvent multimodal_event() {
    KvEvent e{.kind = KvEvent::Kind::kBlockStored, .block_hashes = {1, 2, 3}, .token_ids = std::vector<int32_t>(12, 5),
              .block_size = 4, .lora_id = 7};
    e.keys.lora_name = "adapter";
    e.keys.cache_salt = "tenant";
    e.keys.multimodal = {{"img", 2, 7}, {"dot", 10, 1}};
    return e;
}

std::vector<uint8_t> pool_batch(EventEncoding encoding, uint32_t sliding_window, const std::string& medium,
                                int64_t dp_rank) {
    EventLog log(true, medium, 100, dp_rank, sliding_window);
    log.push(KvEvent{.kind = KvEvent::Kind::kBlockStored, .block_hashes = {11, 0xfedcba9876543210ULL},
                     .parent_block_hash = 10, .token_ids = {1, 2, 3, 4, 5, 6, 7, 8}, .block_size = 4});
    log.push(multimodal_event());
    log.push(KvEvent{.kind = KvEvent::Kind::kBlockRemoved, .block_hashes = {11, 12}});
    log.push(KvEvent{.kind = KvEvent::Kind::kAllBlocksCleared});
    return log.encode(encoding, 1700000000.5);
}

}  // namespace

// Everything kvcore's pool publishes reads back, in both event encodings, with and without a window.
TEST(EventDecoder, ReadsBackEveryEventThePoolEncodes) {
    for (EventEncoding encoding : {EventEncoding::kArray, EventEncoding::kMap}) {
        for (uint32_t window : {0u, 128u}) {
            SCOPED_TRACE(testing::Message() << "encoding " << static_cast<int>(encoding) << " window " << window);
            const EventBatch b = decode(pool_batch(encoding, window, "CPU", 3));
            EXPECT_EQ(b.ts, 1700000000.5);
            EXPECT_EQ(b.data_parallel_rank, 3);
            EXPECT_EQ(b.unknown_events, 0u);
            ASSERT_EQ(b.events.size(), 4u);

            const BlockStored& s = stored(b, 0);
            EXPECT_EQ(s.block_hashes, (std::vector<uint64_t>{11, 0xfedcba9876543210ULL}));
            EXPECT_EQ(s.parent_block_hash, 10u);
            EXPECT_EQ(s.token_ids, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}));
            EXPECT_EQ(s.block_size, 4u);
            EXPECT_EQ(s.lora_id, std::nullopt);
            EXPECT_EQ(s.lora_name, "");
            EXPECT_EQ(s.medium, Medium::kCpu);
            ASSERT_EQ(s.extra_keys.size(), 2u);  // one nil entry per block
            EXPECT_FALSE(s.extra_keys[0].has_value());
            EXPECT_FALSE(s.extra_keys[1].has_value());
            EXPECT_EQ(s.group_idx, 0u);
            EXPECT_EQ(s.spec_kind, window ? CacheSpecKind::kSlidingWindow : CacheSpecKind::kFullAttention);
            EXPECT_EQ(s.sliding_window, window ? std::optional<uint32_t>(window) : std::nullopt);
            EXPECT_EQ(s.locality, Locality::kUnspecified);

            const BlockStored& m = stored(b, 1);
            EXPECT_EQ(m.parent_block_hash, std::nullopt);
            EXPECT_EQ(m.lora_id, 7);
            EXPECT_EQ(m.lora_name, "adapter");
            using Keys = std::vector<ExtraKey>;
            ASSERT_EQ(m.extra_keys.size(), 3u);
            EXPECT_EQ(m.extra_keys[0], (Keys{text("adapter"), mm("img", 2), text("tenant")}));
            EXPECT_EQ(m.extra_keys[1], (Keys{text("adapter"), mm("img", -2)}));
            EXPECT_EQ(m.extra_keys[2], (Keys{text("adapter"), mm("img", -6), mm("dot", 2)}));

            const BlockRemoved& r = removed(b, 2);
            EXPECT_EQ(r.block_hashes, (std::vector<uint64_t>{11, 12}));
            EXPECT_EQ(r.medium, Medium::kCpu);
            EXPECT_EQ(r.group_idx, 0u);
            EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(b.events[3]));
        }
    }
}

// A fork's map batch, with unknown fields beside the known ones and no data_parallel_rank; ts an int.
TEST(EventDecoder, ReadsAMapBatchIgnoringUnknownFields) {
    MsgpackWriter w;
    w.map(4).str("future").map(1).str("x").array(2).nil().f64(1.5);
    w.str("events").array(1).array(1).str("AllBlocksCleared");
    w.str("ts").uint(1700000000);
    w.str("schema").str("v9");
    const EventBatch b = decode(w.bytes);
    EXPECT_EQ(b.ts, 1700000000.0);
    EXPECT_EQ(b.data_parallel_rank, std::nullopt);
    ASSERT_EQ(b.events.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(b.events[0]));

    MsgpackWriter ranked;
    ranked.map(3).str("data_parallel_rank").uint(2).str("ts").f32(2.5f).str("events").array(0);
    EXPECT_EQ(decode(ranked.bytes).data_parallel_rank, 2);
    EXPECT_EQ(decode(ranked.bytes).ts, 2.5);
}

// An array batch without data_parallel_rank, one with a nil rank and one with elements after it.
TEST(EventDecoder, ArrayBatchRankIsOptionalAndExtraElementsAreIgnored) {
    MsgpackWriter two;
    two.array(2).f64(3.0).array(0);
    EXPECT_EQ(decode(two.bytes).data_parallel_rank, std::nullopt);
    MsgpackWriter nil_rank;
    nil_rank.array(3).f64(3.0).array(0).nil();
    EXPECT_EQ(decode(nil_rank.bytes).data_parallel_rank, std::nullopt);
    MsgpackWriter longer;
    longer.array(5).f64(3.0).array(0).sint(-1).map(1).str("k").array(1).nil().str("later");
    EXPECT_EQ(decode(longer.bytes).data_parallel_rank, -1);
}

// Old vLLM's tagged arrays stopped after lora_id (5 fields) or medium; newer ones add fields past those
// this decoder knows.
TEST(EventDecoder, ArrayEventsMayEndEarlyOrCarryMoreFields) {
    MsgpackWriter w;
    w.array(3).f64(1.0).array(3);
    w.array(6).str("BlockStored").uints(std::vector<uint64_t>{5}).uint(4).uints(std::vector<int>{1, 2}).uint(2).nil();
    w.array(2).str("BlockRemoved").uints(std::vector<uint64_t>{5});
    w.array(16).str("BlockStored").uints(std::vector<uint64_t>{6}).nil().array(0).uint(16).uint(3).str("gpu")
        .str("lora").array(1).nil().uint(1).str("sliding_window").uint(64).str("Remote")
        .str("new field").map(0).uint(99);
    w.uint(0);
    const EventBatch b = decode(w.bytes);
    ASSERT_EQ(b.events.size(), 3u);
    EXPECT_EQ(stored(b, 0).parent_block_hash, 4u);
    EXPECT_EQ(stored(b, 0).medium, Medium::kGpu);
    EXPECT_EQ(stored(b, 0).extra_keys.size(), 0u);
    EXPECT_EQ(removed(b, 1).medium, Medium::kGpu);
    const BlockStored& s = stored(b, 2);
    EXPECT_EQ(s.lora_id, 3);
    EXPECT_EQ(s.lora_name, "lora");
    EXPECT_TRUE(s.token_ids.empty());
    EXPECT_EQ(s.group_idx, 1u);
    EXPECT_EQ(s.spec_kind, CacheSpecKind::kSlidingWindow);
    EXPECT_EQ(s.sliding_window, 64u);
    EXPECT_EQ(s.locality, Locality::kRemote);
}

// msgspec writes "type" first, but fields are read by name wherever they are; unknown ones (any shape)
// are skipped; optional fields may be absent or nil.
TEST(EventDecoder, MapEventsAreReadByName) {
    MsgpackWriter w;
    w.array(2).f64(1.0).array(2);
    w.map(7).str("block_size").uint(2).str("unknown").array(2).map(1).uint(1).str("x").bin({1, 2})
        .str("token_ids").uints(std::vector<int>{9, 8, 7, 6}).str("type").str("BlockStored")
        .str("block_hashes").uints(std::vector<uint64_t>{1, 2}).str("medium").nil().str("locality").str("local");
    w.map(5).str("type").str("BlockStored").str("block_hashes").uints(std::vector<uint64_t>{3})
        .str("parent_block_hash").nil().str("token_ids").array(0).str("block_size").uint(256);
    const EventBatch b = decode(w.bytes);
    ASSERT_EQ(b.events.size(), 2u);
    const BlockStored& s = stored(b, 0);
    EXPECT_EQ(s.block_hashes, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(s.token_ids, (std::vector<int32_t>{9, 8, 7, 6}));
    EXPECT_EQ(s.medium, Medium::kGpu);
    EXPECT_EQ(s.locality, Locality::kLocal);
    EXPECT_EQ(s.spec_kind, CacheSpecKind::kUnspecified);
    // CPU offload: blocks without their tokens.
    EXPECT_TRUE(stored(b, 1).token_ids.empty());
    EXPECT_EQ(stored(b, 1).block_size, 256u);
}

// uint64 (narrow or wide), int64 (its bits) and bytes (the last 8, big-endian; sha256's 32, 16, or 8).
TEST(EventDecoder, HashesInEveryEncoding) {
    std::vector<uint8_t> digest(32);
    for (size_t i = 0; i < digest.size(); ++i) digest[i] = static_cast<uint8_t>(i);
    MsgpackWriter w;
    w.array(2).f64(1.0).array(1).map(3).str("type").str("BlockRemoved").str("block_hashes").array(7);
    w.uint(7).uint64_wide(7).uint(0xffffffffffffffffULL).int64_wide(-2).sint(-1).bin(digest)
        .bin({0, 0, 0, 0, 0, 0, 1, 0});
    w.str("medium").str("OBJ");
    const EventBatch b = decode(w.bytes);
    const BlockRemoved& r = removed(b, 0);
    EXPECT_EQ(r.block_hashes, (std::vector<uint64_t>{7, 7, 0xffffffffffffffffULL, 0xfffffffffffffffeULL,
                                                     0xffffffffffffffffULL, 0x18191a1b1c1d1e1fULL, 256}));
    EXPECT_EQ(r.medium, Medium::kObj);

    MsgpackWriter parent;
    parent.array(2).f64(1.0).array(1).array(5).str("BlockStored").uints(std::vector<uint64_t>{1}).bin(digest)
        .array(0).uint(16);
    EXPECT_EQ(stored(decode(parent.bytes), 0).parent_block_hash, 0x18191a1b1c1d1e1fULL);
}

TEST(EventDecoder, MediumIsCaseInsensitiveAndNewMediaAreKept) {
    const std::pair<const char*, Medium> cases[] = {{"gpu", Medium::kGpu}, {"Cpu", Medium::kCpu}, {"fs", Medium::kFs},
                                                    {"OBJ", Medium::kObj}, {"NVME", Medium::kOther}};
    for (const auto& [name, medium] : cases) {
        MsgpackWriter w;
        w.array(2).f64(1.0).array(1).array(3).str("BlockRemoved").uints(std::vector<uint64_t>{1}).str(name);
        EXPECT_EQ(removed(decode(w.bytes), 0).medium, medium) << name;
    }
    EXPECT_STREQ(medium_name(Medium::kFs), "FS");
}

// A newer vLLM's event type is skipped and counted, not a reason to lose the batch.
TEST(EventDecoder, UnknownEventTypesAreSkippedAndCounted) {
    MsgpackWriter w;
    w.array(2).f64(1.0).array(3);
    w.array(3).str("BlockPinned").uints(std::vector<uint64_t>{1}).map(1).str("a").array(0);
    w.map(2).str("type").str("Whatever").str("x").uint(1);
    w.array(1).str("AllBlocksCleared");
    const EventBatch b = decode(w.bytes);
    EXPECT_EQ(b.unknown_events, 2u);
    ASSERT_EQ(b.events.size(), 1u);
    EXPECT_TRUE(std::holds_alternative<AllBlocksCleared>(b.events[0]));
}

// Each malformed batch is refused as a whole, with the event and field named.
TEST(EventDecoder, MalformedBatchesNameTheEventAndField) {
    auto batch_of = [](auto&& write_second_event) {
        MsgpackWriter w;
        w.array(3).f64(1.0).array(2).array(1).str("AllBlocksCleared");
        write_second_event(w);
        w.uint(0);
        return w.bytes;
    };
    auto stored_array = [&](uint64_t hashes, int tokens, uint64_t block_size) {
        return batch_of([&](MsgpackWriter& w) {
            w.array(5).str("BlockStored").uints(std::vector<uint64_t>(hashes, 1)).nil()
                .uints(std::vector<int>(tokens, 1)).uint(block_size);
        });
    };
    struct Case {
        std::vector<uint8_t> bytes;
        const char* expected;
    };
    const Case cases[] = {
        // A partial last block: vLLM hashes (and publishes) full blocks only.
        {stored_array(2, 7, 4), "event 1 (BlockStored), field token_ids: 7 token ids for 2 blocks of 4"},
        {stored_array(2, 12, 4), "expected 8 or none"},
        {stored_array(0, 0, 4), "event 1 (BlockStored), field block_hashes: no block hashes"},
        {stored_array(1, 0, 0), "field block_size: block_size is 0"},
        {batch_of([](MsgpackWriter& w) { w.array(2).str("BlockRemoved").array(0); }),
         "event 1 (BlockRemoved), field block_hashes: no block hashes"},
        {batch_of([](MsgpackWriter& w) { w.array(1).str("BlockRemoved"); }), "field block_hashes: missing"},
        {batch_of([](MsgpackWriter& w) {
             w.array(4).str("BlockStored").uints(std::vector<uint64_t>{1}).nil().array(0);
         }),
         "field block_size: missing"},
        {batch_of([](MsgpackWriter& w) { w.map(1).str("block_hashes").array(0); }), "event 1: an event map without \"type\""},
        {batch_of([](MsgpackWriter& w) { w.array(0); }), "event 1: an empty event array"},
        {batch_of([](MsgpackWriter& w) { w.array(1).uint(3); }), "event 1, field type: expected string, got integer"},
        {batch_of([](MsgpackWriter& w) { w.str("BlockStored"); }), "event 1: expected an event"},
        {batch_of([](MsgpackWriter& w) {
             w.array(5).str("BlockStored").uints(std::vector<uint64_t>{1}).nil().array(1).sint(-3).uint(1);
         }),
         "field token_ids: token id at element 0 is not in 0..2147483647"},
        {batch_of([](MsgpackWriter& w) {
             w.array(5).str("BlockStored").uints(std::vector<uint64_t>{1}).nil().str("tokens").uint(1);
         }),
         "field token_ids: expected an array of token ids, got string"},
        {batch_of([](MsgpackWriter& w) {
             w.array(2).str("BlockRemoved").array(1).bin({1, 2, 3});
         }),
         "field block_hashes: a hash of 3 bytes (expected 8 to 64)"},
        {batch_of([](MsgpackWriter& w) {
             w.array(2).str("BlockRemoved").array(1).f64(1.0);
         }),
         "expected a hash (integer or bytes), got float"},
        {batch_of([](MsgpackWriter& w) {
             w.array(9).str("BlockStored").uints(std::vector<uint64_t>{1, 2}).nil().array(0).uint(4).nil().nil().nil()
                 .array(1).nil();
         }),
         "field extra_keys: 1 entries for 2 blocks"},
        {batch_of([](MsgpackWriter& w) {
             w.array(9).str("BlockStored").uints(std::vector<uint64_t>{1}).nil().array(0).uint(4).nil().nil().nil()
                 .array(1).array(1).array(1).str("x");
         }),
         "field extra_keys: expected block 0's keys: a string, bytes or an [identifier, offset] pair, got array"},
        {batch_of([](MsgpackWriter& w) {
             w.array(5).str("BlockStored").uints(std::vector<uint64_t>{1}).nil().array(0).sint(-4);
         }),
         "field block_size: -4 is not in 0..4294967295"},
        {batch_of([](MsgpackWriter& w) {
             w.array(5).str("BlockStored").uints(std::vector<uint64_t>{1}).nil().array(0).uint(1ULL << 32);
         }),
         "field block_size: 4294967296 is not in 0..4294967295"},
        {MsgpackWriter().array(1).f64(1.0).bytes, "a batch array needs ts and events"},
        {MsgpackWriter().array(2).str("now").array(0).bytes, "field ts: expected a float (seconds), got string"},
        {MsgpackWriter().array(2).f64(std::nan("")).array(0).bytes, "field ts: ts is not a finite number"},
        {MsgpackWriter().array(2).f64(1.0).map(0).bytes, "field events: expected an array of events, got map"},
        {MsgpackWriter().array(3).f64(1.0).array(0).str("0").bytes, "field data_parallel_rank: expected integer"},
        {MsgpackWriter().array(3).f64(1.0).array(0).uint64_wide(1ULL << 63).bytes, "does not fit an int64"},
        {MsgpackWriter().map(1).str("ts").f64(1.0).bytes, "the batch map has no \"events\""},
        {MsgpackWriter().map(1).str("events").array(0).bytes, "the batch map has no \"ts\""},
        {MsgpackWriter().str("batch").bytes, "expected an array or a map (EventBatch), got string"},
        {MsgpackWriter().array(2).f64(1.0).array(0).nil().bytes, "1 bytes after the batch"},
        {MsgpackWriter().array(2).f64(1.0).raw({0xc1}).bytes, "0xc1 is not a msgpack value"},
        {MsgpackWriter().array(2).f64(1.0).raw({0xdd, 0xff, 0xff, 0xff, 0xff}).bytes,
         "field events: array of 4294967295 elements cannot fit in the 0 bytes left"},
        {MsgpackWriter().array(2).f64(1.0).raw({0x91, 0xdb, 0x7f, 0xff, 0xff, 0xff}).bytes,
         "string of 2147483647 bytes runs past the end of the input"},
        {{}, "input ends inside a value"},
    };
    for (const Case& c : cases) {
        const std::string message = decode_error(c.bytes);
        EXPECT_NE(message.find(c.expected), std::string::npos) << "got: " << message << "\nexpected: " << c.expected;
    }
}

// Every strict prefix of a valid batch is malformed (its outer container is unfinished): each must be
// refused with INVALID_ARGUMENT, never read past the end.
TEST(EventDecoder, EveryTruncationIsRefused) {
    std::vector<std::vector<uint8_t>> batches = {pool_batch(EventEncoding::kArray, 64, "GPU", 1),
                                                 pool_batch(EventEncoding::kMap, 0, "CPU", 0)};
    MsgpackWriter map_batch;
    map_batch.map(3).str("ts").f64(1.0).str("data_parallel_rank").uint(1).str("events").array(1).map(2)
        .str("type").str("BlockRemoved").str("block_hashes").array(1).bin(std::vector<uint8_t>(32, 7));
    batches.push_back(map_batch.bytes);
    for (const std::vector<uint8_t>& bytes : batches) {
        ASSERT_NO_THROW((void)decode(bytes));
        for (size_t n = 0; n < bytes.size(); ++n) {
            // A copy of exactly n bytes, so that ASan sees any read past the prefix.
            const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
            try {
                (void)decode_event_batch(prefix);
                ADD_FAILURE() << "a prefix of " << n << " of " << bytes.size() << " bytes decoded";
            } catch (const kvcore::Error& e) {
                EXPECT_EQ(e.status(), KVC_ERR_INVALID_ARGUMENT);
            }
        }
    }
}

// Skipping never recurses: a value nested 200,000 deep in an unknown field costs no stack, and the same
// nesting where a known field expects something else, or unfinished, is refused.
TEST(EventDecoder, DeepNestingIsBounded) {
    constexpr size_t kDepth = 200000;
    auto nested = [&](MsgpackWriter& w, bool finished) {
        for (size_t i = 0; i < kDepth; ++i) w.raw({0x91});
        if (finished) w.nil();
    };
    MsgpackWriter unknown;
    unknown.map(3).str("ts").f64(1.0).str("events").array(0).str("deep");
    nested(unknown, true);
    EXPECT_EQ(decode(unknown.bytes).events.size(), 0u);

    MsgpackWriter unfinished;
    unfinished.map(3).str("ts").f64(1.0).str("events").array(0).str("deep");
    nested(unfinished, false);
    EXPECT_NE(decode_error(unfinished.bytes).find("array of 1 elements cannot fit in the 0 bytes left"),
              std::string::npos);

    MsgpackWriter in_known_field;
    in_known_field.array(2).f64(1.0).array(1).array(9).str("BlockStored").uints(std::vector<uint64_t>{1}).nil()
        .array(0).uint(4).nil().nil().nil().array(1);
    nested(in_known_field, true);
    EXPECT_NE(decode_error(in_known_field.bytes).find("field extra_keys"), std::string::npos);

    MsgpackWriter as_event;
    as_event.array(2).f64(1.0).array(1).array(2).str("Nested");
    nested(as_event, true);
    EXPECT_EQ(decode(as_event.bytes).unknown_events, 1u);
}

// The real vLLM event of tests/data (Qwen3-0.6B, 25 blocks of 16 tokens, hashes above 2^63) as current
// vLLM writes it, and with its hashes as the 32-byte digests' form.
TEST(EventDecoder, ReadsTheRealVllmEventFixture) {
    std::ifstream in(KVCORE_TEST_DATA "/vllm_kv_event_base.json");
    ASSERT_TRUE(in) << "cannot read the fixture";
    const nlohmann::json fixture = nlohmann::json::parse(in);
    const auto hashes = fixture["block_hashes"].get<std::vector<uint64_t>>();
    const auto tokens = fixture["token_ids"].get<std::vector<int32_t>>();
    const auto block_size = fixture["block_size"].get<uint32_t>();
    for (bool as_bytes : {false, true}) {
        MsgpackWriter w;
        w.array(3).f64(1.0).array(1).map(8).str("type").str(fixture["event_type"].get<std::string>());
        w.str("block_hashes").array(static_cast<uint32_t>(hashes.size()));
        for (uint64_t h : hashes) {
            if (as_bytes) {
                std::vector<uint8_t> digest(32, 0xaa);
                for (int i = 0; i < 8; ++i) digest[24 + i] = static_cast<uint8_t>(h >> (56 - 8 * i));
                w.bin(digest);
            } else {
                w.uint(h);
            }
        }
        w.str("parent_block_hash").nil().str("token_ids").uints(tokens).str("block_size").uint(block_size);
        w.str("lora_id").nil().str("medium").str(fixture["medium"].get<std::string>()).str("lora_name").nil();
        w.uint(0);
        const EventBatch b = decode(w.bytes);
        ASSERT_EQ(b.events.size(), 1u);
        const BlockStored& s = stored(b, 0);
        EXPECT_EQ(s.block_hashes, hashes);
        EXPECT_EQ(s.token_ids, tokens);
        EXPECT_EQ(s.token_ids.size(), s.block_hashes.size() * s.block_size);  // 400 = 25 x 16
        EXPECT_EQ(s.medium, Medium::kGpu);
        EXPECT_EQ(s.parent_block_hash, std::nullopt);
    }
}
