// SPDX-License-Identifier: Apache-2.0
// The kvcore program's LineReader (tools/kvcore/input.cpp), which `simulate` and `hash` read every input
// through, against a plain split of the same bytes: the same lines in order ("\n" ends a line, one "\r"
// before it is dropped, a last line may lack its "\n"), the same line numbers, and kTooLong for the first
// line over the limit. Reads use chunks of 1..16 bytes, so lines cross chunk boundaries everywhere.
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.h"
#include "input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using kvcore::cli::LineReader;
    if (size < 2) return 0;
    const size_t chunk = 1 + data[0] % 16;
    const size_t max_length = data[1] % 41;
    const std::string_view content(reinterpret_cast<const char*>(data + 2), size - 2);

    // The bytes as a file LineReader opens by path, without touching the disk.
    const int fd = memfd_create("line_reader_fuzz", 0);
    FUZZ_REQUIRE(fd >= 0);
    FUZZ_REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    LineReader reader("/proc/self/fd/" + std::to_string(fd), chunk);
    FUZZ_REQUIRE(reader.open());
    FUZZ_REQUIRE(reader.size() == content.size());

    size_t begin = 0;
    uint64_t number = 0;
    std::string line;
    for (;;) {
        const LineReader::Result got = reader.next(line, max_length);
        if (begin == content.size()) {  // everything was read
            FUZZ_REQUIRE(got == LineReader::Result::kEnd);
            break;
        }
        const size_t newline = content.find('\n', begin);
        const size_t end = newline == std::string_view::npos ? content.size() : newline;
        ++number;
        FUZZ_REQUIRE(reader.line_number() == number);
        if (end - begin > max_length) {
            FUZZ_REQUIRE(got == LineReader::Result::kTooLong);
            break;
        }
        std::string_view expected = content.substr(begin, end - begin);
        if (!expected.empty() && expected.back() == '\r') expected.remove_suffix(1);
        FUZZ_REQUIRE(got == LineReader::Result::kLine);
        FUZZ_REQUIRE(line == expected);
        begin = newline == std::string_view::npos ? content.size() : newline + 1;
    }
    close(fd);
    return 0;
}
