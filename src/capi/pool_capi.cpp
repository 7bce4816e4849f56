// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/pool.h: argument checks, handle casts, exception translation. No logic.
#include "kvcore/pool.h"

#include <cstring>
#include <limits>
#include <string>

#include "capi/eviction.h"
#include "capi/guard.h"
#include "capi/pool_handles.h"
#include "capi/stats_handles.h"
#include "pool/pool.h"

namespace pool = kvcore::pool;
using kvcore::fail;
using kvcore::capi::checked_enum;
using kvcore::capi::copy_array_out;
using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::make_handle;
using kvcore::capi::is_size_query;
using kvcore::capi::require_capacity;
using kvcore::capi::reject;

struct kvc_pool_options {
    pool::PoolConfig config;
};

void kvcore::capi::set_pool_eviction_for_tools(kvc_pool_options* o, kvcore::eviction::Kind kind) { o->config.eviction = kind; }

extern "C" {

// ---- pool options ----

kvc_status kvc_pool_options_create(kvc_pool_options** out) {
    return make_handle(out, [&] { return new kvc_pool_options(); });
}
void kvc_pool_options_destroy(kvc_pool_options* options) { delete options; }

kvc_status kvc_pool_options_set_num_blocks(kvc_pool_options* o, uint32_t n) {
    return edit_validated(o, [&](pool::PoolConfig& c) { c.num_blocks = n; });
}
kvc_status kvc_pool_options_set_block_size(kvc_pool_options* o, uint32_t tokens) {
    return edit_validated(o, [&](pool::PoolConfig& c) { c.block_size = tokens; });
}
kvc_status kvc_pool_options_set_model_shape(kvc_pool_options* o, uint32_t layers, uint32_t kv_heads,
                                            uint32_t head_dim, kvc_dtype dtype) {
    return edit_validated(o, [&](pool::PoolConfig& c) {
        c.layers = layers;
        c.kv_heads = kv_heads;
        c.head_dim = head_dim;
        c.dtype = checked_enum<pool::DType>(dtype, KVC_DTYPE_INT8, "dtype");
    });
}
kvc_status kvc_pool_options_set_memory(kvc_pool_options* o, kvc_memory memory) {
    return edit_validated(o, [&](pool::PoolConfig& c) {
        c.memory = checked_enum<pool::Memory>(memory, KVC_MEMORY_DEVICE, "memory kind");
    });
}
kvc_status kvc_pool_options_set_hash(kvc_pool_options* o, kvc_hash_algo algo, const char* seed) {
    KVC_REQUIRE_HANDLE(seed, "seed");
    return edit_validated(o, [&](pool::PoolConfig& c) {
        c.hash_algo = checked_enum<pool::HashAlgo>(algo, KVC_HASH_SHA256_CBOR, "hash algorithm");
        c.hash_seed = seed;
    });
}
kvc_status kvc_pool_options_set_eviction_policy(kvc_pool_options* o, kvc_eviction_policy policy) {
    return edit_validated(o, [&](pool::PoolConfig& c) { c.eviction = kvcore::capi::eviction_kind(policy); });
}
kvc_status kvc_pool_options_set_prefix_caching(kvc_pool_options* o, uint32_t enabled) {
    return edit_validated(o, [&](pool::PoolConfig& c) { c.prefix_caching = enabled != 0; });
}
kvc_status kvc_pool_options_set_sliding_window(kvc_pool_options* o, uint32_t tokens) {
    return edit_validated(o, [&](pool::PoolConfig& c) { c.sliding_window = tokens; });
}
kvc_status kvc_pool_options_set_events(kvc_pool_options* o, uint32_t enabled, const char* medium, uint32_t max_pending) {
    KVC_REQUIRE_HANDLE(medium, "medium");
    return edit_validated(o, [&](pool::PoolConfig& c) {
        c.events = enabled != 0;
        c.event_medium = medium;
        c.max_pending_events = max_pending;
    });
}
kvc_status kvc_pool_options_set_window_requests(kvc_pool_options* o, uint32_t requests) {
    return edit_validated(o, [&](pool::PoolConfig& c) { c.window_requests = requests; });
}

kvc_status kvc_pool_options_set_statistics(kvc_pool_options* o, uint32_t enabled) {
    return edit_validated(o, [&](pool::PoolConfig& c) { c.statistics = enabled != 0; });
}

// ---- sequence options ----

kvc_status kvc_sequence_options_create(kvc_sequence_options** out) {
    return make_handle(out, [&] { return new kvc_sequence_options(); });
}
void kvc_sequence_options_destroy(kvc_sequence_options* options) { delete options; }

kvc_status kvc_sequence_options_set_lora_name(kvc_sequence_options* o, const char* lora_name) {
    KVC_REQUIRE_HANDLE(o, "options");
    KVC_REQUIRE_HANDLE(lora_name, "lora_name");
    return guard([&] { o->options.keys.lora_name = lora_name; });
}
kvc_status kvc_sequence_options_set_lora_id(kvc_sequence_options* o, int64_t lora_id) {
    KVC_REQUIRE_HANDLE(o, "options");
    if (lora_id < 0) {
        return reject(KVC_ERR_INVALID_ARGUMENT, ("lora_id must be >= 0 (0: none), got " + std::to_string(lora_id)).c_str());
    }
    o->options.lora_id = lora_id;
    return KVC_OK;
}
kvc_status kvc_sequence_options_set_cache_salt(kvc_sequence_options* o, const char* salt) {
    KVC_REQUIRE_HANDLE(o, "options");
    KVC_REQUIRE_HANDLE(salt, "salt");
    return guard([&] { o->options.keys.cache_salt = salt; });
}
kvc_status kvc_sequence_options_add_multimodal(kvc_sequence_options* o, const char* hash, uint64_t offset,
                                               uint64_t length) {
    KVC_REQUIRE_HANDLE(o, "options");
    KVC_REQUIRE_HANDLE(hash, "hash");
    return guard([&] {
        auto& items = o->options.keys.multimodal;
        const uint64_t previous_end = items.empty() ? 0 : items.back().offset + items.back().length;
        if (*hash == '\0' || length == 0 || offset < previous_end || offset + length < offset) {
            fail(KVC_ERR_INVALID_ARGUMENT, "multimodal items need a hash, a length > 0, and increasing offsets "
                                           "without overlap (this one starts at " + std::to_string(offset) +
                                               ", the previous ends at " + std::to_string(previous_end) + ")");
        }
        items.push_back({hash, offset, length});
    });
}
kvc_status kvc_sequence_options_set_priority(kvc_sequence_options* o, uint32_t priority, uint64_t duration_ms) {
    KVC_REQUIRE_HANDLE(o, "options");
    if (priority > pool::kMaxPriority) {
        return reject(KVC_ERR_INVALID_ARGUMENT, ("priority must be 0..100, got " + std::to_string(priority)).c_str());
    }
    o->options.priority = priority;
    o->options.priority_duration_ms = duration_ms;
    return KVC_OK;
}

// ---- pool ----

kvc_status kvc_pool_create(const kvc_pool_options* options, kvc_pool** out) {
    return make_handle(out, [&] { return new kvc_pool(options != nullptr ? options->config : pool::PoolConfig{}); });
}
void kvc_pool_destroy(kvc_pool* p) { delete p; }

kvc_status kvc_pool_sequence_create(kvc_pool* p, const int32_t* tokens, size_t n, const kvc_sequence_options* options,
                                    kvc_sequence_id* out) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_HANDLE(out, "out");
    KVC_REQUIRE_ARRAY(tokens, n, "tokens");
    return guard([&] {
        *out = p->impl.create_sequence({tokens, n}, options != nullptr ? options->options : pool::SequenceOptions{});
    });
}

