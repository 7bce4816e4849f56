/* SPDX-License-Identifier: Apache-2.0 */
// Chained block hashes for prefix caching. Block i's hash covers its parent's hash, its tokens and the
// request's extra keys, so equal hashes mean equal prefixes. Two algorithms:
//   - sha256_cbor: byte-exact with vLLM (sha256 of canonical CBOR [parent, tokens, extra_keys|null]);
//   - xxh3: xxh3-128 over a binary encoding, for embedders that need no vLLM compatibility (the default).
// vLLM concatenates extra keys untagged, so a cache salt "X" and a LoRA "X" hash alike there; kvcore
// therefore also keys the prefix cache by an isolation domain built from tagged keys (see Domain()).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace kvcore::pool {

enum class HashAlgo : uint32_t { kXxh3 = 0, kSha256Cbor = 1 };

// A 32-byte digest (xxh3 fills the first 16 bytes and zeroes the rest).
struct BlockHash {
    std::array<uint8_t, 32> bytes{};

    // The 64-bit value published in KV events: vLLM takes the digest's last 8 bytes, big-endian; xxh3's
    // is its low 64 bits.
    [[nodiscard]] uint64_t event_value(HashAlgo algo) const noexcept;
    friend bool operator==(const BlockHash&, const BlockHash&) = default;
};

// A multimodal input: its content hash and the token positions it occupies.
struct MultimodalItem {
    std::string hash;
    uint64_t offset = 0;
    uint64_t length = 0;
};

// Everything besides the tokens that makes two prefixes different.
struct ExtraKeys {
    std::string lora_name;   // empty: none
    std::string cache_salt;  // empty: none; enters block 0 only, as in vLLM
    std::vector<MultimodalItem> multimodal;  // sorted by offset

    // No key at all: the common case, whose blocks hash on tokens alone.
    [[nodiscard]] bool empty() const noexcept { return lora_name.empty() && cache_salt.empty() && multimodal.empty(); }

    // The isolation domain: a tagged digest of the LoRA and the salt. Blocks are shared only within one
    // domain, whatever the hash algorithm, so different salts never share a block (CVE-2025-46570).
    [[nodiscard]] uint64_t domain() const noexcept;
};

class BlockHasher {
public:
    // seed: vLLM's hash seed (PYTHONHASHSEED-like string, "42" in its tests); NONE_HASH derives from it.
    BlockHasher(HashAlgo algo, const std::string& seed);

    [[nodiscard]] HashAlgo algo() const noexcept { return algo_; }
    [[nodiscard]] const BlockHash& none_hash() const noexcept { return none_hash_; }

    // Hash of the block holding tokens[first_token, first_token + tokens.size()), whose parent is
    // `parent` (none_hash() for block 0). Token ids must be >= 0.
    [[nodiscard]] BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> tokens, uint64_t first_token,
                                       const ExtraKeys& keys) const;

    // Hashes of every full block of tokens, chained from none_hash().
    [[nodiscard]] std::vector<BlockHash> hash_blocks(std::span<const int32_t> tokens, uint32_t block_size,
                                                     const ExtraKeys& keys) const;
    // Extends `hashes`, the chain of tokens' first hashes.size() blocks, to its first full_blocks blocks
    // (tokens must hold them all). How a growing sequence hashes the blocks it fills.
    void extend_chain(std::vector<BlockHash>& hashes, std::span<const int32_t> tokens, uint32_t block_size,
                      const ExtraKeys& keys, size_t full_blocks) const;

private:
    HashAlgo algo_;
    BlockHash none_hash_;
};

// Parses "sha256_cbor" / "xxh3"; throws kvcore::Error(INVALID_ARGUMENT) otherwise.
HashAlgo parse_hash_algo(const std::string& name);
const char* hash_algo_name(HashAlgo algo) noexcept;

}  // namespace kvcore::pool
