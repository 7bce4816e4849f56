// SPDX-License-Identifier: Apache-2.0
// `kvcore simulate`'s record parser on arbitrary lines: it never throws, and a record it accepts is a
// prompt of 1..kMaxTraceTokens valid token ids with its time never going back.
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "trace_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace kvcore::cli;
    if (size > kMaxTraceLineBytes) return 0;  // the reader refuses longer lines before parsing
    const std::string line(reinterpret_cast<const char*>(data), size);
    double last_timestamp = 0;
    std::vector<int32_t> tokens;
    std::string error;
    try {
        error = parse_trace_record(line, last_timestamp, tokens);
    } catch (...) {
        FUZZ_REQUIRE(!"parse_trace_record threw");
    }
    if (!error.empty()) return 0;
    FUZZ_REQUIRE(!tokens.empty() && tokens.size() <= kMaxTraceTokens);
    for (size_t i = 0; i < tokens.size(); ++i) {
        FUZZ_REQUIRE(tokens[i] >= 0);
        if (i % kTraceBlockTokens != 0) FUZZ_REQUIRE(tokens[i] == static_cast<int32_t>(i % kTraceBlockTokens));
    }
    FUZZ_REQUIRE(last_timestamp >= 0);
    return 0;
}
