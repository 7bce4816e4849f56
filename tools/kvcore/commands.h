/* SPDX-License-Identifier: Apache-2.0 */
// The kvcore program's sub-commands. Each returns the process exit code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvcore/common.h"

namespace kvcore::cli {

// The exit codes `kvcore --help` documents.
enum ExitCode : int {
    kExitOk = 0,
    kExitUsage = 1,     // the command line was wrong
    kExitBadInput = 2,  // a trace, token file or other input was unreadable or invalid
    kExitFailure = 3,   // a library call failed where it should not (out of memory, a bug)
};

// Prints "kvcore <command>: <what> failed: <status>: <detail>" unless status is KVC_OK.
bool ok(kvc_status status, const char* command, const char* what);

enum class EventEncoding { kArray, kMap };

// `kvcore tour`: the pool up close (one pool, a few chats, block tables, hashes, events, one scrape).
struct TourOptions {
    uint32_t chats = 3;
    uint32_t turns = 4;
    uint32_t blocks = 48;
    EventEncoding events = EventEncoding::kArray;
    bool prometheus = true;
    // The optional second part: the stats recorder inside a plain LRU cache that is not built on kvcore.
    bool lru = false;
    uint64_t accesses = 200000;
    uint32_t keys = 20000;
    uint32_t capacity = 4000;
    uint64_t seed = 42;
};
// Smallest --blocks that lets every request of the tour run (the longest conversation plus a fork's copy).
uint32_t tour_min_blocks(uint32_t turns);
int run_tour(const TourOptions& options);

// `kvcore demo`, the main job: engine replicas (pool, session store, scheduler, reference decoder) serving
// a multi-tenant multi-turn chat workload, KV events over ZeroMQ into the cluster index, routing by the
// index against round-robin.
struct DemoOptions {
    uint32_t replicas = 4;
    uint32_t tenants = 4;
    uint32_t chats = 6;            // per tenant
    uint32_t turns = 4;            // per chat
    uint32_t blocks = 0;           // per replica's pool, 16 tokens each; 0: enough for the workload
    uint32_t store_mib = 64;       // per replica's session store (0: none)
    uint32_t max_batch = 16;       // sequences per step
    uint32_t max_batch_tokens = 512;
    std::string trace;             // a Mooncake trace instead of the built-in workload
    uint32_t requests = 16;        // with --trace: the first requests
    uint32_t max_new_tokens = 64;  // with --trace: output_length capped at this
    std::string routing = "both";  // round-robin, kv-aware or both
    std::string metrics_dir = "kvcore-demo";
    uint64_t seed = 42;
    bool progress = true;
};
int run_demo(const DemoOptions& options);

struct HashOptions {
    std::string input = "-";
    std::string algo = "sha256_cbor";
    std::string seed = "42";
    uint32_t block_size = 16;
    std::string lora, salt;
};
int run_hash(const HashOptions& options);

struct SimulateOptions {
    std::string trace;
    uint32_t blocks = 8192;
    uint32_t block_size = 512;
    std::string algo = "xxh3";
    std::string policy = "lru";  // an eviction::Kind name, or "opt" (the offline optimum; replay mode)
    bool json = false;
    std::string mode = "engine";  // engine: served by a scheduler; replay: one request at a time
    uint32_t max_batch = 256;
    uint32_t max_batch_tokens = 8192;
    uint32_t max_queue = 256;
    double step_ms = 5;       // the cost model of a step: fixed part
    double token_us = 10;     // and per token computed
};
// What --policy accepts: every eviction policy's name, then "opt".
std::vector<std::string> simulate_policies();
int run_simulate(const SimulateOptions& options);

struct ServeIndexOptions {
    std::string zmq_bind;                  // bind mode: engines connect here
    std::vector<std::string> engines;      // connect mode: ENDPOINT[,replay=ENDPOINT]
    std::vector<std::string> pod_replays;  // bind mode: POD=ENDPOINT
    std::string http = "127.0.0.1:8080";
    std::string algo = "sha256_cbor";
    std::string seed = "42";
    uint32_t block_size = 16;
    std::string engine_keys = "auto";  // auto: direct with sha256_cbor, mapped with xxh3
    std::string redis;             // "": entries in this process
    uint32_t score_cache = 0;      // prompts kept by the score cache (0: off)
    uint32_t ingest_threads = 0;
    uint64_t byte_budget = 0;
    size_t max_body_bytes = 4u << 20;
    uint32_t max_pods = 4096;    // per /score request
    uint32_t max_models = 1024;  // distinct models /score may name
    uint32_t http_threads = 4;
};
std::vector<std::string> serve_index_engine_keys();
int run_serve_index(const ServeIndexOptions& options);

}  // namespace kvcore::cli
