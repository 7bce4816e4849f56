// SPDX-License-Identifier: Apache-2.0
// The element conversions: every fp16 and fp8 code decoded against the format's definition, encoders
// against a nearest-value search (ties to even) on every code, every midpoint and a sweep of floats, and
// each instruction set's row kernels against the scalar recipes.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "ops/dtype.h"
#include "ops/kernels.h"

namespace kvcore::ops {
namespace {

bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }

double fp16_definition(uint16_t h) {
    const int sign = (h & 0x8000) ? -1 : 1;
    const int exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 31) return man ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity();
    if (exp == 0) return sign * std::ldexp(double(man), -24);
    return sign * std::ldexp(double(1024 + man), exp - 25);
}

double fp8_definition(uint8_t v) {
    const int sign = (v & 0x80) ? -1 : 1;
    const int exp = (v >> 3) & 0xF, man = v & 7;
    if ((v & 0x7F) == 0x7F) return std::numeric_limits<double>::quiet_NaN();
    if (exp == 0) return sign * std::ldexp(double(man), -9);
    return sign * std::ldexp(double(8 + man), exp - 10);
}

TEST(OpsDtype, Fp16DecodeEveryCode) {
    for (uint32_t h = 0; h < 65536; ++h) {
        ASSERT_TRUE(same(fp16_to_float(uint16_t(h)), float(fp16_definition(uint16_t(h))))) << std::hex << h;
    }
}

TEST(OpsDtype, Fp8DecodeEveryCode) {
    for (uint32_t v = 0; v < 256; ++v) {
        ASSERT_TRUE(same(fp8_e4m3_to_float(uint8_t(v)), float(fp8_definition(uint8_t(v))))) << std::hex << v;
    }
    EXPECT_EQ(fp8_e4m3_to_float(0x7E), 448.f);
    EXPECT_EQ(fp8_e4m3_to_float(0x01), std::ldexp(1.f, -9));
}

// Nearest code by value among `codes` (finite, sorted by value, increasing), ties to the even code.
template <class Code>
Code nearest(double x, const std::vector<std::pair<double, Code>>& codes) {
    auto it = std::lower_bound(codes.begin(), codes.end(), x, [](const auto& c, double v) { return c.first < v; });
    if (it == codes.begin()) return it->second;
    if (it == codes.end()) return std::prev(it)->second;
    const auto lo = *std::prev(it), hi = *it;
    const double dl = x - lo.first, dh = hi.first - x;
    if (dl < dh) return lo.second;
    if (dh < dl) return hi.second;
    return (lo.second & 1) == 0 ? lo.second : hi.second;
}

// Floats to try: every code, every midpoint between neighbours and the floats next to it, random floats.
template <class Code>
std::vector<float> probes(const std::vector<std::pair<double, Code>>& codes) {
    std::vector<float> out;
    for (size_t i = 0; i + 1 < codes.size(); ++i) {
        const float mid = float((codes[i].first + codes[i + 1].first) / 2);
        out.insert(out.end(), {float(codes[i].first), mid, std::nextafter(mid, -INFINITY), std::nextafter(mid, INFINITY)});
    }
    std::mt19937 rng(7);
    for (int i = 0; i < 200000; ++i) out.push_back(std::bit_cast<float>(uint32_t(rng())));
    return out;
}

TEST(OpsDtype, Fp16EncodeRoundsToNearestEven) {
    std::vector<std::pair<double, uint16_t>> codes;  // positive finite, then mirrored by sign
    for (uint32_t h = 0; h < 0x7C00; ++h) codes.push_back({fp16_definition(uint16_t(h)), uint16_t(h)});
    for (float f : probes(codes)) {
        if (std::isnan(f)) {
            ASSERT_TRUE(std::isnan(fp16_to_float(float_to_fp16(f))));
            continue;
        }
        const double a = std::fabs(double(f));
        uint16_t expected = a >= 65520.0 ? 0x7C00 : nearest(a, codes);
        if (std::signbit(f)) expected |= 0x8000;
        ASSERT_EQ(float_to_fp16(f), expected) << f;
        ASSERT_EQ(float_to_fp16(-f), uint16_t(expected ^ 0x8000)) << f;
    }
    for (uint32_t h = 0; h < 65536; ++h) {  // every non-NaN code survives the round trip
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;
        ASSERT_EQ(float_to_fp16(fp16_to_float(uint16_t(h))), h);
    }
}

TEST(OpsDtype, Fp8EncodeRoundsToNearestEvenAndSaturates) {
    std::vector<std::pair<double, uint8_t>> codes;
    for (uint32_t v = 0; v < 0x7F; ++v) codes.push_back({fp8_definition(uint8_t(v)), uint8_t(v)});
    for (float f : probes(codes)) {
        if (std::isnan(f)) {
            ASSERT_TRUE(std::isnan(fp8_e4m3_to_float(float_to_fp8_e4m3(f))));
            continue;
        }
        uint8_t expected = nearest(std::fabs(double(f)), codes);  // past 448: the last code, 448
        if (std::signbit(f)) expected |= 0x80;
        ASSERT_EQ(float_to_fp8_e4m3(f), expected) << f;
    }
    EXPECT_EQ(float_to_fp8_e4m3(INFINITY), 0x7E);
    EXPECT_EQ(float_to_fp8_e4m3(-1e30f), 0xFE);
    for (uint32_t v = 0; v < 256; ++v) {
        if ((v & 0x7F) == 0x7F) continue;
        ASSERT_EQ(float_to_fp8_e4m3(fp8_e4m3_to_float(uint8_t(v))), v);
    }
}

