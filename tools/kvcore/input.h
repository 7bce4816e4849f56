/* SPDX-License-Identifier: Apache-2.0 */
// Line-by-line reading of a file or stdin ("-") in fixed-size chunks, so a command's memory is bounded
// by its longest line, not by its input.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace kvcore::cli {

class LineReader {
public:
    enum class Result { kLine, kEnd, kTooLong, kError };

    // "-" reads stdin. Nothing is opened until open(). chunk_bytes: the read size (the fuzz target
    // makes it tiny, so that lines cross chunk boundaries).
    explicit LineReader(std::string path, size_t chunk_bytes = 64 * 1024);
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // False (and error() says why) for a missing or unreadable path or a directory.
    bool open();
    // The next line without its "\n" or "\r\n". kTooLong when it holds more than max_length bytes
    // (the line is then abandoned); kError when reading failed (error() says why).
    Result next(std::string& line, size_t max_length);

    const std::string& name() const { return name_; }  // the path, or "stdin"
    const std::string& error() const { return error_; }
    uint64_t line_number() const { return line_number_; }
    uint64_t bytes_read() const { return bytes_read_; }
    uint64_t size() const { return size_; }  // of a regular file; 0 when unknown (a pipe, a terminal)

private:
    bool fill();

    std::string path_, name_, error_;
    std::FILE* file_ = nullptr;
    std::vector<char> buffer_;
    size_t begin_ = 0, end_ = 0;
    bool eof_ = false;
    uint64_t line_number_ = 0, bytes_read_ = 0, size_ = 0;
};

}  // namespace kvcore::cli
