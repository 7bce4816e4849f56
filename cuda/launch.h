// SPDX-License-Identifier: Apache-2.0
// Between the host side of the CUDA operations (cuda/ops_cuda.cpp: checks, uploads, copies) and the kernels
// (cuda/*.cu): plain parameter structs and one launch function per kernel. Index arrays are device
// pointers into the call's workspace; every pointer here is already checked.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kvcore::cuda {

// One layer of a cache as the kernels address it (include/kvcore/ops.h's formula).
struct CacheView {
    unsigned char* k = nullptr;  // K and V bases of the layer (layer * layer_stride already added)
    unsigned char* v = nullptr;
    uint64_t block_stride = 0;
    uint64_t scale_offset = 0;  // INT8: where a block's scales start
    uint32_t block_size = 0, kv_heads = 0, head_dim = 0, dtype = 0;
};

struct WriteParams {
    CacheView cache;
    const unsigned char* key = nullptr;
    const unsigned char* value = nullptr;
    uint32_t src_dtype = 0;
    const int64_t* slots = nullptr;  // device, n
    uint64_t n = 0;
    float k_scale = 1.f, v_scale = 1.f;  // FP8 tensor scales
};
cudaError_t launch_write(const WriteParams& p, cudaStream_t stream);

struct CopyParams {
    unsigned char* k = nullptr;  // layer 0 bases
    unsigned char* v = nullptr;
    uint64_t block_stride = 0, layer_stride = 0, block_bytes = 0;
    uint32_t layers = 0;
    const int32_t* pairs = nullptr;  // device, 2 * num_pairs
    uint64_t num_pairs = 0;
};
cudaError_t launch_copy_blocks(const CopyParams& p, cudaStream_t stream);

// Sequences of a batch as the gather and decode kernels read them: block ids packed per sequence.
struct SeqView {
    const int32_t* blocks = nullptr;      // the used blocks of every sequence, one after the other
    const uint64_t* first_block = nullptr;  // [num_seqs + 1]
    const int32_t* seq_lens = nullptr;      // [num_seqs]
    uint64_t num_seqs = 0;
};

struct GatherParams {
    CacheView cache;
    SeqView seqs;
    const uint64_t* first_token = nullptr;  // [num_seqs + 1]: output token of each sequence's first token
    uint64_t total_tokens = 0;
    unsigned char* out_k = nullptr;
    unsigned char* out_v = nullptr;
    uint32_t out_dtype = 0;
    float k_scale = 1.f, v_scale = 1.f;
};
cudaError_t launch_gather(const GatherParams& p, cudaStream_t stream);

struct DecodeParams {
    CacheView cache;
    SeqView seqs;
    const float* query = nullptr;  // [num_seqs, q_heads, head_dim]
    float* out = nullptr;
    uint32_t q_heads = 0, group = 0;  // group = q_heads / kv_heads
    float softmax_scale = 1.f;
    float k_scale = 1.f, v_scale = 1.f;
    uint32_t part_tokens = 512;
    const int32_t* items = nullptr;        // device, 2 per part: (sequence, part index)
    uint64_t num_items = 0;
    const uint64_t* first_item = nullptr;  // [num_seqs + 1]
    float* part_acc = nullptr;             // [num_items, q_heads, head_dim]
    float* part_max = nullptr;             // [num_items, q_heads]
    float* part_sum = nullptr;             // [num_items, q_heads]
    bool vectorized = false;               // head_dim % 8 == 0 and every row 8-element aligned
};
// The largest head_dim the decode kernel holds in registers.
constexpr uint32_t kMaxDecodeHeadDim = 256;
cudaError_t launch_attention_decode(const DecodeParams& p, cudaStream_t stream);

}  // namespace kvcore::cuda
