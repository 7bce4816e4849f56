/* SPDX-License-Identifier: Apache-2.0 */
// The kvc_stats handle, shared by every component that hands out snapshots (recorder, pool, ...).
#pragma once

#include "kvcore/stats.h"
#include "stats/snapshot.h"

struct kvc_stats {
    kvcore::stats::Snapshot snapshot;
};
