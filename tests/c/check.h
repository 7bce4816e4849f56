/* SPDX-License-Identifier: Apache-2.0 */
/* The C tests' one assertion: it counts checks and failures, prints the failed condition with the
 * library's last error message, and goes on, so one run reports every failure. */
#ifndef KVCORE_TESTS_C_CHECK_H
#define KVCORE_TESTS_C_CHECK_H

#include <stdio.h>

#include "kvcore/common.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        ++checks;                                                                                  \
        if (!(cond)) {                                                                             \
            ++failures;                                                                            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    kvc_last_error_message());                                                      \
        }                                                                                          \
    } while (0)
#define CHECK_STATUS(expr, expected) CHECK((expr) == (expected))

#endif /* KVCORE_TESTS_C_CHECK_H */
