// SPDX-License-Identifier: Apache-2.0
// The host side of the CUDA operations: the CPU operations' checks, checks of where memory lives, one
// stream-ordered workspace per call for the host index arrays and scratch, then the launches or copies.
#include "cuda/ops_cuda.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda/launch.h"
#include "cuda/runtime.h"

namespace kvcore::cuda {
namespace {

static_assert(uint32_t(ops::DType::kF16) == 0 && uint32_t(ops::DType::kBF16) == 1 && uint32_t(ops::DType::kF32) == 2 &&
                  uint32_t(ops::DType::kFP8) == 3 && uint32_t(ops::DType::kInt8) == 4,
              "cuda/dtype.cuh numbers the element types as kvc_dtype");

std::string describe(cudaError_t err) {
    return std::string(runtime().get_error_name(err)) + " (" + runtime().get_error_string(err) + ")";
}

// Errors that mean "no usable CUDA here" rather than "this call failed".
bool means_no_device(cudaError_t err) {
    return err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver || err == cudaErrorInitializationError ||
           err == cudaErrorDevicesUnavailable || err == cudaErrorSystemDriverMismatch ||
           err == cudaErrorCompatNotSupportedOnDevice || err == cudaErrorNoKernelImageForDevice ||
           err == cudaErrorUnsupportedPtxVersion;
}

void check_cuda(cudaError_t err, const char* what) {
    if (err == cudaSuccess) return;
    (void)runtime().get_last_error();  // a non-sticky error must not surface again at the caller's next CUDA call
    const kvc_status status = err == cudaErrorMemoryAllocation ? KVC_ERR_NO_MEMORY
                              : means_no_device(err)            ? KVC_ERR_UNSUPPORTED
                                                                : KVC_ERR_IO;
    fail(status, std::string("CUDA ") + what + " failed: " + describe(err));
}

int current_device() {
    int device = 0;
    check_cuda(runtime().get_device(&device), "cudaGetDevice");
    return device;
}

// Memory the kernels or copies will touch must be reachable by the device: device memory of the current
// device, managed memory or pinned host memory; pageable host memory is refused. NULL is left to the CPU
// checks (it only reaches here where nothing is touched).
void check_reachable(const void* p, const char* what, int device) {
    if (p == nullptr) return;
    cudaPointerAttributes attributes{};
    check_cuda(runtime().pointer_get_attributes(&attributes, p), "cudaPointerGetAttributes");
    if (attributes.type == cudaMemoryTypeUnregistered) {
        fail(KVC_ERR_INVALID_ARGUMENT, std::string(what) +
                                           " is pageable host memory; the CUDA calls take device memory (or pinned "
                                           "host memory: cudaHostAlloc, cudaHostRegister)");
    }
    if (attributes.type == cudaMemoryTypeDevice && attributes.device != device) {
        fail(KVC_ERR_INVALID_ARGUMENT, std::string(what) + " is memory of CUDA device " +
                                           std::to_string(attributes.device) + ", the calling thread's device is " +
                                           std::to_string(device));
    }
}

// The call's device memory: host arrays packed into one upload, then scratch, in one cudaMallocAsync freed
// with cudaFreeAsync on the same stream after the call's last kernel (so nothing is synchronized).
class Workspace {
public:
    explicit Workspace(cudaStream_t stream) : stream_(stream) {}
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
    ~Workspace() {
        if (device_ != nullptr) (void)runtime().free_async(device_, stream_);
    }