kvc_status kvc_pool_cached_prefix(kvc_pool* p, kvc_sequence_id seq, size_t* tokens) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_HANDLE(tokens, "tokens");
    return guard([&] { *tokens = p->impl.cached_prefix_tokens(seq); });
}

kvc_status kvc_pool_allocate(kvc_pool* p, kvc_sequence_id seq, size_t num_tokens, size_t* cached_tokens) {
    KVC_REQUIRE_HANDLE(p, "pool");
    return guard([&] { p->impl.allocate(seq, num_tokens, cached_tokens); });
}

kvc_status kvc_pool_append(kvc_pool* p, kvc_sequence_id seq, const int32_t* tokens, size_t n) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_ARRAY(tokens, n, "tokens");
    return guard([&] { p->impl.append(seq, {tokens, n}); });
}

kvc_status kvc_pool_fork(kvc_pool* p, kvc_sequence_id seq, kvc_sequence_id* child) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_HANDLE(child, "child");
    return guard([&] { *child = p->impl.fork(seq); });
}

kvc_status kvc_pool_pin_prefix(kvc_pool* p, kvc_sequence_id seq, kvc_sequence_id* pin) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_HANDLE(pin, "pin");
    return guard([&] { *pin = p->impl.pin_prefix(seq); });
}

kvc_status kvc_pool_sequence_free(kvc_pool* p, kvc_sequence_id seq) {
    KVC_REQUIRE_HANDLE(p, "pool");
    return guard([&] { p->impl.free_sequence(seq); });
}

