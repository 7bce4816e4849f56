// SPDX-License-Identifier: Apache-2.0
// `kvcore simulate`: a Mooncake trace through a pool, read one line at a time, every record checked first.
// --mode engine (the default) serves it with the scheduler as a serving system would (requests overlap,
// decode, leave); --mode replay admits and frees each request alone, memory bounded by the longest request.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <optional>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "capi/eviction.h"
#include "commands.h"
#include "common/error.h"
#include "common/eviction/policy.h"
#include "engine.h"
#include "input.h"
#include "kvcore/kvcore.h"
#include "pool/replay_model.h"
#include "trace_record.h"

namespace kvcore::cli {

namespace {

using nlohmann::json;

// A one-line progress report on stderr, rewritten in place at most twice a second; only on a terminal,
// so logs and pipes never see it.
class Progress {
public:
    explicit Progress(const LineReader& reader) : reader_(reader), enabled_(isatty(STDERR_FILENO) == 1) {}
    ~Progress() { clear(); }
    // Before any other message, so it does not land after the report on the same line.
    void clear() {
        if (shown_) std::fprintf(stderr, "\r\033[K");
        shown_ = false;
    }
    void update(uint64_t requests) {
        if (!enabled_ || (requests & 255) != 0) return;
        const auto now = std::chrono::steady_clock::now();
        if (now < next_) return;
        next_ = now + std::chrono::milliseconds(500);
        if (reader_.size() > 0) {
            std::fprintf(stderr, "\r\033[Kkvcore simulate: %" PRIu64 " requests, %.0f %% of %s", requests,
                         100.0 * static_cast<double>(reader_.bytes_read()) / static_cast<double>(reader_.size()),
                         reader_.name().c_str());
        } else {
            std::fprintf(stderr, "\r\033[Kkvcore simulate: %" PRIu64 " requests, %.1f MB read", requests,
                         static_cast<double>(reader_.bytes_read()) / 1e6);
        }
        shown_ = true;
    }

private:
    const LineReader& reader_;
    const bool enabled_;
    bool shown_ = false;
    std::chrono::steady_clock::time_point next_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
};

struct Totals {
    uint64_t requests = 0, too_long = 0, prompt_tokens = 0, blocks_touched = 0;
    double seconds = 0;       // the whole run, reading and checking the trace included
    double pool_seconds = 0;  // inside the pool's calls: what an embedder's scheduler would pay
};

// One request through the pool; it finishes at once, so its blocks go back to the free lists and stay
// hit-able. Only a prompt longer than the whole pool finds no room: counted and reported, not admitted.
// A failed pool call's status, with *failed naming the call.
kvc_status replay(kvc_pool* pool, const std::vector<int32_t>& tokens, uint32_t block_size, Totals& t,
                  const char** failed) {
    const auto start = std::chrono::steady_clock::now();
    kvc_sequence_id seq = 0;
    kvc_status status = kvc_pool_sequence_create(pool, tokens.data(), tokens.size(), nullptr, &seq);
    if (status == KVC_ERR_CAPACITY) {
        ++t.too_long;
    } else {
        *failed = "sequence_create";
        if (status != KVC_OK) return status;
        status = kvc_pool_allocate(pool, seq, tokens.size(), nullptr);
        if (status == KVC_ERR_CAPACITY) {
            ++t.too_long;
        } else if (status == KVC_OK) {
            t.blocks_touched += (tokens.size() + block_size - 1) / block_size;
        } else {
            *failed = "allocate";
            return status;
        }
        *failed = "sequence_free";
        if (status = kvc_pool_sequence_free(pool, seq); status != KVC_OK) return status;
    }
    t.pool_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return KVC_OK;
}

uint64_t max_rss_bytes() {
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

std::string percent(double rate) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f %%", rate * 100);
    return b;
}

// A snapshot as JSON (null, with the reason on stderr, when the call fails).
json stats_json(const kvc_stats* stats) {
    size_t length = 0;
    std::string text;
    if (!ok(kvc_stats_to_json(stats, nullptr, 0, &length), "simulate", "stats_to_json")) return json();
    text.resize(length + 1);
    if (!ok(kvc_stats_to_json(stats, text.data(), text.size(), nullptr), "simulate", "stats_to_json")) return json();
    text.resize(length);
    return json::parse(text);
}

// The offline optimum's summary: the figures the pool's summary gives for the same replay.
int print_optimum(const SimulateOptions& o, const std::string& trace_name, const pool::ReplayTrace::Result& r,
                  double seconds) {
    const double block_rate = r.blocks_queried > 0 ? double(r.blocks_hit) / double(r.blocks_queried) : 0.0;
    const double token_rate = r.tokens_queried > 0 ? double(r.tokens_hit) / double(r.tokens_queried) : 0.0;
    if (o.json) {
        const json out = {
            {"trace", trace_name},
            {"pool", {{"blocks", o.blocks}, {"block_size", o.block_size}, {"hash", o.algo}, {"policy", "opt"}}},
            {"requests", r.requests},
            {"requests_longer_than_pool", r.too_long},
            {"prompt_tokens", r.tokens_queried},
            {"token_hit_rate", token_rate},
            {"block_hit_rate", block_rate},
            {"blocks_hit", r.blocks_hit},
            {"blocks_missed", r.blocks_queried - r.blocks_hit},
            {"evictions", r.evictions},
            {"seconds", seconds},
            {"max_rss_bytes", max_rss_bytes()},
        };
        std::printf("%s\n", out.dump(2).c_str());
        return kExitOk;
    }
    auto row = [](const char* name, const std::string& v) { std::printf("  %-30s %s\n", name, v.c_str()); };
    std::printf("kvcore simulate: %s through %u blocks of %u tokens (%s, opt: the offline optimum, Belady)\n",
                trace_name.c_str(), o.blocks, o.block_size, o.algo.c_str());
    row("requests", std::to_string(r.requests));
    if (r.too_long > 0) row("requests longer than the pool", std::to_string(r.too_long) + " (counted, not admitted)");
    row("token hit rate", percent(token_rate) + " (" + std::to_string(r.tokens_hit) + " of " +
                              std::to_string(r.tokens_queried) + " prompt tokens)");
    row("block hit rate", percent(block_rate) + " (" + std::to_string(r.blocks_hit) + " reused, " +
                              std::to_string(r.blocks_queried - r.blocks_hit) + " missed): the ceiling");
    row("evictions", std::to_string(r.evictions));
    char b[96];
    std::snprintf(b, sizeof b, "%.2f s", seconds);
    row("time (reading the trace too)", b);
    std::snprintf(b, sizeof b, "%.1f MB", static_cast<double>(max_rss_bytes()) / 1e6);
    row("peak memory (RSS)", b);
    return kExitOk;
}

int print_summary(const SimulateOptions& o, const std::string& trace_name, kvc_pool* pool, const Totals& t) {
    kvc_stats* s = nullptr;
    if (!ok(kvc_pool_snapshot(pool, &s), "simulate", "snapshot")) return kExitFailure;
    const double per_second = t.pool_seconds > 0 ? 1.0 / t.pool_seconds : 0.0;
    if (o.json) {
        const json stats = stats_json(s);
        kvc_stats_destroy(s);
        if (stats.is_null()) return kExitFailure;
        json out = {
            {"trace", trace_name},
            {"pool", {{"blocks", o.blocks}, {"block_size", o.block_size}, {"hash", o.algo}, {"policy", o.policy}}},
            {"requests", t.requests},
            {"requests_longer_than_pool", t.too_long},
            {"prompt_tokens", t.prompt_tokens},
            {"window_token_hit_rate", kvc_pool_window_token_hit_rate(pool)},
            {"cached_blocks", kvc_pool_num_cached_blocks(pool)},
            {"seconds", t.seconds},
            {"pool_seconds", t.pool_seconds},
            {"pool_requests_per_second", static_cast<double>(t.requests) * per_second},
            {"pool_blocks_per_second", static_cast<double>(t.blocks_touched) * per_second},
            {"max_rss_bytes", max_rss_bytes()},
            {"stats", stats},
        };
        std::printf("%s\n", out.dump(2).c_str());
        return kExitOk;
    }
    auto row = [](const char* name, const std::string& v) { std::printf("  %-30s %s\n", name, v.c_str()); };
    std::printf("kvcore simulate: %s through %u blocks of %u tokens (%s, %s eviction)\n", trace_name.c_str(), o.blocks,
                o.block_size, o.algo.c_str(), o.policy.c_str());
    row("requests", std::to_string(t.requests));
    if (t.too_long > 0) row("requests longer than the pool", std::to_string(t.too_long) + " (counted, not admitted)");
    row("token hit rate", percent(kvc_stats_token_hit_rate(s)) + " (" + std::to_string(kvc_stats_tokens_hit(s)) +
                              " of " + std::to_string(kvc_stats_tokens_queried(s)) + " prompt tokens)");
    row("block hit rate", percent(kvc_stats_hit_rate(s)) + " (" + std::to_string(kvc_stats_hits(s)) + " reused, " +
                              std::to_string(kvc_stats_misses(s)) + " missed)");
    row("token hit rate, last requests", percent(kvc_pool_window_token_hit_rate(pool)));
    row("evictions", std::to_string(kvc_stats_evictions(s)));
    row("blocks cached at the end", std::to_string(kvc_pool_num_cached_blocks(pool)));
    char b[96];
    std::snprintf(b, sizeof b, "%.0f requests/s, %.1f M blocks/s", static_cast<double>(t.requests) * per_second,
                  static_cast<double>(t.blocks_touched) * per_second / 1e6);
    row("pool throughput", b);
    std::snprintf(b, sizeof b, "%.2f s, %.2f s of them in the pool", t.seconds, t.pool_seconds);
    row("time (reading the trace too)", b);
    std::snprintf(b, sizeof b, "%.1f MB", static_cast<double>(max_rss_bytes()) / 1e6);
    row("peak memory (RSS)", b);
    kvc_stats_destroy(s);
    return kExitOk;
}


// --mode engine: the trace served by one engine (engine.h without a decoder): requests arrive at their
// timestamps, are batched by the scheduler, decode output_length tokens (their full blocks cached, as in
// vLLM) and leave; time is the cost model's. Records are read only when their time comes, so memory is
// bounded by the queue, not the trace.
struct EngineTotals {
    uint64_t requests = 0, too_long = 0, prompt_tokens = 0, generated = 0, steps = 0, queue_full = 0;
    std::vector<double> ttft;
    double simulated = 0, busy = 0, trace_span = 0, seconds = 0;
};

int print_engine_summary(const SimulateOptions& o, const std::string& trace_name, Replica& replica, const EngineTotals& t) {
    kvc_stats* s = nullptr;
    kvc_stats* sched = nullptr;
    if (!ok(kvc_pool_snapshot(replica.pool(), &s), "simulate", "snapshot") ||
        !ok(kvc_sched_snapshot(replica.sched(), &sched), "simulate", "scheduler snapshot")) {
        kvc_stats_destroy(s);
        return kExitFailure;
    }
    double preemptions = 0, batch = 0;
    (void)kvc_stats_metric(sched, "sched_preemptions_total", &preemptions);
    (void)kvc_stats_metric(sched, "sched_batch_size_avg", &batch);
    const double p50 = quantile(t.ttft, 0.5), p99 = quantile(t.ttft, 0.99);
    const double busy = t.simulated > 0 ? t.busy / t.simulated : 0;
    if (o.json) {
        const json out = {
            {"trace", trace_name},
            {"mode", "engine"},
            {"pool", {{"blocks", o.blocks}, {"block_size", o.block_size}, {"hash", o.algo}, {"policy", o.policy}}},
            {"engine", {{"max_batch", o.max_batch}, {"max_batch_tokens", o.max_batch_tokens}, {"max_queue", o.max_queue},
                        {"step_ms", o.step_ms}, {"token_us", o.token_us}}},
            {"requests", t.requests},
            {"requests_longer_than_pool", t.too_long},
            {"prompt_tokens", t.prompt_tokens},
            {"generated_tokens", t.generated},
            {"ttft_seconds_p50", p50},
            {"ttft_seconds_p99", p99},
            {"simulated_seconds", t.simulated},
            {"trace_seconds", t.trace_span},
            {"busy_fraction", busy},
            {"steps", t.steps},
            {"queue_full_waits", t.queue_full},
            {"seconds", t.seconds},
            {"max_rss_bytes", max_rss_bytes()},
            {"stats", stats_json(s)},
            {"sched", stats_json(sched)},
        };
        kvc_stats_destroy(s);
        kvc_stats_destroy(sched);
        std::printf("%s\n", out.dump(2).c_str());
        return kExitOk;
    }
    auto row = [](const char* name, const std::string& v) { std::printf("  %-30s %s\n", name, v.c_str()); };
    std::printf("kvcore simulate: %s served by an engine: %u blocks of %u tokens (%s, %s eviction), batches of up to "
                "%u sequences and %u tokens, a step costs %.3g ms + %.3g us a token\n",
                trace_name.c_str(), o.blocks, o.block_size, o.algo.c_str(), o.policy.c_str(), o.max_batch,
                o.max_batch_tokens, o.step_ms, o.token_us);
    char b[160];
    row("requests", std::to_string(t.requests));
    if (t.too_long > 0) row("requests longer than the pool", std::to_string(t.too_long) + " (counted, not admitted)");
    row("token hit rate", percent(kvc_stats_token_hit_rate(s)) + " (" + std::to_string(kvc_stats_tokens_hit(s)) +
                              " of " + std::to_string(kvc_stats_tokens_queried(s)) + " prompt tokens admitted)");
    row("block hit rate", percent(kvc_stats_hit_rate(s)) + " (" + std::to_string(kvc_stats_hits(s)) + " reused, " +
                              std::to_string(kvc_stats_misses(s)) + " missed)");
    row("evictions", std::to_string(kvc_stats_evictions(s)));
    row("blocks cached at the end", std::to_string(kvc_pool_num_cached_blocks(replica.pool())));
    row("tokens generated", std::to_string(t.generated) + " (full decode blocks cached, as in vLLM)");
    std::snprintf(b, sizeof b, "p50 %.3f s, p99 %.3f s", p50, p99);
    row("time to first token", b);
    std::snprintf(b, sizeof b, "%.0f, %.1f sequences a step on average", double(t.steps), batch);
    row("steps", b);
    row("preemptions", std::to_string(uint64_t(preemptions)));
    row("waits on a full queue", std::to_string(t.queue_full));
    std::snprintf(b, sizeof b, "%.1f s for %.1f s of trace, busy %.1f %%", t.simulated, t.trace_span, 100 * busy);
    row("simulated time", b);
    std::snprintf(b, sizeof b, "%.2f s", t.seconds);
    row("time (reading the trace too)", b);
    std::snprintf(b, sizeof b, "%.1f MB", static_cast<double>(max_rss_bytes()) / 1e6);
    row("peak memory (RSS)", b);
    kvc_stats_destroy(s);
    kvc_stats_destroy(sched);
    return kExitOk;
}

int run_engine(const SimulateOptions& o, LineReader& reader) {
    ReplicaConfig config;
    config.pod = "simulate";
    config.num_blocks = o.blocks;
    config.block_size = o.block_size;
    config.hash = o.algo == "sha256_cbor" ? KVC_HASH_SHA256_CBOR : KVC_HASH_XXH3;
    const auto kind = *eviction::kind_from_name(o.policy);
    config.tune_pool = [kind](kvc_pool_options* options) { kvcore::capi::set_pool_eviction_for_tools(options, kind); };
    config.max_batch_sequences = o.max_batch;
    config.max_batch_tokens = o.max_batch_tokens;
    config.max_queue = o.max_queue;
    config.cost = {.step_seconds = o.step_ms / 1e3, .token_seconds = o.token_us / 1e6};
    std::optional<Replica> replica;
    try {
        replica.emplace(config);
    } catch (const Error& e) {
        std::fprintf(stderr, "kvcore simulate: %s\n", e.what());
        return kExitFailure;
    }
    const uint64_t pool_tokens = uint64_t(o.blocks - 1) * o.block_size;
    EngineTotals t;
    std::string line;
    std::vector<int32_t> tokens;
    uint64_t output_length = 0, next_id = 0;
    double last_timestamp = 0, first_timestamp = -1, now = 0;
    bool pending = false, end = false;
    std::unordered_map<uint64_t, double> arrivals;
    const auto start = std::chrono::steady_clock::now();
    Progress progress(reader);
    std::string error;
    try {
        for (;;) {
            if (!pending && !end) {
                const TraceRead got = read_trace_record(reader, line, last_timestamp, tokens, output_length, error);
                if (got == TraceRead::kBad) {
                    progress.clear();
                    std::fprintf(stderr, "kvcore simulate: %s\n", error.c_str());
                    return kExitBadInput;
                }
                end = got == TraceRead::kEnd;
                if (!end) {
                    if (first_timestamp < 0) first_timestamp = last_timestamp;
                    pending = true;
                    ++t.requests;
                    t.prompt_tokens += tokens.size();
                    progress.update(t.requests);
                }
            }
            const double arrival = (last_timestamp - std::max(first_timestamp, 0.0)) / 1e3;  // trace ms -> s
            if (pending && (replica->idle() || arrival <= now)) {
                now = std::max(now, arrival);
                if (tokens.size() > pool_tokens) {
                    ++t.too_long;
                    pending = false;
                    continue;
                }
                const kvc_status st = replica->submit(next_id, tokens, uint32_t(std::max<uint64_t>(output_length, 1)), "");
                if (st == KVC_OK) {
                    arrivals[next_id++] = arrival;
                    pending = false;
                    continue;
                }
                if (st != KVC_ERR_QUEUE_FULL) {
                    progress.clear();
                    ok(st, "simulate", "submit");
                    return kExitFailure;
                }
                ++t.queue_full;  // back-pressure: the engine works the queue down first
            }
            if (replica->idle()) {
                if (end && !pending) break;
                continue;
            }
            replica->set_time(now);
            const StepReport step = replica->step();
            now += step.seconds;
            t.busy += step.seconds;
            ++t.steps;
            t.generated += step.sampled;
            for (const uint64_t id : step.first_tokens) t.ttft.push_back(now - arrivals.at(id));
            for (const uint64_t id : step.finished) {
                (void)replica->take_output(id);
                arrivals.erase(id);
            }
        }
    } catch (const Error& e) {
        progress.clear();
        std::fprintf(stderr, "kvcore simulate: %s: %s\n", kvc_status_string(e.status()), e.what());
        return kExitFailure;
    }
    progress.clear();
    if (t.requests == 0) {
        std::fprintf(stderr, "kvcore simulate: %s: no trace records (the trace is empty)\n", reader.name().c_str());
        return kExitBadInput;
    }
    t.simulated = now;
    t.trace_span = (last_timestamp - std::max(first_timestamp, 0.0)) / 1e3;
    t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return print_engine_summary(o, reader.name(), *replica, t);
}

}  // namespace

std::vector<std::string> simulate_policies() {
    std::vector<std::string> names;
    for (uint32_t k = 0; k <= eviction::kLastKind; ++k) names.emplace_back(eviction::kind_name(static_cast<eviction::Kind>(k)));
    names.emplace_back("opt");
    return names;
}

int run_simulate(const SimulateOptions& o) {
    LineReader reader(o.trace);
    if (!reader.open()) {
        std::fprintf(stderr, "kvcore simulate: %s: %s\n", reader.name().c_str(), reader.error().c_str());
        return kExitBadInput;
    }
    if (o.mode == "engine") return run_engine(o, reader);
    kvc_pool_options* options = nullptr;
    kvc_pool* pool = nullptr;
    const bool created = ok(kvc_pool_options_create(&options), "simulate", "pool options") &&
                         ok(kvc_pool_options_set_num_blocks(options, o.blocks), "simulate", "--blocks") &&
                         ok(kvc_pool_options_set_block_size(options, o.block_size), "simulate", "--block-size") &&
                         ok(kvc_pool_options_set_hash(options, o.algo == "sha256_cbor" ? KVC_HASH_SHA256_CBOR
                                                                                       : KVC_HASH_XXH3, "42"),
                            "simulate", "--algo") &&
                         (o.policy == "opt" ||
                          (kvcore::capi::set_pool_eviction_for_tools(options, *eviction::kind_from_name(o.policy)), true)) &&
                         ok(kvc_pool_create(options, &pool), "simulate", "pool");
    kvc_pool_options_destroy(options);
    if (!created) return kExitFailure;
    struct PoolOwner {
        kvc_pool* pool;
        ~PoolOwner() { kvc_pool_destroy(pool); }
    } owner{pool};

    // opt: pass 1 records the trace's blocks, pass 2 (below) replays them knowing every next use.
    std::optional<kvcore::pool::ReplayTrace> recorded;
    if (o.policy == "opt") {
        recorded.emplace(o.block_size, o.algo == "sha256_cbor" ? kvcore::pool::HashAlgo::kSha256Cbor : kvcore::pool::HashAlgo::kXxh3, "42");
    }
    Totals totals;
    std::string line;
    std::vector<int32_t> tokens;
    double last_timestamp = 0;
    const auto start = std::chrono::steady_clock::now();
    {
        Progress progress(reader);
        std::string error;
        uint64_t output_length = 0;
        for (;;) {
            const TraceRead got = read_trace_record(reader, line, last_timestamp, tokens, output_length, error);
            if (got == TraceRead::kEnd) break;
            if (got == TraceRead::kBad) {
                progress.clear();
                std::fprintf(stderr, "kvcore simulate: %s\n", error.c_str());
                return kExitBadInput;
            }
            ++totals.requests;
            totals.prompt_tokens += tokens.size();
            progress.update(totals.requests);
            if (recorded) {
                recorded->add(tokens);
                continue;
            }
            const char* failed = "";
            if (const kvc_status st = replay(pool, tokens, o.block_size, totals, &failed); st != KVC_OK) {
                progress.clear();
                ok(st, "simulate", failed);
                return kExitFailure;
            }
        }
    }
    totals.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (totals.requests == 0) {
        std::fprintf(stderr, "kvcore simulate: %s: no trace records (the trace is empty)\n", reader.name().c_str());
        return kExitBadInput;
    }
    if (recorded) {
        const auto r = recorded->replay(o.blocks, kvcore::pool::ReplayTrace::Order::kFarthestNextUse);
        return print_optimum(o, reader.name(), r,
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return print_summary(o, reader.name(), pool, totals);
}

}  // namespace kvcore::cli
