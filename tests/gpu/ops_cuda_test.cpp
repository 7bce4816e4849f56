// SPDX-License-Identifier: Apache-2.0
// Every CUDA operation of kvcore/ops_cuda.h against its CPU twin (kvcore/ops.h) on random inputs, through the
// public C API: write, copy and swap must give the CPU's bytes (every dtype, packed and pool-like strided
// layouts), gather too (every cache and output dtype), decode attention within float rounding (MHA, GQA,
// MQA, head_dim with and without the vectorized path, empty, partial and multi-part sequences). Bad input
// leaves device memory unchanged. Without a usable device: every entry point must answer
// KVC_ERR_UNSUPPORTED naming CUDA; then the test prints SKIPPED and exits 77 (ctest: skipped).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kvcore/kvcore.h"

namespace {

const kvc_dtype kAllTypes[] = {KVC_DTYPE_F32, KVC_DTYPE_F16, KVC_DTYPE_BF16, KVC_DTYPE_FP8, KVC_DTYPE_INT8};
const kvc_dtype kSourceTypes[] = {KVC_DTYPE_F32, KVC_DTYPE_F16, KVC_DTYPE_BF16};

size_t type_bytes(kvc_dtype t) { return t == KVC_DTYPE_F32 ? 4 : (t == KVC_DTYPE_F16 || t == KVC_DTYPE_BF16) ? 2 : 1; }

#define ASSERT_CUDA(expr) ASSERT_EQ((expr), cudaSuccess) << #expr
#define ASSERT_KVC(expr) ASSERT_EQ((expr), KVC_OK) << #expr << ": " << kvc_last_error_message()

// Device memory (or pinned host memory) with host-side helpers.
class Buffer {
public:
    enum Kind { kDevice, kPinned };
    explicit Buffer(size_t bytes, Kind kind = kDevice) : bytes_(bytes), kind_(kind) {
        const cudaError_t err = kind == kDevice ? cudaMalloc(&p_, bytes) : cudaHostAlloc(&p_, bytes, cudaHostAllocDefault);
        if (err != cudaSuccess) p_ = nullptr;
    }
    ~Buffer() {
        if (p_ == nullptr) return;
        if (kind_ == kDevice) {
            cudaFree(p_);
        } else {
            cudaFreeHost(p_);
        }
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    unsigned char* get() const { return static_cast<unsigned char*>(p_); }
    void upload(const std::vector<unsigned char>& host) const {
        ASSERT_EQ(host.size(), bytes_);
        cudaMemcpy(p_, host.data(), bytes_, cudaMemcpyDefault);
    }
    std::vector<unsigned char> download() const {
        std::vector<unsigned char> host(bytes_);
        cudaDeviceSynchronize();
        cudaMemcpy(host.data(), p_, bytes_, cudaMemcpyDefault);
        return host;
    }

private:
    void* p_ = nullptr;
    size_t bytes_;
    Kind kind_;
};

// A layout handle; `pooled` describes kvcore's host pool arrangement (a block's layers together, K then V).
struct Layout {
    kvc_kv_layout* h = nullptr;
    uint64_t block_bytes = 0, k_offset = 0, v_offset = 0, total = 0;
    Layout(uint32_t layers, uint32_t blocks, uint32_t block_size, uint32_t heads, uint32_t dim, kvc_dtype dtype,
           bool pooled = false) {
        kvc_kv_layout_create(&h);
        EXPECT_EQ(kvc_kv_layout_set_shape(h, layers, blocks, block_size, heads, dim, dtype), KVC_OK);
        block_bytes = kvc_kv_layout_block_bytes(h);
        if (pooled) {
            EXPECT_EQ(kvc_kv_layout_set_strides(h, 2 * layers * block_bytes, 2 * block_bytes), KVC_OK);
            k_offset = 0;
            v_offset = block_bytes;
            total = uint64_t(blocks) * 2 * layers * block_bytes;
        } else {
            const uint64_t tensor = uint64_t(layers) * blocks * block_bytes;
            k_offset = 0;
            v_offset = tensor;
            total = 2 * tensor;
        }
        if (dtype == KVC_DTYPE_FP8) {
            std::vector<float> ks(layers), vs(layers);
            for (uint32_t l = 0; l < layers; ++l) ks[l] = 0.5f + 0.25f * l, vs[l] = 2.f - 0.25f * l;
            EXPECT_EQ(kvc_kv_layout_set_fp8_scales(h, ks.data(), vs.data(), layers), KVC_OK);
        }
    }
    ~Layout() { kvc_kv_layout_destroy(h); }
    Layout(const Layout&) = delete;
    Layout& operator=(const Layout&) = delete;
};

std::vector<unsigned char> random_bytes(size_t n, std::mt19937& rng) {
    std::vector<unsigned char> v(n);
    for (auto& b : v) b = static_cast<unsigned char>(rng());
    return v;
}

// Random finite values in [-range, range) as src dtype (F32, F16, BF16), via the CPU's own conversions: a
// one-token F32 write into an F16/BF16 scratch layout would do, but a plain encoding is enough here.
std::vector<unsigned char> random_values(size_t count, kvc_dtype t, std::mt19937& rng, float range = 2.f) {
    std::uniform_real_distribution<float> dist(-range, range);
    std::vector<unsigned char> out(count * type_bytes(t));
    for (size_t i = 0; i < count; ++i) {
        const float x = dist(rng);
        uint32_t u;
        std::memcpy(&u, &x, 4);
        if (t == KVC_DTYPE_F32) {
            std::memcpy(&out[4 * i], &x, 4);
        } else if (t == KVC_DTYPE_BF16) {
            const uint16_t b = uint16_t(u >> 16);  // truncation: any bf16 code is a valid input
            std::memcpy(&out[2 * i], &b, 2);
        } else {
            // fp16 with the same sign, a small exponent range and random mantissa: finite, normal.
            const uint16_t h = uint16_t(((u >> 16) & 0x8000) | ((10 + rng() % 6) << 10) | (rng() & 0x3FF));
            std::memcpy(&out[2 * i], &h, 2);
        }
    }
    return out;
}

// A cache whose every slot holds written tokens (so that FP8/INT8 codes and scales are what write produces).
std::vector<unsigned char> filled_cache(const Layout& L, uint32_t layers, uint32_t slots, uint32_t heads, uint32_t dim,
                                        std::mt19937& rng) {
    std::vector<unsigned char> cache = random_bytes(L.total, rng);
    std::vector<int64_t> all(slots);
    std::iota(all.begin(), all.end(), 0);
    for (uint32_t layer = 0; layer < layers; ++layer) {
        const auto key = random_values(size_t(slots) * heads * dim, KVC_DTYPE_F32, rng);
        const auto value = random_values(size_t(slots) * heads * dim, KVC_DTYPE_F32, rng);
        EXPECT_EQ(kvc_kv_write(L.h, layer, cache.data() + L.k_offset, cache.data() + L.v_offset, key.data(), value.data(),
                               KVC_DTYPE_F32, all.data(), slots),
                  KVC_OK)
            << kvc_last_error_message();
    }
    return cache;
}

class OpsCuda : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_CUDA(cudaStreamCreate(&stream_)); }
    void TearDown() override { cudaStreamDestroy(stream_); }
    cudaStream_t stream_ = nullptr;
    std::mt19937 rng_{20241114};
};

