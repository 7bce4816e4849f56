// SPDX-License-Identifier: Apache-2.0
// The CUDA kernels' conversions (cuda/dtype.cuh, compiled here by the host compiler: the same source nvcc
// builds for the device) against the CPU's (src/ops/dtype.h and the kernels' row functions), bit for bit:
// every fp16, bf16 and fp8 code decoded, and the encoders on every 97th float bit pattern (all exponents,
// signs, NaNs, infinities, subnormals) plus every fp16/fp8 midpoint. Runs without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda/dtype.cuh"
#include "ops/dtype.h"
#include "ops/kernels.h"

namespace {

namespace cu = kvcore::cuda;
namespace ops = kvcore::ops;

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

TEST(OpsCudaDtype, DecodersMatchTheCpuOnEveryCode) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        ASSERT_EQ(bits(cu::fp16_to_float(uint16_t(h))), bits(ops::fp16_to_float(uint16_t(h)))) << h;
        ASSERT_EQ(bits(cu::bf16_to_float(uint16_t(h))), bits(ops::bf16_to_float(uint16_t(h)))) << h;
    }
    // FP8 as the CPU kernels read a row (the fp16 route times scale * 256), with a scale that is not 1.
    const ops::Kernels& k = ops::kernels();
    for (float scale : {1.f, 0.37f, 3.5f}) {
        std::vector<uint8_t> codes(256);
        for (int v = 0; v < 256; ++v) codes[v] = uint8_t(v);
        std::vector<float> cpu(256);
        k.load_row(ops::DType::kFP8, codes.data(), scale, cpu.data(), 256);
        for (int v = 0; v < 256; ++v) {
            const float gpu = cu::fp8_read(uint8_t(v), scale * 256.f);
            // load_elem is what gather and write use.
            const float elem = cu::load_elem(cu::kDtFP8, codes.data(), uint32_t(v), scale * 256.f);
            if (std::isnan(cpu[v])) {
                EXPECT_TRUE(std::isnan(gpu) && std::isnan(elem)) << v;
            } else {
                ASSERT_EQ(bits(gpu), bits(cpu[v])) << "code " << v << " scale " << scale;
                ASSERT_EQ(bits(elem), bits(cpu[v])) << "code " << v << " scale " << scale;
            }
        }
    }
}

void expect_same_encoders(float x) {
    ASSERT_EQ(cu::float_to_fp16(x), ops::float_to_fp16(x)) << std::hexfloat << x;
    ASSERT_EQ(cu::float_to_bf16(x), ops::float_to_bf16(x)) << std::hexfloat << x;
    ASSERT_EQ(cu::float_to_fp8_e4m3(x), ops::float_to_fp8_e4m3(x)) << std::hexfloat << x;
}

TEST(OpsCudaDtype, EncodersMatchTheCpuOnASweepOfFloats) {
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 97) expect_same_encoders(from_bits(uint32_t(u)));
    for (uint32_t h = 0; h < 0x7C00; ++h) {  // fp16 midpoints: the ties
        const float lo = ops::fp16_to_float(uint16_t(h)), hi = ops::fp16_to_float(uint16_t(h + 1));
        expect_same_encoders(lo + (hi - lo) / 2);
        expect_same_encoders(-(lo + (hi - lo) / 2));
    }
    for (uint32_t v = 0; v < 0x7E; ++v) {  // fp8 midpoints
        const float lo = ops::fp8_e4m3_to_float(uint8_t(v)), hi = ops::fp8_e4m3_to_float(uint8_t(v + 1));
        expect_same_encoders(lo + (hi - lo) / 2);
    }
}

TEST(OpsCudaDtype, Int8QuantizationMatchesTheCpuRow) {
    // The write kernel's recipe (max, inverse = 127 / m, rint(x * inverse), scale = m / 127) against the
    // CPU's store_row on rows that include ties (x * inverse landing on .5).
    const ops::Kernels& k = ops::kernels();
    std::vector<float> row = {1.f, -0.5f, 0.25f, 127.f / 254.f, -3.f / 254.f, 0.f, 2.5f / 127.f, 1e-7f};
    for (int round = 0; round < 200; ++round) {
        if (round > 0) {
            for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(0.37f * float(round * 8 + i)) * (1.f + round);
        }
        std::vector<int8_t> cpu(row.size());
        float cpu_scale = 0.f;
        k.store_row(ops::DType::kInt8, row.data(), 1.f, cpu.data(), &cpu_scale, row.size());
        float m = 0.f;
        for (float x : row) m = std::fmax(m, std::fabs(x));
        const float inverse = m > 0.f ? 127.f / m : 0.f;
        for (size_t i = 0; i < row.size(); ++i) ASSERT_EQ(cu::quantize_int8(row[i], inverse), cpu[i]) << round << " " << i;
        ASSERT_EQ(bits(m / 127.f), bits(cpu_scale));
    }
}

}  // namespace