kvc_status kvc_pool_sequence_tokens(kvc_pool* p, kvc_sequence_id seq, size_t* tokens) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_HANDLE(tokens, "tokens");
    return guard([&] { *tokens = p->impl.num_tokens(seq); });
}

kvc_status kvc_pool_block_table(kvc_pool* p, kvc_sequence_id seq, int32_t* blocks, size_t capacity, size_t* count) {
    KVC_REQUIRE_HANDLE(p, "pool");
    return guard([&] {
        copy_array_out(p->impl.block_table(seq), blocks, capacity, count, "block table");
    });
}

kvc_status kvc_pool_slot_mapping(kvc_pool* p, kvc_sequence_id seq, size_t first, int64_t* slots, size_t n) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_ARRAY(slots, n, "slots");
    return guard([&] { p->impl.slot_mapping(seq, first, {slots, n}); });
}

kvc_status kvc_pool_drain_copies(kvc_pool* p, int32_t* pairs, size_t capacity_pairs, size_t* count_pairs) {
    KVC_REQUIRE_HANDLE(p, "pool");
    return guard([&] {
        const size_t pending = p->impl.counters().copies_pending;
        if (count_pairs != nullptr) *count_pairs = pending;
        if (is_size_query(pairs, capacity_pairs)) return;
        require_capacity(capacity_pairs, pending, "copy pairs");
        const auto copies = p->impl.drain_copies();
        for (size_t i = 0; i < copies.size(); ++i) {
            pairs[2 * i] = copies[i].first;
            pairs[2 * i + 1] = copies[i].second;
        }
    });
}

kvc_status kvc_pool_allocate_blocks(kvc_pool* p, int32_t* blocks, size_t n) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_ARRAY(blocks, n, "blocks");
    return guard([&] { p->impl.allocate_blocks({blocks, n}); });
}

kvc_status kvc_pool_free_blocks(kvc_pool* p, const int32_t* blocks, size_t n) {
    KVC_REQUIRE_HANDLE(p, "pool");
    KVC_REQUIRE_ARRAY(blocks, n, "blocks");
    return guard([&] { p->impl.free_blocks({blocks, n}); });
}

kvc_status kvc_pool_reset_prefix_cache(kvc_pool* p) {
    KVC_REQUIRE_HANDLE(p, "pool");
    return guard([&] { p->impl.reset_prefix_cache(); });
}