// ---- write -------------------------------------------------------------------------------------------
TEST_F(OpsCuda, WriteGivesTheCpuBytesForEveryTypePair) {
    for (uint32_t dim : {64u, 20u}) {  // 16-byte rows and odd rows
        for (bool pooled : {false, true}) {
            for (kvc_dtype cache_type : kAllTypes) {
                for (kvc_dtype src_type : kSourceTypes) {
                    SCOPED_TRACE(std::to_string(dim) + " pooled " + std::to_string(pooled) + " cache " +
                                 std::to_string(cache_type) + " src " + std::to_string(src_type));
                    const uint32_t layers = 2, blocks = 12, bs = 16, heads = 4, n = 100;
                    Layout L(layers, blocks, bs, heads, dim, cache_type, pooled);
                    const auto initial = random_bytes(L.total, rng_);
                    // Distinct slots in scattered blocks, partial blocks, and skipped tokens.
                    std::vector<int64_t> slots(blocks * bs);
                    std::iota(slots.begin(), slots.end(), 0);
                    std::shuffle(slots.begin(), slots.end(), rng_);
                    slots.resize(n);
                    for (uint32_t i = 0; i < n; i += 7) slots[i] = -1;
                    const auto key = random_values(size_t(n) * heads * dim, src_type, rng_);
                    const auto value = random_values(size_t(n) * heads * dim, src_type, rng_);

                    std::vector<unsigned char> cpu = initial;
                    ASSERT_KVC(kvc_kv_write(L.h, 1, cpu.data() + L.k_offset, cpu.data() + L.v_offset, key.data(),
                                            value.data(), src_type, slots.data(), n));
                    Buffer cache(L.total), dk(key.size()), dv(value.size());
                    cache.upload(initial);
                    dk.upload(key);
                    dv.upload(value);
                    ASSERT_KVC(kvc_kv_cuda_write(L.h, 1, cache.get() + L.k_offset, cache.get() + L.v_offset, dk.get(),
                                                 dv.get(), src_type, slots.data(), n, stream_));
                    ASSERT_CUDA(cudaStreamSynchronize(stream_));
                    ASSERT_TRUE(cache.download() == cpu);
                }
            }
        }
    }
}

