// SPDX-License-Identifier: Apache-2.0
// `kvcore hash`, `kvcore simulate` and the demo's pool section: all through the public C API.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "kvcore/kvcore.h"

namespace kvcore::cli {

namespace {

bool ok(kvc_status status, const char* what) {
    if (status == KVC_OK) return true;
    std::fprintf(stderr, "kvcore: %s failed: %s: %s\n", what, kvc_status_string(status), kvc_last_error_message());
    return false;
}

kvc_hash_algo algo_from(const std::string& name) { return name == "sha256_cbor" ? KVC_HASH_SHA256_CBOR : KVC_HASH_XXH3; }

// Owns the C handles of one run.
struct PoolRun {
    kvc_pool* pool = nullptr;
    ~PoolRun() { kvc_pool_destroy(pool); }
};

void print_pool_summary(kvc_pool* pool, double seconds, uint64_t requests, uint64_t blocks_touched) {
    kvc_stats* s = nullptr;
    if (!ok(kvc_pool_snapshot(pool, &s), "snapshot")) return;
    auto row = [](const char* name, const std::string& v) { std::printf("  %-30s %s\n", name, v.c_str()); };
    auto pct = [](double r) {
        char b[32];
        std::snprintf(b, sizeof b, "%.2f %%", r * 100);
        return std::string(b);
    };
    row("requests", std::to_string(requests));
    row("token hit rate", pct(kvc_stats_token_hit_rate(s)) + " (" + std::to_string(kvc_stats_tokens_hit(s)) + " of " +
                              std::to_string(kvc_stats_tokens_queried(s)) + " prompt tokens)");
    row("block hit rate", pct(kvc_stats_hit_rate(s)) + " (" + std::to_string(kvc_stats_hits(s)) + " reused, " +
                              std::to_string(kvc_stats_misses(s)) + " missed)");
    row("token hit rate, last requests", pct(kvc_pool_window_token_hit_rate(pool)));
    row("evictions", std::to_string(kvc_stats_evictions(s)));
    row("blocks cached at the end", std::to_string(kvc_pool_num_cached_blocks(pool)));
    if (seconds > 0) {
        char b[64];
        std::snprintf(b, sizeof b, "%.0f requests/s, %.1f M blocks/s", requests / seconds, blocks_touched / seconds / 1e6);
        row("throughput", b);
    }
    kvc_stats_destroy(s);
}

}  // namespace

int run_hash(const HashOptions& o) {
    std::vector<int32_t> tokens;
    long long t = 0;
    while (std::cin >> t) {
        if (t < 0 || t > INT32_MAX) {
            std::fprintf(stderr, "kvcore hash: token %lld is not a token id (0..2^31-1)\n", t);
            return 2;
        }
        tokens.push_back(static_cast<int32_t>(t));
    }
    if (!std::cin.eof()) {
        std::fprintf(stderr, "kvcore hash: stdin must hold whitespace-separated token ids\n");
        return 2;
    }
    kvc_sequence_options* keys = nullptr;
    if (!ok(kvc_sequence_options_create(&keys), "options")) return 1;
    bool good = (o.lora.empty() || ok(kvc_sequence_options_set_lora_name(keys, o.lora.c_str()), "lora")) &&
                (o.salt.empty() || ok(kvc_sequence_options_set_cache_salt(keys, o.salt.c_str()), "salt"));
    size_t n = 0;
    std::vector<uint64_t> hashes;
    good = good && ok(kvc_hash_blocks(algo_from(o.algo), o.seed.c_str(), o.block_size, tokens.data(), tokens.size(),
                                      keys, nullptr, 0, &n), "hash");
    if (good) {
        hashes.resize(n);
        good = ok(kvc_hash_blocks(algo_from(o.algo), o.seed.c_str(), o.block_size, tokens.data(), tokens.size(), keys,
                                  hashes.data(), hashes.size(), &n), "hash");
    }
    kvc_sequence_options_destroy(keys);
    if (!good) return 1;
    for (uint64_t h : hashes) std::printf("%llu\n", static_cast<unsigned long long>(h));
    return 0;
}

int run_simulate(const SimulateOptions& o) {
    std::ifstream in(o.trace);
    if (!in) {
        std::fprintf(stderr, "kvcore simulate: cannot open %s\n", o.trace.c_str());
        return 2;
    }
    // Mooncake trace: one request a line; each hash_id is one 512-token block of the prompt.
    constexpr uint32_t kTraceBlock = 512;
    struct Request {
        std::vector<int32_t> tokens;
    };
    std::vector<Request> requests;
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        try {
            const auto j = nlohmann::json::parse(line);
            const auto ids = j.at("hash_ids").get<std::vector<int64_t>>();
            const size_t length = j.at("input_length").get<size_t>();
            Request r;
            r.tokens.reserve(length);
            // A distinct, deterministic run of token ids per hash id; the last run is cut at input_length.
            for (size_t i = 0; i < ids.size() && r.tokens.size() < length; ++i) {
                for (uint32_t k = 0; k < kTraceBlock && r.tokens.size() < length; ++k) {
                    r.tokens.push_back(static_cast<int32_t>((static_cast<uint64_t>(ids[i]) * kTraceBlock + k) % INT32_MAX));
                }
            }
            if (!r.tokens.empty()) requests.push_back(std::move(r));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "kvcore simulate: %s:%zu: %s\n", o.trace.c_str(), line_no, e.what());
            return 2;
        }
    }
    kvc_pool_options* options = nullptr;
    PoolRun run;
    bool good = ok(kvc_pool_options_create(&options), "options") &&
                ok(kvc_pool_options_set_num_blocks(options, o.blocks), "--blocks") &&
                ok(kvc_pool_options_set_block_size(options, o.block_size), "--block-size") &&
                ok(kvc_pool_options_set_hash(options, algo_from(o.algo), "42"), "--algo") &&
                ok(kvc_pool_create(options, &run.pool), "pool");
    kvc_pool_options_destroy(options);
    if (!good) return 1;

    std::printf("kvcore simulate: %zu requests from %s through %u blocks of %u tokens (%s)\n", requests.size(),
                o.trace.c_str(), o.blocks, o.block_size, o.algo.c_str());
    uint64_t skipped = 0, blocks_touched = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const Request& r : requests) {
        kvc_sequence_id seq = 0;
        kvc_status st = kvc_pool_sequence_create(run.pool, r.tokens.data(), r.tokens.size(), nullptr, &seq);
        if (st == KVC_ERR_CAPACITY) {  // longer than the whole pool
            ++skipped;
            continue;
        }
        if (!ok(st, "sequence_create")) return 1;
        st = kvc_pool_allocate(run.pool, seq, r.tokens.size(), nullptr);
        if (st != KVC_OK && st != KVC_ERR_CAPACITY) return ok(st, "allocate") ? 0 : 1;
        if (st == KVC_ERR_CAPACITY) ++skipped;
        blocks_touched += (r.tokens.size() + o.block_size - 1) / o.block_size;
        // The request finishes at once: its blocks go back to the free lists and stay hit-able.
        if (!ok(kvc_pool_sequence_free(run.pool, seq), "free")) return 1;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    print_pool_summary(run.pool, seconds, requests.size() - skipped, blocks_touched);
    if (skipped > 0) std::printf("  %-30s %llu (longer than the pool)\n", "requests skipped", (unsigned long long)skipped);
    return 0;
}

