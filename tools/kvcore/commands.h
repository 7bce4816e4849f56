/* SPDX-License-Identifier: Apache-2.0 */
// The kvcore program's sub-commands. Each returns the process exit code.
#pragma once

#include <cstdint>
#include <string>

#include "kvcore/stats.h"

namespace kvcore::cli {

struct DemoOptions {
    uint64_t accesses = 200000;
    uint32_t keys = 20000;
    uint32_t capacity = 4000;
    uint32_t layers = 4;
    uint64_t seed = 42;
    bool prometheus = true;
};

// The LRU demo, then the pool demo, then (unless told not to) one Prometheus exposition of both.
int run_demo(const DemoOptions& options);
// Adds the pool's final snapshot to `scrape`.
int run_pool_demo(kvc_exposition* scrape);

struct HashOptions {
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
};
int run_simulate(const SimulateOptions& options);

}  // namespace kvcore::cli
