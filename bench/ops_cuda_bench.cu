// SPDX-License-Identifier: Apache-2.0
// The CUDA KV kernels (kvcore/ops_cuda.h, through libkvcore's C API) against anchors measured in the same run,
// timed with CUDA events, the median of 7 runs after a warm-up. Each timed run is queued behind a kernel that
// holds the stream for 20 ms, so that the host has queued the whole run (kvcore's host-side checks, index
// uploads and launches) before the GPU reaches the start event: the events time the GPU's work alone, and the
// host's time per call is reported beside it ("host_us"); without the hold, a write of 32768 tokens timed
// mostly the host's check that its slots are distinct.
// - write, copy_blocks: against cudaMemcpyAsync device -> device of the same bytes;
// - swap (pinned host <-> device, contiguous runs and scattered blocks): against one cudaMemcpyAsync of the
//   same bytes between the same memories;
// - decode attention at batch 64, context 4096, 8 KV heads, 32 query heads, head dim 128 (F16, BF16, FP8,
//   INT8): K and V bytes read per second, against the H200's HBM peak (4.8 TB/s), a device -> device memcpy
//   (bytes read + written per second) and, for F16, a straightforward attention kernel over a contiguous
//   [seq, tokens, heads, dim] cache (below) doing the same math.
// Prints a table and one JSON object per line (also to the file named by the first argument). Without a
// usable device it prints SKIPPED and exits 0.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kvcore/kvcore.h"

namespace {

constexpr double kHbmPeak = 4.8e12;  // bytes/s, the H200's datasheet figure
FILE* json_out = nullptr;

#define CUDA_OK(expr)                                                                               \
    do {                                                                                            \
        const cudaError_t e_ = (expr);                                                              \
        if (e_ != cudaSuccess) {                                                                    \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
            std::exit(1);                                                                           \
        }                                                                                           \
    } while (0)
#define KVC_OK_OR_DIE(expr)                                                                                       \
    do {                                                                                                          \
        const kvc_status s_ = (expr);                                                                             \
        if (s_ != KVC_OK) {                                                                                       \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, kvc_last_error_message());         \
            std::exit(1);                                                                                         \
        }                                                                                                         \
    } while (0)

