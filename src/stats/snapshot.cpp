#include "stats/snapshot.h"

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

class PrometheusWriter {
public:
    explicit PrometheusWriter(const std::string& component) : component_(component) {}

    void header(const char* name, const char* type, const char* help) {
        out_ += "# HELP kvcore_";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE kvcore_";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    // extra_labels: already formatted `,key="value"` pairs, or "".
    void sample(const char* name, const std::string& extra_labels, const std::string& value) {
        out_ += "kvcore_";
        out_ += name;
        out_ += "{component=\"";
        out_ += component_;
        out_ += '"';
        out_ += extra_labels;
        out_ += "} ";
        out_ += value;
        out_ += '\n';
    }

    void counter(const char* name, const char* help, uint64_t value) {
        header(name, "counter", help);
        sample(name, "", std::to_string(value));
    }

    void gauge(const char* name, const char* help, const std::string& value) {
        header(name, "gauge", help);
        sample(name, "", value);
    }

    std::string take() { return std::move(out_); }

private:
    const std::string& component_;
    std::string out_;
};

}  // namespace

std::string Snapshot::to_prometheus() const {
    PrometheusWriter w(component);
    w.counter("hits_total", "Lookups that found their entry.", hits);
    w.counter("misses_total", "Lookups that did not find their entry.", misses);
    w.counter("insertions_total", "Entries inserted.", insertions);
    w.counter("evictions_total", "Entries evicted.", evictions);
    w.counter("memory_pressure_events_total", "Times the cache evicted or refused work for lack of memory.",
              memory_pressure_events);
    w.gauge("bytes_in_use", "Bytes the cache holds now.", std::to_string(bytes_in_use));
    w.gauge("peak_bytes", "Most bytes the cache has held.", std::to_string(peak_bytes));
    w.counter("tokens_queried_total", "Prompt tokens looked up.", tokens_queried);
    w.counter("tokens_hit_total", "Prompt tokens found in the cache.", tokens_hit);
    w.counter("tokens_reused_total", "Tokens whose KV was reused instead of recomputed.", tokens_reused);

    w.header("hit_rate", "gauge", "Hits / lookups over the window named by the window label (0 with no lookups).");
    w.sample("hit_rate", ",window=\"cumulative\"", format_double(hit_rate(hits, lookups())));
    w.sample("hit_rate", ",window=\"last_" + std::to_string(window_size) + "_accesses\"",
             format_double(hit_rate(window_hits, window_lookups)));
    w.sample("hit_rate", ",window=\"last_" + std::to_string(window_seconds) + "s\"",
             format_double(hit_rate(time_window_hits, time_window_lookups)));
    w.gauge("token_hit_rate", "Tokens hit / tokens queried (0 with no queries).",
            format_double(hit_rate(tokens_hit, tokens_queried)));

    if (!layer_hits.empty()) {
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
            w.header(layer_metrics[m].name, layer_metrics[m].type, layer_metrics[m].help);
            for (size_t layer = 0; layer < layer_hits.size(); ++layer) {
                const std::string label = ",layer=\"" + std::to_string(layer) + "\"";
                const uint64_t h = layer_hits[layer], mi = layer_misses[layer];
                const std::string value = m == 0   ? std::to_string(h)
                                          : m == 1 ? std::to_string(mi)
                                                   : format_double(hit_rate(h, h + mi));
                w.sample(layer_metrics[m].name, label, value);
            }
        }
    }
    return w.take();
}

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
    return j + "}";
}

}  // namespace kvcore::stats