    // Adds n elements of host data to the upload; returns their offset.
    template <class T>
    size_t put(const T* data, size_t n) {
        const size_t at = align(host_.size());
        host_.resize(at + n * sizeof(T));
        if (n != 0) std::memcpy(host_.data() + at, data, n * sizeof(T));
        return at;
    }
    // Reserves scratch after the upload (call after every put); returns its offset.
    size_t scratch(size_t bytes) {
        scratch_end_ = align(std::max(scratch_end_, host_.size()));
        const size_t at = scratch_end_;
        scratch_end_ += bytes;
        return at;
    }
    // Allocates and queues the upload; the host copy may go once this returns (pageable memory is staged).
    void upload() {
        const size_t total = std::max({scratch_end_, host_.size(), size_t(16)});
        check_cuda(runtime().malloc_async(&device_, total, stream_), "cudaMallocAsync");
        if (!host_.empty()) {
            check_cuda(runtime().memcpy_async(device_, host_.data(), host_.size(), cudaMemcpyHostToDevice, stream_),
                       "cudaMemcpyAsync (index arrays)");
        }
    }
    template <class T>
    T* at(size_t offset) const {
        return reinterpret_cast<T*>(static_cast<unsigned char*>(device_) + offset);
    }

private:
    static size_t align(size_t n) { return (n + 15) & ~size_t{15}; }
    cudaStream_t stream_;
    std::vector<unsigned char> host_;
    size_t scratch_end_ = 0;
    void* device_ = nullptr;
};

CacheView view_of(const ops::Layout& layout, uint32_t layer, const void* k, const void* v) {
    CacheView c;
    const uint64_t layer_offset = uint64_t(layer) * layout.layer_stride_bytes();
    c.k = const_cast<unsigned char*>(static_cast<const unsigned char*>(k)) + layer_offset;
    c.v = const_cast<unsigned char*>(static_cast<const unsigned char*>(v)) + layer_offset;
    c.block_stride = layout.block_stride_bytes();
    c.scale_offset = layout.scale_offset();
    c.block_size = layout.block_size;
    c.kv_heads = layout.kv_heads;
    c.head_dim = layout.head_dim;
    c.dtype = uint32_t(layout.dtype);
    return c;
}

// The used blocks of each sequence, packed, and where each sequence's start (host side of SeqView).
struct PackedSeqs {
    std::vector<int32_t> blocks;
    std::vector<uint64_t> first_block;  // num_seqs + 1
};

PackedSeqs pack_sequences(const ops::Layout& layout, const int32_t* block_tables, size_t max_blocks_per_seq,
                          const int32_t* seq_lens, size_t num_seqs) {
    PackedSeqs packed;
    packed.first_block.assign(num_seqs + 1, 0);
    for (size_t s = 0; s < num_seqs; ++s) {
        const uint64_t used = (uint64_t(seq_lens[s]) + layout.block_size - 1) / layout.block_size;
        packed.blocks.insert(packed.blocks.end(), block_tables + s * max_blocks_per_seq,
                             block_tables + s * max_blocks_per_seq + used);
        packed.first_block[s + 1] = packed.blocks.size();
    }
    return packed;
}

// Where put_sequences left each array in the workspace.
struct SeqOffsets {
    size_t blocks = 0, first_block = 0, seq_lens = 0;
};

SeqOffsets put_sequences(Workspace& ws, const PackedSeqs& packed, const int32_t* seq_lens, size_t num_seqs) {
    SeqOffsets at;
    at.blocks = ws.put(packed.blocks.data(), packed.blocks.size());
    at.first_block = ws.put(packed.first_block.data(), packed.first_block.size());
    at.seq_lens = ws.put(seq_lens, num_seqs);
    return at;
}

SeqView sequences_at(const Workspace& ws, const SeqOffsets& at, size_t num_seqs) {
    SeqView v;
    v.blocks = ws.at<const int32_t>(at.blocks);
    v.first_block = ws.at<const uint64_t>(at.first_block);
    v.seq_lens = ws.at<const int32_t>(at.seq_lens);
    v.num_seqs = num_seqs;
    return v;
}

bool aligned_to(uint64_t value, uint64_t alignment) { return value % alignment == 0; }

}  // namespace

void probe() {
    (void)runtime();  // throws when the plugin or the CUDA runtime cannot be loaded
    int count = 0;
    const cudaError_t err = runtime().get_device_count(&count);
    if (err != cudaSuccess) {
        (void)runtime().get_last_error();
        fail(KVC_ERR_UNSUPPORTED, "no usable CUDA device: cudaGetDeviceCount failed: " + describe(err));
    }
    if (count == 0) fail(KVC_ERR_UNSUPPORTED, "no usable CUDA device: cudaGetDeviceCount found none");
    const int device = current_device();
    int major = 0, minor = 0;
    check_cuda(runtime().device_get_attribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
    check_cuda(runtime().device_get_attribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
    if (major < 8) {
        fail(KVC_ERR_UNSUPPORTED, "CUDA device " + std::to_string(device) + " has compute capability " +
                                      std::to_string(major) + "." + std::to_string(minor) +
                                      "; kvcore's kernels need 8.0 or later");
    }
}

void write(const ops::Layout& layout, uint32_t layer, void* k_cache, void* v_cache, const void* key, const void* value,
           ops::DType src_dtype, const int64_t* slots, size_t n, cudaStream_t stream) {
    ops::check_write(layout, layer, k_cache, v_cache, key, value, src_dtype, slots, n);
    if (n == 0) return;
    const int device = current_device();
    check_reachable(k_cache, "k_cache", device);
    check_reachable(v_cache, "v_cache", device);
    check_reachable(key, "key", device);
    check_reachable(value, "value", device);

    Workspace ws(stream);
    const size_t slots_at = ws.put(slots, n);
    ws.upload();
    WriteParams p;
    p.cache = view_of(layout, layer, k_cache, v_cache);
    p.key = static_cast<const unsigned char*>(key);
    p.value = static_cast<const unsigned char*>(value);
    p.src_dtype = uint32_t(src_dtype);
    p.slots = ws.at<const int64_t>(slots_at);
    p.n = n;
    p.k_scale = layout.k_scale(layer);
    p.v_scale = layout.v_scale(layer);
    check_cuda(runtime().launch_write(p, stream), "launch of the write kernel");
}

void copy_blocks(const ops::Layout& layout, void* k_cache, void* v_cache, const int32_t* pairs, size_t num_pairs,
                 cudaStream_t stream) {
    ops::check_copy_blocks(layout, k_cache, v_cache, pairs, num_pairs);
    if (num_pairs == 0) return;
    const int device = current_device();
    check_reachable(k_cache, "k_cache", device);
    check_reachable(v_cache, "v_cache", device);

    Workspace ws(stream);
    const size_t pairs_at = ws.put(pairs, 2 * num_pairs);
    ws.upload();
    CopyParams p;
    p.k = static_cast<unsigned char*>(k_cache);
    p.v = static_cast<unsigned char*>(v_cache);
    p.block_stride = layout.block_stride_bytes();
    p.layer_stride = layout.layer_stride_bytes();
    p.block_bytes = layout.block_bytes();
    p.layers = layout.layers;
    p.pairs = ws.at<const int32_t>(pairs_at);
    p.num_pairs = num_pairs;
    check_cuda(runtime().launch_copy_blocks(p, stream), "launch of the copy kernel");
}

void swap_blocks(const ops::Layout& src_layout, const void* src_k, const void* src_v, const ops::Layout& dst_layout,
                 void* dst_k, void* dst_v, const int32_t* pairs, size_t num_pairs, cudaStream_t stream) {
    ops::check_swap_blocks(src_layout, src_k, src_v, dst_layout, dst_k, dst_v, pairs, num_pairs);
    if (num_pairs == 0) return;
    const int device = current_device();
    check_reachable(src_k, "src_k", device);
    check_reachable(src_v, "src_v", device);
    check_reachable(dst_k, "dst_k", device);
    check_reachable(dst_v, "dst_v", device);
    int max_pitch = 0;
    check_cuda(runtime().device_get_attribute(&max_pitch, cudaDevAttrMaxPitch, device), "cudaDeviceGetAttribute");

    const uint64_t block = src_layout.block_bytes();
    const uint64_t src_bs = src_layout.block_stride_bytes(), dst_bs = dst_layout.block_stride_bytes();
    const uint64_t src_ls = src_layout.layer_stride_bytes(), dst_ls = dst_layout.layer_stride_bytes();
    const uint32_t layers = src_layout.layers;
    const bool packed = src_bs == block && dst_bs == block;
    const auto pitch_ok = [&](uint64_t pitch) { return pitch <= uint64_t(max_pitch); };
    const std::vector<ops::BlockRun> runs = ops::plan_block_runs(pairs, num_pairs);
    // cudaMemcpyDefault: the direction follows from the pointers (unified addressing), so device <-> pinned
    // host in either direction and device <-> device are one code path.
    for (int tensor = 0; tensor < 2; ++tensor) {
        const auto* src = static_cast<const unsigned char*>(tensor == 0 ? src_k : src_v);
        auto* dst = static_cast<unsigned char*>(tensor == 0 ? dst_k : dst_v);
        for (const ops::BlockRun& run : runs) {
            const uint64_t count = uint64_t(run.count);
            const uint64_t width = count * block;
            const unsigned char* s0 = src + uint64_t(run.src) * src_bs;
            unsigned char* d0 = dst + uint64_t(run.dst) * dst_bs;
            // One layer goes through the plain copy below: a 2D copy would still check its pitch (the layer
            // stride), which a large one-layer cache exceeds (cudaDevAttrMaxPitch is 2^31 - 1).
            if (packed && layers > 1 && pitch_ok(src_ls) && pitch_ok(dst_ls) && width <= src_ls && width <= dst_ls) {
                // The run of every layer at once: one 2D copy, rows = layers.
                check_cuda(runtime().memcpy_2d_async(d0, dst_ls, s0, src_ls, width, layers, cudaMemcpyDefault, stream),
                           "cudaMemcpy2DAsync (swap)");
                continue;
            }
            for (uint32_t layer = 0; layer < layers; ++layer) {
                const unsigned char* s = s0 + uint64_t(layer) * src_ls;
                unsigned char* d = d0 + uint64_t(layer) * dst_ls;
                if (packed) {
                    check_cuda(runtime().memcpy_async(d, s, width, cudaMemcpyDefault, stream), "cudaMemcpyAsync (swap)");
                } else if (pitch_ok(src_bs) && pitch_ok(dst_bs)) {
                    // Blocks of this layer are strided (e.g. the pool's layers side by side in each block).
                    check_cuda(runtime().memcpy_2d_async(d, dst_bs, s, src_bs, block, count, cudaMemcpyDefault, stream),
                               "cudaMemcpy2DAsync (swap)");
                } else {
                    for (uint64_t b = 0; b < count; ++b) {
                        check_cuda(runtime().memcpy_async(d + b * dst_bs, s + b * src_bs, block, cudaMemcpyDefault, stream),
                                   "cudaMemcpyAsync (swap)");
                    }
                }
            }
        }
    }
}

void gather(const ops::Layout& layout, uint32_t layer, const void* k_cache, const void* v_cache,
            const int32_t* block_tables, size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs,
            void* out_k, void* out_v, ops::DType out_dtype, size_t out_capacity_tokens, cudaStream_t stream) {
    const uint64_t total = ops::check_gather(layout, layer, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens,
                                             num_seqs, out_k, out_v, out_dtype, out_capacity_tokens);
    if (total == 0) return;
    const int device = current_device();
    check_reachable(k_cache, "k_cache", device);
    check_reachable(v_cache, "v_cache", device);
    check_reachable(out_k, "out_k", device);
    check_reachable(out_v, "out_v", device);

    const PackedSeqs packed = pack_sequences(layout, block_tables, max_blocks_per_seq, seq_lens, num_seqs);
    std::vector<uint64_t> first_token(num_seqs + 1, 0);
    for (size_t s = 0; s < num_seqs; ++s) first_token[s + 1] = first_token[s] + uint64_t(seq_lens[s]);
    Workspace ws(stream);
    const SeqOffsets seqs_at = put_sequences(ws, packed, seq_lens, num_seqs);
    const size_t tokens_at = ws.put(first_token.data(), first_token.size());
    ws.upload();
    GatherParams p;
    p.seqs = sequences_at(ws, seqs_at, num_seqs);
    p.cache = view_of(layout, layer, k_cache, v_cache);
    p.first_token = ws.at<const uint64_t>(tokens_at);
    p.total_tokens = total;
    p.out_k = static_cast<unsigned char*>(out_k);
    p.out_v = static_cast<unsigned char*>(out_v);
    p.out_dtype = uint32_t(out_dtype);
    p.k_scale = layout.k_scale(layer);
    p.v_scale = layout.v_scale(layer);
    check_cuda(runtime().launch_gather(p, stream), "launch of the gather kernel");
}

void attention_decode(const ops::Layout& layout, const ops::DecodeArgs& a, cudaStream_t stream) {
    ops::check_attention_decode(layout, a);
    if (a.num_seqs == 0) return;
    if (layout.head_dim > kMaxDecodeHeadDim) {
        fail(KVC_ERR_UNSUPPORTED, "CUDA decode attention supports head_dim up to " + std::to_string(kMaxDecodeHeadDim) +
                                      ", the layout has " + std::to_string(layout.head_dim));
    }
    const int device = current_device();
    check_reachable(a.k_cache, "k_cache", device);
    check_reachable(a.v_cache, "v_cache", device);
    check_reachable(a.query, "query", device);
    check_reachable(a.out, "out", device);

    if (a.num_seqs > size_t(INT32_MAX)) fail(KVC_ERR_OUT_OF_RANGE, "num_seqs is past 2^31 - 1");
    // Parts as the CPU cuts them: whole blocks, about partition_tokens tokens each.
    const uint32_t part_tokens = std::max<uint32_t>(1, a.partition_tokens / layout.block_size) * layout.block_size;
    std::vector<int32_t> items;
    std::vector<uint64_t> first_item(a.num_seqs + 1, 0);
    for (size_t s = 0; s < a.num_seqs; ++s) {
        const uint64_t parts = (uint64_t(a.seq_lens[s]) + part_tokens - 1) / part_tokens;
        for (uint64_t part = 0; part < parts; ++part) {
            items.push_back(int32_t(s));
            items.push_back(int32_t(part));
        }
        first_item[s + 1] = first_item[s] + parts;
    }
    const uint64_t num_items = first_item[a.num_seqs];
    const PackedSeqs packed = pack_sequences(layout, a.block_tables, a.max_blocks_per_seq, a.seq_lens, a.num_seqs);

    Workspace ws(stream);
    const SeqOffsets seqs_at = put_sequences(ws, packed, a.seq_lens, a.num_seqs);
    const size_t items_at = ws.put(items.data(), items.size());
    const size_t first_item_at = ws.put(first_item.data(), first_item.size());
    const uint64_t heads = uint64_t(num_items) * a.num_q_heads;
    const size_t acc_at = ws.scratch(heads * layout.head_dim * sizeof(float));
    const size_t max_at = ws.scratch(heads * sizeof(float));
    const size_t sum_at = ws.scratch(heads * sizeof(float));
    ws.upload();
    DecodeParams p;
    p.seqs = sequences_at(ws, seqs_at, a.num_seqs);
    p.cache = view_of(layout, a.layer, a.k_cache, a.v_cache);
    p.query = a.query;
    p.out = a.out;
    p.q_heads = a.num_q_heads;
    p.group = a.num_q_heads / layout.kv_heads;
    p.softmax_scale = a.scale;
    p.k_scale = layout.k_scale(a.layer);
    p.v_scale = layout.v_scale(a.layer);
    p.part_tokens = part_tokens;
    p.items = ws.at<const int32_t>(items_at);
    p.num_items = num_items;
    p.first_item = ws.at<const uint64_t>(first_item_at);
    p.part_acc = ws.at<float>(acc_at);
    p.part_max = ws.at<float>(max_at);
    p.part_sum = ws.at<float>(sum_at);
    // The vectorized path loads 8 elements of a row at once: rows, blocks and bases aligned to that.
    const uint64_t chunk = 8ull * layout.element_bytes();
    p.vectorized = layout.head_dim % 8 == 0 && aligned_to(reinterpret_cast<uintptr_t>(p.cache.k), chunk) &&
                   aligned_to(reinterpret_cast<uintptr_t>(p.cache.v), chunk) && aligned_to(p.cache.block_stride, chunk);
    check_cuda(runtime().launch_attention_decode(p, stream), "launch of the decode attention kernels");
}

}  // namespace kvcore::cuda