// ---- copy blocks -------------------------------------------------------------------------------------
TEST_F(OpsCuda, CopyBlocksGivesTheCpuBytes) {
    for (bool pooled : {false, true}) {
        for (kvc_dtype t : kAllTypes) {
            for (uint32_t dim : {128u, 12u}) {
                SCOPED_TRACE(std::to_string(t) + " dim " + std::to_string(dim) + " pooled " + std::to_string(pooled));
                const uint32_t layers = 3, blocks = 40;
                Layout L(layers, blocks, 16, 2, dim, t, pooled);
                const auto initial = random_bytes(L.total, rng_);
                // Sources 0..14, destinations 20..39 shuffled: some runs, some scattered.
                std::vector<int32_t> dsts(20);
                std::iota(dsts.begin(), dsts.end(), 20);
                std::shuffle(dsts.begin() + 8, dsts.end(), rng_);
                std::vector<int32_t> pairs;
                for (int32_t i = 0; i < 15; ++i) pairs.insert(pairs.end(), {i, dsts[i]});
                std::vector<unsigned char> cpu = initial;
                ASSERT_KVC(kvc_kv_copy_blocks(L.h, cpu.data() + L.k_offset, cpu.data() + L.v_offset, pairs.data(), 15));
                Buffer cache(L.total);
                cache.upload(initial);
                ASSERT_KVC(kvc_kv_cuda_copy_blocks(L.h, cache.get() + L.k_offset, cache.get() + L.v_offset, pairs.data(),
                                                   15, stream_));
                ASSERT_TRUE(cache.download() == cpu);
            }
        }
    }
}

