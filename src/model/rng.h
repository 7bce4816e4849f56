// SPDX-License-Identifier: Apache-2.0
// The model's random numbers: SplitMix64, so weights and samples are the same on every platform and standard
// library (std::normal_distribution and std::uniform_real_distribution are implementation-defined).
#pragma once

#include <cmath>
#include <cstdint>

namespace kvcore::model {

class Rng {
public:
    explicit Rng(uint64_t seed) noexcept : state_(seed) {}

    uint64_t next() noexcept {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1) with 53 random bits.
    double uniform() noexcept { return double(next() >> 11) * 0x1.0p-53; }
    // Two independent N(0, 1) draws (Box-Muller).
    void normal_pair(float& a, float& b) noexcept {
        const double u = 1.0 - uniform();  // (0, 1]: log stays finite
        const double r = std::sqrt(-2.0 * std::log(u)), t = 6.283185307179586 * uniform();
        a = float(r * std::cos(t));
        b = float(r * std::sin(t));
    }

private:
    uint64_t state_;
};

}  // namespace kvcore::model
