// SPDX-License-Identifier: Apache-2.0
// The one source of the CPU kernels' inner loops. Included by kernels_generic.cpp, kernels_avx2.cpp and
// kernels_avx512.cpp, each inside its own namespace (KVC_ISA_NAMESPACE) and with its own target
// (KVC_ISA_TARGET), so the same loops become SSE2, AVX2 or AVX-512 code. The target is a pragma around this
// file's functions only, not a -m flag for the whole file: with a flag, inline and template functions of
// the standard library instantiated here would be emitted with AVX-512 code, and the linker could keep that
// copy for callers on CPUs without it. The loops are written for g++'s vectorizer: fixed-width lane
// arrays (no reassociation needed for the reductions), branch-free element conversions, no aliasing
// through the outputs (__restrict).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "ops/dtype.h"
#include "ops/kernels.h"

#ifdef KVC_ISA_TARGET
#define KVC_DO_PRAGMA(x) _Pragma(#x)
#define KVC_TARGET_PRAGMA(t) KVC_DO_PRAGMA(GCC target(t))
#pragma GCC push_options
KVC_TARGET_PRAGMA(KVC_ISA_TARGET)
#endif

#ifndef KVC_ISA_NAMESPACE
#error "define KVC_ISA_NAMESPACE before including ops/kernels_impl.h"
#endif

// GCC 12's _mm512_cvtph_ps and _mm512_reduce_add_ps start from an undefined register and warn about it (a
// known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kvcore::ops::KVC_ISA_NAMESPACE {
namespace {

constexpr size_t kLanes = 16;  // one AVX-512 register of floats, two AVX2 ones

// One register of floats as a GCC vector (16 with AVX-512, 8 with AVX2, 4 otherwise; wider vectors than the
// target has are split through memory). Accumulators of this type stay in registers where plain float
// arrays went through the stack. Loads are unaligned.
#if defined(KVC_ISA_HAS_AVX512)
constexpr size_t kVec = 16;
#elif defined(KVC_ISA_HAS_F16C)
constexpr size_t kVec = 8;
#else
constexpr size_t kVec = 4;
#endif
typedef float vfloat __attribute__((vector_size(kVec * sizeof(float)), aligned(4), may_alias));
[[gnu::always_inline]] inline vfloat vload(const float* p) noexcept { return *reinterpret_cast<const vfloat*>(p); }
[[gnu::always_inline]] inline void vstore(float* p, vfloat v) noexcept { *reinterpret_cast<vfloat*>(p) = v; }

// fp16 -> float: vcvtph2ps where the target has it (the vectorizer has no vector type for _Float16 before
// AVX512-FP16), otherwise the exact bit recipe of ops/dtype.h.
inline void halves_to_floats(const uint16_t* __restrict s, float* __restrict d, size_t n) {
    size_t i = 0;
#if defined(KVC_ISA_HAS_AVX512)
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
    }
#elif defined(KVC_ISA_HAS_F16C)
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    }
#endif
    for (; i < n; ++i) d[i] = fp16_to_float(s[i]);
}

