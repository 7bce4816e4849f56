/* SPDX-License-Identifier: Apache-2.0 */
// kvc_eviction_policy for every C shim that takes one (pool, session store, TTL cache).
#pragma once

#include "capi/guard.h"
#include "common/eviction/policy.h"
#include "kvcore/common.h"
#include "kvcore/pool.h"

namespace kvcore::capi {

// The C API offers the policies that beat LRU on the reference trace at every size measured
// (bench/RESULTS.md); they are the first eviction::Kind values, value for value.
inline constexpr uint32_t kLastOfferedEviction = KVC_EVICTION_ARC;

// kvc_eviction_policy as the policy it names; KVC_ERR_INVALID_ARGUMENT for any other value.
[[nodiscard]] inline eviction::Kind eviction_kind(const kvc_eviction_policy& policy) {
    return checked_enum<eviction::Kind>(policy, kLastOfferedEviction, "eviction policy");
}

// For kvcore's own tools only (`kvcore simulate --policy` compares every policy kvcore has, offered
// in the C API or not); not exported from libkvcore.
void set_pool_eviction_for_tools(kvc_pool_options* options, eviction::Kind kind);

}  // namespace kvcore::capi
