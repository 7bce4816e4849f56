// SPDX-License-Identifier: Apache-2.0
// Next-token choice from logits: greedy, or temperature + top-k sampling driven by a seeded generator, so a
// request's tokens depend only on its logits and its seed (tests compare cached and recomputed generation).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/rng.h"

namespace kvcore::model {

struct Sampling {
    float temperature = 0.f;  // 0: greedy (argmax, the lowest id on ties)
    uint32_t top_k = 0;       // 0: the whole vocabulary
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const Sampling& sampling);
    // Throws kvcore::Error on empty logits.
    [[nodiscard]] int32_t next(std::span<const float> logits);

private:
    Sampling sampling_;
    Rng rng_;
    std::vector<int32_t> order_;
    std::vector<double> weights_;
};

}  // namespace kvcore::model
