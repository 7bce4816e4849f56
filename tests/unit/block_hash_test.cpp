// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <openssl/sha.h>

#include <fstream>
#include <nlohmann/json.hpp>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "pool/block_hash.h"

using namespace kvcore::pool;

namespace {

nlohmann::json load_vllm_event() {
    std::ifstream in(KVCORE_TEST_DATA "/vllm_kv_event_base.json");
    EXPECT_TRUE(in.good()) << "missing tests/data/vllm_kv_event_base.json";
    return nlohmann::json::parse(in);
}

ExtraKeys salt_keys(const char* salt) {
    ExtraKeys keys;
    keys.cache_salt = salt;
    return keys;
}

}  // namespace

TEST(BlockHash, Sha256CborReproducesAllOfVllmsHashes) {
    const nlohmann::json event = load_vllm_event();
    const auto tokens = event["token_ids"].get<std::vector<int32_t>>();
    const auto expected = event["block_hashes"].get<std::vector<uint64_t>>();
    const uint32_t block_size = event["block_size"].get<uint32_t>();
    ASSERT_EQ(expected.size(), 25u);
    const BlockHasher hasher(HashAlgo::kSha256Cbor, event["hash_seed"].get<std::string>());
    const std::vector<BlockHash> hashes = hasher.hash_blocks(tokens, block_size, ExtraKeys{});
    ASSERT_EQ(hashes.size(), expected.size());
    for (size_t i = 0; i < hashes.size(); ++i) {
        EXPECT_EQ(hashes[i].event_value(HashAlgo::kSha256Cbor), expected[i]) << "block " << i;
    }
}

TEST(BlockHash, ChainAndKeysChangeEveryLaterHash) {
    for (HashAlgo algo : {HashAlgo::kSha256Cbor, HashAlgo::kXxh3}) {
        const BlockHasher hasher(algo, "42");
        std::vector<int32_t> tokens(64);
        for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i * 7);
        const auto base = hasher.hash_blocks(tokens, 16, {});
        auto changed = tokens;
        changed[3] = 9999;  // block 0 differs, so every block after it must differ too
        const auto other = hasher.hash_blocks(changed, 16, {});
        for (size_t i = 0; i < base.size(); ++i) EXPECT_NE(base[i], other[i]) << hash_algo_name(algo) << " " << i;
        ExtraKeys lora;
        lora.lora_name = "adapter";
        const auto with_lora = hasher.hash_blocks(tokens, 16, lora);
        for (size_t i = 0; i < base.size(); ++i) EXPECT_NE(base[i], with_lora[i]);
        EXPECT_EQ(hasher.hash_blocks(tokens, 16, {}), base) << "deterministic";
        EXPECT_NE(BlockHasher(algo, "43").hash_blocks(tokens, 16, {})[0], base[0]) << "the seed matters";
    }
}

// kvcore's xxh3 encoding, re-derived here from its definition: xxh3-128 of parent (16 bytes) | keys digest
// (8 bytes, 0 without keys) | tokens (little-endian int32), chained from xxh3-128 of the seed. The
// block sizes take the hasher's inline path (16), its tail copy (17) and its streamed path (100).
TEST(BlockHash, Xxh3FollowsItsDefinitionOnEveryPath) {
    const BlockHasher hasher(HashAlgo::kXxh3, "42");
    for (uint32_t block_size : {16u, 17u, 100u}) {
        std::vector<int32_t> tokens(3 * block_size);
        for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7919) % 151000);
        const auto hashes = hasher.hash_blocks(tokens, block_size, {});
        ASSERT_EQ(hashes.size(), 3u);
        XXH128_hash_t parent = XXH3_128bits("42", 2);
        for (size_t b = 0; b < hashes.size(); ++b) {
            std::vector<uint8_t> input(24 + 4 * block_size, 0);
            std::memcpy(input.data(), &parent.low64, 8);
            std::memcpy(input.data() + 8, &parent.high64, 8);
            std::memcpy(input.data() + 24, tokens.data() + b * block_size, 4 * block_size);
            parent = XXH3_128bits(input.data(), input.size());
            uint64_t low = 0;
            std::memcpy(&low, hashes[b].bytes.data(), 8);
            EXPECT_EQ(low, parent.low64) << "block size " << block_size << ", block " << b;
            EXPECT_EQ(hashes[b].event_value(HashAlgo::kXxh3), parent.low64);
            // One block at a time gives the same chain.
            const BlockHash& prev = b == 0 ? hasher.none_hash() : hashes[b - 1];
            const std::span<const int32_t> block(tokens.data() + b * block_size, block_size);
            EXPECT_EQ(hasher.hash_block(prev, block, b * block_size, {}), hashes[b]);
        }
    }
}

