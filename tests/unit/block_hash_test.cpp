// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

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