// ---- swap --------------------------------------------------------------------------------------------
TEST_F(OpsCuda, SwapGivesTheCpuBytesInEveryDirection) {
    enum Side { kDev, kHost };
    for (bool pooled : {false, true}) {
        for (kvc_dtype t : {KVC_DTYPE_F16, KVC_DTYPE_INT8}) {
            for (auto [from, to] : {std::pair{kDev, kHost}, std::pair{kHost, kDev}, std::pair{kDev, kDev}}) {
                SCOPED_TRACE(std::to_string(t) + " pooled " + std::to_string(pooled) + " from " + std::to_string(from) +
                             " to " + std::to_string(to));
                const uint32_t layers = 2;
                Layout src(layers, 30, 16, 2, 64, t, pooled), dst(layers, 50, 16, 2, 64, t, /*pooled=*/false);
                const auto src_bytes = random_bytes(src.total, rng_), dst_bytes = random_bytes(dst.total, rng_);
                // A run of 10 (one copy), a run of 3, and scattered pairs.
                std::vector<int32_t> pairs;
                for (int32_t i = 0; i < 10; ++i) pairs.insert(pairs.end(), {i, 30 + i});
                for (int32_t i = 0; i < 3; ++i) pairs.insert(pairs.end(), {12 + i, 5 + i});
                pairs.insert(pairs.end(), {29, 0, 20, 49, 17, 25});
                const size_t n = pairs.size() / 2;
                std::vector<unsigned char> cpu = dst_bytes;
                ASSERT_KVC(kvc_kv_swap_blocks(src.h, src_bytes.data() + src.k_offset, src_bytes.data() + src.v_offset,
                                              dst.h, cpu.data() + dst.k_offset, cpu.data() + dst.v_offset, pairs.data(), n));
                Buffer s(src.total, from == kDev ? Buffer::kDevice : Buffer::kPinned);
                Buffer d(dst.total, to == kDev ? Buffer::kDevice : Buffer::kPinned);
                s.upload(src_bytes);
                d.upload(dst_bytes);
                ASSERT_KVC(kvc_kv_cuda_swap_blocks(src.h, s.get() + src.k_offset, s.get() + src.v_offset, dst.h,
                                                   d.get() + dst.k_offset, d.get() + dst.v_offset, pairs.data(), n, stream_));
                ASSERT_CUDA(cudaStreamSynchronize(stream_));
                ASSERT_TRUE(d.download() == cpu);
            }
        }
    }
}

// ---- gather ------------------------------------------------------------------------------------------
TEST_F(OpsCuda, GatherGivesTheCpuBytesForEveryTypePair) {
    for (bool pooled : {false, true}) {
        for (kvc_dtype cache_type : kAllTypes) {
            for (kvc_dtype out_type : kSourceTypes) {
                SCOPED_TRACE(std::to_string(cache_type) + " -> " + std::to_string(out_type) + " pooled " +
                             std::to_string(pooled));
                const uint32_t layers = 2, blocks = 32, bs = 16, heads = 2, dim = 40;
                Layout L(layers, blocks, bs, heads, dim, cache_type, pooled);
                const auto cache_bytes = filled_cache(L, layers, blocks * bs, heads, dim, rng_);
                const std::vector<int32_t> lens = {37, 0, 16, 1, 100};
                const size_t max_blocks = 8, total = 154;
                std::vector<int32_t> table(lens.size() * max_blocks, -5);  // unused entries are never read
                std::vector<int32_t> ids(blocks);
                std::iota(ids.begin(), ids.end(), 0);
                std::shuffle(ids.begin(), ids.end(), rng_);
                size_t next = 0;
                for (size_t s = 0; s < lens.size(); ++s) {
                    for (size_t b = 0; b < (size_t(lens[s]) + bs - 1) / bs; ++b) {
                        table[s * max_blocks + b] = ids[next++];
                    }
                }
                const size_t out_bytes = (total + 3) * heads * dim * type_bytes(out_type);  // 3 tokens of room to spare
                std::vector<unsigned char> cpu_k = random_bytes(out_bytes, rng_), cpu_v = cpu_k;
                Buffer cache(L.total), ok(out_bytes), ov(out_bytes);
                cache.upload(cache_bytes);
                ok.upload(cpu_k);
                ov.upload(cpu_v);
                ASSERT_KVC(kvc_kv_gather(L.h, 1, cache_bytes.data() + L.k_offset, cache_bytes.data() + L.v_offset,
                                         table.data(), max_blocks, lens.data(), lens.size(), cpu_k.data(), cpu_v.data(),
                                         out_type, total + 3));
                ASSERT_KVC(kvc_kv_cuda_gather(L.h, 1, cache.get() + L.k_offset, cache.get() + L.v_offset, table.data(),
                                              max_blocks, lens.data(), lens.size(), ok.get(), ov.get(), out_type,
                                              total + 3, stream_));
                ASSERT_TRUE(ok.download() == cpu_k);
                ASSERT_TRUE(ov.download() == cpu_v);
            }
        }
    }
}

