// SPDX-License-Identifier: Apache-2.0
#include "pool/block_hash.h"

#define OPENSSL_SUPPRESS_DEPRECATED  // SHA256_Init & co.: the SHA-NI path without EVP's per-call fetch
#include <openssl/sha.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/error.h"

namespace kvcore::pool {

namespace {

// ---- canonical CBOR (RFC 8949 §4.2.1: shortest heads), just the types vLLM's hash input uses ----
// Writes through a raw pointer into a buffer reserved for the worst case: a block's encoding is built
// once per block on the hashing hot path.
class Cbor {
public:
    void reset(size_t max_bytes) {
        if (max_bytes <= sizeof small_) {
            begin_ = small_;
        } else {
            if (heap_.size() < max_bytes) heap_.resize(max_bytes);
            begin_ = heap_.data();
        }
        p_ = begin_;
    }
    void head(uint8_t major, uint64_t value) {
        const uint8_t m = static_cast<uint8_t>(major << 5);
        if (value < 24) {
            *p_++ = static_cast<uint8_t>(m | value);
        } else if (value <= 0xff) {
            *p_++ = m | 24;
            *p_++ = static_cast<uint8_t>(value);
        } else if (value <= 0xffff) {
            *p_++ = m | 25;
            put_be(value, 2);
        } else if (value <= 0xffffffffu) {
            *p_++ = m | 26;
            put_be(value, 4);
        } else {
            *p_++ = m | 27;
            put_be(value, 8);
        }
    }
    void uint(uint64_t v) { head(0, v); }
    // Major type 1 holds -1 - v for a negative v, as cbor2 writes a negative int.
    void integer(int64_t v) { v >= 0 ? head(0, static_cast<uint64_t>(v)) : head(1, ~static_cast<uint64_t>(v)); }
    void bytes(const uint8_t* data, size_t n) {
        head(2, n);
        std::memcpy(p_, data, n);
        p_ += n;
    }
    void text(const std::string& s) {
        head(3, s.size());
        std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
    }
    void array(size_t n) { head(4, n); }
    void null() { *p_++ = 0xf6; }
    [[nodiscard]] const uint8_t* data() const { return begin_; }
    [[nodiscard]] size_t size() const { return static_cast<size_t>(p_ - begin_); }

private:
    void put_be(uint64_t v, int n) {
        for (int i = n - 1; i >= 0; --i) *p_++ = static_cast<uint8_t>(v >> (8 * i));
    }
    uint8_t small_[512];  // a 16-token block needs ~80 bytes: no allocation, no thread-local
    std::vector<uint8_t> heap_;
    uint8_t* begin_ = small_;
    uint8_t* p_ = small_;
};

BlockHash sha256(const Cbor& cbor) {
    BlockHash h;
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, cbor.data(), cbor.size());
    SHA256_Final(h.bytes.data(), &ctx);
    return h;
}

// kvcore's tagged encoding of one key: kind, length, bytes.
void tagged(XXH3_state_t* state, char kind, const std::string& value) {
    const uint64_t len = value.size();
    XXH3_64bits_update(state, &kind, 1);
    XXH3_64bits_update(state, &len, sizeof len);
    XXH3_64bits_update(state, value.data(), value.size());
}

// ---- xxh3: parent (16 bytes) | keys digest (8 bytes) | tokens (4 bytes each, little-endian) ----

// Read as two words: the parent was just stored as two words, and one 16-byte load of it would miss
// store forwarding (a ~15-cycle stall per block on the chain).
XXH128_hash_t to_xxh3(const BlockHash& h) noexcept {
    XXH128_hash_t d;
    std::memcpy(&d.low64, h.bytes.data(), 8);
    std::memcpy(&d.high64, h.bytes.data() + 8, 8);
    return d;
}

// Written in place as two words: building a BlockHash on the stack and copying it would reload the
// two 8-byte stores as one 16-byte load, which misses store forwarding. The other 16 bytes stay as
// BlockHash's initialiser left them: zero.
void put_xxh3(BlockHash& h, XXH128_hash_t d) noexcept {
    std::memcpy(h.bytes.data(), &d.low64, 8);
    std::memcpy(h.bytes.data() + 8, &d.high64, 8);
}

// The block's extra keys, each tagged with its kind; a multimodal key also carries its offset in the
// block, so one item at two positions of otherwise equal blocks gives two hashes (as in vLLM).
[[gnu::noinline]] uint64_t xxh3_keys_digest_slow(const ExtraKeys& keys, uint64_t begin, uint64_t end) {
    bool any = false;
    for_each_extra_key(keys, begin, end, [&](const ExtraKey&) { any = true; });
    if (!any) return 0;
    XXH3_state_t state;
    XXH3_64bits_reset(&state);
    for_each_extra_key(keys, begin, end, [&](const ExtraKey& key) {
        switch (key.kind) {
            case ExtraKey::Kind::kLoraName: tagged(&state, 'L', *key.text); break;
            case ExtraKey::Kind::kMultimodal:
                tagged(&state, 'M', *key.text);
                XXH3_64bits_update(&state, &key.offset, sizeof key.offset);
                break;
            case ExtraKey::Kind::kCacheSalt: tagged(&state, 'S', *key.text); break;
        }
    });
    const uint64_t d = XXH3_64bits_digest(&state);
    return d == 0 ? 1 : d;  // 0 stands for "no key"
}

// 0 when no key applies to the block, so such blocks hash as unkeyed ones.
inline uint64_t xxh3_keys_digest(const ExtraKeys& keys, uint64_t begin, uint64_t end) {
    return keys.empty() ? 0 : xxh3_keys_digest_slow(keys, begin, end);
}

// Blocks longer than xxh3_block's stack buffer stream. Out of line: its 576-byte state would otherwise
// enlarge every block's stack frame.
[[gnu::noinline]] XXH128_hash_t xxh3_block_streamed(XXH128_hash_t parent, uint64_t keys_digest,
                                                     std::span<const int32_t> tokens) noexcept {
    XXH3_state_t state;
    XXH3_128bits_reset(&state);
    const uint64_t head[3] = {parent.low64, parent.high64, keys_digest};
    XXH3_128bits_update(&state, head, sizeof head);
    XXH3_128bits_update(&state, tokens.data(), tokens.size_bytes());
    return XXH3_128bits_digest(&state);
}

inline XXH128_hash_t xxh3_block(XXH128_hash_t parent, uint64_t keys_digest, std::span<const int32_t> tokens) noexcept {
    constexpr size_t kInline = 64;  // tokens hashed from a stack buffer
    if (tokens.size() > kInline) return xxh3_block_streamed(parent, keys_digest, tokens);
    uint8_t buf[24 + 4 * kInline];
    std::memcpy(buf, &parent.low64, 8);
    std::memcpy(buf + 8, &parent.high64, 8);
    std::memcpy(buf + 16, &keys_digest, 8);
    // Fixed-size moves, inlined, instead of a memcpy call of unknown size: 64 bytes at a time (one
    // 16-token block in one step), then 16.
    const auto* src = reinterpret_cast<const uint8_t*>(tokens.data());
    const size_t bytes = tokens.size_bytes();
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) std::memcpy(buf + 24 + i, src + i, 64);
    for (; i + 16 <= bytes; i += 16) std::memcpy(buf + 24 + i, src + i, 16);
    if (i < bytes) std::memcpy(buf + 24 + i, src + i, bytes - i);
    return XXH3_128bits(buf, 24 + bytes);
}

}  // namespace

