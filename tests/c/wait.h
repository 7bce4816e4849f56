/* SPDX-License-Identifier: Apache-2.0 */
/* What the C tests of the ZeroMQ transport wait with: a monotonic clock in milliseconds, a sleep, and the
 * subscriber's counters one at a time. Include after check.h, with _POSIX_C_SOURCE defined first. */
#ifndef KVCORE_TESTS_C_WAIT_H
#define KVCORE_TESTS_C_WAIT_H

#include <time.h>

#include "kvcore/index_subscriber.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static uint64_t sub_counter(const kvc_index_subscriber* s, kvc_index_subscriber_counter c) {
    uint64_t values[KVC_INDEX_SUBSCRIBER_COUNTER_COUNT];
    CHECK_STATUS(kvc_index_subscriber_counters(s, values, KVC_INDEX_SUBSCRIBER_COUNTER_COUNT, NULL), KVC_OK);
    return values[c];
}

#endif /* KVCORE_TESTS_C_WAIT_H */
