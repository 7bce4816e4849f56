// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/stats.h: argument checks, handle casts, exception translation. No logic.
#include "kvcore/stats.h"

#include <cstring>
#include <string>
#include <vector>

#include "capi/guard.h"
#include "capi/stats_handles.h"
#include "stats/recorder.h"

struct kvc_recorder_options {
    kvcore::stats::RecorderConfig config;
};

struct kvc_recorder {
    explicit kvc_recorder(kvcore::stats::RecorderConfig config) : impl(std::move(config)) {}
    kvcore::stats::Recorder impl;
};

struct kvc_exposition {
    std::vector<kvcore::stats::Snapshot> snapshots;
};


using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::make_handle;
using kvcore::capi::reject;

namespace {

// Writes text to the caller's buffer (zstd style); failures throw, so guard() reports them like any other.
void copy_text(const std::string& text, char* buf, size_t capacity, size_t* length) {
    if (length != nullptr) *length = text.size();
    if (kvcore::capi::is_size_query(buf, capacity)) return;
    if (capacity < text.size() + 1) {
        kvcore::fail(KVC_ERR_BUFFER_TOO_SMALL, "buffer holds " + std::to_string(capacity) +
                                                   " bytes, the text needs " + std::to_string(text.size() + 1) +
                                                   " with its NUL");
    }
    std::memcpy(buf, text.c_str(), text.size() + 1);
}

double rate(uint64_t hits, uint64_t lookups) { return kvcore::stats::hit_rate(hits, lookups); }

}  // namespace

extern "C" {

kvc_status kvc_recorder_options_create(kvc_recorder_options** out) {
    return make_handle(out, [&] { return new kvc_recorder_options(); });
}

void kvc_recorder_options_destroy(kvc_recorder_options* options) { delete options; }

kvc_status kvc_recorder_options_set_component(kvc_recorder_options* options, const char* component) {
    KVC_REQUIRE_HANDLE(component, "component");
    return edit_validated(options, [&](kvcore::stats::RecorderConfig& c) { c.component = component; });
}

kvc_status kvc_recorder_options_set_window_accesses(kvc_recorder_options* options, uint32_t accesses) {
    return edit_validated(options, [&](kvcore::stats::RecorderConfig& c) { c.window_accesses = accesses; });
}
kvc_status kvc_recorder_options_set_window_seconds(kvc_recorder_options* options, uint32_t seconds) {
    return edit_validated(options, [&](kvcore::stats::RecorderConfig& c) { c.window_seconds = seconds; });
}
kvc_status kvc_recorder_options_set_layers(kvc_recorder_options* options, uint32_t layers) {
    return edit_validated(options, [&](kvcore::stats::RecorderConfig& c) { c.layers = layers; });
}

kvc_status kvc_recorder_create(const kvc_recorder_options* options, kvc_recorder** out) {
    return make_handle(out, [&] {
        return new kvc_recorder(options != nullptr ? options->config : kvcore::stats::RecorderConfig{});
    });
}

void kvc_recorder_destroy(kvc_recorder* recorder) { delete recorder; }

kvc_status kvc_recorder_record_access(kvc_recorder* recorder, uint32_t hit) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    recorder->impl.record_access(hit != 0);
    return KVC_OK;
}

kvc_status kvc_recorder_record_accesses(kvc_recorder* recorder, const uint8_t* outcomes, size_t n) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    KVC_REQUIRE_ARRAY(outcomes, n, "outcomes");
    recorder->impl.record_accesses(outcomes, n);
    return KVC_OK;
}

kvc_status kvc_recorder_record_access_bits(kvc_recorder* recorder, uint64_t hits, uint32_t count) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    if (count == 0 || count > 64) {
        return reject(KVC_ERR_INVALID_ARGUMENT, ("count must be 1..64, got " + std::to_string(count)).c_str());
    }
    recorder->impl.record_access_bits(hits, count);
    return KVC_OK;
}

kvc_status kvc_recorder_record_prefix_lookup(kvc_recorder* recorder, uint64_t hits, uint64_t misses) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    if (hits > UINT64_MAX - misses) {
        return reject(KVC_ERR_INVALID_ARGUMENT, ("hits + misses overflows: " + std::to_string(hits) + " + " +
                                                 std::to_string(misses))
                                                    .c_str());
    }
    recorder->impl.record_prefix_lookup(hits, misses);
    return KVC_OK;
}

