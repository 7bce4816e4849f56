#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

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
