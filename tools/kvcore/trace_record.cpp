// SPDX-License-Identifier: Apache-2.0
// One Mooncake trace record, checked field by field (tests/fuzz/trace_record_fuzz.cpp fuzzes it).
#include "trace_record.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "input.h"

namespace kvcore::cli {

namespace {

using nlohmann::json;

// A value quoted in an error message, cut short so that a wrong field never floods the terminal.
std::string quote(const json& value) {
    std::string text = value.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return text;
}

// An integer field in [low, high]; on failure, what is wrong with it.
bool integer_in(const json& value, uint64_t low, uint64_t high, uint64_t& out) {
    if (!value.is_number_unsigned()) return false;  // floats, negatives, strings, booleans
    out = value.get<uint64_t>();
    return out >= low && out <= high;
}

}  // namespace

std::string parse_trace_record(const std::string& line, double& last_timestamp, std::vector<int32_t>& tokens,
                               uint64_t* output_length_out) {
    json record;
    try {
        record = json::parse(line);
    } catch (const json::parse_error& e) {
        return "not valid JSON (at byte " + std::to_string(e.byte) + ")";
    } catch (const json::out_of_range&) {  // a number past a double's range, such as 1e400 (found by fuzzing)
        return "a number is out of range (larger than any field allows)";
    }
    if (!record.is_object()) return "not a JSON object";

    if (const auto it = record.find("timestamp"); it != record.end()) {
        if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0) {
            return "\"timestamp\": " + quote(*it) + " is not a non-negative number";
        }
        const double ts = it->get<double>();
        if (ts < last_timestamp) {
            return "\"timestamp\": " + quote(*it) + " is earlier than the record before it (a trace is replayed "
                   "in time order)";
        }
        last_timestamp = ts;
    }
    uint64_t output_length = 0;
    if (const auto it = record.find("output_length"); it != record.end() &&
                                                      !integer_in(*it, 0, kMaxTraceTokens, output_length)) {
        return "\"output_length\": " + quote(*it) + " is not an integer in 0.." + std::to_string(kMaxTraceTokens);
    }

    const auto length_it = record.find("input_length");
    if (length_it == record.end()) return "\"input_length\" is missing";
    uint64_t input_length = 0;
    if (!integer_in(*length_it, 1, kMaxTraceTokens, input_length)) {
        return "\"input_length\": " + quote(*length_it) + " is not an integer in 1.." + std::to_string(kMaxTraceTokens);
    }

    const auto ids_it = record.find("hash_ids");
    if (ids_it == record.end()) return "\"hash_ids\" is missing";
    if (!ids_it->is_array()) return "\"hash_ids\": " + quote(*ids_it) + " is not an array";
    const uint64_t expected = (input_length + kTraceBlockTokens - 1) / kTraceBlockTokens;
    if (ids_it->size() != expected) {
        return "\"hash_ids\" has " + std::to_string(ids_it->size()) + " entries; input_length " +
               std::to_string(input_length) + " needs " + std::to_string(expected) + " (one per " +
               std::to_string(kTraceBlockTokens) + " tokens)";
    }

    tokens.resize(input_length);
    for (size_t i = 0; i < ids_it->size(); ++i) {
        const json& id_value = (*ids_it)[i];
        uint64_t id = 0;
        if (!integer_in(id_value, 0, kMaxHashId, id)) {
            return "\"hash_ids\"[" + std::to_string(i) + "]: " + quote(id_value) + " is not an integer in 0.." +
                   std::to_string(kMaxHashId);
        }
        // The block's first token is its id, the rest its offsets: equal ids give equal blocks, different
        // ids different ones, and the pool's chained hashes tell apart equal blocks behind different parents.
        const size_t first = i * kTraceBlockTokens;
        const size_t end = std::min<size_t>(first + kTraceBlockTokens, input_length);
        tokens[first] = static_cast<int32_t>(id);
        for (size_t t = first + 1; t < end; ++t) tokens[t] = static_cast<int32_t>(t - first);
    }
    if (output_length_out != nullptr) *output_length_out = output_length;
    return "";
}

TraceRead read_trace_record(LineReader& reader, std::string& line, double& last_timestamp, std::vector<int32_t>& tokens,
                            uint64_t& output_length, std::string& error) {
    for (;;) {
        const LineReader::Result got = reader.next(line, kMaxTraceLineBytes);
        if (got == LineReader::Result::kEnd) return TraceRead::kEnd;
        std::string what;
        if (got == LineReader::Result::kError) {
            what = reader.error();
        } else if (got == LineReader::Result::kTooLong) {
            what = "line longer than " + std::to_string(kMaxTraceLineBytes) + " bytes, not a trace record";
        } else if (line.find_first_not_of(" \t") == std::string::npos) {
            continue;  // blank lines separate nothing
        } else {
            what = parse_trace_record(line, last_timestamp, tokens, &output_length);
        }
        if (what.empty()) return TraceRead::kRecord;
        error = reader.name() + ":" + std::to_string(reader.line_number()) + ": " + what;
        return TraceRead::kBad;
    }
}

}  // namespace kvcore::cli
