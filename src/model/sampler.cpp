// SPDX-License-Identifier: Apache-2.0
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"

namespace kvcore::model {

Sampler::Sampler(const Sampling& sampling) : sampling_(sampling), rng_(sampling.seed) {
    if (!(sampling.temperature >= 0.f) || !std::isfinite(sampling.temperature)) {
        fail(KVC_ERR_INVALID_ARGUMENT, "temperature must be finite and >= 0");
    }
}

int32_t Sampler::next(std::span<const float> logits) {
    if (logits.empty()) fail(KVC_ERR_INVALID_ARGUMENT, "no logits to sample from");
    if (sampling_.temperature == 0.f) {
        return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());  // first maximum
    }
    // The k best ids, highest logit first, ties by id: a total order, so the result never depends on the
    // sort's implementation.
    const size_t n = logits.size();
    const size_t k = sampling_.top_k == 0 ? n : std::min<size_t>(sampling_.top_k, n);
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0);
    auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(order_.begin(), order_.begin() + ptrdiff_t(k), order_.end(), better);

    weights_.resize(k);
    const double top = logits[order_[0]], inv_t = 1.0 / sampling_.temperature;
    double total = 0;
    for (size_t i = 0; i < k; ++i) total += weights_[i] = std::exp((logits[order_[i]] - top) * inv_t);
    double u = rng_.uniform() * total;
    for (size_t i = 0; i < k; ++i) {
        if (u < weights_[i]) return order_[i];
        u -= weights_[i];
    }
    return order_[k - 1];  // u landed on the rounding of the last subtraction
}

}  // namespace kvcore::model
