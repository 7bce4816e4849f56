// SPDX-License-Identifier: Apache-2.0
// copy_blocks (copy-on-write inside one cache) and swap_blocks (between two memories): both plan runs of
// consecutive blocks and issue one memcpy per run, layer and tensor, where vLLM issues one per block.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "ops/ops.h"
#include "ops/parallel.h"

namespace kvcore::ops {
namespace {

void check_pairs(const int32_t* pairs, size_t num_pairs, uint32_t src_blocks, uint32_t dst_blocks) {
    if (num_pairs != 0 && pairs == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, "pairs is NULL but num_pairs is not 0");
    for (size_t i = 0; i < num_pairs; ++i) {
        const int32_t src = pairs[2 * i], dst = pairs[2 * i + 1];
        if (src < 0 || uint32_t(src) >= src_blocks) {
            fail(KVC_ERR_OUT_OF_RANGE, "pair " + std::to_string(i) + ": source block " + std::to_string(src) +
                                           " is not 0.." + std::to_string(src_blocks - 1));
        }
        if (dst < 0 || uint32_t(dst) >= dst_blocks) {
            fail(KVC_ERR_OUT_OF_RANGE, "pair " + std::to_string(i) + ": destination block " + std::to_string(dst) +
                                           " is not 0.." + std::to_string(dst_blocks - 1));
        }
    }
}

// Sorted destinations; throws when one appears twice (the result would depend on the order of copies).
std::vector<int32_t> distinct_destinations(const int32_t* pairs, size_t num_pairs) {
    std::vector<int32_t> dsts(num_pairs);
    for (size_t i = 0; i < num_pairs; ++i) dsts[i] = pairs[2 * i + 1];
    std::sort(dsts.begin(), dsts.end());
    if (auto dup = std::adjacent_find(dsts.begin(), dsts.end()); dup != dsts.end()) {
        fail(KVC_ERR_INVALID_ARGUMENT, "destination block " + std::to_string(*dup) + " appears twice");
    }
    return dsts;
}

// One piece of copying: `count` blocks of one layer's K or V.
struct Piece {
    const unsigned char* src;
    unsigned char* dst;
    uint32_t count;
};

// Runs -> pieces per layer and tensor, runs cut at 4 MiB so that one long run still spreads over threads.
void copy_runs(const std::vector<BlockRun>& runs, const Layout& src_layout, const unsigned char* src_k,
               const unsigned char* src_v, const Layout& dst_layout, unsigned char* dst_k, unsigned char* dst_v) {
    const uint64_t block = src_layout.block_bytes();
    const uint64_t src_stride = src_layout.block_stride_bytes(), dst_stride = dst_layout.block_stride_bytes();
    const uint32_t max_piece = uint32_t(std::max<uint64_t>(1, (4u << 20) / block));
    std::vector<Piece> pieces;
    for (uint32_t layer = 0; layer < src_layout.layers; ++layer) {
        const uint64_t src_layer = layer * src_layout.layer_stride_bytes();
        const uint64_t dst_layer = layer * dst_layout.layer_stride_bytes();
        for (const BlockRun& run : runs) {
            for (int32_t done = 0; done < run.count; done += int32_t(max_piece)) {
                const uint32_t count = std::min<uint32_t>(max_piece, uint32_t(run.count - done));
                const uint64_t s = src_layer + uint64_t(run.src + done) * src_stride;
                const uint64_t d = dst_layer + uint64_t(run.dst + done) * dst_stride;
                pieces.push_back({src_k + s, dst_k + d, count});
                pieces.push_back({src_v + s, dst_v + d, count});
            }
        }
    }
    const bool packed = src_stride == block && dst_stride == block;
    parallel_for(pieces.size(), [&](size_t i) {
        const Piece& p = pieces[i];
        if (packed) {
            std::memcpy(p.dst, p.src, p.count * block);
            return;
        }
        for (uint32_t b = 0; b < p.count; ++b) std::memcpy(p.dst + b * dst_stride, p.src + b * src_stride, block);
    });
}

}  // namespace

std::vector<BlockRun> plan_block_runs(const int32_t* pairs, size_t num_pairs) {
    std::vector<BlockRun> sorted(num_pairs);
    for (size_t i = 0; i < num_pairs; ++i) sorted[i] = {pairs[2 * i], pairs[2 * i + 1], 1};
    std::sort(sorted.begin(), sorted.end(),
              [](const BlockRun& a, const BlockRun& b) { return a.src != b.src ? a.src < b.src : a.dst < b.dst; });
    std::vector<BlockRun> runs;
    for (const BlockRun& p : sorted) {
        if (!runs.empty()) {
            BlockRun& last = runs.back();
            if (p.src == last.src + last.count && p.dst == last.dst + last.count) {
                ++last.count;
                continue;
            }
        }
        runs.push_back(p);
    }
    return runs;
}

void check_copy_blocks(const Layout& layout, const void* k_cache, const void* v_cache, const int32_t* pairs,
                       size_t num_pairs) {
    layout.validate();
    check_pairs(pairs, num_pairs, layout.num_blocks, layout.num_blocks);
    if (num_pairs == 0) return;
    check_aligned(k_cache, layout.alignment(), "k_cache");
    check_aligned(v_cache, layout.alignment(), "v_cache");
    const std::vector<int32_t> dsts = distinct_destinations(pairs, num_pairs);
    for (size_t i = 0; i < num_pairs; ++i) {
        if (std::binary_search(dsts.begin(), dsts.end(), pairs[2 * i])) {
            fail(KVC_ERR_INVALID_ARGUMENT, "block " + std::to_string(pairs[2 * i]) +
                                               " is both a source and a destination (the order of copies would matter)");
        }
    }
}

void copy_blocks(const Layout& layout, void* k_cache, void* v_cache, const int32_t* pairs, size_t num_pairs) {
    check_copy_blocks(layout, k_cache, v_cache, pairs, num_pairs);
    if (num_pairs == 0) return;
    auto* k = static_cast<unsigned char*>(k_cache);
    auto* v = static_cast<unsigned char*>(v_cache);
    copy_runs(plan_block_runs(pairs, num_pairs), layout, k, v, layout, k, v);
}

void check_swap_blocks(const Layout& src_layout, const void* src_k, const void* src_v, const Layout& dst_layout,
                       const void* dst_k, const void* dst_v, const int32_t* pairs, size_t num_pairs) {
    src_layout.validate();
    dst_layout.validate();
    if (src_layout.layers != dst_layout.layers || src_layout.block_size != dst_layout.block_size ||
        src_layout.kv_heads != dst_layout.kv_heads || src_layout.head_dim != dst_layout.head_dim ||
        src_layout.dtype != dst_layout.dtype) {
        fail(KVC_ERR_INVALID_ARGUMENT,
             "the source and destination layouts differ in layers, block_size, kv_heads, head_dim or dtype");
    }
    check_pairs(pairs, num_pairs, src_layout.num_blocks, dst_layout.num_blocks);
    if (num_pairs == 0) return;
    check_aligned(src_k, src_layout.alignment(), "src_k");
    check_aligned(src_v, src_layout.alignment(), "src_v");
    check_aligned(dst_k, dst_layout.alignment(), "dst_k");
    check_aligned(dst_v, dst_layout.alignment(), "dst_v");
    (void)distinct_destinations(pairs, num_pairs);
}

void swap_blocks(const Layout& src_layout, const void* src_k, const void* src_v, const Layout& dst_layout, void* dst_k,
                 void* dst_v, const int32_t* pairs, size_t num_pairs) {
    check_swap_blocks(src_layout, src_k, src_v, dst_layout, dst_k, dst_v, pairs, num_pairs);
    if (num_pairs == 0) return;
    copy_runs(plan_block_runs(pairs, num_pairs), src_layout, static_cast<const unsigned char*>(src_k),
              static_cast<const unsigned char*>(src_v), dst_layout, static_cast<unsigned char*>(dst_k),
              static_cast<unsigned char*>(dst_v));
}

}  // namespace kvcore::ops
