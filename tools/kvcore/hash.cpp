// SPDX-License-Identifier: Apache-2.0
// `kvcore hash`: the block hashes vLLM publishes in KV events, for token ids from a file or stdin.
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "commands.h"
#include "input.h"
#include "kvcore/kvcore.h"

namespace kvcore::cli {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

// A decimal token id in 0..INT32_MAX, nothing else (no sign, no exponent, no separators).
bool parse_token(const std::string& word, int32_t& out) {
    if (word.empty() || word.size() > 10) return false;
    uint64_t value = 0;
    for (const char c : word) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    if (value > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) return false;
    out = static_cast<int32_t>(value);
    return true;
}

}  // namespace

int run_hash(const HashOptions& o) {
    LineReader reader(o.input);
    if (!reader.open()) {
        std::fprintf(stderr, "kvcore hash: %s: %s\n", reader.name().c_str(), reader.error().c_str());
        return kExitBadInput;
    }
    std::vector<int32_t> tokens;
    std::string line;
    for (;;) {
        const LineReader::Result got = reader.next(line, std::numeric_limits<size_t>::max());
        if (got == LineReader::Result::kEnd) break;
        if (got != LineReader::Result::kLine) {
            std::fprintf(stderr, "kvcore hash: %s:%" PRIu64 ": %s\n", reader.name().c_str(), reader.line_number(),
                         reader.error().c_str());
            return kExitBadInput;
        }
        for (size_t i = 0; i < line.size();) {
            if (is_space(line[i])) {
                ++i;
                continue;
            }
            size_t end = i;
            while (end < line.size() && !is_space(line[end])) ++end;
            const std::string word = line.substr(i, end - i);
            int32_t token = 0;
            if (!parse_token(word, token)) {
                std::fprintf(stderr,
                             "kvcore hash: %s:%" PRIu64 ":%zu: \"%.40s\" is not a token id (a decimal integer in "
                             "0..2147483647; ids are separated by whitespace)\n",
                             reader.name().c_str(), reader.line_number(), i + 1, word.c_str());
                return kExitBadInput;
            }
            tokens.push_back(token);
            i = end;
        }
    }
    if (tokens.empty()) {
        std::fprintf(stderr, "kvcore hash: %s: no token ids\n", reader.name().c_str());
        return kExitBadInput;
    }

    kvc_sequence_options* keys = nullptr;
    if (!ok(kvc_sequence_options_create(&keys), "hash", "options")) return kExitFailure;
    const kvc_hash_algo algo = o.algo == "sha256_cbor" ? KVC_HASH_SHA256_CBOR : KVC_HASH_XXH3;
    bool good = (o.lora.empty() || ok(kvc_sequence_options_set_lora_name(keys, o.lora.c_str()), "hash", "--lora")) &&
                (o.salt.empty() || ok(kvc_sequence_options_set_cache_salt(keys, o.salt.c_str()), "hash", "--salt"));
    size_t n = 0;
    std::vector<uint64_t> hashes;
    good = good && ok(kvc_hash_blocks(algo, o.seed.c_str(), o.block_size, tokens.data(), tokens.size(), keys, nullptr,
                                      0, &n), "hash", "hash_blocks");
    if (good) {
        hashes.resize(n);
        good = ok(kvc_hash_blocks(algo, o.seed.c_str(), o.block_size, tokens.data(), tokens.size(), keys,
                                  hashes.data(), hashes.size(), &n), "hash", "hash_blocks");
    }
    kvc_sequence_options_destroy(keys);
    if (!good) return kExitFailure;
    for (const uint64_t h : hashes) std::printf("%" PRIu64 "\n", h);
    // vLLM hashes full blocks only; say so rather than drop the tail without a word.
    if (const size_t tail = tokens.size() % o.block_size; tail != 0) {
        std::fprintf(stderr, "kvcore hash: the last %zu of %zu tokens fill no whole block of %u: not hashed\n", tail,
                     tokens.size(), o.block_size);
    }
    return kExitOk;
}

}  // namespace kvcore::cli
