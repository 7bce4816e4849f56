// SPDX-License-Identifier: Apache-2.0
// `kvcore demo`, the main job: the whole stack serving a multi-tenant multi-turn chat workload. Several
// engine replicas in this process (each a pool, a session store, a scheduler and the reference decoder:
// engine.h) publish their KV events over ZeroMQ on loopback into the cluster index (kvcore/index.h), and a
// router sends each request to a replica, once round-robin and once by the index's longest cached prefix.
// The workload, the routing and every scheduling decision are deterministic (replicas step in lockstep
// ticks); times are the replicas' measured compute, each replica's clock its own steps' time.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "commands.h"
#include "capi_calls.h"
#include "common/error.h"
#include "engine.h"
#include "input.h"
#include "kvcore/kvcore.h"
#include "trace_record.h"

#ifdef KVCORE_CLI_WITH_MODEL
#include <cblas.h>
#endif

namespace kvcore::cli {
namespace {

using nlohmann::json;

constexpr uint32_t kBlockSize = 16;
constexpr uint32_t kVocab = 4096;
constexpr const char* kModelName = "kvcore-reference";
constexpr uint64_t kThinkTicks = 4;        // a user reads the reply for this many ticks before the next turn
constexpr uint64_t kChatStartTicks = 3;    // one new conversation every 3 ticks
constexpr uint64_t kTraceTicksPerSecond = 10;  // --trace: a trace second is 10 ticks
constexpr uint64_t kMaxTicks = 10'000'000;     // bounds every run's loop

// A conversation: its turns' user messages and reply lengths; the built-in workload's or a trace record's
// (a record is a one-turn conversation with no session).
struct Chat {
    std::string session;
    std::vector<int32_t> system;
    std::vector<std::vector<int32_t>> users;
    std::vector<uint32_t> replies;
    uint64_t start_tick = 0;
};

struct Workload {
    std::vector<Chat> chats;
    std::string description;
    size_t requests = 0;
    uint32_t context = 0;  // the longest conversation a request may reach, tokens
};

std::vector<int32_t> random_tokens(std::mt19937_64& rng, uint32_t n) {
    std::uniform_int_distribution<int32_t> token(1, kVocab - 1);
    std::vector<int32_t> out(n);
    for (int32_t& t : out) t = token(rng);
    return out;
}

// Tenants each have a system prompt their chats open with; each chat resends its whole conversation.
Workload builtin_workload(const DemoOptions& o) {
    Workload w;
    std::mt19937_64 rng(o.seed);
    std::vector<std::vector<int32_t>> systems;
    for (uint32_t t = 0; t < o.tenants; ++t) systems.push_back(random_tokens(rng, 96 + 32 * (t % 3)));
    uint32_t context = 0;
    for (uint32_t c = 0; c < o.chats; ++c) {
        for (uint32_t t = 0; t < o.tenants; ++t) {  // tenants interleave in arrival order
            Chat chat;
            chat.session = "tenant-" + std::to_string(t) + "/chat-" + std::to_string(c);
            chat.system = systems[t];
            chat.start_tick = w.chats.size() * kChatStartTicks;
            uint32_t length = uint32_t(chat.system.size());
            for (uint32_t k = 0; k < o.turns; ++k) {
                chat.users.push_back(random_tokens(rng, 16 + uint32_t(rng() % 33)));
                chat.replies.push_back(16 + uint32_t(rng() % 25));
                length += uint32_t(chat.users.back().size()) + chat.replies.back();
            }
            context = std::max(context, length);
            w.requests += o.turns;
            w.chats.push_back(std::move(chat));
        }
    }
    w.context = context;
    w.description = std::to_string(o.tenants) + " tenants x " + std::to_string(o.chats) + " chats x " +
                    std::to_string(o.turns) + " turns (" + std::to_string(w.requests) + " requests)";
    return w;
}

// A trace prompt scaled down for the decoder: each hash id's 512 tokens become one block of 16 token ids in
// the vocabulary, a function of the id alone, so equal ids give equal blocks and the trace's sharing is
// kept exactly at 1/32 of the compute; a last partial block keeps its share (at least one token).
std::vector<int32_t> scaled_prompt(const std::vector<int32_t>& tokens) {
    std::vector<int32_t> out;
    for (size_t first = 0; first < tokens.size(); first += kTraceBlockTokens) {
        const uint64_t id = uint64_t(uint32_t(tokens[first]));
        const size_t length = std::min<size_t>(kTraceBlockTokens, tokens.size() - first);
        const size_t n = (length * kBlockSize + kTraceBlockTokens - 1) / kTraceBlockTokens;
        for (size_t k = 0; k < n; ++k) {
            uint64_t x = id * 0x9E3779B97F4A7C15ull + k + 1;
            x ^= x >> 31;
            x *= 0xBF58476D1CE4E5B9ull;
            out.push_back(int32_t(1 + (x >> 33) % (kVocab - 1)));
        }
    }
    return out;
}

// The first o.requests records of a Mooncake trace, each a one-turn conversation arriving at its timestamp,
// its prompt scaled down (scaled_prompt).
bool trace_workload(const DemoOptions& o, Workload& w) {
    LineReader reader(o.trace);
    if (!reader.open()) {
        std::fprintf(stderr, "kvcore demo: %s: %s\n", reader.name().c_str(), reader.error().c_str());
        return false;
    }
    std::string line;
    std::vector<int32_t> tokens;
    double last_timestamp = 0, first_timestamp = -1;
    std::string error;
    uint64_t output_length = 0;
    while (w.chats.size() < o.requests) {
        const TraceRead got = read_trace_record(reader, line, last_timestamp, tokens, output_length, error);
        if (got == TraceRead::kEnd) break;
        if (got == TraceRead::kBad) {
            std::fprintf(stderr, "kvcore demo: %s\n", error.c_str());
            return false;
        }
        if (first_timestamp < 0) first_timestamp = last_timestamp;
        Chat chat;
        chat.users.push_back(scaled_prompt(tokens));
        chat.replies.push_back(uint32_t(std::clamp<uint64_t>(output_length, 1, o.max_new_tokens)));
        chat.start_tick = uint64_t((last_timestamp - first_timestamp) / 1000.0 * kTraceTicksPerSecond);
        w.context = std::max<uint32_t>(w.context, uint32_t(chat.users.back().size()) + chat.replies.back());
        w.chats.push_back(std::move(chat));
    }
    if (w.chats.empty()) {
        std::fprintf(stderr, "kvcore demo: %s: no trace records\n", reader.name().c_str());
        return false;
    }
    w.requests = w.chats.size();
    w.description = std::to_string(w.requests) + " requests of " + reader.name() +
                    " (each 512-token block of the trace a 16-token block here)";
    return true;
}

enum class Routing { kRoundRobin, kKvAware };
const char* routing_name(Routing r) { return r == Routing::kRoundRobin ? "round-robin" : "kv-aware"; }

// What one run measured.
struct RunResult {
    Routing routing = Routing::kRoundRobin;
    uint64_t requests = 0, steps = 0, prompt_tokens = 0, cached_tokens = 0, restored_tokens = 0;
    uint64_t computed_tokens = 0, generated = 0, first_tokens = 0, preemptions = 0;
    uint64_t attended = 0, block_slots = 0, reserved_slots = 0;
    uint64_t published = 0, applied = 0;
    bool restored_known = false;
    std::vector<double> ttft;  // seconds
    double busiest_seconds = 0, wall_seconds = 0;
    json replicas = json::array();
    std::vector<std::string> prometheus;  // per replica and component, labelled

