// SPDX-License-Identifier: Apache-2.0
// Scalar conversions between float32 and the cache's narrow types, exact round to nearest even. The vector
// kernels (ops/kernels_impl.h) use these bit recipes element by element so that the compiler vectorizes them;
// tests/unit/ops_dtype_test.cpp checks every fp16 and fp8 code against the definitions.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace kvcore::ops {

// ---- IEEE binary16 ----
inline float fp16_to_float(uint16_t h) noexcept {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F;
    const uint32_t man = h & 0x3FF;
    if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (man << 13));  // inf / NaN (payload kept)
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
    // Subnormal (or zero): man * 2^-24, exact in float.
    const float magnitude = float(man) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
}

inline uint16_t float_to_fp16(float f) noexcept {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000);
    const uint32_t abs = x & 0x7FFFFFFF;
    if (abs > 0x7F800000u) return uint16_t(sign | 0x7E00 | ((abs >> 13) & 0x3FF));  // NaN stays NaN (quiet)
    if (abs >= 0x477FF000u) return uint16_t(sign | 0x7C00);  // >= 65520 rounds to infinity
    if (abs >= 0x38800000u) {  // normal fp16 (>= 2^-14)
        const uint32_t rounded = abs + 0xFFF + ((abs >> 13) & 1);
        return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
    }
    // Subnormal fp16: scale to an integer count of 2^-24 and round half to even (exact in float: the
    // product is below 2^10 and float's rint rounds to even).
    const float magnitude = std::bit_cast<float>(abs) * 0x1p24f;
    return uint16_t(sign | uint16_t(std::nearbyint(magnitude)));
}

// ---- bfloat16 ----
inline float bf16_to_float(uint16_t b) noexcept { return std::bit_cast<float>(uint32_t(b) << 16); }

inline uint16_t float_to_bf16(float f) noexcept {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7FFFFFFF) > 0x7F800000u) return uint16_t((x >> 16) | 0x40);  // NaN stays NaN (quiet)
    return uint16_t((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

// ---- FP8 E4M3 ("fn": bias 7, no infinities, S.1111.111 is NaN, largest finite 448) ----
inline float fp8_e4m3_to_float(uint8_t v) noexcept {
    const uint32_t sign = uint32_t(v & 0x80) << 24;
    const uint32_t exp = (v >> 3) & 0xF;
    const uint32_t man = v & 0x7;
    if ((v & 0x7F) == 0x7F) return std::bit_cast<float>(sign | 0x7FC00000u);
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 120) << 23) | (man << 20));
    const float magnitude = float(man) * 0x1p-9f;  // subnormal: man * 2^-9
    return sign ? -magnitude : magnitude;
}

// Saturating: values past 448 (infinities included) become +-448, as vLLM's saturating conversion.
inline uint8_t float_to_fp8_e4m3(float f) noexcept {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint8_t sign = uint8_t((x >> 24) & 0x80);
    const uint32_t abs = x & 0x7FFFFFFF;
    if (abs > 0x7F800000u) return uint8_t(sign | 0x7F);
    if (abs >= 0x43E00000u) return uint8_t(sign | 0x7E);  // >= 448
    if (abs >= 0x3C800000u) {                            // normal e4m3 (>= 2^-6)
        const uint32_t rounded = abs + 0x7FFFF + ((abs >> 20) & 1);
        const uint32_t code = (rounded - 0x3C000000u) >> 20;  // rebias 127 -> 7
        return uint8_t(sign | (code > 0x7E ? 0x7E : code));   // 464 and up were caught above; keep safe
    }
    const float magnitude = std::bit_cast<float>(abs) * 0x1p9f;  // subnormal: count of 2^-9
    return uint8_t(sign | uint8_t(std::nearbyint(magnitude)));
}

// ---- INT8 with a per-row scale ----
// q = round_half_even(x / s), s = max|x| / 127; rows of zeros keep s = 0.
inline int8_t quantize_int8(float x, float inverse_scale) noexcept {
    float q = std::nearbyint(x * inverse_scale);
    q = q > 127.f ? 127.f : (q < -127.f ? -127.f : q);
    return int8_t(q);
}

}  // namespace kvcore::ops
