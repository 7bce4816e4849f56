// SPDX-License-Identifier: Apache-2.0
// kvcore: the command-line program. `kvcore demo` is the first thing a newcomer runs.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "commands.h"
#include "kvcore/kvcore.h"
#include "trace_record.h"

namespace kvcore::cli {

bool ok(kvc_status status, const char* command, const char* what) {
    if (status == KVC_OK) return true;
    std::fprintf(stderr, "kvcore %s: %s failed: %s: %s\n", command, what, kvc_status_string(status),
                 kvc_last_error_message());
    return false;
}

}  // namespace kvcore::cli

namespace {

using namespace kvcore::cli;

std::string version_line() {
    return std::string("kvcore ") + kvc_version_string() + " (ABI " + std::to_string(KVC_VERSION_MAJOR) + ", header " +
           (kvc_version_number() == KVC_VERSION_NUMBER ? "matches" : "MISMATCH") + ")";
}

constexpr const char* kExitCodes =
    "Exit codes: 0 ok; 1 usage error (unknown command or option, bad option value); 2 bad input or data\n"
    "(a trace or token file that is missing, unreadable or invalid: the message names file:line and the\n"
    "field); 3 a library call failed where it should not (out of memory, a bug).";

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"kvcore - the KV cache core for LLM inference"};
    app.require_subcommand(1);
    app.set_version_flag("--version", version_line, "Print the library version and exit");
    app.footer(kExitCodes);
    // Every option's default shows in --help.
    app.option_defaults()->always_capture_default();

    auto* version = app.add_subcommand("version", "Print the library version");
    version->callback([] { std::printf("%s\n", version_line().c_str()); });

    int exit_code = kExitOk;

    DemoOptions demo;
    auto* demo_cmd = app.add_subcommand(
        "demo", "The main job: engine replicas (pool, session store, scheduler, reference decoder) serve a "
                "multi-tenant multi-turn chat workload; their KV events go over ZeroMQ into the cluster index; "
                "routing by the index against round-robin; a table, Prometheus text and JSON");
    demo_cmd->footer("Deterministic: the workload, the routing and every scheduling decision (replicas step in "
                     "lockstep ticks).\nTimes are measured: each replica's clock is its own steps' compute time. "
                     "Progress goes to stderr.\n\n" + std::string(kExitCodes));
    demo_cmd->add_option("--replicas", demo.replicas, "Engine replicas")->check(CLI::Range(1, 16));
    demo_cmd->add_option("--tenants", demo.tenants, "Tenants, each with its own system prompt")->check(CLI::Range(1, 64));
    demo_cmd->add_option("--chats", demo.chats, "Conversations per tenant")->check(CLI::Range(1, 256));
    demo_cmd->add_option("--turns", demo.turns, "Turns per conversation; each resends the conversation so far")
        ->check(CLI::Range(1, 32));
    demo_cmd->add_option("--blocks", demo.blocks,
                         "Blocks of 16 tokens in each replica's pool (block 0 reserved); 0: 160, or room for four "
                         "of the workload's longest requests when they need more")
        ->check(CLI::Range(0, 1 << 20));
    demo_cmd->add_option("--store-mib", demo.store_mib, "MiB of each replica's session store under its pool (0: none)")
        ->check(CLI::Range(0, 1 << 20));
    demo_cmd->add_option("--max-batch", demo.max_batch, "Sequences a step")->check(CLI::Range(1, 4096));
    demo_cmd->add_option("--max-batch-tokens", demo.max_batch_tokens, "Tokens a step (long prompts are prefilled in chunks)")
        ->check(CLI::Range(1, 1 << 20));
    auto* trace = demo_cmd->add_option("--trace", demo.trace,
                                       "A Mooncake-format trace (as kvcore simulate reads) instead of the built-in "
                                       "workload; each record one request at its timestamp (a second = 10 ticks), each 512-token block of "
                                       "its prompt a 16-token block (the sharing kept at 1/32 of the compute); default: none");
    demo_cmd->add_option("--requests", demo.requests, "With --trace: the first requests")
        ->check(CLI::Range(1, 100000))
        ->needs(trace);
    demo_cmd->add_option("--max-new-tokens", demo.max_new_tokens, "With --trace: output_length capped at this")
        ->check(CLI::Range(1, 4096))
        ->needs(trace);
    demo_cmd->add_option("--routing", demo.routing, "round-robin, kv-aware, or both (compared)")
        ->check(CLI::IsMember({"round-robin", "kv-aware", "both"}));
    demo_cmd->add_option("--metrics-dir", demo.metrics_dir, "Where metrics.prom and metrics.json go");
    demo_cmd->add_option("--seed", demo.seed, "Seed of the workload, the weights and the sampling");
    bool no_progress = false;
    demo_cmd->add_flag("--no-progress", no_progress, "No progress lines on stderr");
    demo_cmd->callback([&] {
        demo.progress = !no_progress;
        exit_code = run_demo(demo);
    });

    TourOptions tour;
    auto* tour_cmd = app.add_subcommand(
        "tour", "The pool up close: one KV block pool serving multi-turn chats (prefix reuse, block table, slot "
                "mapping, copy-on-write, vLLM hashes, KV events, hit rates), then one Prometheus scrape");
    tour_cmd->add_option("--chats", tour.chats, "Conversations, all opening with the same system prompt")
        ->check(CLI::Range(1, 16));
    tour_cmd->add_option("--turns", tour.turns, "Turns per conversation; each resends the conversation so far")
        ->check(CLI::Range(1, 16));
    tour_cmd->add_option("--blocks", tour.blocks,
                         "Blocks in the pool (16 tokens each, block 0 reserved); at least enough for the longest "
                         "conversation, fewer force evictions")
        ->check(CLI::Range(2, 1 << 20));
    std::string events = "array";
    tour_cmd->add_option("--events", events, "KV event encoding: array (tagged arrays) or map (\"type\" keys)")
        ->check(CLI::IsMember({"array", "map"}));
    bool no_prometheus = false;
    tour_cmd->add_flag("--no-prometheus", no_prometheus, "Leave out the Prometheus scrape");
    auto* lru = tour_cmd->add_flag("--lru", tour.lru,
                                   "Then run the stats recorder in a plain LRU cache that is not built on kvcore, "
                                   "and add it to the scrape");
    tour_cmd->add_option("--accesses", tour.accesses, "With --lru: lookups")->check(CLI::Range(1, 100000000))->needs(lru);
    tour_cmd->add_option("--keys", tour.keys, "With --lru: distinct keys (Zipf-distributed); the hot set moves halfway")
        ->check(CLI::Range(1, 1000000))
        ->needs(lru);
    tour_cmd->add_option("--capacity", tour.capacity, "With --lru: entries the cache holds")
        ->check(CLI::Range(1, 100000000))
        ->needs(lru);
    tour_cmd->add_option("--seed", tour.seed, "With --lru: random seed of the key stream")->needs(lru);
    tour_cmd->callback([&] {
        tour.events = events == "map" ? EventEncoding::kMap : EventEncoding::kArray;
        tour.prometheus = !no_prometheus;
        if (tour.blocks < tour_min_blocks(tour.turns)) {
            std::fprintf(stderr, "kvcore tour: --blocks %u is too few for --turns %u: the longest conversation "
                                 "needs --blocks %u or more\n",
                         tour.blocks, tour.turns, tour_min_blocks(tour.turns));
            exit_code = kExitUsage;
            return;
        }
        exit_code = run_tour(tour);
    });

    HashOptions hash;
    auto* hash_cmd = app.add_subcommand(
        "hash", "Hash token ids (decimal, whitespace-separated) from FILE or stdin: one unsigned 64-bit hash per "
                "full block, as vLLM publishes them in KV events");
    hash_cmd->add_option("input,--input", hash.input, "Token file; - reads stdin");
    hash_cmd->add_option("--algo", hash.algo, "sha256_cbor (vLLM) or xxh3")->check(CLI::IsMember({"sha256_cbor", "xxh3"}));
    hash_cmd->add_option("--seed", hash.seed, "Hash seed (vLLM's PYTHONHASHSEED)");
    hash_cmd->add_option("--block-size", hash.block_size, "Tokens per block")->check(CLI::Range(1, 4096));
    hash_cmd->add_option("--lora", hash.lora, "LoRA adapter name; default: none");
    hash_cmd->add_option("--salt", hash.salt, "Cache salt; default: none");
    hash_cmd->callback([&] { exit_code = run_hash(hash); });

    SimulateOptions sim;
    auto* sim_cmd = app.add_subcommand("simulate", "Replay a Mooncake-format trace through a pool, one line at a time");
    sim_cmd->footer(
        "Trace: one JSON object a line: {\"timestamp\", \"input_length\", \"output_length\", \"hash_ids\"}.\n"
        "input_length: an integer in 1.." + std::to_string(kMaxTraceTokens) +
        " tokens. hash_ids: ceil(input_length / " + std::to_string(kTraceBlockTokens) +
        ") integers in 0.." + std::to_string(kMaxHashId) + ", one per " + std::to_string(kTraceBlockTokens) +
        "-token block.\ntimestamp (optional): a number >= 0, never decreasing. output_length (optional): an integer "
        "in 0.." + std::to_string(kMaxTraceTokens) + ".\nLines of at most " + std::to_string(kMaxTraceLineBytes) +
        " bytes; blank lines are skipped, other fields ignored.\nThe first bad record stops the run with exit "
        "code 2 and names file:line and the field.\nProgress goes to stderr when it is a terminal.\n\n" + kExitCodes);
    sim_cmd->add_option("--trace", sim.trace, "JSONL trace; - reads stdin")->required();
    sim_cmd->add_option("--blocks", sim.blocks, "Blocks in the pool (block 0 reserved)")->check(CLI::Range(2, 1 << 30));
    sim_cmd->add_option("--block-size", sim.block_size, "Tokens per block")->check(CLI::Range(1, 4096));
    sim_cmd->add_option("--algo", sim.algo, "sha256_cbor or xxh3")->check(CLI::IsMember({"sha256_cbor", "xxh3"}));
    sim_cmd->add_option("--policy", sim.policy,
                        "Eviction policy of the pool's free cached blocks; opt: the offline optimum (Belady: evict the "
                        "block next used farthest ahead), the ceiling for every policy, computed from the whole trace")
        ->check(CLI::IsMember(simulate_policies()));
    sim_cmd->add_flag("--json", sim.json, "Print the summary as JSON (the pool's snapshot and the run's figures)");
    sim_cmd->add_option("--mode", sim.mode,
                        "engine: requests arrive at their timestamps, a continuous-batching scheduler serves them, "
                        "they decode output_length tokens and leave (hit rates as a serving system sees them); "
                        "replay: each request admitted and freed alone, in order")
        ->check(CLI::IsMember({"engine", "replay"}));
    sim_cmd->add_option("--max-batch", sim.max_batch, "Engine: sequences a step")->check(CLI::Range(1, 65536));
    sim_cmd->add_option("--max-batch-tokens", sim.max_batch_tokens, "Engine: tokens a step (long prompts in chunks)")
        ->check(CLI::Range(1, 1 << 24));
    sim_cmd->add_option("--max-queue", sim.max_queue,
                        "Engine: waiting requests; past it the trace waits (back-pressure, counted)")
        ->check(CLI::Range(1, 1 << 24));
    sim_cmd->add_option("--step-ms", sim.step_ms, "Engine cost model: milliseconds a step costs")->check(CLI::Range(0.0, 1e6));
    sim_cmd->add_option("--token-us", sim.token_us, "Engine cost model: microseconds a computed token adds to its step")
        ->check(CLI::Range(0.0, 1e6));
    sim_cmd->callback([&] {
        if (sim.policy == "opt" && sim.mode != "replay") {
            std::fprintf(stderr, "kvcore simulate: --policy opt needs --mode replay (the optimum is computed offline "
                                 "over one-at-a-time requests)\n");
            exit_code = kExitUsage;
            return;
        }
        exit_code = run_simulate(sim);
    });

    ServeIndexOptions serve;
    auto* serve_cmd = app.add_subcommand(
        "serve-index", "The router's cluster KV-block index: engines' KV events in over ZeroMQ, pod scores by cached "
                       "prefix out over HTTP (POST /score, GET /metrics, GET /healthz); stops on SIGINT/SIGTERM");
    serve_cmd->footer(
        "POST /score takes {\"model\": M, \"token_ids\": [..] or \"block_hashes\": [..], \"pods\": [..], "
        "\"lora_name\": L, \"cache_salt\": S}\nand answers {\"model\", \"prompt_blocks\", \"scores\": {pod: score}, "
        "\"blocks\": {pod: cached blocks}};\nwithout pods, the pods holding the prompt's first block. Errors: 4xx with "
        "{\"error\": \"...\"}.\n\n" + std::string(kExitCodes));
    serve_cmd->add_option("--zmq-bind", serve.zmq_bind,
                          "Bind mode: a ZeroMQ endpoint engines connect their PUB to, e.g. tcp://0.0.0.0:5557 "
                          "(port 0: a free one, printed on start); default: none");
    serve_cmd->add_option("--engine", serve.engines,
                          "Connect mode, repeatable: an engine's PUB endpoint, optionally with its replay ROUTER: "
                          "tcp://HOST:PORT[,replay=tcp://HOST:PORT]; default: none");
    serve_cmd->add_option("--pod-replay", serve.pod_replays,
                          "Bind mode, repeatable: POD=ENDPOINT, the replay ROUTER of the engine publishing as POD; "
                          "default: none");
    serve_cmd->add_option("--http", serve.http, "HOST:PORT the HTTP API listens on (port 0: a free one, printed on start)");
    serve_cmd->add_option("--hash", serve.algo, "The engines' block hash: sha256_cbor (vLLM) or xxh3")
        ->check(CLI::IsMember({"sha256_cbor", "xxh3"}));
    serve_cmd->add_option("--seed", serve.seed, "Hash seed (vLLM's PYTHONHASHSEED)");
    serve_cmd->add_option("--block-size", serve.block_size, "Tokens per block of the index's keys")
        ->check(CLI::Range(1, 1 << 20));
    serve_cmd->add_option("--engine-keys", serve.engine_keys,
                          "direct: the engines' block hashes are the index's keys (needs sha256_cbor with the "
                          "engines' seed); mapped: keys recomputed from each event's tokens; auto: direct with "
                          "sha256_cbor, else mapped")
        ->check(CLI::IsMember(serve_index_engine_keys()));
    serve_cmd->add_option("--redis", serve.redis,
                          "Share the index with other replicas through Redis/Valkey at this URL "
                          "(redis://HOST:PORT[/DB], unix:///PATH); its maxmemory is the byte budget; default: none");
    serve_cmd->add_option("--score-cache", serve.score_cache,
                          "Prompts whose scores are cached (never stale; 30 s TTL; 0: off; not with --redis)");
    serve_cmd->add_option("--ingest-threads", serve.ingest_threads,
                          "Threads applying batches, pods sharded over them (0: on the subscriber's thread)")
        ->check(CLI::Range(0, 256));
    serve_cmd->add_option("--byte-budget", serve.byte_budget, "Bytes the index's entries may take, LRU past it (0: unbounded)");
    serve_cmd->add_option("--max-body-bytes", serve.max_body_bytes, "Largest request body (413 past it)")
        ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
    serve_cmd->add_option("--max-pods", serve.max_pods, "Most pods one /score request may name")->check(CLI::Range(1, 65535));
    serve_cmd->add_option("--max-models", serve.max_models,
                          "Most distinct model names /score requests may name (each costs the index an id)")
        ->check(CLI::Range(1, 32768));
    serve_cmd->add_option("--http-threads", serve.http_threads, "Threads answering HTTP requests")->check(CLI::Range(1, 256));
    serve_cmd->callback([&] { exit_code = run_serve_index(serve); });

    // CLI11 alone would answer an unknown command with "The following arguments were not expected".
    if (argc > 1 && argv[1][0] != '-') {
        const std::string word = argv[1];
        bool known = false;
        for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
            known = known || sub->check_name(word);
        }
        if (!known) {
            std::fprintf(stderr, "kvcore: unknown command \"%s\" (commands: version, demo, tour, hash, simulate, serve-index; see "
                                 "kvcore --help)\n", word.c_str());
            return kExitUsage;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; every other parse error is a usage error, whatever CLI11's own code.
        return app.exit(e) == 0 ? kExitOk : kExitUsage;
    } catch (const std::exception& e) {  // out of memory, most likely; never a raw terminate
        std::fprintf(stderr, "kvcore: %s\n", e.what());
        return kExitFailure;
    }
    return exit_code;
}