uint64_t BlockHash::event_value(HashAlgo algo) const noexcept {
    uint64_t v = 0;
    if (algo == HashAlgo::kSha256Cbor) {
        for (int i = 24; i < 32; ++i) v = v << 8 | bytes[i];
    } else {
        std::memcpy(&v, bytes.data(), sizeof v);
    }
    return v;
}

uint64_t ExtraKeys::domain() const noexcept {
    if (lora_name.empty() && cache_salt.empty()) return 0;
    XXH3_state_t state;
    XXH3_64bits_reset(&state);
    tagged(&state, 'L', lora_name);
    tagged(&state, 'S', cache_salt);
    const uint64_t d = XXH3_64bits_digest(&state);
    return d == 0 ? 1 : d;  // 0 is the domain of requests without LoRA or salt
}

ExtraKeys keys_for_range(const ExtraKeys& keys, uint64_t begin, uint64_t end) {
    ExtraKeys out;
    out.lora_name = keys.lora_name;
    if (begin == 0) out.cache_salt = keys.cache_salt;
    for_each_overlapping_item(keys, begin, end, [&](const MultimodalItem& item) { out.multimodal.push_back(item); });
    return out;
}

HashAlgo parse_hash_algo(const std::string& name) {
    if (name == "sha256_cbor") return HashAlgo::kSha256Cbor;
    if (name == "xxh3") return HashAlgo::kXxh3;
    fail(KVC_ERR_INVALID_ARGUMENT, "unknown hash algorithm \"" + name + "\": use sha256_cbor or xxh3");
}

