// SPDX-License-Identifier: Apache-2.0
// Reads a fuzzer's bytes as a stream of small integers; past the end it reads zeros, so every input,
// the empty one included, is a complete program for a target.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace kvcore::fuzz {

class FuzzInput {
public:
    FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    [[nodiscard]] bool done() const { return pos_ >= size_; }
    uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    // 0..bound-1 (bound >= 1).
    uint32_t below(uint32_t bound) { return (static_cast<uint32_t>(byte()) | static_cast<uint32_t>(byte()) << 8) % bound; }
    uint64_t u64() {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(byte()) << (8 * i);
        return v;
    }

private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

// A broken invariant is a finding: say which and abort, so libFuzzer saves the input.
[[noreturn]] inline void invariant_failed(const char* file, int line, const char* what) {
    std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    std::abort();
}
#define FUZZ_REQUIRE(cond) \
    do { \
        if (!(cond)) ::kvcore::fuzz::invariant_failed(__FILE__, __LINE__, #cond); \
    } while (0)

}  // namespace kvcore::fuzz