void load_row(DType dtype, const void* src, float scale, float* __restrict dst, size_t n) {
    switch (dtype) {
        case DType::kF32: std::memcpy(dst, src, n * sizeof(float)); return;
        case DType::kF16: {
            halves_to_floats(static_cast<const uint16_t*>(src), dst, n);
            return;
        }
        case DType::kBF16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(uint32_t(s[i]) << 16);
            return;
        }
        case DType::kFP8: {
            // E4M3 is binary16 with the exponent's top bit clear and 7 fewer mantissa bits: moving the bits
            // into place gives the value times 2^-8 exactly, subnormals included; only S.1111.111 (NaN)
            // needs its own case, taken only when a chunk holds one.
            const auto* s = static_cast<const uint8_t*>(src);
            const float factor = scale * 256.f;
            constexpr size_t kChunk = 64;
            uint16_t halves[kChunk];
            for (size_t base = 0; base < n; base += kChunk) {
                const size_t c = std::min(kChunk, n - base);
                uint32_t nan_codes = 0;
                for (size_t i = 0; i < c; ++i) {
                    const uint16_t v = s[base + i];
                    halves[i] = uint16_t(((v & 0x80) << 8) | ((v & 0x7F) << 7));
                    nan_codes |= uint32_t((v & 0x7F) == 0x7F);
                }
                halves_to_floats(halves, dst + base, c);
                for (size_t i = 0; i < c; ++i) dst[base + i] *= factor;
                if (nan_codes != 0) {
                    for (size_t i = 0; i < c; ++i) {
                        if ((s[base + i] & 0x7F) == 0x7F) dst[base + i] = std::numeric_limits<float>::quiet_NaN();
                    }
                }
            }
            return;
        }
        case DType::kInt8: {
            const auto* s = static_cast<const int8_t*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = float(s[i]) * scale;
            return;
        }
    }
}

void store_row(DType dtype, const float* __restrict src, float fp8_scale, void* dst, float* int8_scale, size_t n) {
    switch (dtype) {
        case DType::kF32: std::memcpy(dst, src, n * sizeof(float)); return;
        case DType::kF16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (size_t i = 0; i < n; ++i) d[i] = float_to_fp16(src[i]);
            return;
        }
        case DType::kBF16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (size_t i = 0; i < n; ++i) d[i] = float_to_bf16(src[i]);
            return;
        }
        case DType::kFP8: {
            auto* d = static_cast<uint8_t*>(dst);
            for (size_t i = 0; i < n; ++i) d[i] = float_to_fp8_e4m3(src[i] / fp8_scale);
            return;
        }
        case DType::kInt8: {
            float max_abs = 0.f;
            for (size_t i = 0; i < n; ++i) max_abs = std::max(max_abs, std::fabs(src[i]));
            auto* d = static_cast<int8_t*>(dst);
            const float inverse = max_abs > 0.f ? 127.f / max_abs : 0.f;
            for (size_t i = 0; i < n; ++i) d[i] = quantize_int8(src[i], inverse);
            *int8_scale = max_abs / 127.f;
            return;
        }
    }
}