// Busy for `ns` nanoseconds of the GPU's global timer (a bounded wait: nothing on the host has to release it;
// 2^32 SM cycles, about 2 s, end it even if that timer stood still).
__global__ void hold_stream(uint64_t ns) {
    uint64_t start, now;
    const long long cycles = clock64();
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns && clock64() - cycles < (1ll << 32));
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Median GPU milliseconds of `runs` timed runs of fn (each queued on `stream` behind hold_stream) after one
// warm-up run; host_ms, when given, gets the median host time of queueing fn.
double median_ms(cudaStream_t stream, const std::function<void()>& fn, double* host_ms = nullptr, int runs = 7) {
    cudaEvent_t start, stop;
    CUDA_OK(cudaEventCreate(&start));
    CUDA_OK(cudaEventCreate(&stop));
    fn();
    CUDA_OK(cudaStreamSynchronize(stream));
    std::vector<double> times, host;
    for (int i = 0; i < runs; ++i) {
        hold_stream<<<1, 1, 0, stream>>>(20000000);
        CUDA_OK(cudaGetLastError());
        CUDA_OK(cudaEventRecord(start, stream));
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        host.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        CUDA_OK(cudaEventRecord(stop, stream));
        CUDA_OK(cudaEventSynchronize(stop));
        float ms = 0;
        CUDA_OK(cudaEventElapsedTime(&ms, start, stop));
        times.push_back(ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    if (host_ms) *host_ms = median(host);
    return median(times);
}

// The JSON field of a call's host time (a host time near 20 ms means the hold did not cover it).
std::string host_field(double host_ms) {
    char field[48];
    std::snprintf(field, sizeof field, ",\"host_us\":%.1f", host_ms * 1e3);
    return field;
}

void report(const std::string& name, double bytes, double ms, const std::string& anchor, double anchor_ms,
            const std::string& extra = "") {
    const double gbs = bytes / (ms * 1e-3) / 1e9;
    std::printf("%-34s %10.1f us %9.1f GB/s   %-22s %10.1f us   ratio %.3f %s\n", name.c_str(), ms * 1e3, gbs,
                anchor.c_str(), anchor_ms * 1e3, anchor_ms / ms, extra.c_str());
    char line[512];
    std::snprintf(line, sizeof line,
                  "{\"op\":\"%s\",\"bytes\":%.0f,\"us\":%.2f,\"GBps\":%.1f,\"anchor\":\"%s\",\"anchor_us\":%.2f,"
                  "\"ratio\":%.4f%s}\n",
                  name.c_str(), bytes, ms * 1e3, gbs, anchor.c_str(), anchor_ms * 1e3, anchor_ms / ms, extra.c_str());
    std::fputs(line, stdout);
    if (json_out) std::fputs(line, json_out);
}

struct Layout {
    kvc_kv_layout* h = nullptr;
    Layout(uint32_t layers, uint32_t blocks, uint32_t bs, uint32_t heads, uint32_t dim, kvc_dtype t) {
        kvc_kv_layout_create(&h);
        KVC_OK_OR_DIE(kvc_kv_layout_set_shape(h, layers, blocks, bs, heads, dim, t));
    }
    ~Layout() { kvc_kv_layout_destroy(h); }
    uint64_t block_bytes() const { return kvc_kv_layout_block_bytes(h); }
};

void* device_alloc(size_t bytes) {
    void* p = nullptr;
    CUDA_OK(cudaMalloc(&p, bytes));
    CUDA_OK(cudaMemset(p, 0x3C, bytes));  // small finite values in every type (F16 1.06, INT8 60, scales 0.011)
    return p;
}

// ---- the anchor of decode: straightforward attention over a contiguous F16 cache -------------------------
// One block per (sequence, KV head), 8 warps taking every 8th token; lanes hold 4 of the 128 dims; the 4 query
// heads of the group in registers; an online softmax per warp, warps merged in shared memory.
constexpr int kDim = 128, kGroup = 4, kAnchorWarps = 8;

__global__ void contiguous_attention(const __half* k, const __half* v, const float* q, float* out, int tokens,
                                     int kv_heads, float scale) {
    const int s = blockIdx.x, h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float qr[kGroup][4], acc[kGroup][4], m[kGroup], l[kGroup];
    for (int g = 0; g < kGroup; ++g) {
        for (int j = 0; j < 4; ++j) {
            qr[g][j] = q[((size_t(s) * kv_heads + h) * kGroup + g) * kDim + lane * 4 + j];
            acc[g][j] = 0.f;
        }
        m[g] = -INFINITY;
        l[g] = 0.f;
    }
    for (int t = warp; t < tokens; t += kAnchorWarps) {
        const size_t row = ((size_t(s) * tokens + t) * kv_heads + h) * kDim + lane * 4;
        const uint2 kw = *reinterpret_cast<const uint2*>(k + row), vw = *reinterpret_cast<const uint2*>(v + row);
        float kf[4], vf[4];
        const float2 k0 = __half22float2(*reinterpret_cast<const __half2*>(&kw.x)),
                     k1 = __half22float2(*reinterpret_cast<const __half2*>(&kw.y));
        const float2 v0 = __half22float2(*reinterpret_cast<const __half2*>(&vw.x)),
                     v1 = __half22float2(*reinterpret_cast<const __half2*>(&vw.y));
        kf[0] = k0.x, kf[1] = k0.y, kf[2] = k1.x, kf[3] = k1.y;
        vf[0] = v0.x, vf[1] = v0.y, vf[2] = v1.x, vf[3] = v1.y;
        for (int g = 0; g < kGroup; ++g) {
            float d = 0.f;
            for (int j = 0; j < 4; ++j) d += qr[g][j] * kf[j];
            for (int o = 16; o > 0; o /= 2) d += __shfl_xor_sync(0xFFFFFFFFu, d, o);
            const float x = d * scale, mx = fmaxf(m[g], x), c = __expf(m[g] - mx), p = __expf(x - mx);
            l[g] = l[g] * c + p;
            for (int j = 0; j < 4; ++j) acc[g][j] = acc[g][j] * c + p * vf[j];
            m[g] = mx;
        }
    }
    __shared__ float sm[kAnchorWarps][kGroup], sl[kAnchorWarps][kGroup], sacc[kAnchorWarps][kGroup][kDim];
    for (int g = 0; g < kGroup; ++g) {
        if (lane == 0) sm[warp][g] = m[g], sl[warp][g] = l[g];
        for (int j = 0; j < 4; ++j) sacc[warp][g][lane * 4 + j] = acc[g][j];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kGroup * kDim; i += blockDim.x) {
        const int g = i / kDim, d = i % kDim;
        float mx = -INFINITY;
        for (int w = 0; w < kAnchorWarps; ++w) mx = fmaxf(mx, sm[w][g]);
        float num = 0.f, den = 0.f;
        for (int w = 0; w < kAnchorWarps; ++w) {
            if (sm[w][g] == -INFINITY) continue;
            const float c = __expf(sm[w][g] - mx);
            num += c * sacc[w][g][d];
            den += c * sl[w][g];
        }
        out[((size_t(s) * kv_heads + h) * kGroup + g) * kDim + d] = den > 0.f ? num / den : 0.f;
    }
}

// ---- benchmarks -------------------------------------------------------------------------------------------
double memcpy_d2d_gbs(cudaStream_t stream) {
    const size_t bytes = size_t(1) << 30;
    void* a = device_alloc(bytes);
    void* b = device_alloc(bytes);
    const double ms = median_ms(stream, [&] { CUDA_OK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream)); });
    cudaFree(a);
    cudaFree(b);
    const double gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;
    std::printf("%-34s %10.1f us %9.1f GB/s   (read + written; %.1f %% of the 4.8 TB/s peak)\n", "memcpy d2d 1 GiB",
                ms * 1e3, gbs, 100 * gbs * 1e9 / kHbmPeak);
    char line[256];
    std::snprintf(line, sizeof line, "{\"op\":\"memcpy_d2d\",\"bytes\":%zu,\"us\":%.2f,\"GBps\":%.1f}\n", 2 * bytes,
                  ms * 1e3, gbs);
    std::fputs(line, stdout);
    if (json_out) std::fputs(line, json_out);
    return gbs;
}