// A growing sequence extends its chain a few blocks at a time; the result is the chain hashed at once.
TEST(BlockHash, ExtendingAChainInStepsEqualsHashingItAtOnce) {
    for (HashAlgo algo : {HashAlgo::kSha256Cbor, HashAlgo::kXxh3}) {
        const BlockHasher hasher(algo, "42");
        std::vector<int32_t> tokens(16 * 10 + 5);
        for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i * 31 % 5000);
        ExtraKeys keys;
        keys.lora_name = "adapter";
        keys.cache_salt = "tenant";
        std::vector<BlockHash> grown;
        for (size_t full : {0u, 1u, 1u, 4u, 7u, 10u}) hasher.extend_chain(grown, tokens, 16, keys, full);
        EXPECT_EQ(grown, hasher.hash_blocks(tokens, 16, keys)) << hash_algo_name(algo);
    }
}

TEST(BlockHash, SaltEntersOnlyTheFirstBlockButChainsOnward) {
    const BlockHasher hasher(HashAlgo::kSha256Cbor, "42");
    std::vector<int32_t> tokens(32, 5);
    const auto plain = hasher.hash_blocks(tokens, 16, {});
    const auto salted = hasher.hash_blocks(tokens, 16, salt_keys("s"));
    EXPECT_NE(plain[0], salted[0]);
    EXPECT_NE(plain[1], salted[1]);
}

TEST(BlockHash, MultimodalHashesEnterOnlyTheBlocksTheyOverlap) {
    const BlockHasher hasher(HashAlgo::kXxh3, "42");
    std::vector<int32_t> tokens(48, 1);
    ExtraKeys image;
    image.multimodal = {{"img", 20, 8}};  // tokens 20..27: block 1 only
    const auto plain = hasher.hash_blocks(tokens, 16, {});
    const auto with_image = hasher.hash_blocks(tokens, 16, image);
    EXPECT_EQ(plain[0], with_image[0]);
    EXPECT_NE(plain[1], with_image[1]);
    EXPECT_NE(plain[2], with_image[2]);  // through the chain
}

namespace {

std::vector<uint8_t> from_hex(const std::string& hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    return out;
}

BlockHash sha256_of(const std::vector<uint8_t>& bytes) {
    BlockHash h;
    SHA256(bytes.data(), bytes.size(), h.bytes.data());
    return h;
}

// A block's extra keys as text: "L:name", "M:id@offset", "S:salt".
std::vector<std::string> listed_keys(const ExtraKeys& keys, uint64_t begin, uint64_t end) {
    std::vector<std::string> out;
    for_each_extra_key(keys, begin, end, [&](const ExtraKey& k) {
        switch (k.kind) {
            case ExtraKey::Kind::kLoraName: out.push_back("L:" + *k.text); break;
            case ExtraKey::Kind::kMultimodal: out.push_back("M:" + *k.text + "@" + std::to_string(k.offset)); break;
            case ExtraKey::Kind::kCacheSalt: out.push_back("S:" + *k.text); break;
        }
    });
    return out;
}

}  // namespace

