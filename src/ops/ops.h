// SPDX-License-Identifier: Apache-2.0
// The CPU KV kernels (include/kvcore/ops.h documents the contract). Each operation checks every argument
// first and throws kvcore::Error before it writes anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ops/layout.h"

namespace kvcore::ops {

void write(const Layout& layout, uint32_t layer, void* k_cache, void* v_cache, const void* key, const void* value,
           DType src_dtype, const int64_t* slots, size_t n);

void copy_blocks(const Layout& layout, void* k_cache, void* v_cache, const int32_t* pairs, size_t num_pairs);

void swap_blocks(const Layout& src_layout, const void* src_k, const void* src_v, const Layout& dst_layout, void* dst_k,
                 void* dst_v, const int32_t* pairs, size_t num_pairs);

void gather(const Layout& layout, uint32_t layer, const void* k_cache, const void* v_cache, const int32_t* block_tables,
            size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs, void* out_k, void* out_v,
            DType out_dtype, size_t out_capacity_tokens);

struct DecodeArgs {
    uint32_t layer = 0;
    const void* k_cache = nullptr;
    const void* v_cache = nullptr;
    const float* query = nullptr;  // [num_seqs, num_q_heads, head_dim]
    uint32_t num_q_heads = 0;
    const int32_t* block_tables = nullptr;
    size_t max_blocks_per_seq = 0;
    const int32_t* seq_lens = nullptr;
    size_t num_seqs = 0;
    float scale = 1.f;
    float* out = nullptr;          // [num_seqs, num_q_heads, head_dim]
    uint32_t partition_tokens = 512;  // the split over long contexts
    const Kernels* kernels = nullptr;  // nullptr: the table chosen for this CPU (tests pick others)
};
void attention_decode(const Layout& layout, const DecodeArgs& args);

// A run of `count` consecutive blocks: src, src + 1, ... copied to dst, dst + 1, ...
struct BlockRun {
    int32_t src = 0, dst = 0, count = 0;
};
// The (src, dst) pairs (pairs[2i], pairs[2i + 1]) sorted by source and merged into runs where source and
// destination both advance by one: what swap (CPU memcpy, CUDA cudaMemcpyAsync) and copy issue.
[[nodiscard]] std::vector<BlockRun> plan_block_runs(const int32_t* pairs, size_t num_pairs);

// ---- argument checks (throw kvcore::Error naming the first offender) ----
// Everything an operation checks before it touches memory, shared by the CPU operations above and their CUDA
// twins (cuda/), which then add their own checks of where the memory lives.
void check_write(const Layout& layout, uint32_t layer, const void* k_cache, const void* v_cache, const void* key,
                 const void* value, DType src_dtype, const int64_t* slots, size_t n);
void check_copy_blocks(const Layout& layout, const void* k_cache, const void* v_cache, const int32_t* pairs,
                       size_t num_pairs);
void check_swap_blocks(const Layout& src_layout, const void* src_k, const void* src_v, const Layout& dst_layout,
                       const void* dst_k, const void* dst_v, const int32_t* pairs, size_t num_pairs);
// Returns the total tokens to gather.
uint64_t check_gather(const Layout& layout, uint32_t layer, const void* k_cache, const void* v_cache,
                      const int32_t* block_tables, size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs,
                      const void* out_k, const void* out_v, DType out_dtype, size_t out_capacity_tokens);
void check_attention_decode(const Layout& layout, const DecodeArgs& args);
// Pieces of the checks above:
void check_aligned(const void* p, uint32_t alignment, const char* what);
void check_layer(const Layout& layout, uint32_t layer);
void check_source_dtype(DType dtype, const char* what);  // F32, F16 or BF16
// Block tables and lengths of a batch: every block a sequence uses is in range; returns the total tokens.
uint64_t check_block_tables(const Layout& layout, const int32_t* block_tables, size_t max_blocks_per_seq,
                            const int32_t* seq_lens, size_t num_seqs);

}  // namespace kvcore::ops