kvc_status kvc_pool_drain_events(kvc_pool* p, kvc_event_encoding encoding, uint8_t* buf, size_t capacity,
                                 size_t* length) {
    KVC_REQUIRE_HANDLE(p, "pool");
    return guard([&] {
        const auto format = checked_enum<pool::EventEncoding>(encoding, KVC_EVENTS_MAP, "event encoding");
        const std::vector<uint8_t> bytes = p->impl.encode_events(format);
        if (length != nullptr) *length = bytes.size();
        if (is_size_query(buf, capacity)) return;
        require_capacity(capacity, bytes.size(), "event buffer");
        std::memcpy(buf, bytes.data(), bytes.size());
        p->impl.clear_events();
    });
}

kvc_status kvc_pool_snapshot(kvc_pool* p, kvc_stats** out) {
    KVC_REQUIRE_HANDLE(p, "pool");
    return make_handle(out, [&] { return new kvc_stats{p->impl.snapshot()}; });
}

kvc_status kvc_pool_storage(kvc_pool* p, void** base, uint64_t* bytes_per_block) {
    KVC_REQUIRE_HANDLE(p, "pool");
    if (base != nullptr) *base = p->impl.storage();
    if (bytes_per_block != nullptr) *bytes_per_block = p->impl.config().bytes_per_block();
    return KVC_OK;
}

uint32_t kvc_pool_num_blocks(const kvc_pool* p) { return p ? p->impl.config().num_blocks : 0; }
uint32_t kvc_pool_num_free_blocks(const kvc_pool* p) { return p ? p->impl.counters().free_blocks : 0; }
uint32_t kvc_pool_num_blocks_in_use(const kvc_pool* p) { return p ? p->impl.counters().blocks_in_use : 0; }
uint32_t kvc_pool_num_cached_blocks(const kvc_pool* p) { return p ? p->impl.counters().cached_blocks : 0; }
uint64_t kvc_pool_num_sequences(const kvc_pool* p) { return p ? p->impl.counters().live_sequences : 0; }
double kvc_pool_memory_efficiency(const kvc_pool* p) { return p ? p->impl.counters().memory_efficiency : 0.0; }
double kvc_pool_window_token_hit_rate(const kvc_pool* p) {
    if (p == nullptr) return 0.0;
    if (!p->impl.config().statistics) return std::numeric_limits<double>::quiet_NaN();
    const pool::PoolCounters c = p->impl.counters();
    return c.window_tokens_queried == 0 ? 0.0 : double(c.window_tokens_hit) / double(c.window_tokens_queried);
}
uint64_t kvc_pool_events_dropped(const kvc_pool* p) { return p ? p->impl.counters().events_dropped : 0; }

kvc_status kvc_hash_blocks(kvc_hash_algo algo, const char* seed, uint32_t block_size, const int32_t* tokens, size_t n,
                           const kvc_sequence_options* options, uint64_t* hashes, size_t capacity, size_t* count) {
    KVC_REQUIRE_HANDLE(seed, "seed");
    KVC_REQUIRE_ARRAY(tokens, n, "tokens");
    return guard([&] {
        const auto a = checked_enum<pool::HashAlgo>(algo, KVC_HASH_SHA256_CBOR, "hash algorithm");
        if (block_size == 0 || block_size > 4096) {
            fail(KVC_ERR_INVALID_ARGUMENT, "block_size must be 1..4096, got " + std::to_string(block_size));
        }
        const std::span<const int32_t> span(tokens, n);
        for (size_t i = 0; i < n; ++i) {
            if (span[i] < 0) fail(KVC_ERR_INVALID_ARGUMENT, "token " + std::to_string(i) + " is negative");
        }
        const size_t blocks = n / block_size;
        if (count != nullptr) *count = blocks;
        if (is_size_query(hashes, capacity)) return;
        require_capacity(capacity, blocks, "hashes");
        const pool::BlockHasher hasher(a, seed);
        const auto digests = hasher.hash_blocks(span, block_size, options ? options->options.keys : pool::ExtraKeys{});
        for (size_t i = 0; i < blocks; ++i) hashes[i] = digests[i].event_value(a);
    });
}

}  // extern "C"