// vLLM's test_generate_block_hash_extra_keys (after PR #36708): items at [0, 5) and [10, 15).
TEST(BlockHash, ExtraKeysAreVllmsPairsInVllmsOrder) {
    ExtraKeys keys;
    keys.multimodal = {{"hash1", 0, 5}, {"hash2", 10, 5}};
    using V = std::vector<std::string>;
    EXPECT_EQ(listed_keys(keys, 0, 5), (V{"M:hash1@0"}));
    EXPECT_EQ(listed_keys(keys, 3, 8), (V{"M:hash1@-3"}));  // the item began 3 tokens before the block
    EXPECT_EQ(listed_keys(keys, 5, 10), V{});               // starts where hash1 ends: no key for it
    EXPECT_EQ(listed_keys(keys, 0, 15), (V{"M:hash1@0", "M:hash2@10"}));
    EXPECT_EQ(listed_keys(keys, 12, 20), (V{"M:hash2@-2"}));
    EXPECT_EQ(listed_keys(keys, 15, 20), V{});
    keys.cache_salt = "salt";
    EXPECT_EQ(listed_keys(keys, 0, 5), (V{"M:hash1@0", "S:salt"}));
    EXPECT_EQ(listed_keys(keys, 3, 8), (V{"M:hash1@-3"}));  // the salt enters block 0 only
    keys.lora_name = "adapter";
    EXPECT_EQ(listed_keys(keys, 0, 15), (V{"L:adapter", "M:hash1@0", "M:hash2@10", "S:salt"}));
    // What an event keeps for blocks [3, 8): the LoRA and the one item they overlap, no salt.
    const ExtraKeys kept = keys_for_range(keys, 3, 8);
    EXPECT_EQ(listed_keys(kept, 3, 8), (V{"L:adapter", "M:hash1@-3"}));
    EXPECT_TRUE(kept.cache_salt.empty());
    EXPECT_EQ(kept.multimodal.size(), 1u);
}

// The CBOR vLLM's sha256_cbor hashes (cbor2, canonical) for two blocks of 4 tokens with LoRA "L", an
// image "img" at tokens [2, 6) and salt "s", written out byte by byte. Digests checked with python3's
// hashlib over the same bytes.
TEST(BlockHash, Sha256CborEncodesMultimodalPairsAsVllmDoes) {
    const BlockHasher hasher(HashAlgo::kSha256Cbor, "42");
    ExtraKeys keys;
    keys.lora_name = "L";
    keys.cache_salt = "s";
    keys.multimodal = {{"img", 2, 4}};
    const std::vector<int32_t> tokens{1, 2, 3, 4, 5, 6, 7, 8};
    const auto hashes = hasher.hash_blocks(tokens, 4, keys);
    ASSERT_EQ(hashes.size(), 2u);
    const std::string none = "9fa6eb003f14425eb9c8e6baacfbcaab26257357b829c7bfa74ffcc4f31c1780";  // sha256_cbor("42")
    EXPECT_EQ(hasher.none_hash().bytes, sha256_of(from_hex("623432")).bytes);
    // [parent, [1, 2, 3, 4], ["L", ["img", 2], "s"]]
    const std::vector<uint8_t> block0 = from_hex("83" "5820" + none + "84" "01020304" "83" "614c" "82" "63696d67" "02" "6173");
    EXPECT_EQ(hashes[0], sha256_of(block0));
    const std::vector<uint8_t> digest0 = from_hex("801741e9688d9cbe0dae3a323bc2fa652dd8be17d8c9edbbb9fc24b15afbf0f1");
    EXPECT_TRUE(std::equal(digest0.begin(), digest0.end(), hashes[0].bytes.begin()));
    // [parent, [5, 6, 7, 8], ["L", ["img", -2]]]: the image began 2 tokens before the block (CBOR 0x21 is -2)
    std::vector<uint8_t> block1 = from_hex("83" "5820");
    block1.insert(block1.end(), hashes[0].bytes.begin(), hashes[0].bytes.end());
    const std::vector<uint8_t> tail = from_hex("84" "05060708" "82" "614c" "82" "63696d67" "21");
    block1.insert(block1.end(), tail.begin(), tail.end());
    EXPECT_EQ(hashes[1], sha256_of(block1));
    EXPECT_EQ(hashes[1].event_value(HashAlgo::kSha256Cbor), 0x1b50d7b028d317c1ull);
}

