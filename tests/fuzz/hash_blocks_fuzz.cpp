// SPDX-License-Identifier: Apache-2.0
// kvc_hash_blocks on random tokens, block sizes and extra keys (LoRA, salt, multimodal items). Checks
// that hashes chain (the hashes of a prompt's first k blocks are the first k hashes of the whole
// prompt, whatever follows), that a size query and the fill agree, that a call is deterministic, and
// that a cache salt changes every block's hash.
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "kvcore/kvcore.h"

using kvcore::fuzz::FuzzInput;

namespace {

std::vector<uint64_t> hash(kvc_hash_algo algo, uint32_t block_size, const std::vector<int32_t>& tokens, size_t n,
                           const kvc_sequence_options* options) {
    size_t count = 0;
    FUZZ_REQUIRE(kvc_hash_blocks(algo, "42", block_size, tokens.data(), n, options, nullptr, 0, &count) == KVC_OK);
    FUZZ_REQUIRE(count == n / block_size);
    std::vector<uint64_t> hashes(count);
    size_t filled = 0;
    FUZZ_REQUIRE(kvc_hash_blocks(algo, "42", block_size, tokens.data(), n, options, hashes.data(), hashes.size(),
                                 &filled) == KVC_OK);
    FUZZ_REQUIRE(filled == count);
    return hashes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzInput in(data, size);
    const kvc_hash_algo algo = in.byte() % 2 ? KVC_HASH_SHA256_CBOR : KVC_HASH_XXH3;
    const uint32_t block_size = 1 + in.below(8);
    std::vector<int32_t> tokens(in.below(64));
    for (auto& t : tokens) t = static_cast<int32_t>(in.below(1000));

    kvc_sequence_options* options = nullptr;
    FUZZ_REQUIRE(kvc_sequence_options_create(&options) == KVC_OK);
    if (in.byte() % 2) FUZZ_REQUIRE(kvc_sequence_options_set_lora_name(options, "lora") == KVC_OK);
    uint64_t next_offset = 0;
    for (uint32_t items = in.below(4); items > 0; --items) {
        const uint64_t offset = next_offset + in.below(10), length = in.below(12);
        const std::string id = "mm-" + std::to_string(in.below(3));
        const kvc_status st = kvc_sequence_options_add_multimodal(options, id.c_str(), offset, length);
        FUZZ_REQUIRE(st == (length == 0 ? KVC_ERR_INVALID_ARGUMENT : KVC_OK));
        if (st == KVC_OK) next_offset = offset + length;
    }

    const std::vector<uint64_t> full = hash(algo, block_size, tokens, tokens.size(), options);
    FUZZ_REQUIRE(hash(algo, block_size, tokens, tokens.size(), options) == full);
    const size_t prefix_blocks = full.empty() ? 0 : in.below(static_cast<uint32_t>(full.size()) + 1);
    const std::vector<uint64_t> prefix = hash(algo, block_size, tokens, prefix_blocks * block_size, options);
    FUZZ_REQUIRE(std::vector<uint64_t>(full.begin(), full.begin() + prefix_blocks) == prefix);

    if (!full.empty() && algo == KVC_HASH_SHA256_CBOR) {
        FUZZ_REQUIRE(kvc_sequence_options_set_cache_salt(options, "tenant") == KVC_OK);
        const std::vector<uint64_t> salted = hash(algo, block_size, tokens, tokens.size(), options);
        for (size_t i = 0; i < full.size(); ++i) FUZZ_REQUIRE(salted[i] != full[i]);
    }
    kvc_sequence_options_destroy(options);
    return 0;
}