TEST(OpsDtype, Bf16EncodeRoundsToNearestEven) {
    std::mt19937 rng(11);
    for (int i = 0; i < 1000000; ++i) {
        const float f = std::bit_cast<float>(uint32_t(rng()));
        const uint16_t got = float_to_bf16(f);
        if (std::isnan(f)) {
            ASSERT_TRUE(std::isnan(bf16_to_float(got)));
            continue;
        }
        const uint32_t bits = std::bit_cast<uint32_t>(f);
        const uint16_t down = uint16_t(bits >> 16), up = uint16_t(down + 1);
        const double dd = std::fabs(double(f) - double(bf16_to_float(down)));
        // Past the largest bf16 the next step is infinity, which rounding treats as 2^128.
        const double up_value = std::isinf(bf16_to_float(up)) ? std::copysign(std::ldexp(1.0, 128), double(f))
                                                               : double(bf16_to_float(up));
        const double du = std::fabs(up_value - double(f));
        const uint16_t expected = dd < du ? down : du < dd ? up : ((down & 1) == 0 ? down : up);
        ASSERT_EQ(got, expected) << f;
    }
}

std::vector<const Kernels*> available_tables() {
    std::vector<const Kernels*> out;
    for (const char* isa : {"generic", "avx2", "avx512"}) {
        if (const Kernels* k = kernels_for(isa)) out.push_back(k);
    }
    return out;
}

TEST(OpsDtype, EveryKernelTableDecodesEveryCode) {
    ASSERT_NE(kernels_for("generic"), nullptr);
    std::vector<uint16_t> halves(65536);
    for (uint32_t h = 0; h < 65536; ++h) halves[h] = uint16_t(h);
    std::vector<uint8_t> bytes(256 * 3);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7);  // every code, in varied positions
    for (const Kernels* k : available_tables()) {
        SCOPED_TRACE(k->name);
        std::vector<float> out(65536);
        // Odd lengths and offsets exercise the vector tails.
        for (size_t start : {size_t(0), size_t(3)}) {
            k->load_row(DType::kF16, halves.data() + start, 1.f, out.data(), halves.size() - start);
            for (size_t i = start; i < halves.size(); ++i) ASSERT_TRUE(same(out[i - start], fp16_to_float(halves[i]))) << i;
        }
        for (float scale : {1.f, 0.37f, 3.5f}) {
            k->load_row(DType::kFP8, bytes.data() + 1, scale, out.data(), bytes.size() - 1);
            for (size_t i = 1; i < bytes.size(); ++i) {
                ASSERT_TRUE(same(out[i - 1], fp8_e4m3_to_float(bytes[i]) * scale)) << i << " scale " << scale;
            }
            k->load_row(DType::kInt8, bytes.data() + 1, scale, out.data(), bytes.size() - 1);
            for (size_t i = 1; i < bytes.size(); ++i) ASSERT_EQ(out[i - 1], float(int8_t(bytes[i])) * scale) << i;
        }
        k->load_row(DType::kBF16, halves.data(), 1.f, out.data(), halves.size());
        for (size_t i = 0; i < halves.size(); ++i) ASSERT_TRUE(same(out[i], bf16_to_float(halves[i])));
    }
}

TEST(OpsDtype, EveryKernelTableEncodesLikeTheScalarRecipes) {
    std::mt19937 rng(5);
    std::vector<float> src(1000);
    for (auto& x : src) x = std::ldexp(float(int32_t(rng() % 20001) - 10000) / 10000.f, int(rng() % 40) - 20);
    src[3] = 0.f;
    src[4] = -0.f;
    src[5] = INFINITY;
    src[6] = NAN;
    for (const Kernels* k : available_tables()) {
        SCOPED_TRACE(k->name);
        std::vector<uint16_t> h(src.size());
        k->store_row(DType::kF16, src.data(), 1.f, h.data(), nullptr, src.size());
        for (size_t i = 0; i < src.size(); ++i) ASSERT_EQ(h[i], float_to_fp16(src[i])) << i;
        k->store_row(DType::kBF16, src.data(), 1.f, h.data(), nullptr, src.size());
        for (size_t i = 0; i < src.size(); ++i) ASSERT_EQ(h[i], float_to_bf16(src[i])) << i;
        std::vector<uint8_t> b(src.size());
        k->store_row(DType::kFP8, src.data(), 0.5f, b.data(), nullptr, src.size());
        for (size_t i = 0; i < src.size(); ++i) ASSERT_EQ(b[i], float_to_fp8_e4m3(src[i] / 0.5f)) << i;
        std::vector<float> finite(src.begin() + 7, src.end());
        float scale = -1.f;
        k->store_row(DType::kInt8, finite.data(), 1.f, b.data(), &scale, finite.size());
        float max_abs = 0.f;
        for (float x : finite) max_abs = std::max(max_abs, std::fabs(x));
        ASSERT_EQ(scale, max_abs / 127.f);
        for (size_t i = 0; i < finite.size(); ++i) {
            ASSERT_EQ(int8_t(b[i]), int8_t(std::nearbyint(finite[i] * (127.f / max_abs)))) << i;
        }
    }
}

}  // namespace
}  // namespace kvcore::ops
