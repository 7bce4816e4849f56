/* SPDX-License-Identifier: Apache-2.0 */
// The kvc_store and kvc_session handles, shared by the store's shims and the scheduler's (which attaches a
// store as the host tier under its pool).
#pragma once

#include <memory>

#include "kvcore/store.h"
#include "store/store.h"

struct kvc_store {
    std::shared_ptr<kvcore::store::Store> core;
};
struct kvc_session {
    kvcore::store::Lease lease;
    kvcore::store::Session& session() const { return *lease.session; }
    kvcore::store::Store& store() const { return *lease.store; }
};
