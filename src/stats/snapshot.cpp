// SPDX-License-Identifier: Apache-2.0
#include "stats/snapshot.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace kvcore::stats {
namespace {

// Formats a double so that Prometheus and JSON both parse it and no precision is lost.
std::string format_double(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// Writes metric families one at a time: a family's # HELP and # TYPE once, then the samples of every
// snapshot, as the exposition format requires when several components share the family.
class PrometheusWriter {
public:
    explicit PrometheusWriter(std::span<const Snapshot> snapshots) : snapshots_(snapshots) {}

    // samples(snapshot) writes that snapshot's samples of the family through sample().
    template <class Samples>
    void family(const char* name, const char* type, const char* help, Samples&& samples) {
        out_ += "# HELP kvcore_";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE kvcore_";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
        for (const Snapshot& s : snapshots_) {
            component_ = &s.component;
            samples(s);
        }
    }

    // extra_labels: already formatted `,key="value"` pairs, or "".
    void sample(const char* name, const std::string& extra_labels, const std::string& value) {
        out_ += "kvcore_";
        out_ += name;
        out_ += "{component=\"";
        out_ += *component_;
        out_ += '"';
        out_ += extra_labels;
        out_ += "} ";
        out_ += value;
        out_ += '\n';
    }

    // A family of one integer sample per snapshot.
    void count(const char* name, const char* type, const char* help, uint64_t Snapshot::*field) {
        family(name, type, help, [&](const Snapshot& s) { sample(name, "", std::to_string(s.*field)); });
    }

    std::string take() { return std::move(out_); }

private:
    std::span<const Snapshot> snapshots_;
    const std::string* component_ = nullptr;
    std::string out_;
};

}  // namespace

std::string to_prometheus(std::span<const Snapshot> snapshots) {
    PrometheusWriter w(snapshots);
    w.count("hits_total", "counter", "Lookups that found their entry.", &Snapshot::hits);
    w.count("misses_total", "counter", "Lookups that did not find their entry.", &Snapshot::misses);
    w.count("insertions_total", "counter", "Entries inserted.", &Snapshot::insertions);
    w.count("evictions_total", "counter", "Entries evicted.", &Snapshot::evictions);
    w.count("memory_pressure_events_total", "counter", "Requests refused because memory was short even after eviction (evictions are counted apart).",
            &Snapshot::memory_pressure_events);
    w.count("bytes_in_use", "gauge", "Bytes the cache holds now.", &Snapshot::bytes_in_use);
    w.count("peak_bytes", "gauge", "Most bytes the cache has held.", &Snapshot::peak_bytes);
    w.count("tokens_queried_total", "counter", "Prompt tokens looked up.", &Snapshot::tokens_queried);
    w.count("tokens_hit_total", "counter", "Prompt tokens found in the cache.", &Snapshot::tokens_hit);
    w.count("tokens_reused_total", "counter", "Tokens whose KV was reused instead of recomputed.",
            &Snapshot::tokens_reused);
    // Families of caches that load values, when any snapshot is one; only those snapshots add samples.
    if (std::any_of(snapshots.begin(), snapshots.end(), [](const Snapshot& s) { return s.loads_values; })) {
        const struct {
            const char* name;
            const char* help;
            uint64_t Snapshot::*field;
        } loading_metrics[] = {
            {"negative_hits_total", "Lookups that found a cached failure (neither hits nor misses).",
             &Snapshot::negative_hits},
            {"loads_total", "Values loaded from the backend on a miss.", &Snapshot::loads},
            {"load_failures_total", "Loads that failed (cached as failures).", &Snapshot::load_failures},
            {"expirations_total", "Entries removed because their time to live ran out.", &Snapshot::expirations},
        };
        for (const auto& m : loading_metrics) {
            w.family(m.name, "counter", m.help, [&](const Snapshot& s) {
                if (s.loads_values) w.sample(m.name, "", std::to_string(s.*(m.field)));
            });
        }
    }

    w.family("hit_rate", "gauge", "Hits / lookups over the window named by the window label (0 with no lookups).",
             [&](const Snapshot& s) {
                 w.sample("hit_rate", ",window=\"cumulative\"", format_double(hit_rate(s.hits, s.lookups())));
                 w.sample("hit_rate", ",window=\"last_" + std::to_string(s.window_size) + "_accesses\"",
                          format_double(hit_rate(s.window_hits, s.window_lookups)));
                 w.sample("hit_rate", ",window=\"last_" + std::to_string(s.window_seconds) + "s\"",
                          format_double(hit_rate(s.time_window_hits, s.time_window_lookups)));
             });
    w.family("token_hit_rate", "gauge", "Tokens hit / tokens queried (0 with no queries).", [&](const Snapshot& s) {
        w.sample("token_hit_rate", "", format_double(hit_rate(s.tokens_hit, s.tokens_queried)));
    });

    // Per-layer families, when any snapshot counts layers; a snapshot without layers adds no samples.
    if (std::any_of(snapshots.begin(), snapshots.end(), [](const Snapshot& s) { return !s.layer_hits.empty(); })) {
        const struct {
            const char* name;
            const char* type;
            const char* help;
        } layer_metrics[] = {
            {"layer_hits_total", "counter", "Lookups that found their entry, per layer."},
            {"layer_misses_total", "counter", "Lookups that did not find their entry, per layer."},
            {"layer_hit_rate", "gauge", "Cumulative hit rate per layer (0 with no lookups)."},
        };
        for (int m = 0; m < 3; ++m) {
            w.family(layer_metrics[m].name, layer_metrics[m].type, layer_metrics[m].help, [&](const Snapshot& s) {
                for (size_t layer = 0; layer < s.layer_hits.size(); ++layer) {
                    const std::string label = ",layer=\"" + std::to_string(layer) + "\"";
                    const uint64_t h = s.layer_hits[layer], mi = s.layer_misses[layer];
                    const std::string value = m == 0   ? std::to_string(h)
                                              : m == 1 ? std::to_string(mi)
                                                       : format_double(hit_rate(h, h + mi));
                    w.sample(layer_metrics[m].name, label, value);
                }
            });
        }
    }
    // Components' own metrics: one family per name, in the order first seen, sampled by the snapshots
    // that have it.
    std::vector<const Metric*> families;
    for (const Snapshot& s : snapshots) {
        for (const Metric& m : s.metrics) {
            if (std::none_of(families.begin(), families.end(), [&](const Metric* f) { return f->name == m.name; })) {
                families.push_back(&m);
            }
        }
    }
    for (const Metric* f : families) {
        w.family(f->name.c_str(), f->counter ? "counter" : "gauge", f->help.c_str(), [&](const Snapshot& s) {
            if (const Metric* m = s.find_metric(f->name)) w.sample(f->name.c_str(), "", format_double(m->value));
        });
    }
    return w.take();
}

std::string Snapshot::to_prometheus() const { return stats::to_prometheus(std::span<const Snapshot>(this, 1)); }

std::string Snapshot::to_json() const {
    std::string j = "{\"component\":\"" + component + "\"";
    auto field = [&j](const char* name, const std::string& value) {
        j += ",\"";
        j += name;
        j += "\":";
        j += value;
    };
    field("hits", std::to_string(hits));
    field("misses", std::to_string(misses));
    field("lookups", std::to_string(lookups()));
    field("hit_rate", format_double(hit_rate(hits, lookups())));
    field("insertions", std::to_string(insertions));
    field("evictions", std::to_string(evictions));
    field("memory_pressure_events", std::to_string(memory_pressure_events));
    field("bytes_in_use", std::to_string(bytes_in_use));
    field("peak_bytes", std::to_string(peak_bytes));
    field("tokens_queried", std::to_string(tokens_queried));
    field("tokens_hit", std::to_string(tokens_hit));
    field("tokens_reused", std::to_string(tokens_reused));
    field("token_hit_rate", format_double(hit_rate(tokens_hit, tokens_queried)));
    field("negative_hits", std::to_string(negative_hits));
    field("loads", std::to_string(loads));
    field("load_failures", std::to_string(load_failures));
    field("expirations", std::to_string(expirations));
    field("window", "{\"accesses\":" + std::to_string(window_size) + ",\"lookups\":" + std::to_string(window_lookups) +
                        ",\"hits\":" + std::to_string(window_hits) +
                        ",\"hit_rate\":" + format_double(hit_rate(window_hits, window_lookups)) + "}");
    field("time_window", "{\"seconds\":" + std::to_string(window_seconds) +
                             ",\"lookups\":" + std::to_string(time_window_lookups) +
                             ",\"hits\":" + std::to_string(time_window_hits) +
                             ",\"hit_rate\":" + format_double(hit_rate(time_window_hits, time_window_lookups)) + "}");
    std::string layers = "[";
    for (size_t i = 0; i < layer_hits.size(); ++i) {
        if (i) layers += ',';
        const uint64_t h = layer_hits[i], m = layer_misses[i];
        layers += "{\"layer\":" + std::to_string(i) + ",\"hits\":" + std::to_string(h) + ",\"misses\":" +
                  std::to_string(m) + ",\"hit_rate\":" + format_double(hit_rate(h, h + m)) + "}";
    }
    field("layers", layers + "]");
    if (!metrics.empty()) {
        std::string named = "{";
        for (const Metric& m : metrics) {
            if (named.size() > 1) named += ',';
            named += "\"" + m.name + "\":" + format_double(m.value);
        }
        field("metrics", named + "}");
    }
    return j + "}";
}

}  // namespace kvcore::stats
