// SPDX-License-Identifier: Apache-2.0
// Drives a small pool through random sequences of C API calls and checks, after every call, what the
// header promises: blocks are conserved, a failed call changes nothing, ids of freed sequences are
// refused, tables and slots stay inside the pool, a size query is followed by a drain that fits, and no
// call reports an internal error.
#include <algorithm>
#include <cstring>
#include <vector>

#include "fuzz_input.h"
#include "kvcore/kvcore.h"

namespace {

using kvcore::fuzz::FuzzInput;

struct Gauges {
    uint32_t free_blocks, in_use, cached;
    uint64_t sequences;
    bool operator==(const Gauges&) const = default;
};

Gauges gauges_of(const kvc_pool* pool) {
    return {kvc_pool_num_free_blocks(pool), kvc_pool_num_blocks_in_use(pool), kvc_pool_num_cached_blocks(pool),
            kvc_pool_num_sequences(pool)};
}

// A few token values, so that prompts share prefixes and the cache gets hits.
std::vector<int32_t> tokens_from(FuzzInput& in, size_t n) {
    std::vector<int32_t> tokens(n);
    for (auto& t : tokens) t = static_cast<int32_t>(in.below(4));
    return tokens;
}

kvc_sequence_options* sequence_options_from(FuzzInput& in) {
    const uint8_t kind = in.byte() % 6;
    if (kind >= 4) return nullptr;
    kvc_sequence_options* options = nullptr;
    FUZZ_REQUIRE(kvc_sequence_options_create(&options) == KVC_OK);
    if (kind == 0) FUZZ_REQUIRE(kvc_sequence_options_set_cache_salt(options, in.byte() % 2 ? "a" : "b") == KVC_OK);
    if (kind == 1) FUZZ_REQUIRE(kvc_sequence_options_set_lora_name(options, "adapter") == KVC_OK);
    if (kind == 2) {
        const uint64_t offset = in.below(16), length = 1 + in.below(8);
        FUZZ_REQUIRE(kvc_sequence_options_add_multimodal(options, in.byte() % 2 ? "img-1" : "img-2", offset, length) ==
                     KVC_OK);
    }
    if (kind == 3) {
        const kvc_status st = kvc_sequence_options_set_priority(options, in.below(120), in.byte() % 2 ? 0 : in.u64());
        FUZZ_REQUIRE(st == KVC_OK || st == KVC_ERR_INVALID_ARGUMENT);
    }
    return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzInput in(data, size);
    kvc_pool_options* options = nullptr;
    FUZZ_REQUIRE(kvc_pool_options_create(&options) == KVC_OK);
    const uint32_t num_blocks = 2 + in.below(40), block_size = 1 + in.below(6);
    FUZZ_REQUIRE(kvc_pool_options_set_num_blocks(options, num_blocks) == KVC_OK);
    FUZZ_REQUIRE(kvc_pool_options_set_block_size(options, block_size) == KVC_OK);
    FUZZ_REQUIRE(kvc_pool_options_set_hash(options, in.byte() % 2 ? KVC_HASH_SHA256_CBOR : KVC_HASH_XXH3, "42") == KVC_OK);
    FUZZ_REQUIRE(kvc_pool_options_set_sliding_window(options, in.byte() % 3 == 0 ? in.below(20) : 0) == KVC_OK);
    FUZZ_REQUIRE(kvc_pool_options_set_prefix_caching(options, in.byte() % 4 != 0) == KVC_OK);
    const bool events = in.byte() % 2 != 0;
    FUZZ_REQUIRE(kvc_pool_options_set_events(options, events, "GPU", 64) == KVC_OK);
    kvc_pool* pool = nullptr;
    FUZZ_REQUIRE(kvc_pool_create(options, &pool) == KVC_OK);
    kvc_pool_options_destroy(options);

    std::vector<kvc_sequence_id> live, freed;
    std::vector<int32_t> raw_blocks;
    auto pick = [&](std::vector<kvc_sequence_id>& ids) { return ids[in.below(static_cast<uint32_t>(ids.size()))]; };

    for (int step = 0; step < 200 && !in.done(); ++step) {
        const Gauges before = gauges_of(pool);
        kvc_status st = KVC_OK;
        const uint8_t op = in.byte() % 16;
        const bool needs_sequence = (op >= 1 && op <= 7) || op >= 14;
        if (needs_sequence && live.empty()) continue;
        const kvc_sequence_id seq = live.empty() ? 0 : pick(live);
        switch (op) {
            case 0: {  // a new request
                const auto prompt = tokens_from(in, 1 + in.below(24));
                kvc_sequence_options* seq_options = sequence_options_from(in);
                kvc_sequence_id id = 0;
                st = kvc_pool_sequence_create(pool, prompt.data(), prompt.size(), seq_options, &id);
                kvc_sequence_options_destroy(seq_options);
                if (st == KVC_OK) live.push_back(id);
                break;
            }
            case 1: {
                size_t cached = SIZE_MAX, prefix = SIZE_MAX;
                FUZZ_REQUIRE(kvc_pool_cached_prefix(pool, seq, &prefix) == KVC_OK);
                st = kvc_pool_allocate(pool, seq, 1 + in.below(32), &cached);
                break;
            }
            case 2: {
                const auto more = tokens_from(in, 1 + in.below(8));
                st = kvc_pool_append(pool, seq, more.data(), more.size());
                break;
            }
            case 3: {
                kvc_sequence_id child = 0;
                st = kvc_pool_fork(pool, seq, &child);
                if (st == KVC_OK) live.push_back(child);
                break;
            }
            case 4: {
                kvc_sequence_id pin = 0;
                st = kvc_pool_pin_prefix(pool, seq, &pin);
                if (st == KVC_OK) live.push_back(pin);
                break;
            }
            case 5:
                FUZZ_REQUIRE(kvc_pool_sequence_free(pool, seq) == KVC_OK);
                live.erase(std::find(live.begin(), live.end(), seq));
                freed.push_back(seq);
                break;
            case 6: {
                size_t count = 0, tokens = 0;
                FUZZ_REQUIRE(kvc_pool_block_table(pool, seq, nullptr, 0, &count) == KVC_OK);
                FUZZ_REQUIRE(kvc_pool_sequence_tokens(pool, seq, &tokens) == KVC_OK);
                FUZZ_REQUIRE(count == (tokens + block_size - 1) / block_size);
                std::vector<int32_t> table(count + 1, -7);
                FUZZ_REQUIRE(kvc_pool_block_table(pool, seq, table.data(), table.size(), &count) == KVC_OK);
                for (size_t i = 0; i < count; ++i) FUZZ_REQUIRE(table[i] >= 0 && uint32_t(table[i]) < num_blocks);
                FUZZ_REQUIRE(table[count] == -7);
                if (tokens > 0) {
                    std::vector<int64_t> slots(tokens);
                    FUZZ_REQUIRE(kvc_pool_slot_mapping(pool, seq, 0, slots.data(), tokens) == KVC_OK);
                    for (size_t i = 0; i < tokens; ++i) {
                        FUZZ_REQUIRE(slots[i] == -1 || (slots[i] >= 0 && uint64_t(slots[i]) < uint64_t(num_blocks) * block_size));
                        FUZZ_REQUIRE(slots[i] == -1 || slots[i] / block_size == table[i / block_size]);
                    }
                }
                break;
            }
            case 7: {
                size_t pending = 0;
                FUZZ_REQUIRE(kvc_pool_drain_copies(pool, nullptr, 0, &pending) == KVC_OK);
                std::vector<int32_t> pairs(2 * pending + 2);
                FUZZ_REQUIRE(kvc_pool_drain_copies(pool, pairs.data(), pending, &pending) == KVC_OK);
                for (size_t i = 0; i < 2 * pending; ++i) FUZZ_REQUIRE(pairs[i] > 0 && uint32_t(pairs[i]) < num_blocks);
                break;
            }
            case 8: {  // a freed id is refused, never reused for another sequence
                if (freed.empty()) break;
                size_t tokens = 0;
                st = kvc_pool_sequence_tokens(pool, pick(freed), &tokens);
                FUZZ_REQUIRE(st == KVC_ERR_INVALID_STATE || st == KVC_ERR_INVALID_ARGUMENT);
                st = kvc_pool_sequence_free(pool, pick(freed));
                FUZZ_REQUIRE(st == KVC_ERR_INVALID_STATE || st == KVC_ERR_INVALID_ARGUMENT);
                break;
            }
            case 9: {
                std::vector<int32_t> blocks(1 + in.below(6));
                st = kvc_pool_allocate_blocks(pool, blocks.data(), blocks.size());
                if (st == KVC_OK) raw_blocks.insert(raw_blocks.end(), blocks.begin(), blocks.end());
                break;
            }
            case 10: {
                if (raw_blocks.empty()) break;
                const size_t n = 1 + in.below(static_cast<uint32_t>(raw_blocks.size()));
                const bool twice = in.byte() % 8 == 0;  // a double free frees nothing
                std::vector<int32_t> blocks(raw_blocks.end() - n, raw_blocks.end());
                if (twice) blocks.push_back(blocks.front());
                st = kvc_pool_free_blocks(pool, blocks.data(), blocks.size());
                FUZZ_REQUIRE((st == KVC_OK) != twice);
                if (st == KVC_OK) raw_blocks.resize(raw_blocks.size() - n);
                break;
            }
            case 11:
                st = kvc_pool_reset_prefix_cache(pool);
                FUZZ_REQUIRE(st == KVC_OK || st == KVC_ERR_INVALID_STATE);
                break;
            case 12: {
                size_t length = 0;
                const kvc_event_encoding encoding = in.byte() % 2 ? KVC_EVENTS_MAP : KVC_EVENTS_ARRAY;
                st = kvc_pool_drain_events(pool, encoding, nullptr, 0, &length);
                if (!events) {
                    FUZZ_REQUIRE(st == KVC_ERR_INVALID_STATE);
                    break;
                }
                FUZZ_REQUIRE(st == KVC_OK && length > 0);
                std::vector<uint8_t> buf(length);
                FUZZ_REQUIRE(kvc_pool_drain_events(pool, encoding, buf.data(), buf.size(), &length) == KVC_OK);
                FUZZ_REQUIRE(length == buf.size());
                st = KVC_OK;
                break;
            }
            case 13: {
                kvc_stats* stats = nullptr;
                FUZZ_REQUIRE(kvc_pool_snapshot(pool, &stats) == KVC_OK);
                FUZZ_REQUIRE(kvc_stats_tokens_hit(stats) <= kvc_stats_tokens_queried(stats));
                FUZZ_REQUIRE(kvc_stats_bytes_in_use(stats) <= kvc_stats_peak_bytes(stats));
                size_t length = 0;
                FUZZ_REQUIRE(kvc_stats_to_prometheus(stats, nullptr, 0, &length) == KVC_OK);
                std::vector<char> text(length + 1);
                FUZZ_REQUIRE(kvc_stats_to_prometheus(stats, text.data(), text.size(), &length) == KVC_OK);
                kvc_stats_destroy(stats);
                break;
            }
            default: {  // tokens and slots of a sequence past its end are refused
                size_t tokens = 0;
                FUZZ_REQUIRE(kvc_pool_sequence_tokens(pool, seq, &tokens) == KVC_OK);
                int64_t slot = 0;
                FUZZ_REQUIRE(kvc_pool_slot_mapping(pool, seq, tokens, &slot, 1) == KVC_ERR_OUT_OF_RANGE);
                break;
            }
        }
        FUZZ_REQUIRE(st != KVC_ERR_INTERNAL && st != KVC_ERR_NO_MEMORY);
        const Gauges after = gauges_of(pool);
        FUZZ_REQUIRE(after.free_blocks + after.in_use == num_blocks - 1);
        FUZZ_REQUIRE(after.sequences == live.size());
        if (st != KVC_OK) FUZZ_REQUIRE(after == before);
    }
    kvc_pool_destroy(pool);
    return 0;
}