// vLLM's test_mm_prefix_caching layout (block size 16; images "aaa" at [11, 21), "bbb" at [30, 48),
// "ccc" at [48, 55)), whose blocks carry the keys (("aaa", 11),), (("aaa", -5), ("bbb", 14)),
// (("bbb", -2),), (("ccc", 0),). Placeholder tokens are 151655 here (kvcore takes no negative ids);
// the expected hashes were computed with python3: hashlib.sha256 over the canonical CBOR.
TEST(BlockHash, Sha256CborMatchesVllmsMultimodalPrefixCachingLayout) {
    constexpr int32_t P = 151655;
    std::vector<int32_t> tokens;
    for (int32_t t = 0; t < 10; ++t) tokens.push_back(t);
    tokens.insert(tokens.end(), 10, P);
    for (int32_t t = 10; t < 20; ++t) tokens.push_back(t);
    tokens.insert(tokens.end(), 18, P);
    tokens.insert(tokens.end(), 7, P);
    tokens.insert(tokens.end(), 4, 100);
    tokens.insert(tokens.end(), 5, 8);
    ASSERT_EQ(tokens.size(), 64u);
    ExtraKeys keys;
    keys.multimodal = {{"aaa", 11, 10}, {"bbb", 30, 18}, {"ccc", 48, 7}};
    const BlockHasher hasher(HashAlgo::kSha256Cbor, "42");
    const auto hashes = hasher.hash_blocks(tokens, 16, keys);
    const std::vector<uint64_t> expected{3281066193254685309ull, 7070844193564450206ull, 13977641298074992067ull,
                                         14905706376937063502ull};
    ASSERT_EQ(hashes.size(), expected.size());
    for (size_t i = 0; i < hashes.size(); ++i) EXPECT_EQ(hashes[i].event_value(HashAlgo::kSha256Cbor), expected[i]) << i;
}

// PR #36708's point: one image at two positions of otherwise equal blocks must not share a hash.
TEST(BlockHash, AnItemAtAnotherOffsetInTheBlockHashesDifferently) {
    for (HashAlgo algo : {HashAlgo::kSha256Cbor, HashAlgo::kXxh3}) {
        const BlockHasher hasher(algo, "42");
        const std::vector<int32_t> tokens(16, 7);
        ExtraKeys early, late;
        early.multimodal = {{"img", 2, 4}};
        late.multimodal = {{"img", 6, 4}};
        EXPECT_NE(hasher.hash_blocks(tokens, 16, early)[0], hasher.hash_blocks(tokens, 16, late)[0]) << hash_algo_name(algo);
    }
}

TEST(BlockHash, TaggedDomainsSeparateSaltFromLora) {
    // vLLM's untagged keys make these two requests' first blocks hash alike (vLLM issue #44701).
    const BlockHasher hasher(HashAlgo::kSha256Cbor, "42");
    std::vector<int32_t> tokens(16, 3);
    const ExtraKeys salt = salt_keys("X");
    ExtraKeys lora;
    lora.lora_name = "X";
    EXPECT_EQ(hasher.hash_blocks(tokens, 16, salt)[0], hasher.hash_blocks(tokens, 16, lora)[0]);
    // kvcore's isolation domains keep them apart, and xxh3 hashes tag the kinds.
    EXPECT_NE(salt.domain(), lora.domain());
    EXPECT_NE(salt.domain(), 0u);
    EXPECT_EQ(ExtraKeys{}.domain(), 0u);
    const BlockHasher fast(HashAlgo::kXxh3, "42");
    EXPECT_NE(fast.hash_blocks(tokens, 16, salt)[0], fast.hash_blocks(tokens, 16, lora)[0]);
}
