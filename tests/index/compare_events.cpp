// SPDX-License-Identifier: Apache-2.0
// Decodes the batches that make_events.py wrote with Python's msgpack and compares each with what the
// script says it holds, field by field (NAME.json), or checks that it is refused with the expected
// message (NAME.error). Exits 1 naming the first difference of each batch, 0 when all agree.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "index/event_decoder.h"

using namespace kvcore::index;
using nlohmann::json;

namespace {

const char* kind_name(CacheSpecKind k) {
    switch (k) {
        case CacheSpecKind::kUnspecified: return "UNSPECIFIED";
        case CacheSpecKind::kFullAttention: return "FULL_ATTENTION";
        case CacheSpecKind::kSlidingWindow: return "SLIDING_WINDOW";
        case CacheSpecKind::kOther: return "OTHER";
    }
    return "?";
}

const char* locality_name(Locality l) {
    switch (l) {
        case Locality::kUnspecified: return "UNSPECIFIED";
        case Locality::kLocal: return "LOCAL";
        case Locality::kRemote: return "REMOTE";
        case Locality::kOther: return "OTHER";
    }
    return "?";
}

std::string hex(const std::string& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

template <class T>
json optional(const std::optional<T>& v) {
    return v ? json(*v) : json(nullptr);
}

json to_json(const Event& event) {
    if (const auto* s = std::get_if<BlockStored>(&event)) {
        json extra = json::array();
        for (const auto& block : s->extra_keys) {
            if (!block) {
                extra.push_back(nullptr);
                continue;
            }
            json keys = json::array();
            for (const ExtraKey& k : *block) {
                if (k.kind == ExtraKey::Kind::kText) keys.push_back({"text", k.text});
                if (k.kind == ExtraKey::Kind::kBytes) keys.push_back({"bytes", hex(k.text)});
                if (k.kind == ExtraKey::Kind::kMultimodal) keys.push_back({"mm", k.text, k.offset});
            }
            extra.push_back(keys);
        }
        return {{"type", "BlockStored"},
                {"block_hashes", s->block_hashes},
                {"parent_block_hash", optional(s->parent_block_hash)},
                {"token_ids", s->token_ids},
                {"block_size", s->block_size},
                {"lora_id", optional(s->lora_id)},
                {"lora_name", s->lora_name},
                {"medium", medium_name(s->medium)},
                {"extra_keys", extra},
                {"group_idx", s->group_idx},
                {"kv_cache_spec_kind", kind_name(s->spec_kind)},
                {"kv_cache_spec_sliding_window", optional(s->sliding_window)},
                {"locality", locality_name(s->locality)}};
    }
    if (const auto* r = std::get_if<BlockRemoved>(&event)) {
        return {{"type", "BlockRemoved"},
                {"block_hashes", r->block_hashes},
                {"medium", medium_name(r->medium)},
                {"group_idx", r->group_idx},
                {"locality", locality_name(r->locality)}};
    }
    return {{"type", "AllBlocksCleared"}};
}

// The first path where `got` and `want` differ, or "" when equal. Numbers compare by value, so that a
// Python int and a C++ uint64 of the same value agree.
std::string first_difference(const json& got, const json& want, const std::string& path) {
    if (got.is_number() && want.is_number()) {
        auto negative = [](const json& v) { return !v.is_number_unsigned() && v.get<int64_t>() < 0; };
        bool same;
        if (got.is_number_float() || want.is_number_float()) {
            same = got.get<double>() == want.get<double>();
        } else if (negative(got) || negative(want)) {
            same = negative(got) == negative(want) && got.get<int64_t>() == want.get<int64_t>();
        } else {
            same = got.get<uint64_t>() == want.get<uint64_t>();
        }
        return same ? "" : path + ": decoded " + got.dump() + ", written " + want.dump();
    }
    if (got.type() != want.type()) return path + ": decoded " + got.dump() + ", written " + want.dump();
    if (got.is_array()) {
        if (got.size() != want.size()) {
            return path + ": decoded " + std::to_string(got.size()) + " elements, written " + std::to_string(want.size());
        }
        for (size_t i = 0; i < got.size(); ++i) {
            std::string d = first_difference(got[i], want[i], path + "[" + std::to_string(i) + "]");
            if (!d.empty()) return d;
        }
        return "";
    }
    if (got.is_object()) {
        for (const auto& [key, value] : want.items()) {
            if (!got.contains(key)) return path + "." + key + ": not decoded";
            std::string d = first_difference(got[key], value, path + "." + key);
            if (!d.empty()) return d;
        }
        return got.size() == want.size() ? "" : path + ": decoded fields the script did not write";
    }
    return got == want ? "" : path + ": decoded " + got.dump() + ", written " + want.dump();
}

}  // namespace

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR (written by make_events.py)\n", argv[0]);
        return 2;
    }
    std::vector<fs::path> payloads;
    for (const auto& entry : fs::directory_iterator(argv[1])) {
        if (entry.path().extension() == ".msgpack") payloads.push_back(entry.path());
    }
    std::sort(payloads.begin(), payloads.end());
    int failures = 0, compared = 0, refused = 0, events = 0;
    for (const fs::path& path : payloads) {
        std::ifstream in(path, std::ios::binary);
        const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
        fs::path expected = path;
        const bool malformed = fs::exists(expected.replace_extension(".error"));
        std::ifstream want_in(malformed ? expected : expected.replace_extension(".json"));
        if (!want_in) {
            std::printf("%s: no .json or .error beside it\n", path.c_str());
            ++failures;
            continue;
        }
        try {
            const EventBatch batch = decode_event_batch(bytes);
            if (malformed) {
                std::printf("%s: decoded, but the script wrote it to be refused\n", path.c_str());
                ++failures;
                continue;
            }
            json got = {{"ts", batch.ts},
                        {"data_parallel_rank", optional(batch.data_parallel_rank)},
                        {"unknown_events", batch.unknown_events},
                        {"events", json::array()}};
            for (const Event& e : batch.events) got["events"].push_back(to_json(e));
            const std::string d = first_difference(got, json::parse(want_in), path.filename().string());
            if (!d.empty()) {
                std::printf("%s\n", d.c_str());
                ++failures;
            }
            ++compared;
            events += static_cast<int>(batch.events.size());
        } catch (const kvcore::Error& e) {
            const std::string want{std::istreambuf_iterator<char>(want_in), {}};
            if (!malformed || std::string(e.what()).find(want) == std::string::npos) {
                std::printf("%s: %s\n", path.c_str(), e.what());
                ++failures;
            } else {
                ++refused;
            }
        }
    }
    std::printf("compared %d batches (%d events) field by field, %d refused as expected, %d failures\n", compared,
                events, refused, failures);
    return failures == 0 && compared > 0 ? 0 : 1;
}
