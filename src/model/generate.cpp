// SPDX-License-Identifier: Apache-2.0
#include "model/generate.h"

#include <string>

#include "common/error.h"

namespace kvcore::model {
namespace {

void check(kvc_status status) {
    if (status != KVC_OK) fail(status, kvc_last_error_message());
}

// One running request and what the step after next needs of it.
struct Running {
    size_t request = 0;
    Sampler sampler;
    kvc_sequence_id seq = 0;  // cached mode: its pool sequence once in_pool
    bool in_pool = false;
    std::vector<int32_t> context;  // prompt + generated so far
    std::vector<int32_t> step_tokens, table, scratch;
    std::vector<int64_t> slots;
    uint32_t start = 0;
};

}  // namespace

KvMemory pool_memory(kvc_pool* pool, uint32_t block_size) {
    KvMemory m;
    check(kvc_pool_storage(pool, &m.base, &m.bytes_per_block));
    m.num_blocks = kvc_pool_num_blocks(pool);
    m.block_size = block_size;
    return m;
}

std::vector<Generated> generate(Model& model, kvc_pool* pool, std::span<const Request> requests,
                                const GenerateOptions& options) {
    if (options.max_batch == 0) fail(KVC_ERR_INVALID_ARGUMENT, "max_batch is 0");
    for (size_t i = 0; i < requests.size(); ++i) {
        if (requests[i].prompt.empty() || requests[i].max_new_tokens == 0) {
            fail(KVC_ERR_INVALID_ARGUMENT, "request " + std::to_string(i) + " has no prompt or no tokens to generate");
        }
    }
    const uint32_t bs = model.memory().block_size, vocab = model.config().vocab;
    std::vector<Generated> results(requests.size());
    std::vector<Running> running;
    std::vector<SequenceStep> batch;
    std::vector<float> logits;
    size_t admitted = 0;

    // Frees what a running sequence holds in the pool (also on the way out of an error).
    auto release = [&](Running& r) {
        if (r.in_pool) (void)kvc_pool_sequence_free(pool, r.seq);
        r.in_pool = false;
    };
    try {
        while (admitted < requests.size() || !running.empty()) {
            while (running.size() < options.max_batch && admitted < requests.size()) {
                Running r{.request = admitted, .sampler = Sampler(requests[admitted].sampling)};
                r.context = requests[admitted].prompt;
                running.push_back(std::move(r));
                ++admitted;
            }
            // Each running sequence's tokens, slots and block table for this step.
            for (Running& r : running) {
                const size_t len = r.context.size();
                if (options.mode == Mode::kRecompute) {
                    r.scratch.resize((len + bs - 1) / bs);
                    check(kvc_pool_allocate_blocks(pool, r.scratch.data(), r.scratch.size()));
                    r.table = r.scratch;
                    r.start = 0;
                    r.step_tokens = r.context;
                    r.slots.resize(len);
                    for (size_t p = 0; p < len; ++p) r.slots[p] = int64_t(r.table[p / bs]) * bs + int64_t(p % bs);
                    continue;
                }
                if (!r.in_pool) {
                    check(kvc_pool_sequence_create(pool, r.context.data(), len, nullptr, &r.seq));
                    r.in_pool = true;
                    size_t cached = 0;
                    check(kvc_pool_allocate(pool, r.seq, len, &cached));
                    results[r.request].cached_prompt_tokens = cached;
                    r.start = uint32_t(cached);
                } else {
                    check(kvc_pool_append(pool, r.seq, &r.context.back(), 1));
                    r.start = uint32_t(len - 1);
                }
                r.step_tokens.assign(r.context.begin() + r.start, r.context.end());
                r.slots.resize(r.step_tokens.size());
                check(kvc_pool_slot_mapping(pool, r.seq, r.start, r.slots.data(), r.slots.size()));
                size_t count = 0;
                check(kvc_pool_block_table(pool, r.seq, nullptr, 0, &count));
                r.table.resize(count);
                check(kvc_pool_block_table(pool, r.seq, r.table.data(), count, &count));
            }
            batch.clear();
            for (const Running& r : running) {
                batch.push_back({.tokens = r.step_tokens, .start = r.start, .slots = r.slots, .block_table = r.table});
            }
            model.forward(batch, logits);

            // Sample, record, retire finished requests (their blocks go back to the pool at once).
            for (size_t i = 0; i < running.size(); ++i) {
                Running& r = running[i];
                if (!r.scratch.empty()) {
                    check(kvc_pool_free_blocks(pool, r.scratch.data(), r.scratch.size()));
                    r.scratch.clear();
                }
                const std::span<const float> row(logits.data() + i * vocab, vocab);
                Generated& out = results[r.request];
                out.tokens.push_back(r.sampler.next(row));
                if (options.keep_logits) out.logits.insert(out.logits.end(), row.begin(), row.end());
                r.context.push_back(out.tokens.back());
            }
            std::erase_if(running, [&](Running& r) {
                if (results[r.request].tokens.size() < requests[r.request].max_new_tokens) return false;
                release(r);
                return true;
            });
        }
    } catch (...) {
        for (Running& r : running) {
            release(r);
            if (!r.scratch.empty()) (void)kvc_pool_free_blocks(pool, r.scratch.data(), r.scratch.size());
        }
        throw;
    }
    return results;
}

}  // namespace kvcore::model