void bench_write(cudaStream_t stream) {
    const uint32_t n = 32768, heads = 8, dim = 128, bs = 16, blocks = n / bs + 64;
    for (kvc_dtype t : {KVC_DTYPE_F16, KVC_DTYPE_FP8, KVC_DTYPE_INT8}) {
        Layout L(1, blocks, bs, heads, dim, t);
        const size_t tensor = size_t(blocks) * L.block_bytes();
        unsigned char* cache = static_cast<unsigned char*>(device_alloc(2 * tensor));
        const size_t src_bytes = size_t(n) * heads * dim * 2;
        void* key = device_alloc(src_bytes);
        void* value = device_alloc(src_bytes);
        std::vector<int64_t> slots(n);
        std::iota(slots.begin(), slots.end(), 0);
        std::shuffle(slots.begin(), slots.end(), std::mt19937(7));  // scattered slots, as a batch of sequences
        double host = 0;
        const double ms = median_ms(
            stream,
            [&] {
                KVC_OK_OR_DIE(
                    kvc_kv_cuda_write(L.h, 0, cache, cache + tensor, key, value, KVC_DTYPE_F16, slots.data(), n, stream));
            },
            &host);
        const size_t written = size_t(n) * heads * dim * (t == KVC_DTYPE_F16 ? 2 : 1);
        const double anchor = median_ms(stream, [&] {
            CUDA_OK(cudaMemcpyAsync(cache, key, written, cudaMemcpyDeviceToDevice, stream));
            CUDA_OK(cudaMemcpyAsync(cache + tensor, value, written, cudaMemcpyDeviceToDevice, stream));
        });
        const std::string name = std::string("write 32768 tok f16->") + (t == KVC_DTYPE_F16 ? "f16" : t == KVC_DTYPE_FP8 ? "fp8" : "int8");
        report(name, double(2 * src_bytes + 2 * written), ms, "memcpy of the stores", anchor, host_field(host));
        cudaFree(cache);
        cudaFree(key);
        cudaFree(value);
    }
}

