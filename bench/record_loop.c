/* SPDX-License-Identifier: Apache-2.0 */
/* A loop of 1,000,000 recorded accesses, for `valgrind --tool=callgrind` instruction counts. */
#include "kvcore/kvcore.h"
int main(void) {
    kvc_recorder* r = 0;
    kvc_recorder_create(0, &r);
    for (unsigned i = 0; i < 1000000; ++i) kvc_recorder_record_access(r, i & 1);
    kvc_recorder_destroy(r);
    return 0;
}
