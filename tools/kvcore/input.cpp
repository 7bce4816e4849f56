// SPDX-License-Identifier: Apache-2.0
#include "input.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace kvcore::cli {

LineReader::LineReader(std::string path, size_t chunk_bytes)
    : path_(std::move(path)), name_(path_ == "-" ? "stdin" : path_), buffer_(chunk_bytes > 0 ? chunk_bytes : 1) {}

LineReader::~LineReader() {
    if (file_ != nullptr && file_ != stdin) std::fclose(file_);
}

bool LineReader::open() {
    file_ = path_ == "-" ? stdin : std::fopen(path_.c_str(), "rb");
    if (file_ == nullptr) {
        error_ = std::strerror(errno);
        return false;
    }
    struct stat st {};
    if (fstat(fileno(file_), &st) != 0) {
        error_ = std::strerror(errno);
        return false;
    }
    // fopen accepts a directory; the first read would fail with a less helpful EISDIR.
    if (S_ISDIR(st.st_mode)) {
        error_ = "is a directory, not a file";
        return false;
    }
    if (S_ISREG(st.st_mode)) size_ = static_cast<uint64_t>(st.st_size);
    return true;
}

// Refills the buffer, which next() has emptied into its line.
bool LineReader::fill() {
    if (eof_) return false;
    const size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_);
    begin_ = 0;
    end_ = n;
    bytes_read_ += n;
    if (n == 0) {
        eof_ = true;
        if (std::ferror(file_)) error_ = std::strerror(errno);
    }
    return n > 0;
}

LineReader::Result LineReader::next(std::string& line, size_t max_length) {
    line.clear();
    for (;;) {
        const char* start = buffer_.data() + begin_;
        const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
        const size_t take = newline != nullptr ? static_cast<size_t>(newline - start) : end_ - begin_;
        if (line.size() + take > max_length) {
            ++line_number_;
            return Result::kTooLong;
        }
        line.append(start, take);
        if (newline != nullptr) {
            begin_ += take + 1;
            break;
        }
        if (!fill()) {
            if (!error_.empty()) {
                ++line_number_;  // the line being read
                return Result::kError;
            }
            if (line.empty()) return Result::kEnd;
            break;  // a last line without "\n"
        }
    }
    ++line_number_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return Result::kLine;
}

}  // namespace kvcore::cli