float dot(const float* __restrict a, const float* __restrict b, size_t n) {
    size_t i = 0;
    vfloat acc0 = {}, acc1 = {};
    for (; i + 2 * kVec <= n; i += 2 * kVec) {
        acc0 += vload(a + i) * vload(b + i);
        acc1 += vload(a + i + kVec) * vload(b + i + kVec);
    }
    for (; i + kVec <= n; i += kVec) acc0 += vload(a + i) * vload(b + i);
    acc0 += acc1;
    float sum;
#if defined(KVC_ISA_HAS_AVX512)
    sum = _mm512_reduce_add_ps(__m512(acc0));  // 4 steps in registers
#else
    // A tree, not a running sum: without reassociation the compiler keeps the order written.
    float lanes[kVec];
    vstore(lanes, acc0);
    for (size_t width = kVec / 2; width > 0; width /= 2) {
        for (size_t j = 0; j < width; ++j) lanes[j] += lanes[j + width];
    }
    sum = lanes[0];
#endif
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

void scale_in_place(float* __restrict y, float a, size_t n) {
    for (size_t i = 0; i < n; ++i) y[i] *= a;
}

// acc[0, n) += sum_i p[i] * rows[i * n, i * n + n) over `count` rows: pieces of acc stay in registers across
// the rows (one load and store per block instead of per row); a piece is four registers, four independent
// chains of multiply-adds, so their latency overlaps.
void accumulate_rows(float* __restrict acc, const float* __restrict p, const float* __restrict rows, size_t count,
                     size_t n) {
    size_t c = 0;
    for (; c + 4 * kVec <= n; c += 4 * kVec) {
        vfloat r0 = vload(acc + c), r1 = vload(acc + c + kVec), r2 = vload(acc + c + 2 * kVec),
               r3 = vload(acc + c + 3 * kVec);
        for (size_t i = 0; i < count; ++i) {
            const float* v = rows + i * n + c;
            r0 += p[i] * vload(v);
            r1 += p[i] * vload(v + kVec);
            r2 += p[i] * vload(v + 2 * kVec);
            r3 += p[i] * vload(v + 3 * kVec);
        }
        vstore(acc + c, r0);
        vstore(acc + c + kVec, r1);
        vstore(acc + c + 2 * kVec, r2);
        vstore(acc + c + 3 * kVec, r3);
    }
    for (; c + kVec <= n; c += kVec) {
        vfloat r = vload(acc + c);
        for (size_t i = 0; i < count; ++i) r += p[i] * vload(rows + i * n + c);
        vstore(acc + c, r);
    }
    for (; c < n; ++c) {
        float r = acc[c];
        for (size_t i = 0; i < count; ++i) r += p[i] * rows[i * n + c];
        acc[c] = r;
    }
}

// e^x for x <= 0 (arguments are logits minus their maximum), branch-free so that a block's worth
// vectorizes: 2^round(x / ln 2) times a degree-6 polynomial of the remainder (Cephes' expf coefficients),
// within 2 ulp of expf; below -87 (where 2^n leaves the normal range) it flushes to 0.
void exp_in_place(float* __restrict x, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const float v = std::max(x[i], -87.0f);
        // Round to the nearest integer by adding 1.5 * 2^23 (the float's low bits then hold k): no call,
        // no float -> int conversion, so the loop vectorizes.
        const float shifted = v * 1.44269504088896341f + 12582912.f;
        const float k = shifted - 12582912.f;
        const float r = v - k * 0.693359375f + k * 2.12194440e-4f;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        const float y = p * r * r + r + 1.f;
        const float two_k = std::bit_cast<float>((std::bit_cast<uint32_t>(shifted) - 0x4B400000u + 127u) << 23);
        x[i] = x[i] < -87.0f ? 0.f : y * two_k;
    }
}

// ---- the fast decode path: rows converted in registers, kVec elements at a time ----
// Dequantizing a block into a float scratch and reading it back cost as much as the arithmetic; these loads
// convert in registers instead. They return the raw value: FP8 as value * 2^-8 (the binary16 bit trick of
// load_row, NaN codes excepted: callers check for them first), INT8 as the integer; the scales are applied
// once per row (to the logit or to the softmax weight), not per element.
template <DType D>
[[gnu::always_inline]] inline vfloat load_raw(const unsigned char* p) noexcept {
    if constexpr (D == DType::kF32) {
        return vload(reinterpret_cast<const float*>(p));
    }
#if defined(KVC_ISA_HAS_AVX512)
    if constexpr (D == DType::kF16) {
        return vfloat(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
    } else if constexpr (D == DType::kBF16) {
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        return vfloat(_mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
    } else if constexpr (D == DType::kFP8) {
        // S.EEEE.MMM moved to bits 15..8, shifted right arithmetically (the sign fills bits 15 and 14), bit 14
        // cleared: S.0EEEE.MMM0000000, the binary16 of the value * 2^-8.
        const __m256i v = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 8);
        const __m256i half = _mm256_and_si256(_mm256_srai_epi16(v, 1), _mm256_set1_epi16(int16_t(0xBF80)));
        return vfloat(_mm512_cvtph_ps(half));
    } else if constexpr (D == DType::kInt8) {
        return vfloat(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))));
    }
