// SPDX-License-Identifier: Apache-2.0
// `kvcore demo`: a real LRU cache of KV entries under a Zipf workload whose hot set shifts halfway,
// reporting every lookup, insertion and eviction through a kvc_recorder, then the snapshot; then the pool
// demo (pool_commands.cpp); then one Prometheus scrape of both components.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "kvcore/kvcore.h"
#include "lru_cache.h"

namespace kvcore::cli {
namespace {

constexpr uint64_t kBytesPerEntry = 16 * 1024;  // a KV block of a small model, for the bytes gauge

bool check(kvc_status status, const char* what) {
    if (status == KVC_OK) return true;
    std::fprintf(stderr, "kvcore demo: %s failed: %s: %s\n", what, kvc_status_string(status), kvc_last_error_message());
    return false;
}

// Zipf(s=1.0) over [0, n): inverse-CDF sampling from a precomputed table.
class Zipf {
public:
    Zipf(uint32_t n, double s) : cdf_(n) {
        double sum = 0;
        for (uint32_t i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / std::pow(i + 1.0, s));
        for (double& c : cdf_) c /= sum;
    }
    uint32_t operator()(std::mt19937_64& rng) {
        const double u = std::uniform_real_distribution<double>(0, 1)(rng);
        return static_cast<uint32_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
    }

private:
    std::vector<double> cdf_;
};

void print_row(const char* name, const std::string& value) { std::printf("  %-28s %s\n", name, value.c_str()); }
std::string pct(double rate) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f %%", rate * 100.0);
    return b;
}

int run_lru_demo(const DemoOptions& o, kvc_exposition* scrape) {
    kvc_recorder_options* options = nullptr;
    kvc_recorder* recorder = nullptr;
    kvc_stats* stats = nullptr;
    int rc = 1;
    if (!check(kvc_recorder_options_create(&options), "options") ||
        !check(kvc_recorder_options_set_component(options, "demo_lru"), "set_component") ||
        !check(kvc_recorder_options_set_layers(options, o.layers), "set_layers") ||
        !check(kvc_recorder_create(options, &recorder), "recorder")) {
        kvc_recorder_options_destroy(options);
        return 1;
    }
    kvc_recorder_options_destroy(options);

    std::printf("kvcore %s demo: an LRU cache of %u entries, %u keys (Zipf s=1), %llu lookups, %u layers\n",
                kvc_version_string(), o.capacity, o.keys, static_cast<unsigned long long>(o.accesses), o.layers);
    std::printf("halfway through, the hot keys move: the windowed hit rate shows the drop, the cumulative one hides it\n\n");

    std::mt19937_64 rng(o.seed);
    Zipf zipf(o.keys, 1.0);
    LruCache cache(o.capacity);
    const uint64_t shift_at = o.accesses / 2;
    for (uint64_t i = 0; i < o.accesses; ++i) {
        uint64_t key = zipf(rng);
        if (i >= shift_at) key += o.keys;  // a new hot set: every old entry goes cold
        bool evicted = false;
        const bool hit = cache.access(key, &evicted);
        const kvc_status st = o.layers > 0
                                  ? kvc_recorder_record_layer_access(recorder, static_cast<uint32_t>(key % o.layers), hit)
                                  : kvc_recorder_record_access(recorder, hit);
        if (!check(st, "record")) goto done;
        if (evicted) {  // the cache evicts before it inserts
            (void)kvc_recorder_record_evictions(recorder, 1);
            (void)kvc_recorder_record_memory_pressure(recorder);
            (void)kvc_recorder_add_bytes(recorder, -static_cast<int64_t>(kBytesPerEntry));
        }
        if (!hit) {
            (void)kvc_recorder_record_insertions(recorder, 1);
            (void)kvc_recorder_add_bytes(recorder, static_cast<int64_t>(kBytesPerEntry));
        }
        // Treat each lookup as a 16-token block of a prompt.
        (void)kvc_recorder_record_tokens(recorder, 16, hit ? 16 : 0);
        if (hit) (void)kvc_recorder_record_reused_tokens(recorder, 16);
        if (i + 1 == shift_at || i + 1 == shift_at + o.capacity / 4 || i + 1 == o.accesses) {
            kvc_stats* s = nullptr;
            if (!check(kvc_recorder_snapshot(recorder, &s), "snapshot")) goto done;
            std::printf("  after %9llu lookups: cumulative %s, last %u lookups %s\n",
                        static_cast<unsigned long long>(i + 1), pct(kvc_stats_hit_rate(s)).c_str(),
                        kvc_stats_window_size(s), pct(kvc_stats_window_hit_rate(s)).c_str());
            kvc_stats_destroy(s);
        }
    }

    if (!check(kvc_recorder_snapshot(recorder, &stats), "snapshot")) goto done;
    std::printf("\nsnapshot of component \"%s\"\n", kvc_stats_component(stats));
    print_row("lookups", std::to_string(kvc_stats_lookups(stats)));
    print_row("hits / misses", std::to_string(kvc_stats_hits(stats)) + " / " + std::to_string(kvc_stats_misses(stats)));
    print_row("hit rate (cumulative)", pct(kvc_stats_hit_rate(stats)));
    print_row(("hit rate (last " + std::to_string(kvc_stats_window_size(stats)) + ")").c_str(),
              pct(kvc_stats_window_hit_rate(stats)));
    print_row(("hit rate (last " + std::to_string(kvc_stats_window_seconds(stats)) + " s)").c_str(),
              pct(kvc_stats_time_window_hit_rate(stats)));
    print_row("insertions", std::to_string(kvc_stats_insertions(stats)));
    print_row("evictions", std::to_string(kvc_stats_evictions(stats)));
    print_row("bytes in use / peak", std::to_string(kvc_stats_bytes_in_use(stats)) + " / " +
                                         std::to_string(kvc_stats_peak_bytes(stats)));
    print_row("tokens queried / hit", std::to_string(kvc_stats_tokens_queried(stats)) + " / " +
                                          std::to_string(kvc_stats_tokens_hit(stats)));
    print_row("tokens reused", std::to_string(kvc_stats_tokens_reused(stats)));
    for (uint32_t layer = 0; layer < kvc_stats_layers(stats); ++layer) {
        double rate = 0;
        if (!check(kvc_stats_layer_hit_rate(stats, layer, &rate), "layer_hit_rate")) goto done;
        print_row(("hit rate, layer " + std::to_string(layer)).c_str(), pct(rate));
    }
    if (!check(kvc_exposition_add(scrape, stats), "exposition")) goto done;
    rc = 0;
done:
    kvc_stats_destroy(stats);
    kvc_recorder_destroy(recorder);
    return rc;
}

bool print_scrape(const kvc_exposition* scrape) {
    size_t length = 0;
    if (!check(kvc_exposition_to_prometheus(scrape, nullptr, 0, &length), "to_prometheus")) return false;
    std::string text(length + 1, '\0');
    if (!check(kvc_exposition_to_prometheus(scrape, text.data(), text.size(), nullptr), "to_prometheus")) return false;
    std::printf("\nPrometheus text exposition, one scrape of both components:\n%s", text.c_str());
    return true;
}

}  // namespace

int run_demo(const DemoOptions& o) {
    kvc_exposition* scrape = nullptr;
    if (!check(kvc_exposition_create(&scrape), "exposition")) return 1;
    int rc = run_lru_demo(o, scrape);
    if (rc == 0) rc = run_pool_demo(scrape);
    if (rc == 0 && o.prometheus && !print_scrape(scrape)) rc = 1;
    kvc_exposition_destroy(scrape);
    return rc;
}

}  // namespace kvcore::cli
