// SPDX-License-Identifier: Apache-2.0
// The host side of the CUDA operations (include/kvcore/ops_cuda.h documents the contract): each runs the CPU
// operation's checks (src/ops), then checks where the memory lives, uploads the host index arrays
// stream-ordered and queues the kernels or copies. Throws kvcore::Error; nothing is queued before the checks
// pass.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "ops/ops.h"

namespace kvcore::cuda {

// Throws KVC_ERR_UNSUPPORTED with the reason when the calling thread's current device cannot run the kernels.
void probe();

void write(const ops::Layout& layout, uint32_t layer, void* k_cache, void* v_cache, const void* key, const void* value,
           ops::DType src_dtype, const int64_t* slots, size_t n, cudaStream_t stream);
void copy_blocks(const ops::Layout& layout, void* k_cache, void* v_cache, const int32_t* pairs, size_t num_pairs,
                 cudaStream_t stream);
void swap_blocks(const ops::Layout& src_layout, const void* src_k, const void* src_v, const ops::Layout& dst_layout,
                 void* dst_k, void* dst_v, const int32_t* pairs, size_t num_pairs, cudaStream_t stream);
void gather(const ops::Layout& layout, uint32_t layer, const void* k_cache, const void* v_cache,
            const int32_t* block_tables, size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs,
            void* out_k, void* out_v, ops::DType out_dtype, size_t out_capacity_tokens, cudaStream_t stream);
void attention_decode(const ops::Layout& layout, const ops::DecodeArgs& args, cudaStream_t stream);

}  // namespace kvcore::cuda
