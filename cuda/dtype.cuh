// SPDX-License-Identifier: Apache-2.0
// The cache's element conversions for the CUDA kernels: the bit recipes of src/ops/dtype.h (round to nearest
// even, FP8 E4M3 saturating to +-448, NaN stays NaN, INT8 q = rint(x * (127 / m))), written so that both
// nvcc (device) and the host compiler build them: tests/unit/ops_cuda_dtype_test.cpp checks them against
// src/ops/dtype.h on the host, code by code, which is what makes the device stores bit-exact with the CPU.
#pragma once

#include <stdint.h>

#include <cmath>
#include <cstring>

#if defined(__CUDACC__)
#define KVC_HD __host__ __device__ __forceinline__
#else
#define KVC_HD inline
#endif

namespace kvcore::cuda {

// Element types, numbered as kvc_dtype.
enum : uint32_t { kDtF16 = 0, kDtBF16 = 1, kDtF32 = 2, kDtFP8 = 3, kDtInt8 = 4 };

KVC_HD uint32_t dt_bytes(uint32_t dt) { return dt == kDtF32 ? 4u : (dt == kDtF16 || dt == kDtBF16) ? 2u : 1u; }

KVC_HD uint32_t f2u(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
#endif
}
KVC_HD float u2f(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
}
// Round half to even, as std::nearbyint in the default rounding mode.
KVC_HD float round_even(float x) {
#if defined(__CUDA_ARCH__)
    return rintf(x);
#else
    return std::nearbyint(x);
#endif
}

// ---- IEEE binary16 ----
KVC_HD float fp16_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F;
    const uint32_t man = h & 0x3FF;
    if (exp == 0x1F) return u2f(sign | 0x7F800000u | (man << 13));
    if (exp != 0) return u2f(sign | ((exp + 112) << 23) | (man << 13));
    const float magnitude = float(man) * 5.9604644775390625e-8f;  // man * 2^-24, exact
    return sign ? -magnitude : magnitude;
}

KVC_HD uint16_t float_to_fp16(float f) {
    const uint32_t x = f2u(f);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000);
    const uint32_t abs = x & 0x7FFFFFFF;
    if (abs > 0x7F800000u) return uint16_t(sign | 0x7E00 | ((abs >> 13) & 0x3FF));
    if (abs >= 0x477FF000u) return uint16_t(sign | 0x7C00);
    if (abs >= 0x38800000u) {
        const uint32_t rounded = abs + 0xFFF + ((abs >> 13) & 1);
        return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
    }
    const float magnitude = u2f(abs) * 16777216.f;  // count of 2^-24, exact
    return uint16_t(sign | uint16_t(round_even(magnitude)));
}

// ---- bfloat16 ----
KVC_HD float bf16_to_float(uint16_t b) { return u2f(uint32_t(b) << 16); }

KVC_HD uint16_t float_to_bf16(float f) {
    const uint32_t x = f2u(f);
    if ((x & 0x7FFFFFFF) > 0x7F800000u) return uint16_t((x >> 16) | 0x40);
    return uint16_t((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

// ---- FP8 E4M3 ("fn") ----
// The CPU's recipe: E4M3 moved into binary16's bits is the value times 2^-8, so the read value is
// fp16(bits) * (scale * 256), one rounding; S.1111.111 is NaN (positive quiet NaN, as the CPU returns).
KVC_HD float fp8_read(uint8_t v, float scale_times_256) {
    if ((v & 0x7F) == 0x7F) return u2f(0x7FC00000u);
    return fp16_to_float(uint16_t(((v & 0x80) << 8) | ((v & 0x7F) << 7))) * scale_times_256;
}

KVC_HD uint8_t float_to_fp8_e4m3(float f) {
    const uint32_t x = f2u(f);
    const uint8_t sign = uint8_t((x >> 24) & 0x80);
    const uint32_t abs = x & 0x7FFFFFFF;
    if (abs > 0x7F800000u) return uint8_t(sign | 0x7F);
    if (abs >= 0x43E00000u) return uint8_t(sign | 0x7E);
    if (abs >= 0x3C800000u) {
        const uint32_t rounded = abs + 0x7FFFF + ((abs >> 20) & 1);
        const uint32_t code = (rounded - 0x3C000000u) >> 20;
        return uint8_t(sign | (code > 0x7E ? 0x7E : code));
    }
    const float magnitude = u2f(abs) * 512.f;  // count of 2^-9, exact
    return uint8_t(sign | uint8_t(round_even(magnitude)));
}

// ---- INT8 with a per-row scale: inverse = 127 / max|x| (0 for a zero row) ----
KVC_HD int8_t quantize_int8(float x, float inverse_scale) {
    float q = round_even(x * inverse_scale);
    q = q > 127.f ? 127.f : (q < -127.f ? -127.f : q);
    return int8_t(q);
}

// Element i of a row of type dt as a float; `scale` is the FP8 tensor scale times 256 or the INT8 row scale.
KVC_HD float load_elem(uint32_t dt, const void* row, uint32_t i, float scale) {
    switch (dt) {
        case kDtF32: return static_cast<const float*>(row)[i];
        case kDtF16: return fp16_to_float(static_cast<const uint16_t*>(row)[i]);
        case kDtBF16: return bf16_to_float(static_cast<const uint16_t*>(row)[i]);
        case kDtFP8: return fp8_read(static_cast<const uint8_t*>(row)[i], scale);
        default: return float(static_cast<const int8_t*>(row)[i]) * scale;
    }
}

// Stores x as element i of a row of type dt (F32, F16, BF16; FP8 takes x already divided by its scale).
KVC_HD void store_elem(uint32_t dt, void* row, uint32_t i, float x) {
    switch (dt) {
        case kDtF32: static_cast<float*>(row)[i] = x; return;
        case kDtF16: static_cast<uint16_t*>(row)[i] = float_to_fp16(x); return;
        case kDtBF16: static_cast<uint16_t*>(row)[i] = float_to_bf16(x); return;
        default: static_cast<uint8_t*>(row)[i] = float_to_fp8_e4m3(x); return;
    }
}

// Copies element i's bits unchanged (same source and destination type).
KVC_HD void copy_elem(uint32_t bytes, void* dst, const void* src, uint32_t i) {
    switch (bytes) {
        case 4: static_cast<uint32_t*>(dst)[i] = static_cast<const uint32_t*>(src)[i]; return;
        case 2: static_cast<uint16_t*>(dst)[i] = static_cast<const uint16_t*>(src)[i]; return;
        default: static_cast<uint8_t*>(dst)[i] = static_cast<const uint8_t*>(src)[i]; return;
    }
}

}  // namespace kvcore::cuda
