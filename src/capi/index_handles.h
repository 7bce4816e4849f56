/* SPDX-License-Identifier: Apache-2.0 */
// What other C shims need of a kvc_index (its struct lives in index_capi.cpp): the index, its ingest
// workers (or null) and its count of refused batches.
#pragma once

#include <atomic>
#include <cstdint>

#include "kvcore/index.h"

namespace kvcore::index {
class Index;
class IngestPool;
}  // namespace kvcore::index

namespace kvcore::capi {

struct IndexParts {
    index::Index& index;
    index::IngestPool* ingest;
    std::atomic<uint64_t>& refused;
};
IndexParts index_parts(kvc_index& x) noexcept;

// A kvc_index is freed when its caller has destroyed it and every subscriber feeding it is gone: the
// bindings' garbage collectors may finalize an index before the subscriber that feeds it.
void index_retain(kvc_index& x) noexcept;
void index_release(kvc_index* x) noexcept;

}  // namespace kvcore::capi
