/* SPDX-License-Identifier: Apache-2.0 */
/* Compiled with -std=c99 -Wall -Wextra -pedantic -Werror: the public headers are plain C99. */
#include "kvcore/kvcore.h"
/* Each header also compiles on its own. */
#include "kvcore/ttl.h"
#include "kvcore/store.h"
#include "kvcore/index.h"
#include "kvcore/index_subscriber.h"
#include "kvcore/event_publisher.h"
#include "kvcore/ops.h"
#include "kvcore/ops_cuda.h"
#include "kvcore/sched.h"

int main(void) { return kvc_version_number() == KVC_VERSION_NUMBER ? 0 : 1; }
