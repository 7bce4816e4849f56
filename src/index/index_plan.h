/* SPDX-License-Identifier: Apache-2.0 */
// Internal to the index (index.cpp and its Redis backend, index_redis.cpp): the packed holder (Ref), the
// (model, kind) field, the key mix, and the Plan of changes a batch or call makes. Every write of the index
// goes through a Plan, which Index::execute applies to the shards or, in Redis mode, sends as one script.
#pragma once

#include <cstdint>
#include <vector>

#include "index/index.h"

namespace kvcore::index {

// A holder packed in 32 bits: pod 16 | rank 12 | tier 3 | speculative 1.
using Ref = uint32_t;
constexpr Ref make_ref(PodId pod, uint32_t rank, Medium tier, bool spec) noexcept {
    return (uint32_t{pod} << 16) | (rank << 4) | (uint32_t(tier) << 1) | (spec ? 1u : 0u);
}
constexpr PodId ref_pod(Ref r) noexcept { return static_cast<PodId>(r >> 16); }
constexpr uint16_t ref_rank(Ref r) noexcept { return static_cast<uint16_t>((r >> 4) & kMaxRank); }
constexpr Medium ref_tier(Ref r) noexcept { return static_cast<Medium>((r >> 1) & 7); }
constexpr bool ref_spec(Ref r) noexcept { return (r & 1) != 0; }
inline Holder to_holder(Ref r) noexcept { return Holder{ref_pod(r), ref_rank(r), ref_tier(r), ref_spec(r)}; }

// (model, kind) in 16 bits: the kind is the top bit.
constexpr uint16_t model_field(ModelId model, KeyKind kind) noexcept {
    return static_cast<uint16_t>(model | (kind == KeyKind::kEngine ? 0x8000u : 0u));
}
constexpr ModelId field_model(uint16_t field) noexcept { return static_cast<ModelId>(field & 0x7FFF); }
constexpr KeyKind field_kind(uint16_t field) noexcept { return (field & 0x8000) ? KeyKind::kEngine : KeyKind::kRequest; }

inline uint64_t mix(uint64_t key, uint16_t model) noexcept {
    uint64_t x = key ^ (uint64_t{model} * 0x9E3779B97F4A7C15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

// A batch's changes, computed before any shard is locked.
struct Index::Plan {
    enum class Type : uint8_t { kAdd, kRemove, kClearPodRank, kRemovePod };
    struct Op {
        Type type;
        uint16_t model;
        Ref ref;
        // expiry: a speculative add's absolute expiry on the index's clock; in Redis mode its TTL in ns
        // instead (the server's clock makes it absolute, so that replicas agree).
        uint64_t key, h, expiry;
    };
    std::vector<Op> ops;
    bool all_shards = false;
    void add(Type t, uint64_t key, uint16_t model, Ref r, uint64_t expiry = 0) {
        ops.push_back(Op{t, model, r, key, mix(key, model), expiry});
    }
};

}  // namespace kvcore::index