    // Every computed token is prefill but the decodes: each generated token after a request's first was
    // computed in the step after it was sampled (the last one never is).
    [[nodiscard]] uint64_t prefill_tokens() const { return computed_tokens - (generated - first_tokens); }
    [[nodiscard]] double tokens_per_second() const { return busiest_seconds > 0 ? double(generated) / busiest_seconds : 0; }
};

double metric(const kvc_stats* s, const char* name, bool* known = nullptr) {
    double value = 0;
    const bool found = s != nullptr && kvc_stats_metric(s, name, &value) == KVC_OK;
    if (known != nullptr) *known = *known || found;
    return found ? value : 0;
}

// Prometheus text of one snapshot with run and replica labels added to every sample.
std::string labelled(const kvc_stats* s, const std::string& labels) {
    const std::string text =
        read_text([&](char* b, size_t c, size_t* l) { return kvc_stats_to_prometheus(s, b, c, l); }, "Prometheus text");
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (!line.empty() && line[0] != '#') {
            const size_t brace = line.find('{'), space = line.find(' ');
            if (brace != std::string::npos && brace < space) {
                line.insert(brace + 1, labels + ",");
            } else {
                line.insert(space, "{" + labels + "}");
            }
        }
        out += line + "\n";
    }
    return out;
}

// A one-line progress report on stderr: rewritten in place on a terminal, a line per quarter otherwise.
class Progress {
public:
    Progress(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1) {}
    void update(const char* run, uint64_t done, uint64_t total, uint64_t tick) {
        if (!enabled_ || total == 0) return;
        const uint64_t quarter = done * 4 / total;
        const auto now = std::chrono::steady_clock::now();
        if (tty_ ? now < next_ && done != total : quarter == last_quarter_) return;
        next_ = now + std::chrono::milliseconds(200);
        last_quarter_ = quarter;
        std::fprintf(stderr, "%skvcore demo: %s: %" PRIu64 " of %" PRIu64 " requests done, tick %" PRIu64 "%s",
                     tty_ ? "\r\033[K" : "", run, done, total, tick, tty_ ? "" : "\n");
        if (tty_ && done == total) std::fprintf(stderr, "\r\033[K");
    }
    void start() { last_quarter_ = ~0ull; }

private:
    const bool enabled_, tty_;
    uint64_t last_quarter_ = ~0ull;
    std::chrono::steady_clock::time_point next_{};
};

// The index fed by the replicas' events, and the wait that makes routing deterministic: before a tick's
// requests are routed, every batch published so far has been applied.
class ClusterIndex {
public:
    explicit ClusterIndex(const std::vector<std::unique_ptr<Replica>>& replicas) : replicas_(replicas) {
        Owned<kvc_index_options, kvc_index_options_destroy> io;
        require_ok(kvc_index_options_create(&io.p), "index options");
        require_ok(kvc_index_options_set_hash(io.p, KVC_HASH_SHA256_CBOR, "42"), "index hash");
        require_ok(kvc_index_options_set_block_size(io.p, kBlockSize), "index block size");
        require_ok(kvc_index_options_set_engine_keys_direct(io.p, 1), "index keys");
        require_ok(kvc_index_create(io.p, &index_.p), "index");
        Owned<kvc_index_subscriber_options, kvc_index_subscriber_options_destroy> so;
        require_ok(kvc_index_subscriber_options_create(&so.p), "subscriber options");
        for (const auto& r : replicas) {
            require_ok(kvc_index_subscriber_options_add_engine(so.p, r->endpoint().c_str(), r->replay_endpoint().c_str()),
                       "subscriber engine");
            pods_.push_back(r->pod().c_str());
        }
        require_ok(kvc_index_subscriber_create(index_.p, so.p, &subscriber_.p), "index subscriber");
        require_ok(kvc_index_subscriber_start(subscriber_.p), "index subscriber");
        // ZeroMQ connects in the background: probe each engine until its batches arrive.
        for (const auto& r : replicas) {
            const uint64_t before = applied();
            for (int attempt = 0; attempt < 500 && applied() == before; ++attempt) {
                r->publish_probe();
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            if (applied() == before) fail(KVC_ERR_IO, "the index received no event batch from " + r->pod() + " in 5 s");
        }
        sync();
    }

    uint64_t applied() const {
        uint64_t values[KVC_INDEX_SUBSCRIBER_COUNTER_COUNT] = {};
        require_ok(kvc_index_subscriber_counters(subscriber_.p, values, KVC_INDEX_SUBSCRIBER_COUNTER_COUNT, nullptr),
                   "subscriber counters");
        return values[KVC_INDEX_SUBSCRIBER_COUNTER_BATCHES_APPLIED] +
               values[KVC_INDEX_SUBSCRIBER_COUNTER_DECODE_FAILURES] + values[KVC_INDEX_SUBSCRIBER_COUNTER_APPLY_FAILURES];
    }
    uint64_t published() const {
        uint64_t n = 0;
        for (const auto& r : replicas_) n += r->published();
        return n;
    }
    // Waits (at most 5 s) until the index has applied every batch published so far.
    void sync() {
        const uint64_t target = published();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (applied() < target) {
            if (std::chrono::steady_clock::now() > deadline) {
                fail(KVC_ERR_IO, "the index applied " + std::to_string(applied()) + " of " + std::to_string(target) +
                                     " event batches within 5 s");
            }
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    }
    // The replica with the best cached prefix of the prompt against its load, llm-d's two scorers summed:
    // the prompt's fraction already cached there, minus twice its queue as a fraction of a full batch (a
    // replica with a batch's worth of requests loses to an idle one however much it caches). Ties go to
    // the least loaded, then the lowest index.
    size_t route(const std::vector<int32_t>& prompt, uint32_t max_batch) {
        const size_t n = replicas_.size();
        scores_.assign(n, 0);
        blocks_.assign(n, 0);
        require_ok(kvc_index_score_tokens(index_.p, kModelName, prompt.data(), prompt.size(), nullptr, pods_.data(), n,
                                          scores_.data(), blocks_.data()),
                   "scoring");
        auto score = [&](size_t i) {
            return double(blocks_[i]) * kBlockSize / double(prompt.size()) -
                   2.0 * double(replicas_[i]->load()) / double(max_batch);
        };
        size_t best = 0;
        for (size_t i = 1; i < n; ++i) {
            const double a = score(i), b = score(best);
            if (a > b || (a == b && replicas_[i]->load() < replicas_[best]->load())) best = i;
        }
        return best;
    }

private:
    const std::vector<std::unique_ptr<Replica>>& replicas_;
    std::vector<const char*> pods_;  // the replicas' names, as scoring takes them
    Owned<kvc_index, kvc_index_destroy> index_;
    Owned<kvc_index_subscriber, kvc_index_subscriber_destroy> subscriber_;  // destroyed first, before its index
    std::vector<double> scores_;
    std::vector<uint32_t> blocks_;
};

ReplicaConfig replica_config(const DemoOptions& o, const Workload& w, uint32_t index) {
    ReplicaConfig c;
    c.pod = "replica-" + std::to_string(index);
    c.model_name = kModelName;
    c.num_blocks = o.blocks;
    c.block_size = kBlockSize;
    c.max_batch_sequences = o.max_batch;
    c.max_batch_tokens = o.max_batch_tokens;
    c.policy = KVC_SCHED_FIFO;
    c.publish_events = true;
    c.store_bytes = uint64_t(o.store_mib) << 20;
#ifdef KVCORE_CLI_WITH_MODEL
    c.model = model::Config{.layers = 4, .d_model = 256, .heads = 8, .mlp_hidden = 1024, .vocab = kVocab,
                            .context = w.context + 1, .seed = o.seed};
    c.sampling.seed = o.seed;
#else
    (void)w;
#endif
    return c;
}

RunResult run(const DemoOptions& o, const Workload& w, Routing routing, Progress& progress) {
    RunResult result;
    result.routing = routing;
    const auto wall_start = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<Replica>> replicas;
    for (uint32_t r = 0; r < o.replicas; ++r) replicas.push_back(std::make_unique<Replica>(replica_config(o, w, r)));
    ClusterIndex index(replicas);
    const uint64_t probes = index.published();

    struct ChatState {
        std::vector<int32_t> conversation;
        size_t turn = 0;
    };
    struct InFlight {
        size_t chat = 0, replica = 0;
        double submitted = 0;  // the replica's clock
        std::vector<int32_t> prompt;
    };
    std::vector<ChatState> chats(w.chats.size());
    for (size_t c = 0; c < w.chats.size(); ++c) chats[c].conversation = w.chats[c].system;
    using Arrival = std::pair<uint64_t, size_t>;  // (tick, chat): earliest first, then chat order
    std::priority_queue<Arrival, std::vector<Arrival>, std::greater<>> arrivals;
    for (size_t c = 0; c < w.chats.size(); ++c) arrivals.emplace(w.chats[c].start_tick, c);
    std::unordered_map<uint64_t, InFlight> in_flight;
    std::vector<double> clocks(replicas.size(), 0.0);
    size_t round_robin = 0;
    uint64_t done = 0;
    progress.start();

    for (uint64_t tick = 0; done < w.requests; ++tick) {
        if (tick > kMaxTicks) fail(KVC_ERR_INTERNAL, "the demo did not finish within " + std::to_string(kMaxTicks) + " ticks");
        bool all_idle = true;
        for (const auto& r : replicas) all_idle = all_idle && r->idle();
        if (all_idle && !arrivals.empty() && arrivals.top().first > tick) tick = arrivals.top().first;
        while (!arrivals.empty() && arrivals.top().first <= tick) {
            const size_t c = arrivals.top().second;
            arrivals.pop();
            ChatState& chat = chats[c];
            const Chat& spec = w.chats[c];
            std::vector<int32_t> prompt = chat.conversation;
            prompt.insert(prompt.end(), spec.users[chat.turn].begin(), spec.users[chat.turn].end());
            const size_t r = routing == Routing::kKvAware ? index.route(prompt, o.max_batch) : round_robin++ % replicas.size();
            const uint64_t id = uint64_t(c) * 1000 + chat.turn;
            const kvc_status st = replicas[r]->submit(id, prompt, spec.replies[chat.turn], spec.session);
            if (st != KVC_OK) fail(st, std::string("submitting request ") + std::to_string(id) + ": " + kvc_last_error_message());
            in_flight[id] = InFlight{.chat = c, .replica = r, .submitted = clocks[r], .prompt = std::move(prompt)};
            result.prompt_tokens += in_flight[id].prompt.size();
        }
        for (size_t r = 0; r < replicas.size(); ++r) {
            if (replicas[r]->idle()) continue;
            replicas[r]->set_time(clocks[r]);
            const StepReport step = replicas[r]->step();
            clocks[r] += step.seconds;
            result.steps += step.sequences > 0;
            result.computed_tokens += step.tokens;
            result.generated += step.sampled;
            result.attended += step.attended_tokens;
            result.block_slots += step.distinct_blocks * kBlockSize;
            result.reserved_slots += uint64_t(step.sequences) * w.context;
            for (const uint64_t id : step.first_tokens) result.ttft.push_back(clocks[r] - in_flight.at(id).submitted);
            result.first_tokens += step.first_tokens.size();
            for (const uint64_t id : step.finished) {
                InFlight f = std::move(in_flight.at(id));
                in_flight.erase(id);
                const std::vector<int32_t> output = replicas[r]->take_output(id);
                ChatState& chat = chats[f.chat];
                chat.conversation = std::move(f.prompt);
                chat.conversation.insert(chat.conversation.end(), output.begin(), output.end());
                if (++chat.turn < w.chats[f.chat].users.size()) arrivals.emplace(tick + kThinkTicks, f.chat);
                ++done;
            }
        }
        index.sync();
        progress.update(routing_name(routing), done, w.requests, tick);
    }

    result.requests = done;
    result.published = index.published() - probes;
    result.applied = index.applied() - probes;
    result.busiest_seconds = *std::max_element(clocks.begin(), clocks.end());
    const std::string run_label = std::string("run=\"") + routing_name(routing) + "\"";
    for (const auto& r : replicas) {
        json entry = {{"pod", r->pod()}, {"busy_seconds", clocks[&r - replicas.data()]}};
        const std::string labels = run_label + ",replica=\"" + r->pod() + "\"";
        auto add = [&](const char* name, kvc_stats* s) {
            if (s == nullptr) return;
            entry[name] =
                json::parse(read_text([&](char* b, size_t c, size_t* l) { return kvc_stats_to_json(s, b, c, l); }, "JSON"));
            result.prometheus.push_back(labelled(s, labels));
        };
        kvc_stats* pool = nullptr;
        kvc_stats* sched = nullptr;
        kvc_stats* store = nullptr;
        if (kvc_pool_snapshot(r->pool(), &pool) != KVC_OK || kvc_sched_snapshot(r->sched(), &sched) != KVC_OK ||
            (r->store() != nullptr && kvc_store_snapshot(r->store(), &store) != KVC_OK)) {
            kvc_stats_destroy(pool);
            kvc_stats_destroy(sched);
            fail(KVC_ERR_INTERNAL, std::string("snapshot: ") + kvc_last_error_message());
        }
        result.cached_tokens += kvc_stats_tokens_hit(sched);
        result.preemptions += uint64_t(metric(sched, "sched_preemptions_total"));
        result.restored_tokens += uint64_t(metric(sched, "sched_store_restored_tokens_total", &result.restored_known));
        add("pool", pool);
        add("sched", sched);
        add("store", store);
        kvc_stats_destroy(pool);
        kvc_stats_destroy(sched);
        kvc_stats_destroy(store);
        result.replicas.push_back(std::move(entry));
    }
    result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    return result;
}

std::string fmt(const char* format, double value) {
    char b[64];
    std::snprintf(b, sizeof b, format, value);
    return b;
}
// 12,345: digits in groups of three.
std::string count(uint64_t n) {
    const std::string digits = std::to_string(n);
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}
double ratio(uint64_t a, uint64_t b) { return b == 0 ? 0 : double(a) / double(b); }

json summary(const RunResult& r) {
    return {{"requests", r.requests},
            {"steps", r.steps},
            {"prompt_tokens", r.prompt_tokens},
            {"cached_prompt_tokens", r.cached_tokens},
            {"prefix_hit_rate", ratio(r.cached_tokens, r.prompt_tokens)},
            {"store_restored_tokens", r.restored_tokens},
            {"prefill_tokens_computed", r.prefill_tokens()},
            {"generated_tokens", r.generated},
            {"ttft_seconds_p50", quantile(r.ttft, 0.5)},
            {"ttft_seconds_p99", quantile(r.ttft, 0.99)},
            {"tokens_per_second", r.tokens_per_second()},
            {"busiest_replica_seconds", r.busiest_seconds},
            {"kv_memory_efficiency", ratio(r.attended, r.block_slots)},
            {"contiguous_cache_efficiency", ratio(r.attended, r.reserved_slots)},
            {"preemptions", r.preemptions},
            {"event_batches_published", r.published},
            {"event_batches_applied", r.applied},
            {"wall_seconds", r.wall_seconds}};
}

void print_table(const std::vector<RunResult>& runs) {
    std::printf("\n%-44s", "");
    for (const RunResult& r : runs) std::printf("%16s", routing_name(r.routing));
    std::printf("\n");
    auto row = [&](const char* label, auto cell) {
        std::printf("%-44s", label);
        for (const RunResult& r : runs) std::printf("%16s", cell(r).c_str());
        std::printf("\n");
    };
    row("requests served", [](const RunResult& r) { return count(r.requests); });
    row("prompt tokens", [](const RunResult& r) { return count(r.prompt_tokens); });
    row("prefix cache hit rate (tokens)", [](const RunResult& r) { return fmt("%.1f %%", 100 * ratio(r.cached_tokens, r.prompt_tokens)); });
    if (std::any_of(runs.begin(), runs.end(), [](const RunResult& r) { return r.restored_known; })) {
        row("prompt tokens restored from session stores", [](const RunResult& r) { return count(r.restored_tokens); });
    }
    row("prefill tokens computed", [](const RunResult& r) { return count(r.prefill_tokens()); });
    row("tokens generated", [](const RunResult& r) { return count(r.generated); });
    row("time to first token, p50", [](const RunResult& r) { return fmt("%.1f ms", 1e3 * quantile(r.ttft, 0.5)); });
    row("time to first token, p99", [](const RunResult& r) { return fmt("%.1f ms", 1e3 * quantile(r.ttft, 0.99)); });
    row("tokens generated per second", [](const RunResult& r) {
        return count(uint64_t(r.tokens_per_second()));
    });
    row("KV memory efficiency (paged, shared once)", [](const RunResult& r) { return fmt("%.1f %%", 100 * ratio(r.attended, r.block_slots)); });
    row("  a max-context contiguous cache", [](const RunResult& r) { return fmt("%.1f %%", 100 * ratio(r.attended, r.reserved_slots)); });
    row("preemptions", [](const RunResult& r) { return count(r.preemptions); });
    row("KV event batches published / indexed", [](const RunResult& r) { return count(r.published) + " / " + count(r.applied); });
    row("scheduler steps", [](const RunResult& r) { return count(r.steps); });
}

bool write_metrics(const DemoOptions& o, const Workload& w, const std::vector<RunResult>& runs, std::string& files) {
    std::error_code ec;
    std::filesystem::create_directories(o.metrics_dir, ec);
    if (ec) {
        std::fprintf(stderr, "kvcore demo: --metrics-dir %s: %s\n", o.metrics_dir.c_str(), ec.message().c_str());
        return false;
    }
    // Families once each (HELP/TYPE lines), samples of every run and replica under them.
    std::map<std::string, std::pair<std::string, std::string>> families;  // name -> (header, samples)
    std::vector<std::string> order;
    for (const RunResult& r : runs) {
        for (const std::string& text : r.prometheus) {
            size_t pos = 0;
            while (pos < text.size()) {
                const size_t end = text.find('\n', pos);
                const std::string line = text.substr(pos, end - pos);
                pos = end + 1;
                if (line.empty()) continue;
                const bool comment = line[0] == '#';
                std::string name = comment ? line.substr(line.find(' ', 2) + 1) : line;
                name = name.substr(0, name.find_first_of(" {"));
                if (!families.count(name)) order.push_back(name);
                auto& [header, samples] = families[name];
                if (comment) {
                    if (header.find(line) == std::string::npos) header += line + "\n";
                } else {
                    samples += line + "\n";
                }
            }
        }
    }
    std::string prom;
    for (const std::string& name : order) prom += families[name].first + families[name].second;
    json doc = {{"workload", w.description}, {"replicas", o.replicas}, {"runs", json::object()}};
    std::vector<json> summaries;
    for (const RunResult& r : runs) {
        summaries.push_back(summary(r));
        doc["runs"][routing_name(r.routing)] = {{"summary", summaries.back()}, {"replicas", r.replicas}};
    }
    // The run's figures as gauges, one family per figure with a sample per run.
    for (const auto& [figure, value] : summaries.front().items()) {
        (void)value;
        prom += "# HELP kvcore_demo_" + figure + " kvcore demo: " + figure + " of the run\n";
        prom += "# TYPE kvcore_demo_" + figure + " gauge\n";
        for (size_t i = 0; i < runs.size(); ++i) {
            prom += "kvcore_demo_" + figure + "{run=\"" + routing_name(runs[i].routing) + "\"} " +
                    summaries[i][figure].dump() + "\n";
        }
    }
    const std::filesystem::path dir(o.metrics_dir);
    std::ofstream prom_file(dir / "metrics.prom"), json_file(dir / "metrics.json");
    prom_file << prom;
    json_file << doc.dump(2) << "\n";
    prom_file.flush();
    json_file.flush();
    if (!prom_file || !json_file) {
        std::fprintf(stderr, "kvcore demo: cannot write the metrics into %s\n", o.metrics_dir.c_str());
        return false;
    }
    files = (dir / "metrics.prom").string() + " (Prometheus text), " + (dir / "metrics.json").string();
    return true;
}

}  // namespace

int run_demo(const DemoOptions& options) {
    DemoOptions o = options;
#ifdef KVCORE_CLI_WITH_MODEL
    openblas_set_num_threads(1);  // replicas step one at a time; BLAS threads would only contend
#endif
    Workload w;
    if (o.trace.empty()) {
        w = builtin_workload(o);
    } else if (!trace_workload(o, w)) {
        return kExitBadInput;
    }
    // --blocks 0: 160 blocks, or room for four of the longest requests when they need more.
    if (o.blocks == 0) o.blocks = std::max<uint32_t>(160, 4 * ((w.context + kBlockSize - 1) / kBlockSize + 1));
    const uint64_t pool_tokens = uint64_t(o.blocks - 1) * kBlockSize;
    if (w.context + kBlockSize > pool_tokens) {
        std::fprintf(stderr, "kvcore demo: the longest request reaches %u tokens; a pool of --blocks %u holds %" PRIu64
                             ": it needs --blocks %u or more\n",
                     w.context, o.blocks, pool_tokens, (w.context + kBlockSize - 1) / kBlockSize + 2);
        return kExitUsage;
    }
    std::vector<Routing> routings;
    if (o.routing != "kv-aware") routings.push_back(Routing::kRoundRobin);
    if (o.routing != "round-robin") routings.push_back(Routing::kKvAware);

    const ReplicaConfig rc = replica_config(o, w, 0);
    std::printf("kvcore %s demo: %u engine replicas serving %s\n", kvc_version_string(), o.replicas,
                w.description.c_str());
#ifdef KVCORE_CLI_WITH_MODEL
    const model::Config& m = *rc.model;
    const double block_mib = double(m.layers) * 2 * kBlockSize * m.d_model * 4 / (1 << 20);
    std::printf("  each replica: a pool of %u blocks x %u tokens (%.1f MiB of fp32 K/V), a %u MiB session store,\n"
                "  a scheduler (%u sequences, %u tokens a step), the reference decoder (%u layers, %u dims, %u heads,\n"
                "  vocabulary %u; OpenBLAS), sampling at temperature 0.8, top-k 40\n",
                o.blocks, kBlockSize, block_mib * o.blocks, o.store_mib, o.max_batch, o.max_batch_tokens, m.layers,
                m.d_model, m.heads, m.vocab);
#else
    std::printf("  each replica: a pool of %u blocks x %u tokens, a scheduler (%u sequences, %u tokens a step);\n"
                "  built without the reference decoder (KVCORE_MODEL=OFF): tokens are synthetic, step times modeled\n",
                o.blocks, kBlockSize, o.max_batch, o.max_batch_tokens);
#endif
    std::printf("  KV events: each pool's, over ZeroMQ on 127.0.0.1 into one cluster index (sha256_cbor, seed 42)\n");
    std::printf("  routing: %s\n", o.routing == "both" ? "round-robin, then by the index (cached prefix against load)"
                                   : o.routing == "kv-aware" ? "by the index (cached prefix against load)" : "round-robin");
    std::fflush(stdout);

    Progress progress(o.progress);
    std::vector<RunResult> runs;
    try {
        for (const Routing r : routings) runs.push_back(run(o, w, r, progress));
    } catch (const Error& e) {
        std::fprintf(stderr, "kvcore demo: %s: %s\n", kvc_status_string(e.status()), e.what());
        return kExitFailure;
    }
    print_table(runs);
    if (runs.size() == 2) {
        const RunResult &rr = runs[0], &kv = runs[1];
        auto change = [](double before, double after, const char* fewer, const char* more) {
            char b[64];
            if (before <= 0 || after <= 0) return std::string("n/a");
            std::snprintf(b, sizeof b, "%.2fx %s", after < before ? before / after : after / before,
                          after < before ? fewer : more);
            return std::string(b);
        };
        std::printf("\nKV-aware routing against round-robin: prefix hit rate %.1f %% -> %.1f %%; prefill tokens %s; "
                    "time to first token p50 %s; tokens per second %s\n",
                    100 * ratio(rr.cached_tokens, rr.prompt_tokens), 100 * ratio(kv.cached_tokens, kv.prompt_tokens),
                    change(double(rr.prefill_tokens()), double(kv.prefill_tokens()), "fewer", "more").c_str(),
                    change(quantile(rr.ttft, 0.5), quantile(kv.ttft, 0.5), "lower", "higher").c_str(),
                    change(rr.tokens_per_second(), kv.tokens_per_second(), "lower", "higher").c_str());
    }
    std::string files;
    if (!write_metrics(o, w, runs, files)) return kExitBadInput;
    double wall = 0;
    for (const RunResult& r : runs) wall += r.wall_seconds;
    std::printf("metrics: %s\n", files.c_str());
    std::printf("wall time %.1f s\n", wall);
    return kExitOk;
}

}  // namespace kvcore::cli
