// SPDX-License-Identifier: Apache-2.0
// The CPU KV kernels through the C API, each against a memcpy of the same bytes in the same run: every
// iteration times the operation, then a memcpy of its bytes split over the same worker threads (so both
// use every core), alternating so that load from elsewhere hits both alike. Reported per benchmark (medians
// over iterations): op_GBps, memcpy_GBps, ratio = op / memcpy; attention adds decode tokens/s.
// Bytes: write = the new K/V read from the source; copy/swap/gather = K/V bytes copied; attention = the
// K and V bytes of every context read once (the figure: >= 50 % of memcpy at 4,096 tokens).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "kvcore/ops.h"
#include "ops/parallel.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

// memcpy of `bytes` split into one piece per worker thread (the anchor).
void parallel_memcpy(unsigned char* dst, const unsigned char* src, size_t bytes) {
    const size_t pieces = kvc_kv_threads();
    const size_t piece = (bytes + pieces - 1) / pieces;
    kvcore::ops::parallel_for(pieces, [&](size_t i) {
        const size_t begin = std::min(bytes, i * piece), end = std::min(bytes, begin + piece);
        std::memcpy(dst + begin, src + begin, end - begin);
    });
}

// Times op() and a memcpy of `bytes` alternately; sets the counters.
template <class Op>
void measure(benchmark::State& state, size_t bytes, Op&& op, double decode_tokens = 0) {
    std::vector<unsigned char> a(bytes, 1), b(bytes, 2);
    std::vector<double> op_s, copy_s;
    for (auto _ : state) {
        const auto t0 = Clock::now();
        op();
        const auto t1 = Clock::now();
        parallel_memcpy(b.data(), a.data(), bytes);
        benchmark::ClobberMemory();
        const auto t2 = Clock::now();
        op_s.push_back(std::chrono::duration<double>(t1 - t0).count());
        copy_s.push_back(std::chrono::duration<double>(t2 - t1).count());
        state.SetIterationTime(op_s.back());
    }
    const double op_gbps = double(bytes) / median(op_s) / 1e9, copy_gbps = double(bytes) / median(copy_s) / 1e9;
    state.counters["op_GBps"] = op_gbps;
    state.counters["memcpy_GBps"] = copy_gbps;
    state.counters["ratio"] = op_gbps / copy_gbps;
    state.counters["MiB"] = double(bytes) / (1 << 20);
    if (decode_tokens > 0) state.counters["decode_tok_per_s"] = decode_tokens / median(op_s);
}

struct Cache {
    kvc_kv_layout* layout = nullptr;
    std::vector<uint32_t> k, v;  // 4-byte aligned
    uint64_t block_bytes = 0;
    Cache(uint32_t layers, uint32_t blocks, uint32_t block_size, uint32_t heads, uint32_t dim, kvc_dtype dtype) {
        kvc_kv_layout_create(&layout);
        if (kvc_kv_layout_set_shape(layout, layers, blocks, block_size, heads, dim, dtype) != KVC_OK) std::abort();
        block_bytes = kvc_kv_layout_block_bytes(layout);
        k.assign(block_bytes * blocks * layers / 4, 0);
        v.assign(block_bytes * blocks * layers / 4, 0);
    }
    ~Cache() { kvc_kv_layout_destroy(layout); }
    // Real values in every slot of layer 0 (no NaN in FP8/INT8 caches).
    void fill(uint32_t slots, uint32_t heads, uint32_t dim) {
        std::vector<float> src(size_t(slots) * heads * dim);
        std::mt19937 rng(1);
        std::uniform_real_distribution<float> u(-1.f, 1.f);
        for (auto& x : src) x = u(rng);
        std::vector<int64_t> ids(slots);
        std::iota(ids.begin(), ids.end(), 0);
        if (kvc_kv_write(layout, 0, k.data(), v.data(), src.data(), src.data(), KVC_DTYPE_F32, ids.data(), slots) != KVC_OK)
            std::abort();
    }
};

constexpr uint32_t kHeads = 8, kDim = 128, kBlock = 16;

// Prefill of 4,096 tokens (F32 source) into random slots of a cache of range(0)'s type.
void BM_Write(benchmark::State& state) {
    const auto dtype = kvc_dtype(state.range(0));
    const uint32_t tokens = 4096, blocks = 4096;
    Cache c(1, blocks, kBlock, kHeads, kDim, dtype);
    std::vector<float> key(size_t(tokens) * kHeads * kDim, 0.5f), value(key.size(), -0.25f);
    std::vector<int64_t> slots(size_t(blocks) * kBlock);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), std::mt19937(2));
    slots.resize(tokens);
    measure(state, 2 * key.size() * sizeof(float), [&] {
        if (kvc_kv_write(c.layout, 0, c.k.data(), c.v.data(), key.data(), value.data(), KVC_DTYPE_F32, slots.data(),
                         tokens) != KVC_OK)
            std::abort();
    });
}