const char* hash_algo_name(HashAlgo algo) noexcept { return algo == HashAlgo::kSha256Cbor ? "sha256_cbor" : "xxh3"; }

BlockHasher::BlockHasher(HashAlgo algo, const std::string& seed) : algo_(algo) {
    if (algo == HashAlgo::kSha256Cbor) {
        Cbor cbor;
        cbor.reset(9 + seed.size());
        cbor.text(seed);
        none_hash_ = sha256(cbor);
    } else {
        const XXH128_hash_t h = XXH3_128bits(seed.data(), seed.size());
        std::memcpy(none_hash_.bytes.data(), &h.low64, 8);
        std::memcpy(none_hash_.bytes.data() + 8, &h.high64, 8);
    }
}

BlockHash BlockHasher::hash_block(const BlockHash& parent, std::span<const int32_t> tokens, uint64_t first_token,
                                  const ExtraKeys& keys) const {
    const uint64_t end = first_token + tokens.size();
    if (algo_ == HashAlgo::kSha256Cbor) {
        Cbor cbor;
        // Worst case: heads of 9 bytes, 32-byte parent, 9 bytes per token, and every key (a multimodal
        // pair: array head, text, integer).
        size_t max_bytes = 9 + 9 + 32 + 9 + 9 * tokens.size() + 9 + 9 + keys.lora_name.size() + keys.cache_salt.size() + 9;
        for (const MultimodalItem& m : keys.multimodal) max_bytes += 1 + 9 + m.hash.size() + 9;
        cbor.reset(max_bytes);
        cbor.array(3);
        cbor.bytes(parent.bytes.data(), parent.bytes.size());
        cbor.array(tokens.size());
        for (int32_t t : tokens) cbor.uint(static_cast<uint32_t>(t));
        write_extra_keys(cbor, keys, first_token, end);  // vLLM's extra keys tuple (None when empty)
        return sha256(cbor);
    }

    BlockHash h;
    put_xxh3(h, xxh3_block(to_xxh3(parent), xxh3_keys_digest(keys, first_token, end), tokens));
    return h;
}

std::vector<BlockHash> BlockHasher::hash_blocks(std::span<const int32_t> tokens, uint32_t block_size,
                                                const ExtraKeys& keys) const {
    std::vector<BlockHash> hashes;
    extend_chain(hashes, tokens, block_size, keys, tokens.size() / block_size);
    return hashes;
}

void BlockHasher::extend_chain(std::vector<BlockHash>& hashes, std::span<const int32_t> tokens, uint32_t block_size,
                               const ExtraKeys& keys, size_t full_blocks) const {
    size_t i = hashes.size();
    if (full_blocks <= i) return;
    hashes.resize(full_blocks);  // zeroed digests, filled in place
    if (algo_ == HashAlgo::kXxh3) {
        // The chain stays in registers: each digest feeds the next without a round trip through memory.
        // Whether keys apply is decided once: the digests' byte stores could alias the strings, so the
        // compiler would re-read them every block.
        XXH128_hash_t parent = to_xxh3(i == 0 ? none_hash_ : hashes[i - 1]);
        const bool keyed = !keys.empty();
        const int32_t* block = tokens.data() + i * block_size;
        BlockHash* out = hashes.data() + i;
        for (; i < full_blocks; ++i, block += block_size, ++out) {
            const uint64_t first = i * block_size;
            const uint64_t keys_digest = keyed ? xxh3_keys_digest_slow(keys, first, first + block_size) : 0;
            parent = xxh3_block(parent, keys_digest, std::span<const int32_t>(block, block_size));
            put_xxh3(*out, parent);
        }
        return;
    }
    for (; i < full_blocks; ++i) {
        hashes[i] = hash_block(i == 0 ? none_hash_ : hashes[i - 1], tokens.subspan(i * block_size, block_size),
                               i * block_size, keys);
    }
}

}  // namespace kvcore::pool
