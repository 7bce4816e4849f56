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

// One extra key of a block as vLLM lists it: a text (LoRA name, cache salt) or a multimodal pair
// (identifier, item offset - block start; negative when the item began in an earlier block).
struct ExtraKey {
    enum class Kind : uint8_t { kLoraName, kMultimodal, kCacheSalt };
    Kind kind;
    const std::string* text;
    int64_t offset = 0;  // kMultimodal only
};

// Calls fn(const ExtraKey&) for each extra key of the block of tokens [begin, end), in vLLM's order
// (generate_block_hash_extra_keys after PR #36708): the LoRA name, one pair per multimodal item the
// block overlaps (a block that starts where an item ends has none for it), the cache salt (block 0
// only). vLLM appends prompt-embeds hashes last; kvcore takes no prompt embeds. One definition for the
// hashes and the events' extra_keys, so what a router recomputes is what was hashed.
// Calls fn(const MultimodalItem&) for each multimodal item overlapping tokens [begin, end), in order (a
// block that starts where an item ends does not overlap it).
template <class Fn>
void for_each_overlapping_item(const ExtraKeys& keys, uint64_t begin, uint64_t end, Fn&& fn) {
    for (const MultimodalItem& item : keys.multimodal) {
        if (item.offset >= end) break;  // sorted by offset
        if (item.offset + item.length > begin) fn(item);
    }
}

template <class Fn>
void for_each_extra_key(const ExtraKeys& keys, uint64_t begin, uint64_t end, Fn&& fn) {
    if (!keys.lora_name.empty()) fn(ExtraKey{ExtraKey::Kind::kLoraName, &keys.lora_name});
    for_each_overlapping_item(keys, begin, end, [&](const MultimodalItem& item) {
        fn(ExtraKey{ExtraKey::Kind::kMultimodal, &item.hash,
                    static_cast<int64_t>(item.offset) - static_cast<int64_t>(begin)});
    });
    if (begin == 0 && !keys.cache_salt.empty()) fn(ExtraKey{ExtraKey::Kind::kCacheSalt, &keys.cache_salt});
}

// Writes the extra keys of the block of tokens [begin, end) as vLLM serialises its tuple: null when there
// are none, else an array of texts and [identifier, offset] pairs. One writer for the sha256_cbor hash
// input (CBOR) and the events' extra_keys (msgpack): Out has null(), array(n), text(s), integer(i).
template <class Out>
void write_extra_keys(Out& out, const ExtraKeys& keys, uint64_t begin, uint64_t end) {
    size_t n = 0;
    for_each_extra_key(keys, begin, end, [&](const ExtraKey&) { ++n; });
    if (n == 0) {
        out.null();
        return;
    }
    out.array(n);
    for_each_extra_key(keys, begin, end, [&](const ExtraKey& key) {
        if (key.kind == ExtraKey::Kind::kMultimodal) {
            out.array(2);
            out.text(*key.text);
            out.integer(key.offset);
        } else {
            out.text(*key.text);
        }
    });
}

// The keys that can apply to blocks [begin, end): the LoRA name, the salt when begin is 0, and the
// multimodal items overlapping the range. What an event keeps to list its blocks' keys.
[[nodiscard]] ExtraKeys keys_for_range(const ExtraKeys& keys, uint64_t begin, uint64_t end);

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
