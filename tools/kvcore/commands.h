// The kvcore program's sub-commands. Each returns the process exit code.
#pragma once

#include <cstdint>

namespace kvcore::cli {

struct DemoOptions {
    uint64_t accesses = 200000;
    uint32_t keys = 20000;
    uint32_t capacity = 4000;
    uint32_t layers = 4;
    uint64_t seed = 42;
    bool prometheus = true;
};

int run_demo(const DemoOptions& options);

}  // namespace kvcore::cli