kvc_status kvc_recorder_record_layer_access(kvc_recorder* recorder, uint32_t layer, uint32_t hit) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    const uint32_t layers = recorder->impl.config().layers;
    if (layer >= layers) {
        return reject(KVC_ERR_OUT_OF_RANGE, ("layer " + std::to_string(layer) + " is out of range: the recorder has " +
                                             std::to_string(layers) + " layers")
                                                .c_str());
    }
    recorder->impl.record_layer_access(layer, hit != 0);
    return KVC_OK;
}

kvc_status kvc_recorder_record_tokens(kvc_recorder* recorder, uint64_t queried, uint64_t hit) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    if (hit > queried) {
        return reject(KVC_ERR_INVALID_ARGUMENT, ("tokens hit (" + std::to_string(hit) + ") exceed tokens queried (" +
                                                 std::to_string(queried) + ")")
                                                    .c_str());
    }
    recorder->impl.record_tokens(queried, hit);
    return KVC_OK;
}

kvc_status kvc_recorder_record_reused_tokens(kvc_recorder* recorder, uint64_t tokens) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    recorder->impl.record_reused_tokens(tokens);
    return KVC_OK;
}

kvc_status kvc_recorder_record_insertions(kvc_recorder* recorder, uint64_t count) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    recorder->impl.record_insertions(count);
    return KVC_OK;
}

kvc_status kvc_recorder_record_evictions(kvc_recorder* recorder, uint64_t count) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    recorder->impl.record_evictions(count);
    return KVC_OK;
}

kvc_status kvc_recorder_record_memory_pressure(kvc_recorder* recorder) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    recorder->impl.record_memory_pressure();
    return KVC_OK;
}

kvc_status kvc_recorder_add_bytes(kvc_recorder* recorder, int64_t delta) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    if (!recorder->impl.add_bytes(delta)) {
        return reject(KVC_ERR_INVALID_ARGUMENT,
                      ("bytes in use would " + std::string(delta < 0 ? "drop below zero" : "pass UINT64_MAX") +
                       " (delta " + std::to_string(delta) + ")").c_str());
    }
    return KVC_OK;
}

kvc_status kvc_recorder_set_bytes(kvc_recorder* recorder, uint64_t bytes) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    recorder->impl.set_bytes(bytes);
    return KVC_OK;
}

kvc_status kvc_recorder_snapshot(const kvc_recorder* recorder, kvc_stats** out) {
    KVC_REQUIRE_HANDLE(recorder, "recorder");
    return make_handle(out, [&] { return new kvc_stats{recorder->impl.snapshot()}; });
}

void kvc_stats_destroy(kvc_stats* stats) { delete stats; }

const char* kvc_stats_component(const kvc_stats* s) { return s ? s->snapshot.component.c_str() : ""; }

#define KVC_STATS_GETTER(type, name, expr) \
    type kvc_stats_##name(const kvc_stats* s) { return s ? (expr) : type{}; }

KVC_STATS_GETTER(uint64_t, hits, s->snapshot.hits)
KVC_STATS_GETTER(uint64_t, misses, s->snapshot.misses)
KVC_STATS_GETTER(uint64_t, lookups, s->snapshot.lookups())
KVC_STATS_GETTER(double, hit_rate, rate(s->snapshot.hits, s->snapshot.lookups()))
KVC_STATS_GETTER(uint64_t, insertions, s->snapshot.insertions)
KVC_STATS_GETTER(uint64_t, evictions, s->snapshot.evictions)
KVC_STATS_GETTER(uint64_t, memory_pressure_events, s->snapshot.memory_pressure_events)
KVC_STATS_GETTER(uint64_t, bytes_in_use, s->snapshot.bytes_in_use)
KVC_STATS_GETTER(uint64_t, peak_bytes, s->snapshot.peak_bytes)
KVC_STATS_GETTER(uint64_t, tokens_queried, s->snapshot.tokens_queried)
KVC_STATS_GETTER(uint64_t, tokens_hit, s->snapshot.tokens_hit)
KVC_STATS_GETTER(uint64_t, tokens_reused, s->snapshot.tokens_reused)
KVC_STATS_GETTER(uint64_t, negative_hits, s->snapshot.negative_hits)
KVC_STATS_GETTER(uint64_t, loads, s->snapshot.loads)
KVC_STATS_GETTER(uint64_t, load_failures, s->snapshot.load_failures)
KVC_STATS_GETTER(uint64_t, expirations, s->snapshot.expirations)
KVC_STATS_GETTER(double, token_hit_rate, rate(s->snapshot.tokens_hit, s->snapshot.tokens_queried))
KVC_STATS_GETTER(uint32_t, window_size, s->snapshot.window_size)
KVC_STATS_GETTER(uint64_t, window_lookups, s->snapshot.window_lookups)
KVC_STATS_GETTER(uint64_t, window_hits, s->snapshot.window_hits)
KVC_STATS_GETTER(double, window_hit_rate, rate(s->snapshot.window_hits, s->snapshot.window_lookups))
KVC_STATS_GETTER(uint32_t, window_seconds, s->snapshot.window_seconds)
KVC_STATS_GETTER(uint64_t, time_window_lookups, s->snapshot.time_window_lookups)
KVC_STATS_GETTER(uint64_t, time_window_hits, s->snapshot.time_window_hits)
KVC_STATS_GETTER(double, time_window_hit_rate, rate(s->snapshot.time_window_hits, s->snapshot.time_window_lookups))
KVC_STATS_GETTER(uint32_t, layers, static_cast<uint32_t>(s->snapshot.layer_hits.size()))
#undef KVC_STATS_GETTER

