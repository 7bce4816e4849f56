/* SPDX-License-Identifier: Apache-2.0 */
// The framing of vLLM's KV events over ZeroMQ (docs: ../shared/docs/WIRE_FORMATS.md), shared by the
// publisher and the subscriber so that both read and write one format.
//   live (PUB -> SUB):      [topic, seq as 8 bytes big-endian, payload]
//   replay request:         DEALER sends ["", start_seq as 8 bytes BE]; the ROUTER sees [id, "", start_seq]
//   replay answer (DEALER): ["", topic, seq, payload] per kept batch from start_seq (current vLLM), then
//                           ["", "", kEndSeq, ""]. Older vLLM and SGLang leave the topic out:
//                           ["", seq, payload] and ["", kEndSeq, ""]; the subscriber reads both.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvcore::index {

// Seq -1 as vLLM writes it ((-1).to_bytes(8, "big", signed=True)): all bits set.
inline constexpr uint64_t kEndSeq = ~uint64_t{0};
inline constexpr size_t kSeqBytes = 8;
inline constexpr std::string_view kTopicPrefix = "kv@";

inline std::array<uint8_t, kSeqBytes> encode_seq(uint64_t seq) noexcept {
    std::array<uint8_t, kSeqBytes> out{};
    for (size_t i = 0; i < kSeqBytes; ++i) out[i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
    return out;
}

// nullopt unless exactly 8 bytes: a shorter or longer seq frame is a malformed message, not a number.
inline std::optional<uint64_t> decode_seq(const void* data, size_t size) noexcept {
    if (size != kSeqBytes) return std::nullopt;
    const auto* bytes = static_cast<const uint8_t*>(data);
    uint64_t seq = 0;
    for (size_t i = 0; i < kSeqBytes; ++i) seq = (seq << 8) | bytes[i];
    return seq;
}

struct Topic {
    std::string pod;
    std::string model;
};

// `kv@<pod>@<model>` as llm-d configures vLLM. The pod is everything up to the second '@' and the model
// the rest, which may itself contain '@' (a model path or a tagged name): pod ids are Kubernetes names
// or host:port, which never hold '@', while model names are free text. llm-d splits on every '@' and
// drops such a topic; accepting it loses nothing. Empty pod or model, or a missing prefix: nullopt.
inline std::optional<Topic> parse_topic(std::string_view topic) {
    if (!topic.starts_with(kTopicPrefix)) return std::nullopt;
    const std::string_view rest = topic.substr(kTopicPrefix.size());
    const size_t at = rest.find('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == rest.size()) return std::nullopt;
    return Topic{std::string(rest.substr(0, at)), std::string(rest.substr(at + 1))};
}

inline std::string make_topic(std::string_view pod, std::string_view model) {
    std::string topic(kTopicPrefix);
    topic.append(pod).append("@").append(model);
    return topic;
}

}  // namespace kvcore::index
