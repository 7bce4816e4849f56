// SPDX-License-Identifier: Apache-2.0
// Naive references for the ops tests: caches addressed by the formulas of include/kvcore/ops.h (not by
// ops::Layout's helpers), element by element, in double where it matters.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kvcore/ops.h"
#include "ops/dtype.h"

namespace kvcore::ops::test {

struct Shape {
    uint32_t layers = 2, num_blocks = 12, block_size = 4, kv_heads = 2, head_dim = 24;
    kvc_dtype dtype = KVC_DTYPE_F32;
};

inline uint32_t esize(kvc_dtype d) { return d == KVC_DTYPE_F32 ? 4 : (d == KVC_DTYPE_F16 || d == KVC_DTYPE_BF16) ? 2 : 1; }

inline uint64_t block_bytes(const Shape& s) {
    const uint64_t data = uint64_t(s.block_size) * s.kv_heads * s.head_dim * esize(s.dtype);
    if (s.dtype != KVC_DTYPE_INT8) return data;
    return ((data + 3) / 4) * 4 + uint64_t(s.block_size) * s.kv_heads * 4;
}

// A packed cache of one tensor (K or V) for all layers, filled with random bytes (a sentinel pattern that
// any stray write changes). uint32_t storage keeps it 4-byte aligned.
struct Cache {
    Shape shape;
    std::vector<uint32_t> words;
    explicit Cache(const Shape& s, uint32_t seed) : shape(s) {
        words.resize((block_bytes(s) * s.num_blocks * s.layers + 3) / 4);
        std::mt19937 rng(seed);
        for (auto& w : words) w = rng();
    }
    unsigned char* bytes() { return reinterpret_cast<unsigned char*>(words.data()); }
    const unsigned char* bytes() const { return reinterpret_cast<const unsigned char*>(words.data()); }
    uint64_t row_at(uint32_t layer, uint32_t block, uint32_t t, uint32_t h) const {
        return layer * block_bytes(shape) * shape.num_blocks + block * block_bytes(shape) +
               (uint64_t(t) * shape.kv_heads + h) * shape.head_dim * esize(shape.dtype);
    }
    float int8_scale(uint32_t layer, uint32_t block, uint32_t t, uint32_t h) const {
        const uint64_t data = uint64_t(shape.block_size) * shape.kv_heads * shape.head_dim;
        float s;
        std::memcpy(&s, bytes() + layer * block_bytes(shape) * shape.num_blocks + block * block_bytes(shape) +
                            (data + 3) / 4 * 4 + (uint64_t(t) * shape.kv_heads + h) * 4, 4);
        return s;
    }
    // The stored element read back as a float (FP8 times tensor_scale, INT8 times its row scale).
    float read(uint32_t layer, uint32_t block, uint32_t t, uint32_t h, uint32_t d, float tensor_scale = 1.f) const {
        const unsigned char* p = bytes() + row_at(layer, block, t, h) + uint64_t(d) * esize(shape.dtype);
        uint16_t u16;
        switch (shape.dtype) {
            case KVC_DTYPE_F32: { float f; std::memcpy(&f, p, 4); return f; }
            case KVC_DTYPE_F16: std::memcpy(&u16, p, 2); return fp16_to_float(u16);
            case KVC_DTYPE_BF16: std::memcpy(&u16, p, 2); return bf16_to_float(u16);
            case KVC_DTYPE_FP8: return fp8_e4m3_to_float(*p) * tensor_scale;
            case KVC_DTYPE_INT8: return float(int8_t(*p)) * int8_scale(layer, block, t, h);
        }
        return NAN;
    }
};

// What writing x into a cache of dtype stores, read back (the reference quantizer).
inline std::vector<float> reference_row(const float* x, uint32_t n, kvc_dtype dtype, float fp8_scale) {
    std::vector<float> out(n);
    float max_abs = 0.f;
    for (uint32_t i = 0; i < n; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    for (uint32_t i = 0; i < n; ++i) {
        switch (dtype) {
            case KVC_DTYPE_F32: out[i] = x[i]; break;
            case KVC_DTYPE_F16: out[i] = fp16_to_float(float_to_fp16(x[i])); break;
            case KVC_DTYPE_BF16: out[i] = bf16_to_float(float_to_bf16(x[i])); break;
            case KVC_DTYPE_FP8: out[i] = fp8_e4m3_to_float(float_to_fp8_e4m3(x[i] / fp8_scale)) * fp8_scale; break;
            case KVC_DTYPE_INT8: {
                if (max_abs == 0.f) { out[i] = 0.f; break; }
                const float q = std::nearbyint(x[i] * (127.f / max_abs));
                out[i] = std::clamp(q, -127.f, 127.f) * (max_abs / 127.f);
                break;
            }
        }
    }
    return out;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float amplitude = 2.f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-amplitude, amplitude);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

struct LayoutHandle {
    kvc_kv_layout* p = nullptr;
    explicit LayoutHandle(const Shape& s) {
        kvc_kv_layout_create(&p);
        kvc_kv_layout_set_shape(p, s.layers, s.num_blocks, s.block_size, s.kv_heads, s.head_dim, s.dtype);
    }
    ~LayoutHandle() { kvc_kv_layout_destroy(p); }
    LayoutHandle(const LayoutHandle&) = delete;
    LayoutHandle& operator=(const LayoutHandle&) = delete;
};

inline const char* dtype_name(kvc_dtype d) {
    switch (d) {
        case KVC_DTYPE_F32: return "F32";
        case KVC_DTYPE_F16: return "F16";
        case KVC_DTYPE_BF16: return "BF16";
        case KVC_DTYPE_FP8: return "FP8";
        case KVC_DTYPE_INT8: return "INT8";
    }
    return "unknown";
}

inline const kvc_dtype kAllDtypes[] = {KVC_DTYPE_F32, KVC_DTYPE_F16, KVC_DTYPE_BF16, KVC_DTYPE_FP8, KVC_DTYPE_INT8};

}  // namespace kvcore::ops::test
