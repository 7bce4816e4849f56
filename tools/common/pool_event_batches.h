// SPDX-License-Identifier: Apache-2.0
// Realistic KV event batches for the transport's tests and benchmark: each batch is what a kvcore pool
// drains after a scheduler step of `requests` prompts (a shared system prompt, then unique tokens), in
// current vLLM's encoding (map events). Once the pool is full, batches carry BlockRemoved too.
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <string_view>
#include <vector>

#include "pool/pool.h"

namespace kvcore::testing {

struct EventBatches {
    std::vector<std::vector<uint8_t>> payloads;
    uint64_t blocks = 0;  // block hashes the batches carry (stored and removed)
};

// Hashes named by one batch's events, counted by decoding it (map events, as encoded below).
inline uint64_t blocks_in_batch(const std::vector<uint8_t>& payload) {
    const msgpack::object_handle oh = msgpack::unpack(reinterpret_cast<const char*>(payload.data()), payload.size());
    const msgpack::object& events = oh.get().via.array.ptr[1];
    uint64_t blocks = 0;
    for (uint32_t i = 0; i < events.via.array.size; ++i) {
        const msgpack::object& event = events.via.array.ptr[i];
        for (uint32_t k = 0; k < event.via.map.size; ++k) {
            const msgpack::object_kv& kv = event.via.map.ptr[k];
            if (std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == "block_hashes") blocks += kv.val.via.array.size;
        }
    }
    return blocks;
}

inline EventBatches pool_event_batches(size_t batches, size_t requests = 4, uint32_t prompt_blocks = 16) {
    pool::PoolConfig config;
    config.num_blocks = 1024;
    config.block_size = 16;
    config.events = true;
    config.hash_algo = pool::HashAlgo::kSha256Cbor;  // what a vLLM router sees
    pool::Pool pool(config);
    const size_t prompt_tokens = size_t{prompt_blocks} * config.block_size;
    std::vector<int32_t> prompt(prompt_tokens);
    for (size_t t = 0; t < 64 && t < prompt_tokens; ++t) prompt[t] = static_cast<int32_t>(t);  // shared prefix
    EventBatches out;
    int32_t next_token = 1000;
    for (size_t b = 0; b < batches; ++b) {
        for (size_t r = 0; r < requests; ++r) {
            for (size_t t = 64; t < prompt_tokens; ++t) prompt[t] = next_token++;
            const pool::SequenceId id = pool.create_sequence(prompt, {});
            pool.allocate(id, prompt_tokens);
            pool.free_sequence(id);
        }
        out.payloads.push_back(pool.encode_events(pool::EventEncoding::kMap));
        pool.clear_events();
        out.blocks += blocks_in_batch(out.payloads.back());
    }
    return out;
}

}  // namespace kvcore::testing
