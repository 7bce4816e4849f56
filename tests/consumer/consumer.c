/* SPDX-License-Identifier: Apache-2.0 */
/* A program that uses kvcore the way a downstream project does: from an installed tree. */
#include <stdio.h>

#include <kvcore/kvcore.h>

int main(void) {
    kvc_recorder* recorder = NULL;
    kvc_stats* stats = NULL;
    if (kvc_recorder_create(NULL, &recorder) != KVC_OK) return 1;
    kvc_recorder_record_access(recorder, 1);
    kvc_recorder_record_access(recorder, 0);
    if (kvc_recorder_snapshot(recorder, &stats) != KVC_OK) return 1;
    printf("consumer: kvcore %s, hit rate %.2f\n", kvc_version_string(), kvc_stats_hit_rate(stats));
    const int ok = kvc_stats_lookups(stats) == 2 && kvc_stats_hit_rate(stats) == 0.5;
    kvc_stats_destroy(stats);
    kvc_recorder_destroy(recorder);
    return ok ? 0 : 1;
}
