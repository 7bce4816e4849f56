// SPDX-License-Identifier: Apache-2.0
// kvcore: the command-line program. `kvcore demo` is the first thing a newcomer runs.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.h"
#include "kvcore/kvcore.h"

int main(int argc, char** argv) {
    CLI::App app{"kvcore - the KV cache core for LLM inference"};
    app.require_subcommand(1);

    auto* version = app.add_subcommand("version", "Print the library version");
    version->callback([] {
        std::printf("kvcore %s (ABI %d, header %s)\n", kvc_version_string(), KVC_VERSION_MAJOR,
                    kvc_version_number() == KVC_VERSION_NUMBER ? "matches" : "MISMATCH");
    });

    kvcore::cli::DemoOptions demo;
    int exit_code = 0;
    auto* demo_cmd = app.add_subcommand("demo", "Drive a cache through the stats recorder and show what it measured");
    demo_cmd->add_option("--accesses", demo.accesses, "Lookups to perform")->check(CLI::Range(1, 1000000000));
    demo_cmd->add_option("--keys", demo.keys, "Distinct keys (Zipf-distributed)")->check(CLI::Range(1, 100000000));
    demo_cmd->add_option("--capacity", demo.capacity, "Entries the LRU cache holds")->check(CLI::Range(1, 100000000));
    demo_cmd->add_option("--layers", demo.layers, "Layers to break hit rates down by")->check(CLI::Range(0, 4096));
    demo_cmd->add_option("--seed", demo.seed, "Random seed");
    demo_cmd->add_flag("!--no-prometheus", demo.prometheus, "Do not print the Prometheus text");
    demo_cmd->callback([&] { exit_code = kvcore::cli::run_demo(demo); });

    kvcore::cli::HashOptions hash;
    auto* hash_cmd = app.add_subcommand("hash", "Hash the token ids on stdin: one unsigned 64-bit hash per full block, "
                                                "as vLLM publishes them in KV events");
    hash_cmd->add_option("--algo", hash.algo, "sha256_cbor (vLLM) or xxh3")->check(CLI::IsMember({"sha256_cbor", "xxh3"}));
    hash_cmd->add_option("--seed", hash.seed, "Hash seed (vLLM's PYTHONHASHSEED)");
    hash_cmd->add_option("--block-size", hash.block_size, "Tokens per block")->check(CLI::Range(1, 4096));
    hash_cmd->add_option("--lora", hash.lora, "LoRA adapter name");
    hash_cmd->add_option("--salt", hash.salt, "Cache salt");
    hash_cmd->callback([&] { exit_code = kvcore::cli::run_hash(hash); });

    kvcore::cli::SimulateOptions sim;
    auto* sim_cmd = app.add_subcommand("simulate", "Replay a Mooncake-format trace through a pool");
    sim_cmd->add_option("--trace", sim.trace, "JSONL trace (timestamp, input_length, hash_ids)")->required();
    sim_cmd->add_option("--blocks", sim.blocks, "Blocks in the pool")->check(CLI::Range(2, 1 << 30));
    sim_cmd->add_option("--block-size", sim.block_size, "Tokens per block")->check(CLI::Range(1, 4096));
    sim_cmd->add_option("--algo", sim.algo, "sha256_cbor or xxh3")->check(CLI::IsMember({"sha256_cbor", "xxh3"}));
    sim_cmd->callback([&] { exit_code = kvcore::cli::run_simulate(sim); });

    CLI11_PARSE(app, argc, argv);
    return exit_code;
}
