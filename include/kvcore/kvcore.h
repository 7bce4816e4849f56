/* SPDX-License-Identifier: Apache-2.0 */
/* kvcore/kvcore.h - the umbrella header: include this one to get the whole C API. */
#ifndef KVCORE_KVCORE_H
#define KVCORE_KVCORE_H

#include "kvcore/common.h"
#include "kvcore/stats.h"
#include "kvcore/pool.h"
#include "kvcore/ttl.h"
#include "kvcore/store.h"
#include "kvcore/index.h"
#include "kvcore/index_subscriber.h"
#include "kvcore/event_publisher.h"
#include "kvcore/ops.h"
#include "kvcore/ops_cuda.h"
#include "kvcore/sched.h"

#endif /* KVCORE_KVCORE_H */