void bench_copy(cudaStream_t stream) {
    const uint32_t layers = 32, blocks = 4096, bs = 16, heads = 8, dim = 128, pairs_n = 1024;
    Layout L(layers, blocks, bs, heads, dim, KVC_DTYPE_F16);
    const size_t tensor = size_t(layers) * blocks * L.block_bytes();
    unsigned char* cache = static_cast<unsigned char*>(device_alloc(2 * tensor));
    std::vector<int32_t> dsts(blocks - pairs_n);
    std::iota(dsts.begin(), dsts.end(), int32_t(pairs_n));
    std::shuffle(dsts.begin(), dsts.end(), std::mt19937(11));
    std::vector<int32_t> pairs;
    for (uint32_t i = 0; i < pairs_n; ++i) pairs.insert(pairs.end(), {int32_t(i), dsts[i]});
    double host = 0;
    const double ms = median_ms(
        stream, [&] { KVC_OK_OR_DIE(kvc_kv_cuda_copy_blocks(L.h, cache, cache + tensor, pairs.data(), pairs_n, stream)); },
        &host);
    const size_t run = size_t(pairs_n) * L.block_bytes();  // the same bytes as one copy per layer and tensor
    const double anchor = median_ms(stream, [&] {
        for (uint32_t l = 0; l < layers; ++l) {
            for (int t = 0; t < 2; ++t) {
                unsigned char* base = cache + t * tensor + size_t(l) * blocks * L.block_bytes();
                CUDA_OK(cudaMemcpyAsync(base + run, base, run, cudaMemcpyDeviceToDevice, stream));
            }
        }
    });
    report("copy_blocks 1024 pairs x 32 layers", 2.0 * run * layers * 2, ms, "memcpy per layer+tensor", anchor,
           host_field(host));
    cudaFree(cache);
}

void bench_swap(cudaStream_t stream) {
    const uint32_t layers = 8, blocks = 2048, bs = 16, heads = 8, dim = 128, n = 1024;
    Layout L(layers, blocks, bs, heads, dim, KVC_DTYPE_F16);
    const size_t tensor = size_t(layers) * blocks * L.block_bytes();
    unsigned char* dev = static_cast<unsigned char*>(device_alloc(2 * tensor));
    unsigned char* host = nullptr;
    CUDA_OK(cudaHostAlloc(reinterpret_cast<void**>(&host), 2 * tensor, cudaHostAllocDefault));
    std::memset(host, 0x3C, 2 * tensor);
    const size_t bytes = size_t(n) * L.block_bytes() * layers * 2;
    for (bool scattered : {false, true}) {
        std::vector<int32_t> dsts(n);
        std::iota(dsts.begin(), dsts.end(), 0);
        if (scattered) {
            std::vector<int32_t> all(blocks);
            std::iota(all.begin(), all.end(), 0);
            std::shuffle(all.begin(), all.end(), std::mt19937(5));
            std::copy(all.begin(), all.begin() + n, dsts.begin());
        }
        std::vector<int32_t> pairs;
        for (uint32_t i = 0; i < n; ++i) pairs.insert(pairs.end(), {scattered ? int32_t(2 * i) % int32_t(blocks) : int32_t(i), dsts[i]});
        for (bool to_device : {true, false}) {
            double host_ms = 0;
            const double ms = median_ms(
                stream,
                [&] {
                    if (to_device) {
                        KVC_OK_OR_DIE(
                            kvc_kv_cuda_swap_blocks(L.h, host, host + tensor, L.h, dev, dev + tensor, pairs.data(), n, stream));
                    } else {
                        KVC_OK_OR_DIE(
                            kvc_kv_cuda_swap_blocks(L.h, dev, dev + tensor, L.h, host, host + tensor, pairs.data(), n, stream));
                    }
                },
                &host_ms);
            const double anchor = median_ms(stream, [&] {
                if (to_device) {
                    CUDA_OK(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream));
                } else {
                    CUDA_OK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, stream));
                }
            });
            const std::string name = std::string("swap ") + (to_device ? "h2d " : "d2h ") +
                                     (scattered ? "scattered" : "contiguous") + " 1024 blk x 8 layers";
            report(name, double(bytes), ms, "one memcpy (pinned)", anchor, host_field(host_ms));
        }
    }
    cudaFree(dev);
    cudaFreeHost(host);
}

