// SPDX-License-Identifier: Apache-2.0
// The layout's own checks and the argument checks every operation shares.
#include <cmath>
#include <string>

#include "common/error.h"
#include "ops/ops.h"

namespace kvcore::ops {
namespace {

void in_range(const char* name, uint64_t v, uint64_t lo, uint64_t hi) {
    if (v < lo || v > hi) {
        fail(KVC_ERR_OUT_OF_RANGE, std::string(name) + " must be " + std::to_string(lo) + ".." + std::to_string(hi) +
                                       ", got " + std::to_string(v));
    }
}

}  // namespace

void Layout::validate() const {
    in_range("layers", layers, 1, 65536);
    in_range("num_blocks", num_blocks, 1, 0x7FFFFFFF);
    in_range("block_size", block_size, 1, 4096);
    in_range("kv_heads", kv_heads, 1, 4096);
    in_range("head_dim", head_dim, 1, 4096);
    if (pool::dtype_bytes(dtype) == 0) fail(KVC_ERR_INVALID_ARGUMENT, "unknown dtype");
    const uint64_t block = block_bytes(), bstride = block_stride_bytes(), lstride = layer_stride_bytes();
    if (bstride < block || bstride % alignment() != 0) {
        fail(KVC_ERR_INVALID_ARGUMENT, "block_stride " + std::to_string(bstride) + " must be >= the block's " +
                                           std::to_string(block) + " bytes and a multiple of " +
                                           std::to_string(alignment()));
    }
    if (lstride % alignment() != 0) {
        fail(KVC_ERR_INVALID_ARGUMENT, "layer_stride " + std::to_string(lstride) + " must be a multiple of " +
                                           std::to_string(alignment()));
    }
    if (layers > 1) {
        // Layers either follow each other (each spans all blocks) or sit side by side inside each block.
        const bool outer = lstride >= uint64_t(num_blocks) * bstride;
        const bool inner = lstride >= block && uint64_t(layers) * lstride <= bstride;
        if (!outer && !inner) {
            fail(KVC_ERR_INVALID_ARGUMENT, "layer_stride " + std::to_string(lstride) +
                                               " makes layers overlap (need >= num_blocks * block_stride, or >= "
                                               "the block's bytes with layers * layer_stride <= block_stride)");
        }
    }
    auto scales_ok = [&](const std::vector<float>& s, const char* name) {
        if (s.empty()) return;
        if (s.size() != layers) {
            fail(KVC_ERR_INVALID_ARGUMENT, std::string(name) + ": " + std::to_string(s.size()) + " scales for " +
                                               std::to_string(layers) + " layers");
        }
        for (float x : s) {
            if (!std::isfinite(x) || x <= 0.f) fail(KVC_ERR_INVALID_ARGUMENT, std::string(name) + " must be finite and > 0");
        }
    };
    scales_ok(k_scales, "k_scales");
    scales_ok(v_scales, "v_scales");
}

void check_aligned(const void* p, uint32_t alignment, const char* what) {
    if (p == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
    if (reinterpret_cast<uintptr_t>(p) % alignment != 0) {
        fail(KVC_ERR_INVALID_ARGUMENT, std::string(what) + " is not aligned to " + std::to_string(alignment) + " bytes");
    }
}

void check_layer(const Layout& layout, uint32_t layer) {
    if (layer >= layout.layers) {
        fail(KVC_ERR_OUT_OF_RANGE, "layer " + std::to_string(layer) + " >= layers " + std::to_string(layout.layers));
    }
}

void check_source_dtype(DType dtype, const char* what) {
    if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16) {
        fail(KVC_ERR_INVALID_ARGUMENT, std::string(what) + " must be F32, F16 or BF16");
    }
}

uint64_t check_block_tables(const Layout& layout, const int32_t* block_tables, size_t max_blocks_per_seq,
                            const int32_t* seq_lens, size_t num_seqs) {
    if (num_seqs == 0) return 0;
    if (seq_lens == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, "seq_lens is NULL");
    uint64_t total = 0;
    for (size_t s = 0; s < num_seqs; ++s) {
        const int32_t len = seq_lens[s];
        if (len < 0) fail(KVC_ERR_OUT_OF_RANGE, "seq_lens[" + std::to_string(s) + "] = " + std::to_string(len) + " < 0");
        const uint64_t blocks = (uint64_t(len) + layout.block_size - 1) / layout.block_size;
        if (blocks > max_blocks_per_seq) {
            fail(KVC_ERR_OUT_OF_RANGE, "seq_lens[" + std::to_string(s) + "] = " + std::to_string(len) + " needs " +
                                           std::to_string(blocks) + " blocks, max_blocks_per_seq is " +
                                           std::to_string(max_blocks_per_seq));
        }
        if (blocks != 0 && block_tables == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, "block_tables is NULL");
        for (uint64_t b = 0; b < blocks; ++b) {
            const int32_t id = block_tables[s * max_blocks_per_seq + b];
            if (id < 0 || uint32_t(id) >= layout.num_blocks) {
                fail(KVC_ERR_OUT_OF_RANGE, "block_tables[" + std::to_string(s) + "][" + std::to_string(b) + "] = " +
                                               std::to_string(id) + " is not a block (0.." +
                                               std::to_string(layout.num_blocks - 1) + ")");
            }
        }
        total += uint64_t(len);
    }
    return total;
}

}  // namespace kvcore::ops