#elif defined(KVC_ISA_HAS_F16C)
    if constexpr (D == DType::kF16) {
        return vfloat(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    } else if constexpr (D == DType::kBF16) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return vfloat(_mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    } else if constexpr (D == DType::kFP8) {
        const __m128i v = _mm_unpacklo_epi8(_mm_setzero_si128(), _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
        const __m128i half = _mm_and_si128(_mm_srai_epi16(v, 1), _mm_set1_epi16(int16_t(0xBF80)));
        return vfloat(_mm256_cvtph_ps(half));
    } else if constexpr (D == DType::kInt8) {
        return vfloat(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
    }
#endif
    if constexpr (D != DType::kF32) {
        float lanes[kVec];
        for (size_t i = 0; i < kVec; ++i) {
            if constexpr (D == DType::kF16) {
                lanes[i] = fp16_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
            } else if constexpr (D == DType::kBF16) {
                lanes[i] = bf16_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
            } else if constexpr (D == DType::kFP8) {
                lanes[i] = fp16_to_float(uint16_t(((p[i] & 0x80) << 8) | ((p[i] & 0x7F) << 7)));
            } else {
                lanes[i] = float(reinterpret_cast<const int8_t*>(p)[i]);
            }
        }
        return vload(lanes);
    }
}

// The factor that turns load_raw's value into the element's value, apart from INT8's row scale.
constexpr float raw_factor(DType d, float fp8_scale) noexcept { return d == DType::kFP8 ? fp8_scale * 256.f : 1.f; }

[[gnu::always_inline]] inline float horizontal_sum(vfloat v) noexcept {
#if defined(KVC_ISA_HAS_AVX512)
    return _mm512_reduce_add_ps(__m512(v));
#else
    float lanes[kVec];
    vstore(lanes, v);
    for (size_t width = kVec / 2; width > 0; width /= 2) {
        for (size_t j = 0; j < width; ++j) lanes[j] += lanes[j + width];
    }
    return lanes[0];
#endif
}

// One KV head's rows of a block, as the fast path reads them.
struct BlockRows {
    const unsigned char* first = nullptr;  // row of the block's first token used
    uint64_t stride = 0;                   // bytes from one token's row to the next
    const float* row_scale = nullptr;      // INT8: each row's scale; otherwise nullptr
    float factor = 1.f;                    // raw_factor
};

// logits[g * bs + i] = scale * (q[g] . row i) for NG query heads, every element converted once for all NG.
template <DType D, size_t NG>
void fast_logits(const float* __restrict q, const BlockRows& k, size_t count, size_t dim, float scale,
                 float* __restrict logits, size_t bs) {
    const size_t esize = pool::dtype_bytes(D);
    for (size_t i = 0; i < count; ++i) {
        const unsigned char* row = k.first + i * k.stride;
        vfloat acc[NG];
#pragma GCC unroll 4
        for (size_t g = 0; g < NG; ++g) acc[g] = vfloat{};
        for (size_t c = 0; c < dim; c += kVec) {
            const vfloat x = load_raw<D>(row + c * esize);
#pragma GCC unroll 4
            for (size_t g = 0; g < NG; ++g) acc[g] += vload(q + g * dim + c) * x;
        }
        const float row_factor = scale * k.factor * (k.row_scale ? k.row_scale[i] : 1.f);
#pragma GCC unroll 4
        for (size_t g = 0; g < NG; ++g) logits[g * bs + i] = horizontal_sum(acc[g]) * row_factor;
    }
}

// acc[g] = acc[g] * correction[g] + sum_i weights[g * bs + i] * row i for NG query heads (the online
// softmax's rescaling rides on the load); a piece of each accumulator stays in a
// register across the block's rows. (The loops over g are unrolled by pragma: -O2 left the NG accumulators
// on the stack.)
template <DType D, size_t NG>
void fast_accumulate(float* __restrict acc, const float* __restrict correction, const float* __restrict weights,
                     const BlockRows& v, size_t count, size_t dim, size_t bs) {
    const size_t esize = pool::dtype_bytes(D);
    for (size_t c = 0; c < dim; c += kVec) {
        vfloat r[NG];
#pragma GCC unroll 4
        for (size_t g = 0; g < NG; ++g) r[g] = vload(acc + g * dim + c) * correction[g];
        for (size_t i = 0; i < count; ++i) {
            const vfloat x = load_raw<D>(v.first + i * v.stride + c * esize);
#pragma GCC unroll 4
            for (size_t g = 0; g < NG; ++g) r[g] += weights[g * bs + i] * x;
        }
#pragma GCC unroll 4
        for (size_t g = 0; g < NG; ++g) vstore(acc + g * dim + c, r[g]);
    }
}

// Query heads in passes of at most 4 (accumulators and the converted row fit in registers).
template <DType D>
void fast_logits_all(const float* q, const BlockRows& k, size_t count, size_t dim, float scale, float* logits,
                     size_t bs, size_t group) {
    for (size_t g = 0; g < group; g += 4) {
        const float* qg = q + g * dim;
        float* lg = logits + g * bs;
        switch (std::min<size_t>(4, group - g)) {
            case 1: fast_logits<D, 1>(qg, k, count, dim, scale, lg, bs); break;
            case 2: fast_logits<D, 2>(qg, k, count, dim, scale, lg, bs); break;
            case 3: fast_logits<D, 3>(qg, k, count, dim, scale, lg, bs); break;
            default: fast_logits<D, 4>(qg, k, count, dim, scale, lg, bs); break;
        }
    }
}

template <DType D>
void fast_accumulate_all(float* acc, const float* correction, const float* weights, const BlockRows& v, size_t count,
                         size_t dim, size_t bs, size_t group) {
    for (size_t g = 0; g < group; g += 4) {
        float* ag = acc + g * dim;
        const float* cg = correction + g;
        const float* wg = weights + g * bs;
        switch (std::min<size_t>(4, group - g)) {
            case 1: fast_accumulate<D, 1>(ag, cg, wg, v, count, dim, bs); break;
            case 2: fast_accumulate<D, 2>(ag, cg, wg, v, count, dim, bs); break;
            case 3: fast_accumulate<D, 3>(ag, cg, wg, v, count, dim, bs); break;
            default: fast_accumulate<D, 4>(ag, cg, wg, v, count, dim, bs); break;
        }
    }
}

// Whether any of `count` FP8 rows holds a NaN code (S.1111.111), which load_raw would read as 480.
bool has_fp8_nan(const BlockRows& rows, size_t count, size_t dim) {
    // (b & 0x7F) + 1 carries into bit 7 exactly for the NaN codes: three byte-wide vector operations per
    // register of bytes.
    uint8_t found = 0;
    for (size_t i = 0; i < count; ++i) {
        const unsigned char* row = rows.first + i * rows.stride;
        for (size_t d = 0; d < dim; ++d) found |= uint8_t((row[d] & 0x7F) + 1);
    }
    return (found & 0x80) != 0;
}

// The fast path's entry points, picking the element type's instantiation.
#define KVC_BY_DTYPE(dtype, call)                              \
    switch (dtype) {                                           \
        case DType::kF32: call(DType::kF32); break;            \
        case DType::kF16: call(DType::kF16); break;            \
        case DType::kBF16: call(DType::kBF16); break;          \
        case DType::kFP8: call(DType::kFP8); break;            \
        case DType::kInt8: call(DType::kInt8); break;          \
    }

// Scratch for one block of dequantized rows, logits, softmax weights and INT8 row scales, per thread, grown
// once.
struct Scratch {
    std::vector<float> rows, logits, weights, k_row_scales, v_row_scales, corrections;
};

void attend(const AttendArgs& a) {
    thread_local Scratch scratch;
    const size_t dim = a.head_dim, bs = a.block_size, group = a.group, q_heads = size_t(a.kv_heads) * group;
    if (scratch.rows.size() < bs * dim) scratch.rows.resize(bs * dim);
    if (scratch.logits.size() < group * bs) scratch.logits.resize(group * bs);
    if (scratch.weights.size() < group * bs) scratch.weights.resize(group * bs);
    if (scratch.k_row_scales.size() < bs) scratch.k_row_scales.resize(bs), scratch.v_row_scales.resize(bs);
    float* rows = scratch.rows.data();
    float* logits = scratch.logits.data();
    float* weights = scratch.weights.data();
    if (scratch.corrections.size() < group) scratch.corrections.resize(group);
    float* corrections = scratch.corrections.data();  // each query head's rescaling of its outputs, per block
    const size_t esize = pool::dtype_bytes(a.dtype);
    const bool int8 = a.dtype == DType::kInt8, fp8 = a.dtype == DType::kFP8;
    // The fast path converts whole registers of a row; other head sizes take the scratch path, and so do
    // narrow types without vector conversions (generic x86-64 or another target: converting lane by lane
    // through memory measured 1.7x slower there than converting a row into the scratch).
#if defined(KVC_ISA_HAS_AVX512) || defined(KVC_ISA_HAS_F16C)
    const bool fast_shape = dim % kVec == 0;
#else
    const bool fast_shape = dim % kVec == 0 && a.dtype == DType::kF32;
#endif

    for (size_t h = 0; h < q_heads; ++h) {
        a.row_max[h] = -std::numeric_limits<float>::infinity();
        a.row_sum[h] = 0.f;
    }
    std::fill(a.acc, a.acc + q_heads * dim, 0.f);

    for (uint32_t t = a.begin; t < a.end;) {
        const uint32_t first = t % a.block_size;
        const uint32_t count = std::min<uint32_t>(a.block_size - first, a.end - t);
        const uint64_t block_offset = uint64_t(a.blocks[t / a.block_size]) * a.block_stride;
        for (uint32_t head = 0; head < a.kv_heads; ++head) {
            auto row_offset = [&](uint32_t i) {
                return block_offset + (uint64_t(first + i) * a.kv_heads + head) * dim * esize;
            };
            auto row_scale = [&](const unsigned char* layer, uint32_t i, float tensor_scale) {
                if (!int8) return tensor_scale;
                float s;
                std::memcpy(&s, layer + block_offset + a.scale_offset + (uint64_t(first + i) * a.kv_heads + head) * 4,
                            sizeof s);
                return s;
            };
            // The next block's rows of this head, requested now: rows of one head lie a token's width apart,
            // a stride the hardware prefetchers follow poorly across blocks that are not adjacent.
            if (t + count < a.end) {
                const uint64_t next = uint64_t(a.blocks[(t + count) / a.block_size]) * a.block_stride;
                const uint64_t row_bytes = dim * esize;
                for (uint32_t i = 0; i < a.block_size; ++i) {
                    const uint64_t at = next + (uint64_t(i) * a.kv_heads + head) * row_bytes;
                    for (uint64_t line = 0; line < row_bytes; line += 64) {
                        __builtin_prefetch(a.k_layer + at + line);
                        __builtin_prefetch(a.v_layer + at + line);
                    }
                }
            }
            // The row-buffer path: the block's rows of this head converted into the scratch.
            auto load_rows = [&](const unsigned char* layer, float tensor_scale) {
                for (uint32_t i = 0; i < count; ++i) {
                    load_row(a.dtype, layer + row_offset(i), row_scale(layer, i, tensor_scale), rows + i * dim, dim);
                }
            };
            const uint64_t row_stride = uint64_t(a.kv_heads) * dim * esize;
            BlockRows k_rows{a.k_layer + row_offset(0), row_stride, nullptr, raw_factor(a.dtype, a.k_scale)};
            BlockRows v_rows{a.v_layer + row_offset(0), row_stride, nullptr, raw_factor(a.dtype, a.v_scale)};
            if (int8) {
                for (uint32_t i = 0; i < count; ++i) {
                    scratch.k_row_scales[i] = row_scale(a.k_layer, i, 1.f);
                    scratch.v_row_scales[i] = row_scale(a.v_layer, i, 1.f);
                }
                k_rows.row_scale = scratch.k_row_scales.data();
                v_rows.row_scale = scratch.v_row_scales.data();
            }
            const float* q = a.q + head * group * dim;

            // Logits of the block for the head's query heads.
            if (fast_shape && !(fp8 && has_fp8_nan(k_rows, count, dim))) {
#define KVC_LOGITS(D) fast_logits_all<D>(q, k_rows, count, dim, a.softmax_scale, logits, bs, group)
                KVC_BY_DTYPE(a.dtype, KVC_LOGITS)
#undef KVC_LOGITS
            } else {
                load_rows(a.k_layer, a.k_scale);
                for (size_t g = 0; g < group; ++g) {
                    for (uint32_t i = 0; i < count; ++i) {
                        logits[g * bs + i] = dot(q + g * dim, rows + i * dim, dim) * a.softmax_scale;
                    }
                }
            }

            // Online softmax: logits become weights e^(l - max), the running sums and outputs are rescaled.
            for (size_t g = 0; g < group; ++g) {
                const size_t qh = head * group + g;
                float* l = logits + g * bs;
                float block_max = -std::numeric_limits<float>::infinity();
                for (uint32_t i = 0; i < count; ++i) block_max = std::max(block_max, l[i]);
                const float new_max = std::max(a.row_max[qh], block_max);
                // The first block rescales nothing (and -inf - -inf would be NaN).
                const float correction = a.row_max[qh] == -std::numeric_limits<float>::infinity()
                                             ? 0.f
                                             : std::exp(a.row_max[qh] - new_max);
                for (uint32_t i = 0; i < count; ++i) l[i] -= new_max;
                exp_in_place(l, count);
                float sum = 0.f;
                for (uint32_t i = 0; i < count; ++i) sum += l[i];
                corrections[g] = correction;
                a.row_sum[qh] = a.row_sum[qh] * correction + sum;
                a.row_max[qh] = new_max;
            }

            // Weighted values into the outputs.
            float* acc = a.acc + head * group * dim;
            if (fast_shape && !(fp8 && has_fp8_nan(v_rows, count, dim))) {
                // The row's scale rides on its weight. Two loops, not one with a select: the vectorizer made the
                // select a masked load of the row scales, which for a null pointer costs a fault-suppression
                // assist per block (measured: F16 and FP8 decode 40 % slower).
                for (size_t g = 0; g < group; ++g) {
                    if (int8) {
                        for (uint32_t i = 0; i < count; ++i) weights[g * bs + i] = logits[g * bs + i] * v_rows.row_scale[i];
                    } else {
                        for (uint32_t i = 0; i < count; ++i) weights[g * bs + i] = logits[g * bs + i] * v_rows.factor;
                    }
                }
#define KVC_ACCUMULATE(D) fast_accumulate_all<D>(acc, corrections, weights, v_rows, count, dim, bs, group)
                KVC_BY_DTYPE(a.dtype, KVC_ACCUMULATE)
#undef KVC_ACCUMULATE
            } else {
                load_rows(a.v_layer, a.v_scale);
                for (size_t g = 0; g < group; ++g) {
                    if (corrections[g] != 1.f) scale_in_place(acc + g * dim, corrections[g], dim);
                    accumulate_rows(acc + g * dim, logits + g * bs, rows, count, dim);
                }
            }
        }
        t += count;
    }
}

#undef KVC_BY_DTYPE

}  // namespace

const Kernels& table() noexcept {
    static const Kernels k{KVC_ISA_NAME, &load_row, &store_row, &attend};
    return k;
}

}  // namespace kvcore::ops::KVC_ISA_NAMESPACE

#pragma GCC diagnostic pop

#ifdef KVC_ISA_TARGET
#pragma GCC pop_options
#endif
