/* SPDX-License-Identifier: Apache-2.0 */
// A Mooncake trace record as `kvcore simulate` reads it, and the bounds it accepts (`kvcore simulate
// --help` prints the same figures).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kvcore::cli {

// A Mooncake hash id stands for one block of this many prompt tokens.
inline constexpr uint32_t kTraceBlockTokens = 512;
// 4 Mi tokens: above every served context window, and it keeps one request's token ids at 16 MiB.
inline constexpr uint64_t kMaxTraceTokens = uint64_t{1} << 22;
// A hash id becomes a token id (the first token of its block), so it must fit one: 0..2^31-1.
inline constexpr uint64_t kMaxHashId = INT32_MAX;
// The longest good record (8192 ids of 10 digits) is about 100 KB; a longer line is not a record.
inline constexpr size_t kMaxTraceLineBytes = size_t{1} << 20;

// Checks every field of one record (a JSON line: input_length, hash_ids, optional timestamp and
// output_length) and fills `tokens` with the prompt it stands for: each hash id becomes a block of
// kTraceBlockTokens tokens. Returns what is wrong, naming the field, or "" when the record is good.
// `last_timestamp` carries the previous record's time (records must not go back in time); afterwards it is
// this record's (the previous one's when it has none). `output_length` (may be null) gets the record's
// output_length (0 when absent).
[[nodiscard]] std::string parse_trace_record(const std::string& line, double& last_timestamp,
                                             std::vector<int32_t>& tokens, uint64_t* output_length = nullptr);

class LineReader;
enum class TraceRead { kRecord, kEnd, kBad };
// The next record of a trace: blank lines skipped, every field checked by parse_trace_record. kBad: error
// says "file:line: what is wrong" (or why reading failed).
[[nodiscard]] TraceRead read_trace_record(LineReader& reader, std::string& line, double& last_timestamp,
                                          std::vector<int32_t>& tokens, uint64_t& output_length, std::string& error);

}  // namespace kvcore::cli
