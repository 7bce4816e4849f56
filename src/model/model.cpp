// SPDX-License-Identifier: Apache-2.0
#include "model/model.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "model/rng.h"
#include "ops/ops.h"

namespace kvcore::model {
namespace {

void bad(const std::string& message) { fail(KVC_ERR_INVALID_ARGUMENT, message); }

std::vector<float> normal(Rng& rng, size_t n, float stddev) {
    std::vector<float> w(n);
    float a = 0, b = 0;
    for (size_t i = 0; i < n; i += 2) {
        rng.normal_pair(a, b);
        w[i] = a * stddev;
        if (i + 1 < n) w[i + 1] = b * stddev;
    }
    return w;
}

// out[rows, out_dim] (+)= in[rows, in_dim] . w[in_dim, out_dim] + bias. accumulate: the residual stream
// adds the product to what out holds; otherwise out is overwritten. Bias first, then one sgemm with beta 1.
void affine(const float* in, size_t rows, size_t in_dim, const std::vector<float>& w, const std::vector<float>& bias,
            size_t out_dim, float* out, bool accumulate) {
    for (size_t r = 0; r < rows; ++r) {
        float* row = out + r * out_dim;
        if (accumulate) {
            for (size_t j = 0; j < out_dim; ++j) row[j] += bias[j];
        } else {
            std::copy(bias.begin(), bias.end(), row);
        }
    }
    // One row (a lone sequence's decode step): sgemv streams the weights once, where sgemm would first copy
    // them into its packed panels.
    if (rows == 1) {
        cblas_sgemv(CblasRowMajor, CblasTrans, int(in_dim), int(out_dim), 1.f, w.data(), int(out_dim), in, 1, 1.f, out,
                    1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(out_dim), int(in_dim), 1.f, in,
                int(in_dim), w.data(), int(out_dim), 1.f, out, int(out_dim));
}

void layer_norm(const float* in, size_t rows, size_t dim, const std::vector<float>& gain,
                const std::vector<float>& bias, float* out) {
    for (size_t r = 0; r < rows; ++r) {
        const float* x = in + r * dim;
        float* y = out + r * dim;
        double mean = 0, var = 0;
        for (size_t j = 0; j < dim; ++j) mean += x[j];
        mean /= double(dim);
        for (size_t j = 0; j < dim; ++j) var += (x[j] - mean) * (x[j] - mean);
        const float inv = float(1.0 / std::sqrt(var / double(dim) + 1e-5));
        for (size_t j = 0; j < dim; ++j) y[j] = (x[j] - float(mean)) * inv * gain[j] + bias[j];
    }
}

// GPT-2's tanh approximation, 0.5 v (1 + tanh(u)), written as v * sigmoid(2u): one expf instead of libm's
// tanhf, which took a third of a SmallMind-sized forward pass.
void gelu(float* x, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const float v = x[i];
        x[i] = v / (1.f + std::exp(-1.5957691216f * (v + 0.044715f * v * v * v)));
    }
}

}  // namespace

Config Config::small_mind() { return Config{}; }

Config Config::gpt2_small() {
    return Config{.layers = 12, .d_model = 768, .heads = 12, .mlp_hidden = 3072, .vocab = 8192, .context = 1024};
}

void Config::validate() const {
    if (layers == 0) bad("layers is 0");
    if (d_model == 0 || heads == 0 || d_model % heads != 0) bad("d_model is not a positive multiple of heads");
    if (mlp_hidden == 0) bad("mlp_hidden is 0");
    if (vocab == 0) bad("vocab is 0");
    if (context == 0) bad("context is 0");
    // sgemm takes int dimensions.
    if (uint64_t(vocab) * d_model > uint64_t(INT32_MAX) || uint64_t(mlp_hidden) * d_model > uint64_t(INT32_MAX)) {
        bad("model too large");
    }
}

Model::Model(const Config& config, const KvMemory& memory) : config_(config), memory_(memory) {
    config_.validate();
    layout_.layers = config_.layers;
    layout_.num_blocks = memory.num_blocks;
    layout_.block_size = memory.block_size;
    layout_.kv_heads = config_.heads;
    layout_.head_dim = config_.head_dim();
    layout_.dtype = ops::DType::kF32;
    // The pool's memory: a block holds every layer, K then V (kvcore/ops.h).
    layout_.block_stride = memory.bytes_per_block;
    layout_.layer_stride = 2 * layout_.block_bytes();
    if (memory.base == nullptr) bad("KV memory is NULL (a pool without host storage?)");
    if (memory.bytes_per_block != uint64_t(config_.layers) * layout_.layer_stride) {
        bad("the pool's block of " + std::to_string(memory.bytes_per_block) + " bytes does not match the model (" +
            std::to_string(uint64_t(config_.layers) * layout_.layer_stride) + " bytes: layers, heads, head_dim, F32)");
    }
    layout_.validate();

    const size_t d = config_.d_model, hidden = config_.mlp_hidden;
    Rng rng(config_.seed);
    token_embedding_ = normal(rng, size_t(config_.vocab) * d, 0.02f);
    position_embedding_ = normal(rng, size_t(config_.context) * d, 0.01f);
    // GPT-2 scales the projections into the residual stream by 1/sqrt(2 * layers) so it stays O(1) in depth.
    const float residual = 0.02f / std::sqrt(2.f * float(config_.layers));
    layers_.resize(config_.layers);
    for (Layer& l : layers_) {
        l.ln1_gain.assign(d, 1.f);
        l.ln1_bias.assign(d, 0.f);
        l.qkv = normal(rng, d * 3 * d, 0.02f);
        l.qkv_bias = normal(rng, 3 * d, 0.02f);
        l.proj = normal(rng, d * d, residual);
        l.proj_bias = normal(rng, d, 0.02f);
        l.ln2_gain.assign(d, 1.f);
        l.ln2_bias.assign(d, 0.f);
        l.fc = normal(rng, d * hidden, 0.02f);
        l.fc_bias = normal(rng, hidden, 0.02f);
        l.out = normal(rng, hidden * d, residual);
        l.out_bias = normal(rng, d, 0.02f);
    }
    final_gain_.assign(d, 1.f);
    final_bias_.assign(d, 0.f);
}

void Model::check(std::span<const SequenceStep> batch) const {
    const uint32_t bs = memory_.block_size;
    for (size_t s = 0; s < batch.size(); ++s) {
        const SequenceStep& step = batch[s];
        const std::string who = "sequence " + std::to_string(s) + ": ";
        if (step.tokens.empty()) bad(who + "no new tokens");
        if (step.slots.size() != step.tokens.size()) bad(who + "slots and tokens differ in number");
        const uint64_t end = uint64_t(step.start) + step.tokens.size();
        if (end > config_.context) {
            fail(KVC_ERR_OUT_OF_RANGE, who + "position " + std::to_string(end - 1) + " is past the context of " +
                                           std::to_string(config_.context));
        }
        if (step.block_table.size() < (end + bs - 1) / bs) bad(who + "block table shorter than the context");
        for (size_t i = 0; i < step.tokens.size(); ++i) {
            if (step.tokens[i] < 0 || uint32_t(step.tokens[i]) >= config_.vocab) {
                fail(KVC_ERR_OUT_OF_RANGE, who + "token " + std::to_string(step.tokens[i]) + " is outside the vocabulary");
            }
            // Attention reads a position through the block table: its K/V must land exactly there.
            const uint64_t pos = step.start + i;
            const int64_t expected = int64_t(step.block_table[pos / bs]) * bs + int64_t(pos % bs);
            if (step.slots[i] != expected) {
                bad(who + "slot " + std::to_string(step.slots[i]) + " of position " + std::to_string(pos) +
                    " is not where its block table puts it (" + std::to_string(expected) + ")");
            }
        }
    }
}

void Model::forward(std::span<const SequenceStep> batch, std::vector<float>& logits, Logits which) {
    check(batch);
    logits.clear();
    if (batch.empty()) return;
    const size_t d = config_.d_model, hidden = config_.mlp_hidden, heads = config_.heads, bs = memory_.block_size;
    size_t rows = 0, max_blocks = 0;
    for (const SequenceStep& step : batch) {
        rows += step.tokens.size();
        max_blocks = std::max(max_blocks, (step.start + step.tokens.size() + bs - 1) / bs);
    }
    x_.resize(rows * d);
    h_.resize(rows * d);
    qkv_.resize(rows * 3 * d);
    q_.resize(rows * d);
    k_.resize(rows * d);
    v_.resize(rows * d);
    attn_.resize(rows * d);
    mlp_.resize(rows * hidden);
    slots_.resize(rows);
    lengths_.resize(rows);
    tables_.assign(rows * max_blocks, 0);

    // Embeddings, and per new token one "query sequence" for the decode kernel: its own sequence's block
    // table with length position + 1, which makes prefill attention causal with the decode kernel.
    size_t row = 0;
    for (const SequenceStep& step : batch) {
        const size_t used = (step.start + step.tokens.size() + bs - 1) / bs;
        for (size_t i = 0; i < step.tokens.size(); ++i, ++row) {
            const uint32_t pos = step.start + uint32_t(i);
            const float* te = token_embedding_.data() + size_t(step.tokens[i]) * d;
            const float* pe = position_embedding_.data() + size_t(pos) * d;
            for (size_t j = 0; j < d; ++j) x_[row * d + j] = te[j] + pe[j];
            slots_[row] = step.slots[i];
            lengths_[row] = int32_t(pos + 1);
            std::copy_n(step.block_table.begin(), used, tables_.begin() + row * max_blocks);
        }
    }

    auto* k_cache = static_cast<unsigned char*>(memory_.base);
    auto* v_cache = k_cache + layout_.block_bytes();
    const float scale = 1.f / std::sqrt(float(config_.head_dim()));
    for (uint32_t li = 0; li < config_.layers; ++li) {
        const Layer& l = layers_[li];
        layer_norm(x_.data(), rows, d, l.ln1_gain, l.ln1_bias, h_.data());
        affine(h_.data(), rows, d, l.qkv, l.qkv_bias, 3 * d, qkv_.data(), false);
        // The kernels take dense [tokens, heads, head_dim] tensors; the fused product interleaves Q, K, V.
        for (size_t r = 0; r < rows; ++r) {
            const float* src = qkv_.data() + r * 3 * d;
            std::copy_n(src, d, q_.data() + r * d);
            std::copy_n(src + d, d, k_.data() + r * d);
            std::copy_n(src + 2 * d, d, v_.data() + r * d);
        }
        ops::write(layout_, li, k_cache, v_cache, k_.data(), v_.data(), ops::DType::kF32, slots_.data(), rows);
        ops::DecodeArgs args;
        args.layer = li;
        args.k_cache = k_cache;
        args.v_cache = v_cache;
        args.query = q_.data();
        args.num_q_heads = uint32_t(heads);
        args.block_tables = tables_.data();
        args.max_blocks_per_seq = max_blocks;
        args.seq_lens = lengths_.data();
        args.num_seqs = rows;
        args.scale = scale;
        args.out = attn_.data();
        ops::attention_decode(layout_, args);
        affine(attn_.data(), rows, d, l.proj, l.proj_bias, d, x_.data(), true);

        layer_norm(x_.data(), rows, d, l.ln2_gain, l.ln2_bias, h_.data());
        affine(h_.data(), rows, d, l.fc, l.fc_bias, hidden, mlp_.data(), false);
        gelu(mlp_.data(), rows * hidden);
        affine(mlp_.data(), rows, hidden, l.out, l.out_bias, d, x_.data(), true);
    }

    // Final LayerNorm of the rows asked for, then the tied LM head: logits = h . token_embedding^T.
    size_t out_rows = 0;
    row = 0;
    for (const SequenceStep& step : batch) {
        const size_t first = which == Logits::kEveryToken ? 0 : step.tokens.size() - 1;
        for (size_t i = first; i < step.tokens.size(); ++i, ++out_rows) {
            layer_norm(x_.data() + (row + i) * d, 1, d, final_gain_, final_bias_, h_.data() + out_rows * d);
        }
        row += step.tokens.size();
    }
    logits.resize(out_rows * config_.vocab);
    if (out_rows == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, int(config_.vocab), int(d), 1.f, token_embedding_.data(), int(d),
                    h_.data(), 1, 0.f, logits.data(), 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(out_rows), int(config_.vocab), int(d), 1.f, h_.data(),
                int(d), token_embedding_.data(), int(d), 0.f, logits.data(), int(config_.vocab));
}

}  // namespace kvcore::model