int run_pool_demo(kvc_exposition* scrape) {
    // A chat service: every conversation starts with one system prompt; each turn resends the history.
    kvc_pool_options* options = nullptr;
    PoolRun run;
    bool good = ok(kvc_pool_options_create(&options), "options") &&
                ok(kvc_pool_options_set_num_blocks(options, 2048), "blocks") &&
                ok(kvc_pool_options_set_block_size(options, 16), "block size") &&
                ok(kvc_pool_create(options, &run.pool), "pool");
    kvc_pool_options_destroy(options);
    if (!good) return 1;
    std::printf("\npool: 2047 blocks of 16 tokens; 64 conversations of 6 turns share a 256-token system prompt\n");
    std::vector<int32_t> system_prompt(256);
    for (size_t i = 0; i < system_prompt.size(); ++i) system_prompt[i] = static_cast<int32_t>(i + 1);
    uint64_t requests = 0;
    std::vector<std::vector<int32_t>> histories(64, system_prompt);
    for (int turn = 0; turn < 6; ++turn) {
        for (size_t c = 0; c < histories.size(); ++c) {
            auto& h = histories[c];
            for (int k = 0; k < 40; ++k) h.push_back(static_cast<int32_t>(10000 + c * 1000 + turn * 50 + k));  // user
            kvc_sequence_id seq = 0;
            if (!ok(kvc_pool_sequence_create(run.pool, h.data(), h.size(), nullptr, &seq), "sequence")) return 1;
            const kvc_status st = kvc_pool_allocate(run.pool, seq, h.size(), nullptr);
            if (st == KVC_OK) {
                for (int k = 0; k < 60; ++k) {  // the reply, one token at a time
                    const int32_t token = static_cast<int32_t>(500000 + c * 1000 + turn * 100 + k);
                    if (!ok(kvc_pool_append(run.pool, seq, &token, 1), "append")) return 1;
                    h.push_back(token);
                }
            } else if (st != KVC_ERR_CAPACITY && !ok(st, "allocate")) {
                return 1;
            }
            ++requests;
            if (!ok(kvc_pool_sequence_free(run.pool, seq), "free")) return 1;
        }
    }
    print_pool_summary(run.pool, 0, requests, 0);
    kvc_stats* stats = nullptr;
    if (!ok(kvc_pool_snapshot(run.pool, &stats), "snapshot")) return 1;
    const bool added = ok(kvc_exposition_add(scrape, stats), "exposition");
    kvc_stats_destroy(stats);
    return added ? 0 : 1;
}

}  // namespace kvcore::cli