// Copy-on-write: 512 scattered (src, dst) pairs over 8 layers, F16.
void BM_CopyBlocks(benchmark::State& state) {
    const uint32_t layers = 8, blocks = 2048, pairs_n = 512;
    Cache c(layers, blocks, kBlock, kHeads, kDim, KVC_DTYPE_F16);
    std::vector<int32_t> ids(blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(3));
    std::vector<int32_t> pairs;
    for (uint32_t i = 0; i < pairs_n; ++i) pairs.insert(pairs.end(), {ids[i], ids[pairs_n + i]});
    measure(state, size_t(pairs_n) * layers * 2 * c.block_bytes, [&] {
        if (kvc_kv_copy_blocks(c.layout, c.k.data(), c.v.data(), pairs.data(), pairs_n) != KVC_OK) std::abort();
    });
}

// Swap-out of 1,024 blocks over 8 layers, F16: range(0) = 1 contiguous (runs coalesce into one copy per
// layer and tensor), 0 scattered (one copy per block, vLLM's way).
void BM_SwapBlocks(benchmark::State& state) {
    const uint32_t layers = 8, blocks = 1024;
    Cache device(layers, blocks, kBlock, kHeads, kDim, KVC_DTYPE_F16), host(layers, blocks, kBlock, kHeads, kDim, KVC_DTYPE_F16);
    std::vector<int32_t> dst(blocks);
    std::iota(dst.begin(), dst.end(), 0);
    if (state.range(0) == 0) std::shuffle(dst.begin(), dst.end(), std::mt19937(4));
    std::vector<int32_t> pairs;
    for (uint32_t b = 0; b < blocks; ++b) pairs.insert(pairs.end(), {int32_t(b), dst[b]});
    measure(state, size_t(blocks) * layers * 2 * device.block_bytes, [&] {
        if (kvc_kv_swap_blocks(device.layout, device.k.data(), device.v.data(), host.layout, host.k.data(), host.v.data(),
                               pairs.data(), blocks) != KVC_OK)
            std::abort();
    });
}

// 8 sequences of 1,024 tokens from scattered blocks to contiguous rows; cache range(0) -> output range(1).
void BM_Gather(benchmark::State& state) {
    const auto dtype = kvc_dtype(state.range(0)), out_dtype = kvc_dtype(state.range(1));
    const uint32_t seqs = 8, len = 1024, per_seq = len / kBlock, blocks = seqs * per_seq;
    Cache c(1, blocks, kBlock, kHeads, kDim, dtype);
    c.fill(blocks * kBlock, kHeads, kDim);
    std::vector<int32_t> table(blocks);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), std::mt19937(5));
    std::vector<int32_t> lens(seqs, int32_t(len));
    const size_t out_bytes = size_t(seqs) * len * kHeads * kDim * (out_dtype == KVC_DTYPE_F32 ? 4 : 2);
    std::vector<uint32_t> ok(out_bytes / 4), ov(out_bytes / 4);
    measure(state, size_t(blocks) * 2 * c.block_bytes, [&] {
        if (kvc_kv_gather(c.layout, 0, c.k.data(), c.v.data(), table.data(), per_seq, lens.data(), seqs, ok.data(),
                          ov.data(), out_dtype, size_t(seqs) * len) != KVC_OK)
            std::abort();
    });
}

// Decode over range(1) sequences of 4,096 tokens, 8 KV heads x 128, 32 query heads (GQA 4), cache range(0).
void BM_AttentionDecode(benchmark::State& state) {
    const auto dtype = kvc_dtype(state.range(0));
    const uint32_t seqs = uint32_t(state.range(1)), len = 4096, per_seq = len / kBlock, blocks = seqs * per_seq;
    const uint32_t q_heads = 32;
    Cache c(1, blocks, kBlock, kHeads, kDim, dtype);
    c.fill(blocks * kBlock, kHeads, kDim);
    std::vector<int32_t> table(blocks);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), std::mt19937(6));
    std::vector<int32_t> lens(seqs, int32_t(len));
    std::vector<float> query(size_t(seqs) * q_heads * kDim, 0.01f), out(query.size());
    measure(
        state, size_t(blocks) * 2 * c.block_bytes,
        [&] {
            if (kvc_kv_attention_decode(c.layout, 0, c.k.data(), c.v.data(), query.data(), q_heads, table.data(), per_seq,
                                        lens.data(), seqs, 0.088f, out.data()) != KVC_OK)
                std::abort();
        },
        double(seqs));
}

// dtype codes: 0 f16, 1 bf16, 2 f32, 3 fp8, 4 int8.
BENCHMARK(BM_Write)->ArgName("dtype")->Arg(KVC_DTYPE_F16)->Arg(KVC_DTYPE_FP8)->Arg(KVC_DTYPE_INT8)->UseManualTime();
BENCHMARK(BM_CopyBlocks)->UseManualTime();
BENCHMARK(BM_SwapBlocks)->ArgName("contiguous")->Arg(1)->Arg(0)->UseManualTime();
BENCHMARK(BM_Gather)->ArgNames({"dtype", "out"})->Args({KVC_DTYPE_F16, KVC_DTYPE_F16})->Args({KVC_DTYPE_FP8, KVC_DTYPE_F32})->UseManualTime();
BENCHMARK(BM_AttentionDecode)
    ->ArgNames({"dtype", "seqs"})
    ->Args({KVC_DTYPE_F16, 4})
    ->Args({KVC_DTYPE_F16, 1})
    ->Args({KVC_DTYPE_BF16, 4})
    ->Args({KVC_DTYPE_F32, 4})
    ->Args({KVC_DTYPE_FP8, 4})
    ->Args({KVC_DTYPE_INT8, 4})
    ->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