// ---- decode attention --------------------------------------------------------------------------------
struct DecodeCase {
    uint32_t dim, kv_heads, group;
    std::vector<int32_t> lens;
    bool misalign = false;  // bases offset by one element: the generic (unvectorized) path
    bool pooled = false;    // kvcore's host pool arrangement: strided blocks, layers inside each block
};

void run_decode_case(const DecodeCase& c, kvc_dtype t, std::mt19937& rng, cudaStream_t stream) {
    const uint32_t layers = 2, bs = 16, q_heads = c.kv_heads * c.group;
    size_t max_blocks = 1;
    size_t needed = 0;
    for (int32_t len : c.lens) {
        max_blocks = std::max(max_blocks, (size_t(len) + bs - 1) / bs);
        needed += (size_t(len) + bs - 1) / bs;
    }
    const uint32_t blocks = uint32_t(needed + 3);
    Layout L(layers, blocks, bs, c.kv_heads, c.dim, t, c.pooled);
    const auto cache_bytes = filled_cache(L, layers, blocks * bs, c.kv_heads, c.dim, rng);
    std::vector<int32_t> ids(blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<int32_t> table(c.lens.size() * max_blocks, 0);
    size_t next = 0;
    for (size_t s = 0; s < c.lens.size(); ++s) {
        for (size_t b = 0; b < (size_t(c.lens[s]) + bs - 1) / bs; ++b) table[s * max_blocks + b] = ids[next++];
    }
    const size_t q_count = c.lens.size() * q_heads * c.dim;
    const auto q_bytes = random_values(q_count, KVC_DTYPE_F32, rng, 1.f);
    const float scale = 1.f / std::sqrt(float(c.dim));
    std::vector<float> cpu(q_count), gpu(q_count);
    ASSERT_KVC(kvc_kv_attention_decode(L.h, 1, cache_bytes.data() + L.k_offset, cache_bytes.data() + L.v_offset,
                                       reinterpret_cast<const float*>(q_bytes.data()), q_heads, table.data(), max_blocks,
                                       c.lens.data(), c.lens.size(), scale, cpu.data()));
    // Misaligned: the cache copied one element further into the buffer (alignment to the element stays).
    const size_t shift = c.misalign ? std::max<size_t>(type_bytes(t), t == KVC_DTYPE_INT8 ? 4 : 0) : 0;
    Buffer cache(L.total + 16), q(q_bytes.size()), out(q_count * 4);
    std::vector<unsigned char> shifted(L.total + 16, 0);
    std::copy(cache_bytes.begin(), cache_bytes.end(), shifted.begin() + shift);
    cache.upload(shifted);
    q.upload(q_bytes);
    ASSERT_CUDA(cudaMemset(out.get(), 0x7F, q_count * 4));  // 0x7F7F7F7F, about 3.4e38: every output must be written
    ASSERT_KVC(kvc_kv_cuda_attention_decode(L.h, 1, cache.get() + shift + L.k_offset, cache.get() + shift + L.v_offset,
                                            reinterpret_cast<const float*>(q.get()), q_heads, table.data(), max_blocks,
                                            c.lens.data(), c.lens.size(), scale, reinterpret_cast<float*>(out.get()),
                                            stream));
    const auto got = out.download();
    std::memcpy(gpu.data(), got.data(), got.size());
    // Both sides read the same dequantized values; they differ by summation order and exp's rounding.
    const float tolerance = (t == KVC_DTYPE_FP8 || t == KVC_DTYPE_INT8) ? 5e-4f : 2e-4f;
    size_t bad = 0;
    for (size_t i = 0; i < q_count; ++i) {
        const float err = std::fabs(gpu[i] - cpu[i]);
        if (!(err <= tolerance * (1.f + std::fabs(cpu[i])))) {
            if (++bad <= 5) ADD_FAILURE() << "element " << i << ": gpu " << gpu[i] << " cpu " << cpu[i];
        }
    }
    ASSERT_EQ(bad, 0u);
}

TEST_F(OpsCuda, DecodeAttentionMatchesTheCpu) {
    const std::vector<DecodeCase> cases = {
        {128, 2, 4, {1300, 0, 1, 17, 512, 513}},  // GQA, several parts, empty, partial blocks, part boundaries
        {128, 4, 1, {40, 600}},                    // MHA
        {64, 1, 8, {700, 3}},                      // MQA, 8 query heads on one KV head
        {64, 2, 12, {300}},                        // a group of 12: two query-head chunks
        {80, 2, 3, {90, 1025}},                    // head_dim 80 (10 chunks), a group of 3
        {256, 1, 2, {520}},                        // the largest head_dim
        {8, 2, 2, {77}},                           // one chunk per row: 32 rows per warp
        {20, 2, 2, {150, 0}},                      // head_dim not a multiple of 8: generic path
        {128, 2, 4, {530, 33}, true},              // misaligned bases: generic path on a vector shape
        {64, 2, 4, {300, 1}, false, true},         // pooled strides (block and layer) on the vectorized path
        {20, 2, 2, {45}, false, true},             // pooled strides on the generic path
    };
    for (kvc_dtype t : kAllTypes) {
        for (const DecodeCase& c : cases) {
            SCOPED_TRACE("dtype " + std::to_string(t) + " dim " + std::to_string(c.dim) + " group " +
                         std::to_string(c.group) + (c.misalign ? " misaligned" : "") + (c.pooled ? " pooled" : ""));
            run_decode_case(c, t, rng_, stream_);
        }
    }
}

TEST_F(OpsCuda, DecodeAttentionRefusesHeadDimPast256) {
    Layout L(1, 4, 16, 1, 264, KVC_DTYPE_F16);
    Buffer cache(L.total), q(264 * 4), out(264 * 4);
    const int32_t table[1] = {0}, lens[1] = {5};
    EXPECT_EQ(kvc_kv_cuda_attention_decode(L.h, 0, cache.get() + L.k_offset, cache.get() + L.v_offset,
                                           reinterpret_cast<const float*>(q.get()), 1, table, 1, lens, 1, 1.f,
                                           reinterpret_cast<float*>(out.get()), stream_),
              KVC_ERR_UNSUPPORTED);
    EXPECT_NE(std::strstr(kvc_last_error_message(), "head_dim"), nullptr);
}

// ---- bad input: the CPU's statuses, nothing written --------------------------------------------------
TEST_F(OpsCuda, BadInputWritesNothing) {
    const uint32_t blocks = 8, bs = 4, heads = 2, dim = 16;
    Layout L(1, blocks, bs, heads, dim, KVC_DTYPE_F16);
    const auto initial = random_bytes(L.total, rng_);
    Buffer cache(L.total), key(2 * heads * dim * 2), out(64 * heads * dim * 4), q(heads * dim * 4);
    cache.upload(initial);
    unsigned char* k = cache.get() + L.k_offset;
    unsigned char* v = cache.get() + L.v_offset;
    std::vector<unsigned char> pageable(L.total);
    auto unchanged = [&] { return cache.download() == initial; };

    int64_t slots[2] = {0, int64_t(blocks) * bs};  // past the end
    EXPECT_EQ(kvc_kv_cuda_write(L.h, 0, k, v, key.get(), key.get(), KVC_DTYPE_F16, slots, 2, stream_), KVC_ERR_OUT_OF_RANGE);
    slots[1] = 0;  // twice the same slot
    EXPECT_EQ(kvc_kv_cuda_write(L.h, 0, k, v, key.get(), key.get(), KVC_DTYPE_F16, slots, 2, stream_),
              KVC_ERR_INVALID_ARGUMENT);
    slots[1] = 1;
    EXPECT_EQ(kvc_kv_cuda_write(L.h, 1, k, v, key.get(), key.get(), KVC_DTYPE_F16, slots, 2, stream_), KVC_ERR_OUT_OF_RANGE);
    EXPECT_EQ(kvc_kv_cuda_write(L.h, 0, k + 1, v, key.get(), key.get(), KVC_DTYPE_F16, slots, 2, stream_),
              KVC_ERR_INVALID_ARGUMENT);  // misaligned
    EXPECT_EQ(kvc_kv_cuda_write(L.h, 0, k, v, pageable.data(), key.get(), KVC_DTYPE_F16, slots, 2, stream_),
              KVC_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(kvc_last_error_message(), "pageable"), nullptr) << kvc_last_error_message();
    EXPECT_EQ(kvc_kv_cuda_write(L.h, 0, k, v, key.get(), key.get(), KVC_DTYPE_FP8, slots, 2, stream_),
              KVC_ERR_INVALID_ARGUMENT);  // FP8 is no source type

    int32_t pairs[4] = {0, 1, 2, 1};  // destination twice
    EXPECT_EQ(kvc_kv_cuda_copy_blocks(L.h, k, v, pairs, 2, stream_), KVC_ERR_INVALID_ARGUMENT);
    pairs[3] = 0;  // a destination that is a source
    EXPECT_EQ(kvc_kv_cuda_copy_blocks(L.h, k, v, pairs, 2, stream_), KVC_ERR_INVALID_ARGUMENT);
    pairs[3] = int32_t(blocks);
    EXPECT_EQ(kvc_kv_cuda_copy_blocks(L.h, k, v, pairs, 2, stream_), KVC_ERR_OUT_OF_RANGE);
    pairs[3] = 3;
    EXPECT_EQ(kvc_kv_cuda_copy_blocks(L.h, pageable.data(), v, pairs, 2, stream_), KVC_ERR_INVALID_ARGUMENT);

    Layout other(1, blocks, bs, heads, dim, KVC_DTYPE_BF16);
    Buffer host(L.total, Buffer::kPinned);
    EXPECT_EQ(kvc_kv_cuda_swap_blocks(other.h, host.get(), host.get(), L.h, k, v, pairs, 2, stream_),
              KVC_ERR_INVALID_ARGUMENT);  // dtypes differ
    EXPECT_EQ(kvc_kv_cuda_swap_blocks(L.h, pageable.data(), pageable.data() + L.v_offset, L.h, k, v, pairs, 2, stream_),
              KVC_ERR_INVALID_ARGUMENT);  // pageable source

    int32_t table[2] = {0, int32_t(blocks)};  // the second block of the table is out of range
    int32_t lens[1] = {bs + 1};
    EXPECT_EQ(kvc_kv_cuda_gather(L.h, 0, k, v, table, 2, lens, 1, out.get(), out.get(), KVC_DTYPE_F32, 64, stream_),
              KVC_ERR_OUT_OF_RANGE);
    table[1] = 1;
    EXPECT_EQ(kvc_kv_cuda_gather(L.h, 0, k, v, table, 2, lens, 1, out.get(), out.get(), KVC_DTYPE_F32, 2, stream_),
              KVC_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(kvc_kv_cuda_attention_decode(L.h, 0, k, v, reinterpret_cast<const float*>(q.get()), 3, table, 2, lens, 1,
                                           1.f, reinterpret_cast<float*>(out.get()), stream_),
              KVC_ERR_INVALID_ARGUMENT);  // 3 query heads on 2 KV heads
    EXPECT_EQ(kvc_kv_cuda_attention_decode(L.h, 0, k, v, reinterpret_cast<const float*>(q.get()), 2, table, 2, lens, 1,
                                           INFINITY, reinterpret_cast<float*>(out.get()), stream_),
              KVC_ERR_INVALID_ARGUMENT);
    lens[0] = -1;
    EXPECT_EQ(kvc_kv_cuda_attention_decode(L.h, 0, k, v, reinterpret_cast<const float*>(q.get()), 2, table, 2, lens, 1,
                                           1.f, reinterpret_cast<float*>(out.get()), stream_),
              KVC_ERR_OUT_OF_RANGE);
    EXPECT_TRUE(unchanged());
}

// Nothing to do is fine and queues nothing: n = 0, no pairs, no sequences.
TEST_F(OpsCuda, EmptyCallsSucceed) {
    Layout L(1, 4, 4, 1, 8, KVC_DTYPE_F32);
    EXPECT_EQ(kvc_kv_cuda_write(L.h, 0, nullptr, nullptr, nullptr, nullptr, KVC_DTYPE_F32, nullptr, 0, stream_), KVC_OK);
    EXPECT_EQ(kvc_kv_cuda_copy_blocks(L.h, nullptr, nullptr, nullptr, 0, stream_), KVC_OK);
    EXPECT_EQ(kvc_kv_cuda_swap_blocks(L.h, nullptr, nullptr, L.h, nullptr, nullptr, nullptr, 0, stream_), KVC_OK);
    EXPECT_EQ(kvc_kv_cuda_attention_decode(L.h, 0, nullptr, nullptr, nullptr, 1, nullptr, 0, nullptr, 0, 1.f, nullptr,
                                           nullptr),
              KVC_OK);
}

// Without a device: every entry point says so.
int check_unsupported() {
    int failures = 0;
    auto expect = [&](kvc_status status, const char* what) {
        if (status != KVC_ERR_UNSUPPORTED || std::strstr(kvc_last_error_message(), "CUDA") == nullptr) {
            std::fprintf(stderr, "%s: status %d, message '%s'\n", what, int(status), kvc_last_error_message());
            ++failures;
        }
    };
    kvc_kv_layout* layout = nullptr;
    kvc_kv_layout_create(&layout);
    std::vector<unsigned char> mem(1 << 20);
    int64_t slot = 0;
    int32_t pair[2] = {0, 1}, table[1] = {0}, len[1] = {1};
    expect(kvc_kv_cuda_probe(), "probe");
    expect(kvc_kv_cuda_write(layout, 0, mem.data(), mem.data(), mem.data(), mem.data(), KVC_DTYPE_F16, &slot, 1, nullptr),
           "write");
    expect(kvc_kv_cuda_copy_blocks(layout, mem.data(), mem.data(), pair, 1, nullptr), "copy_blocks");
    expect(kvc_kv_cuda_swap_blocks(layout, mem.data(), mem.data(), layout, mem.data(), mem.data(), pair, 1, nullptr), "swap");
    expect(kvc_kv_cuda_gather(layout, 0, mem.data(), mem.data(), table, 1, len, 1, mem.data(), mem.data(), KVC_DTYPE_F16, 1,
                              nullptr),
           "gather");
    expect(kvc_kv_cuda_attention_decode(layout, 0, mem.data(), mem.data(), reinterpret_cast<float*>(mem.data()), 8, table,
                                        1, len, 1, 1.f, reinterpret_cast<float*>(mem.data()), nullptr),
           "attention_decode");
    if (kvc_kv_cuda_available() != 0) ++failures;
    kvc_kv_layout_destroy(layout);
    return failures;
}

}  // namespace

int main(int argc, char** argv) {
    int devices = 0;
    const cudaError_t probe = cudaGetDeviceCount(&devices);
    if (probe != cudaSuccess || devices == 0 || kvc_kv_cuda_available() == 0) {
        if (check_unsupported() != 0) return 1;
        std::printf("SKIPPED: no usable CUDA device (%s); kvcore reports: %s\n",
                    probe != cudaSuccess ? cudaGetErrorString(probe) : "none found", kvc_last_error_message());
        return 77;
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
