// SPDX-License-Identifier: Apache-2.0
// A small GPT-2-style decoder with random (seeded) weights: the reference model that drives kvcore's KV cache
// end to end. Its K and V live in a kvcore host pool's memory (kvc_pool_storage), written and attended by
// the CPU KV kernels (src/ops); its matrix products go through a BLAS (cblas_sgemm). It is a reference, not
// an inference engine: fp32 everywhere, multi-head attention (kv_heads == heads), no tokenizer.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ops/layout.h"

namespace kvcore::model {

struct Config {
    uint32_t layers = 4;
    uint32_t d_model = 128;
    uint32_t heads = 8;        // head_dim = d_model / heads; K/V heads = heads (MHA)
    uint32_t mlp_hidden = 512;
    uint32_t vocab = 50;
    uint32_t context = 128;    // learned positions 0 .. context - 1
    uint64_t seed = 1;

    // SmallMind's model (../shared/seeds/001): 4 layers, 128 dims, 8 heads of 16, MLP 512, vocabulary 50.
    [[nodiscard]] static Config small_mind();
    // GPT-2 small's body (12 layers, 768 dims, 12 heads of 64, MLP 3072, context 1024) with a vocabulary of
    // 8192 instead of 50257: the LM head runs once per sequence and step in both the cached and the
    // recomputing mode, so a smaller one changes neither side of the comparison much but saves 130 MB of
    // weights and their initialization on a 2-core machine.
    [[nodiscard]] static Config gpt2_small();

    [[nodiscard]] uint32_t head_dim() const noexcept { return heads ? d_model / heads : 0; }
    // Throws kvcore::Error (KVC_ERR_INVALID_ARGUMENT) naming the first bad field.
    void validate() const;
};

// A host pool's KV memory (kvc_pool_storage): all layers of a block together, K then V per layer. The pool
// must have been created with the model's shape (layers, heads, head_dim) in F32.
struct KvMemory {
    void* base = nullptr;
    uint64_t bytes_per_block = 0;
    uint32_t num_blocks = 0;
    uint32_t block_size = 0;
};

// One sequence's share of a forward pass: what a scheduler's plan gives for it.
struct SequenceStep {
    std::span<const int32_t> tokens;       // the new tokens, at positions start, start + 1, ...
    uint32_t start = 0;                    // tokens before them already hold K/V in the cache
    std::span<const int64_t> slots;        // one cache slot per new token (block * block_size + offset)
    std::span<const int32_t> block_table;  // the sequence's blocks, covering start + tokens.size() tokens
};

enum class Logits { kLastPerSequence, kEveryToken };

class Model {
public:
    // Draws the weights from the seed (N(0, 0.02); output projections scaled by 1/sqrt(2 * layers) as GPT-2).
    Model(const Config& config, const KvMemory& memory);

    // One forward pass over every new token of the batch: writes their K/V into their slots and returns
    // logits [rows, vocab] in `logits` (resized): one row per sequence (its last new token) or per new
    // token, in batch order. Attention for a token at position p reads positions 0..p of its sequence from
    // the cache (causal). Throws kvcore::Error on a bad step (token, position, slot or table).
    void forward(std::span<const SequenceStep> batch, std::vector<float>& logits,
                 Logits which = Logits::kLastPerSequence);

    [[nodiscard]] const Config& config() const noexcept { return config_; }
    [[nodiscard]] const KvMemory& memory() const noexcept { return memory_; }

private:
    struct Layer {
        std::vector<float> ln1_gain, ln1_bias, qkv, qkv_bias, proj, proj_bias;
        std::vector<float> ln2_gain, ln2_bias, fc, fc_bias, out, out_bias;
    };

    void check(std::span<const SequenceStep> batch) const;

    Config config_;
    KvMemory memory_;
    ops::Layout layout_;
    std::vector<float> token_embedding_;     // [vocab, d_model], also the LM head (tied, as GPT-2)
    std::vector<float> position_embedding_;  // [context, d_model]
    std::vector<Layer> layers_;
    std::vector<float> final_gain_, final_bias_;

    // Scratch reused across calls (grown, never shrunk): no allocation per step once warm.
    std::vector<float> x_, h_, qkv_, q_, k_, v_, attn_, mlp_;
    std::vector<int32_t> tables_, lengths_;
    std::vector<int64_t> slots_;
};

}  // namespace kvcore::model
