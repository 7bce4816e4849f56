/* SPDX-License-Identifier: Apache-2.0 */
// Decoded event batches the index benchmarks apply (in memory and in Redis mode alike).
#pragma once

#include <span>
#include <utility>

#include "index/event_decoder.h"

namespace kvcore::index {

// One BlockStored of these keys as 16-token blocks without tokens (direct engine keys need none).
inline EventBatch stored_batch(std::span<const uint64_t> keys) {
    BlockStored s;
    s.block_hashes.assign(keys.begin(), keys.end());
    s.block_size = 16;
    EventBatch b;
    b.events.push_back(std::move(s));
    return b;
}

}  // namespace kvcore::index
