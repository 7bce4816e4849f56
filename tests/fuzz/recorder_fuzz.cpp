// SPDX-License-Identifier: Apache-2.0
// Random recorder calls checked against a plain model of the counts (saturating at UINT64_MAX), and
// every snapshot exported as Prometheus text and JSON through size query then fill.
#include <vector>

#include "fuzz_input.h"
#include "kvcore/kvcore.h"

using kvcore::fuzz::FuzzInput;

namespace {

uint64_t sat(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

// Huge values now and then, so that saturation is reached.
uint64_t amount(FuzzInput& in) { return in.byte() % 4 == 0 ? in.u64() : in.below(1000); }

void export_both(const kvc_stats* stats) {
    size_t length = 0;
    FUZZ_REQUIRE(kvc_stats_to_prometheus(stats, nullptr, 0, &length) == KVC_OK);
    std::vector<char> text(length + 1);
    FUZZ_REQUIRE(kvc_stats_to_prometheus(stats, text.data(), text.size(), &length) == KVC_OK);
    FUZZ_REQUIRE(kvc_stats_to_json(stats, nullptr, 0, &length) == KVC_OK);
    text.assign(length + 1, 0);
    FUZZ_REQUIRE(kvc_stats_to_json(stats, text.data(), text.size(), &length) == KVC_OK);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzInput in(data, size);
    kvc_recorder_options* options = nullptr;
    FUZZ_REQUIRE(kvc_recorder_options_create(&options) == KVC_OK);
    const uint32_t layers = in.below(4);
    FUZZ_REQUIRE(kvc_recorder_options_set_layers(options, layers) == KVC_OK);
    FUZZ_REQUIRE(kvc_recorder_options_set_window_accesses(options, 1 + in.below(300)) == KVC_OK);
    kvc_recorder* recorder = nullptr;
    FUZZ_REQUIRE(kvc_recorder_create(options, &recorder) == KVC_OK);
    kvc_recorder_options_destroy(options);

    uint64_t hits = 0, misses = 0, insertions = 0, evictions = 0, pressure = 0, queried = 0, found = 0, reused = 0;
    uint64_t bytes = 0, peak = 0;
    for (int step = 0; step < 300 && !in.done(); ++step) {
        switch (in.byte() % 12) {
            case 0: {
                const bool hit = in.byte() % 2;
                FUZZ_REQUIRE(kvc_recorder_record_access(recorder, hit) == KVC_OK);
                (hit ? hits : misses) = sat(hit ? hits : misses, 1);
                break;
            }
            case 1: {
                std::vector<uint8_t> outcomes(in.below(200));
                for (auto& o : outcomes) {
                    o = in.byte() % 3;
                    (o ? hits : misses) = sat(o ? hits : misses, 1);
                }
                FUZZ_REQUIRE(kvc_recorder_record_accesses(recorder, outcomes.data(), outcomes.size()) == KVC_OK);
                break;
            }
            case 2: {
                const uint64_t bits = in.u64();
                const uint32_t count = in.below(66);
                const kvc_status st = kvc_recorder_record_access_bits(recorder, bits, count);
                FUZZ_REQUIRE(st == (count == 0 || count > 64 ? KVC_ERR_INVALID_ARGUMENT : KVC_OK));
                if (st != KVC_OK) break;
                const uint64_t mask = count == 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
                const uint64_t h = static_cast<uint64_t>(__builtin_popcountll(bits & mask));
                hits = sat(hits, h);
                misses = sat(misses, count - h);
                break;
            }
            case 3: {
                const uint64_t h = amount(in), m = amount(in);
                const kvc_status st = kvc_recorder_record_prefix_lookup(recorder, h, m);
                FUZZ_REQUIRE(st == (h + m < h ? KVC_ERR_INVALID_ARGUMENT : KVC_OK));
                if (st == KVC_OK) hits = sat(hits, h), misses = sat(misses, m);
                break;
            }
            case 4: {
                const uint32_t layer = in.below(5);
                const bool hit = in.byte() % 2;
                const kvc_status st = kvc_recorder_record_layer_access(recorder, layer, hit);
                FUZZ_REQUIRE(st == (layer < layers ? KVC_OK : KVC_ERR_OUT_OF_RANGE));
                if (st == KVC_OK) (hit ? hits : misses) = sat(hit ? hits : misses, 1);
                break;
            }
            case 5: {
                const uint64_t q = amount(in), h = amount(in);
                const kvc_status st = kvc_recorder_record_tokens(recorder, q, h);
                FUZZ_REQUIRE(st == (h <= q ? KVC_OK : KVC_ERR_INVALID_ARGUMENT));
                if (st == KVC_OK) queried = sat(queried, q), found = sat(found, h);
                break;
            }
            case 6: {
                const uint64_t n = amount(in);
                FUZZ_REQUIRE(kvc_recorder_record_reused_tokens(recorder, n) == KVC_OK);
                reused = sat(reused, n);
                break;
            }
            case 7: {
                const uint64_t n = amount(in);
                FUZZ_REQUIRE(kvc_recorder_record_insertions(recorder, n) == KVC_OK);
                insertions = sat(insertions, n);
                break;
            }
            case 8: {
                const uint64_t n = amount(in);
                FUZZ_REQUIRE(kvc_recorder_record_evictions(recorder, n) == KVC_OK);
                evictions = sat(evictions, n);
                FUZZ_REQUIRE(kvc_recorder_record_memory_pressure(recorder) == KVC_OK);
                pressure = sat(pressure, 1);
                break;
            }
            case 9: {
                const int64_t delta = static_cast<int64_t>(amount(in));
                const kvc_status st = kvc_recorder_add_bytes(recorder, delta);
                uint64_t next = 0;
                const bool fits = delta >= 0 ? !__builtin_add_overflow(bytes, uint64_t(delta), &next)
                                             : bytes >= uint64_t(-(delta + 1)) + 1;
                if (delta < 0) next = bytes - (uint64_t(-(delta + 1)) + 1);
                FUZZ_REQUIRE(st == (fits ? KVC_OK : KVC_ERR_INVALID_ARGUMENT));
                if (fits) bytes = next, peak = bytes > peak ? bytes : peak;
                break;
            }
            case 10: {
                bytes = amount(in);
                FUZZ_REQUIRE(kvc_recorder_set_bytes(recorder, bytes) == KVC_OK);
                peak = bytes > peak ? bytes : peak;
                break;
            }
            default: {
                kvc_stats* stats = nullptr;
                FUZZ_REQUIRE(kvc_recorder_snapshot(recorder, &stats) == KVC_OK);
                FUZZ_REQUIRE(kvc_stats_hits(stats) == hits && kvc_stats_misses(stats) == misses);
                FUZZ_REQUIRE(kvc_stats_lookups(stats) == sat(hits, misses));
                FUZZ_REQUIRE(kvc_stats_insertions(stats) == insertions && kvc_stats_evictions(stats) == evictions);
                FUZZ_REQUIRE(kvc_stats_memory_pressure_events(stats) == pressure);
                FUZZ_REQUIRE(kvc_stats_tokens_queried(stats) == queried && kvc_stats_tokens_hit(stats) == found);
                FUZZ_REQUIRE(kvc_stats_tokens_reused(stats) == reused);
                FUZZ_REQUIRE(kvc_stats_bytes_in_use(stats) == bytes && kvc_stats_peak_bytes(stats) == peak);
                FUZZ_REQUIRE(kvc_stats_window_hits(stats) <= kvc_stats_window_lookups(stats));
                export_both(stats);
                kvc_stats_destroy(stats);
                break;
            }
        }
    }
    kvc_recorder_destroy(recorder);
    return 0;
}
