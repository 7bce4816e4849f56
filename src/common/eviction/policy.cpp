/* SPDX-License-Identifier: Apache-2.0 */
#include "common/eviction/policy.h"

#include "common/eviction/arc.h"
#include "common/eviction/lru.h"
#include "common/eviction/s3fifo.h"
#include "common/eviction/sieve.h"
#include "common/eviction/wtinylfu.h"
#include "common/error.h"

namespace kvcore::eviction {

namespace {
constexpr const char* kNames[] = {"lru", "s3fifo", "arc", "sieve", "wtinylfu"};
static_assert(std::size(kNames) == kLastKind + 1);
}  // namespace

std::optional<Kind> kind_from_name(std::string_view name) noexcept {
    for (uint32_t i = 0; i <= kLastKind; ++i) {
        if (name == kNames[i]) return static_cast<Kind>(i);
    }
    return std::nullopt;
}

const char* kind_name(Kind kind) noexcept {
    const auto i = static_cast<uint32_t>(kind);
    return i <= kLastKind ? kNames[i] : "unknown";
}

std::unique_ptr<Policy> make_policy(Kind kind, size_t capacity) {
    switch (kind) {
        case Kind::kLru: return std::make_unique<Lru>();
        case Kind::kS3Fifo: return std::make_unique<S3Fifo>(capacity);
        case Kind::kSieve: return std::make_unique<Sieve>();
        case Kind::kArc: return std::make_unique<Arc>(capacity);
        case Kind::kWTinyLfu: return std::make_unique<WTinyLfu>(capacity);
    }
    throw Error(KVC_ERR_INVALID_ARGUMENT, "unknown eviction policy " + std::to_string(static_cast<uint32_t>(kind)));
}

}  // namespace kvcore::eviction