void bench_decode(cudaStream_t stream, double memcpy_gbs) {
    const uint32_t batch = 64, context = 4096, kv_heads = 8, q_heads = 32, dim = 128, bs = 16;
    const uint32_t per_seq = context / bs, blocks = batch * per_seq;
    std::vector<int32_t> table(size_t(batch) * per_seq);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), std::mt19937(3));  // blocks anywhere, as a pool hands them out
    std::vector<int32_t> lens(batch, int32_t(context));
    float* q = static_cast<float*>(device_alloc(size_t(batch) * q_heads * dim * 4));
    CUDA_OK(cudaMemset(q, 0, size_t(batch) * q_heads * dim * 4));
    float* out = static_cast<float*>(device_alloc(size_t(batch) * q_heads * dim * 4));
    const float scale = 1.f / std::sqrt(float(dim));
    double anchor_ms = 0;
    {
        const size_t elems = size_t(batch) * context * kv_heads * dim;
        __half* k = static_cast<__half*>(device_alloc(elems * 2));
        __half* v = static_cast<__half*>(device_alloc(elems * 2));
        anchor_ms = median_ms(stream, [&] {
            contiguous_attention<<<dim3(batch, kv_heads), kAnchorWarps * 32, 0, stream>>>(k, v, q, out, int(context),
                                                                                        int(kv_heads), scale);
        });
        CUDA_OK(cudaGetLastError());
        const double gbs = 2.0 * elems * 2 / (anchor_ms * 1e-3) / 1e9;
        std::printf("%-34s %10.1f us %9.1f GB/s   (%.1f %% of HBM peak)\n", "contiguous attention f16 (anchor)",
                    anchor_ms * 1e3, gbs, 100 * gbs * 1e9 / kHbmPeak);
        cudaFree(k);
        cudaFree(v);
    }
    for (kvc_dtype t : {KVC_DTYPE_F16, KVC_DTYPE_BF16, KVC_DTYPE_FP8, KVC_DTYPE_INT8}) {
        Layout L(1, blocks, bs, kv_heads, dim, t);
        const size_t tensor = size_t(blocks) * L.block_bytes();
        unsigned char* cache = static_cast<unsigned char*>(device_alloc(2 * tensor));
        double host = 0;
        const double ms = median_ms(
            stream,
            [&] {
                KVC_OK_OR_DIE(kvc_kv_cuda_attention_decode(L.h, 0, cache, cache + tensor, q, q_heads, table.data(), per_seq,
                                                           lens.data(), batch, scale, out, stream));
            },
            &host);
        const double gbs = 2.0 * tensor / (ms * 1e-3) / 1e9;
        char extra[160];
        std::snprintf(extra, sizeof extra, ",\"pct_hbm_peak\":%.1f,\"pct_memcpy\":%.1f%s", 100 * gbs * 1e9 / kHbmPeak,
                      100 * gbs / memcpy_gbs, host_field(host).c_str());
        const char* names[] = {"f16", "bf16", "f32", "fp8", "int8"};
        report(std::string("decode b64 ctx4096 kv8 q32 d128 ") + names[t], 2.0 * tensor, ms, "contiguous f16 kernel",
               anchor_ms, extra);
        cudaFree(cache);
    }
    cudaFree(q);
    cudaFree(out);
}

}  // namespace

int main(int argc, char** argv) {
    if (kvc_kv_cuda_available() == 0) {
        std::printf("SKIPPED: %s\n", kvc_last_error_message());
        return 0;
    }
    if (argc > 1) json_out = std::fopen(argv[1], "w");
    cudaDeviceProp prop{};
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs, %.0f GiB\n", prop.name, prop.multiProcessorCount,
                prop.totalGlobalMem / double(1 << 30));
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreate(&stream));
    const double memcpy_gbs = memcpy_d2d_gbs(stream);
    bench_write(stream);
    bench_copy(stream);
    bench_swap(stream);
    bench_decode(stream, memcpy_gbs);
    cudaStreamDestroy(stream);
    if (json_out) std::fclose(json_out);
    return 0;
}