kvc_status kvc_stats_layer_counts(const kvc_stats* s, uint32_t layer, uint64_t* hits, uint64_t* misses) {
    KVC_REQUIRE_HANDLE(s, "stats");
    const size_t layers = s->snapshot.layer_hits.size();
    if (layer >= layers) {
        return reject(KVC_ERR_OUT_OF_RANGE, ("layer " + std::to_string(layer) + " is out of range: the snapshot has " +
                                             std::to_string(layers) + " layers")
                                                .c_str());
    }
    if (hits != nullptr) *hits = s->snapshot.layer_hits[layer];
    if (misses != nullptr) *misses = s->snapshot.layer_misses[layer];
    return KVC_OK;
}

kvc_status kvc_stats_layer_hit_rate(const kvc_stats* s, uint32_t layer, double* out) {
    KVC_REQUIRE_HANDLE(out, "out");
    uint64_t hits = 0, misses = 0;
    const kvc_status st = kvc_stats_layer_counts(s, layer, &hits, &misses);
    if (st == KVC_OK) *out = rate(hits, hits + misses);
    return st;
}

uint32_t kvc_stats_metric_count(const kvc_stats* s) { return s ? static_cast<uint32_t>(s->snapshot.metrics.size()) : 0; }

const char* kvc_stats_metric_name(const kvc_stats* s, uint32_t i) {
    return s != nullptr && i < s->snapshot.metrics.size() ? s->snapshot.metrics[i].name.c_str() : "";
}

kvc_status kvc_stats_metric(const kvc_stats* s, const char* name, double* value) {
    KVC_REQUIRE_HANDLE(s, "stats");
    KVC_REQUIRE_HANDLE(name, "name");
    KVC_REQUIRE_HANDLE(value, "value");
    const kvcore::stats::Metric* m = s->snapshot.find_metric(name);
    if (m == nullptr) {
        return reject(KVC_ERR_NOT_FOUND, ("no metric \"" + std::string(name) + "\" in component \"" +
                                          s->snapshot.component + "\"").c_str());
    }
    *value = m->value;
    return KVC_OK;
}

kvc_status kvc_stats_to_prometheus(const kvc_stats* s, char* buf, size_t capacity, size_t* length) {
    KVC_REQUIRE_HANDLE(s, "stats");
    return guard([&] { copy_text(s->snapshot.to_prometheus(), buf, capacity, length); });
}

kvc_status kvc_stats_to_json(const kvc_stats* s, char* buf, size_t capacity, size_t* length) {
    KVC_REQUIRE_HANDLE(s, "stats");
    return guard([&] { copy_text(s->snapshot.to_json(), buf, capacity, length); });
}

kvc_status kvc_exposition_create(kvc_exposition** out) {
    return make_handle(out, [&] { return new kvc_exposition; });
}

void kvc_exposition_destroy(kvc_exposition* exposition) { delete exposition; }

kvc_status kvc_exposition_add(kvc_exposition* exposition, const kvc_stats* s) {
    KVC_REQUIRE_HANDLE(exposition, "exposition");
    KVC_REQUIRE_HANDLE(s, "stats");
    for (const auto& in : exposition->snapshots) {
        if (in.component == s->snapshot.component) {
            return reject(KVC_ERR_INVALID_ARGUMENT,
                          ("component \"" + in.component + "\" is already in this exposition").c_str());
        }
    }
    return guard([&] { exposition->snapshots.push_back(s->snapshot); });
}

kvc_status kvc_exposition_to_prometheus(const kvc_exposition* exposition, char* buf, size_t capacity,
                                        size_t* length) {
    KVC_REQUIRE_HANDLE(exposition, "exposition");
    return guard([&] { copy_text(kvcore::stats::to_prometheus(exposition->snapshots), buf, capacity, length); });
}

}  // extern "C"
