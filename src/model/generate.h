// SPDX-License-Identifier: Apache-2.0
// Generation with the reference model over a kvcore pool: the simplest continuous batching (admit requests in
// order up to max_batch running sequences, one forward pass per step for all of them, admit the next request
// when one finishes), and the no-cache baseline that recomputes every context from scratch for every token.
// The scheduler (issue 15) replaces the admission here; the model's step is the same.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "kvcore/pool.h"
#include "model/model.h"
#include "model/sampler.h"

namespace kvcore::model {

struct Request {
    std::vector<int32_t> prompt;  // at least one token
    uint32_t max_new_tokens = 0;  // at least one
    Sampling sampling;
};

enum class Mode {
    kCached,     // prefill once, then one new token per step attending over the pool's cached K/V
    kRecompute,  // every step runs the whole context again, into scratch blocks freed after the step
};

struct GenerateOptions {
    Mode mode = Mode::kCached;
    uint32_t max_batch = std::numeric_limits<uint32_t>::max();  // running sequences per step; 1: one at a time
    bool keep_logits = false;  // return every generated token's logits
};

struct Generated {
    std::vector<int32_t> tokens;
    std::vector<float> logits;      // [tokens.size(), vocab] when keep_logits
    size_t cached_prompt_tokens = 0;  // prompt tokens the pool's prefix cache supplied (cached mode)
};

// `pool` must be a host pool created with the model's memory (Model::memory() from its kvc_pool_storage).
// Throws kvcore::Error on bad requests and when the pool runs out of blocks (no preemption here).
[[nodiscard]] std::vector<Generated> generate(Model& model, kvc_pool* pool, std::span<const Request> requests,
                                              const GenerateOptions& options = {});

// The KV memory of a host pool created with block_size tokens per block.
[[nodiscard]] KvMemory pool_memory(kvc_pool* pool, uint32_t block_size);

}  // namespace kvcore::model
