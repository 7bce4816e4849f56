/* SPDX-License-Identifier: Apache-2.0 */
// An immutable copy of a recorder's counters, and its Prometheus / JSON exports.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kvcore::stats {

// Every count kvcore keeps stops at UINT64_MAX rather than wrapping to a small number.
[[nodiscard]] constexpr uint64_t saturating_add(uint64_t a, uint64_t b) noexcept {
    uint64_t sum;
    return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

[[nodiscard]] inline double hit_rate(uint64_t hits, uint64_t lookups) noexcept {
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
}

// A named figure that only some components have (the scheduler's batch size, wait, queue depth): exported
// as kvcore_<name>{component=...} after the shared families, and in JSON under "metrics".
struct Metric {
    std::string name;  // [a-z0-9_], unique within a snapshot
    bool counter = false;  // a cumulative count (Prometheus counter) or a gauge
    std::string help;
    double value = 0;
};

struct Snapshot {
    std::string component;
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t insertions = 0;
    uint64_t evictions = 0;
    uint64_t memory_pressure_events = 0;
    uint64_t bytes_in_use = 0;
    uint64_t peak_bytes = 0;
    uint64_t tokens_queried = 0;
    uint64_t tokens_hit = 0;
    uint64_t tokens_reused = 0;
    // Caches that load values (the TTL cache); 0 elsewhere. Exported to Prometheus when loads_values.
    bool loads_values = false;
    uint64_t negative_hits = 0;  // lookups that found a cached failure: neither hits nor misses
    uint64_t loads = 0;
    uint64_t load_failures = 0;
    uint64_t expirations = 0;    // entries removed because their time to live ran out

    uint32_t window_size = 0;  // accesses the count window holds (per recording thread)
    uint64_t window_lookups = 0;
    uint64_t window_hits = 0;

    uint32_t window_seconds = 0;
    uint64_t time_window_lookups = 0;
    uint64_t time_window_hits = 0;

    std::vector<uint64_t> layer_hits;  // one entry per configured layer
    std::vector<uint64_t> layer_misses;

    std::vector<Metric> metrics;  // the component's own figures; empty for the caches

    // The metric named `name`, or null.
    [[nodiscard]] const Metric* find_metric(const std::string& name) const noexcept {
        for (const Metric& m : metrics) {
            if (m.name == name) return &m;
        }
        return nullptr;
    }

    [[nodiscard]] uint64_t lookups() const noexcept { return saturating_add(hits, misses); }

    [[nodiscard]] std::string to_prometheus() const;
    [[nodiscard]] std::string to_json() const;
};

// Several snapshots in one Prometheus text: each family's # HELP and # TYPE once, then every snapshot's
// samples. Component names should differ, or two snapshots write the same series.
[[nodiscard]] std::string to_prometheus(std::span<const Snapshot> snapshots);

}  // namespace kvcore::stats
