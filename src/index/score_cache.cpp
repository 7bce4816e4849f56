// SPDX-License-Identifier: Apache-2.0
#include "index/score_cache.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kvcore::index {
namespace {

constexpr uint64_t kNsPerMs = 1'000'000;
constexpr uint64_t kMaxTtlMs = 1'000'000'000'000ull;  // the TTL cache's bound
constexpr uint32_t kMaxPodSets = 64;
constexpr size_t kBucketBytes = sizeof(Generations::Bucket);

// An entry's bytes: Head; the generation buckets of the prompt's first Head::buckets keys
// (Generations::Bucket, padded to 8 bytes); Head::records records, newest first, each a RecordHead, its candidates (uint16,
// padded to 8 bytes) and its Results.
struct Head {
    uint64_t prompt_blocks;
    uint32_t buckets;
    uint32_t records;
};
struct RecordHead {
    uint64_t written_ns;  // the TTL cache's clock
    uint64_t gen_sum;     // generations of buckets [0, examined) read before the scoring
    uint64_t deadline;    // the index's clock: the earliest speculative expiry met; UINT64_MAX: none
    uint32_t examined;
    uint32_t candidates;
    uint32_t results;
    uint32_t open_capacity;  // out.size() (capped) when there are no candidates, else 0
    std::array<float, kNumTiers> weights;
    uint32_t pad;
};
struct Result {
    uint32_t pod;
    uint32_t blocks;
    double score;
};
static_assert(sizeof(Head) % 8 == 0 && sizeof(RecordHead) % 8 == 0 && sizeof(Result) == 16);

constexpr size_t pad8(size_t n) noexcept { return (n + 7) & ~size_t{7}; }

// The value is this module's own bytes, but a std::string's buffer promises no alignment: read and
// write through memcpy (plain loads and stores once compiled).
template <class T>
T load(const uint8_t* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
template <class T>
void append(std::string& s, const T& v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof v);
}

struct RecordView {
    RecordHead head;
    const uint8_t* begin;  // the record's bytes
    size_t bytes;
    [[nodiscard]] const uint8_t* candidates() const noexcept { return begin + sizeof(RecordHead); }
    [[nodiscard]] const uint8_t* results() const noexcept { return candidates() + pad8(head.candidates * 2u); }
};

struct EntryView {
    Head head{};
    const uint8_t* buckets = nullptr;
    std::vector<RecordView>* records = nullptr;

    // False for bytes too short for what they announce (never written by this module; read as a miss).
    bool parse(std::span<const uint8_t> v, std::vector<RecordView>& out) {
        out.clear();
        records = &out;
        if (v.size() < sizeof(Head)) return false;
        head = load<Head>(v.data());
        size_t off = sizeof(Head) + pad8(size_t{head.buckets} * kBucketBytes);
        if (off > v.size()) return false;
        buckets = v.data() + sizeof(Head);
        for (uint32_t r = 0; r < head.records; ++r) {
            if (v.size() - off < sizeof(RecordHead)) return false;
            RecordView rv{load<RecordHead>(v.data() + off), v.data() + off, 0};
            rv.bytes = sizeof(RecordHead) + pad8(rv.head.candidates * 2u) + size_t{rv.head.results} * sizeof(Result);
            if (v.size() - off < rv.bytes || rv.head.examined > head.buckets) return false;
            out.push_back(rv);
            off += rv.bytes;
        }
        return true;
    }
};

// The prompt in one pass: tokens, then each extra key with its length (so no two prompts digest the
// same bytes), then the model.
std::array<char, 18> prompt_key(ModelId model, std::span<const int32_t> tokens, const pool::ExtraKeys& extra) {
    XXH128_hash_t d;
    if (extra.empty()) {
        d = XXH3_128bits(tokens.data(), tokens.size_bytes());
    } else {
        XXH3_state_t st;
        XXH3_128bits_reset(&st);
        XXH3_128bits_update(&st, tokens.data(), tokens.size_bytes());
        const auto number = [&](uint64_t n) { XXH3_128bits_update(&st, &n, sizeof n); };
        const auto text = [&](const std::string& s) {
            number(s.size());
            XXH3_128bits_update(&st, s.data(), s.size());
        };
        number(tokens.size());
        text(extra.lora_name);
        text(extra.cache_salt);
        number(extra.multimodal.size());
        for (const pool::MultimodalItem& m : extra.multimodal) {
            text(m.hash);
            number(m.offset);
            number(m.length);
        }
        d = XXH3_128bits_digest(&st);
    }
    std::array<char, 18> key;
    std::memcpy(key.data(), &d.low64, 8);
    std::memcpy(key.data() + 8, &d.high64, 8);
    std::memcpy(key.data() + 16, &model, 2);
    return key;
}

// Per-thread scratch: a call allocates nothing once warm.
struct Scratch {
    std::vector<uint8_t> value = std::vector<uint8_t>(4096);
    std::vector<RecordView> records;
    std::vector<Generations::Bucket> buckets;
    std::vector<const RecordView*> kept;
    std::string next;
};

}  // namespace

void ScoreCacheConfig::validate() const {
    if (max_entries == 0) return;  // off: the rest is not used
    if (ttl_ms == 0 || ttl_ms > kMaxTtlMs)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: score cache TTL must be 1..1000000000000 ms");
    if (max_pod_sets_per_prompt == 0 || max_pod_sets_per_prompt > kMaxPodSets)
        fail(KVC_ERR_INVALID_ARGUMENT, "index: score cache pod sets per prompt must be 1..64");
}

uint64_t ScoreCache::clock_trampoline(void* self) { return static_cast<ScoreCache*>(self)->clock_(); }

ScoreCache::ScoreCache(const ScoreCacheConfig& config, IndexConfig::Clock clock)
    : config_(config), clock_(clock), ttl_ns_(config.ttl_ms * kNsPerMs) {
    ttl::TtlConfig t;
    t.ttl_ms = config.ttl_ms;
    t.negative_ttl_ms = config.ttl_ms;  // no failures are cached
    t.max_entries = config.max_entries;
    t.policy = eviction::Kind::kLru;
    t.component = "index_score_cache";
    if (clock != nullptr) {
        t.clock = &ScoreCache::clock_trampoline;
        t.clock_user = this;
    }
    entries_ = ttl::Cache::create(std::move(t));
}

ScoreCache::Counters ScoreCache::counters() const noexcept {
    return Counters{hits_.load(std::memory_order_relaxed), misses_.load(std::memory_order_relaxed),
                    invalidations_.load(std::memory_order_relaxed)};
}

size_t ScoreCache::score_tokens(const Index& index, ModelId model, std::span<const int32_t> tokens,
                                const pool::ExtraKeys& extra, std::span<const PodId> candidates,
                                std::span<PodScore> out, const ScoreParams& params,
                                std::span<const double> decode_load) {
    const bool open = candidates.empty();
    // Arguments the index refuses take its path, so that the errors are its own.
    if ((!open && out.size() < candidates.size()) || (!decode_load.empty() && decode_load.size() != candidates.size())) {
        const auto keys = index.request_keys(tokens, extra);
        return index.score(model, keys, candidates, out, params, KeyKind::kRequest, decode_load);
    }
    thread_local Scratch tl;
    Scratch& sc = tl;
    const std::array<char, 18> key_bytes = prompt_key(model, tokens, extra);
    const ttl::Key key(std::string_view(), std::string_view(key_bytes.data(), key_bytes.size()));
    const auto open_capacity = static_cast<uint32_t>(open ? std::min<size_t>(out.size(), kMaxPods + 1) : 0);

    ttl::ValueOut vo;
    vo.buf = sc.value.data();
    vo.capacity = sc.value.size();
    ttl::Outcome found = entries_->get(key, vo);
    if (found == ttl::Outcome::kHit && !vo.fits) {  // grown since: read it again into a buffer that fits
        sc.value.resize(vo.len);
        vo = ttl::ValueOut{};
        vo.buf = sc.value.data();
        vo.capacity = sc.value.size();
        found = entries_->get(key, vo);
    }
    EntryView entry;
    const bool have = found == ttl::Outcome::kHit && vo.fits &&
                      entry.parse(std::span<const uint8_t>(sc.value.data(), vo.len), sc.records);
    if (!have) sc.records.clear();

    const uint64_t cache_now = have ? entries_->now_ns() : 0;
    const auto matches = [&](const RecordView& r) {
        return r.head.candidates == candidates.size() && r.head.open_capacity == open_capacity &&
               std::memcmp(r.head.weights.data(), params.tier_weight.data(), sizeof r.head.weights) == 0 &&
               (candidates.empty() ||  // no candidates: data() may be null, which memcmp must not see
                std::memcmp(r.candidates(), candidates.data(), candidates.size() * 2) == 0);
    };
    enum class State { kCurrent, kExpired, kStale };
    uint64_t index_now = 0;  // read once, when a record has a speculative deadline
    const auto state = [&](const RecordView& r) {
        if (cache_now >= stats::saturating_add(r.head.written_ns, ttl_ns_)) return State::kExpired;
        if (r.head.deadline != UINT64_MAX) {
            if (index_now == 0) index_now = index.now();
            if (index_now >= r.head.deadline) return State::kStale;
        }
        uint64_t sum = 0;
        for (uint32_t i = 0; i < r.head.examined; ++i)
            sum += gens_.read(load<Generations::Bucket>(entry.buckets + kBucketBytes * i));
        return sum == r.head.gen_sum ? State::kCurrent : State::kStale;
    };

    const RecordView* mine = nullptr;
    for (const RecordView& r : sc.records) {
        if (matches(r)) {
            mine = &r;
            break;
        }
    }
    if (mine != nullptr) {
        const State st = state(*mine);
        if (st == State::kCurrent) {
            const uint8_t* res = mine->results();
            const size_t n = mine->head.results;
            for (size_t k = 0; k < n; ++k) {
                const Result r = load<Result>(res + k * sizeof(Result));
                const double cost = decode_load.empty()
                                        ? 0.0
                                        : load_cost(entry.head.prompt_blocks, r.blocks, params.prefill_weight, decode_load[k]);
                out[k] = PodScore{open ? static_cast<PodId>(r.pod) : candidates[k], r.blocks, r.score, cost};
            }
            hits_.fetch_add(1, std::memory_order_relaxed);
            return n;
        }
        if (st == State::kStale) invalidations_.fetch_add(1, std::memory_order_relaxed);
    }

    // Miss: the uncached path, which reads the generations of the keys it examines.
    const std::vector<uint64_t> keys = index.request_keys(tokens, extra);
    sc.buckets.clear();
    ScoreTrace trace;
    trace.gens = &gens_;
    trace.buckets = &sc.buckets;
    const size_t n = index.score(model, keys, candidates, out, params, KeyKind::kRequest, decode_load, &trace);
    misses_.fetch_add(1, std::memory_order_relaxed);

    RecordHead head{};
    head.written_ns = entries_->now_ns();
    head.gen_sum = trace.gen_sum;
    head.deadline = trace.speculative_deadline;
    head.examined = static_cast<uint32_t>(trace.keys_examined);
    head.candidates = static_cast<uint32_t>(candidates.size());
    head.results = static_cast<uint32_t>(n);
    head.open_capacity = open_capacity;
    head.weights = params.tier_weight;

    // The records kept beside it: other pod sets still current, newest first, within the bound.
    sc.kept.clear();
    for (const RecordView& r : sc.records)
        if (&r != mine && !matches(r) && state(r) == State::kCurrent) sc.kept.push_back(&r);
    std::sort(sc.kept.begin(), sc.kept.end(),
              [](const RecordView* a, const RecordView* b) { return a->head.written_ns > b->head.written_ns; });
    if (sc.kept.size() >= config_.max_pod_sets_per_prompt) sc.kept.resize(config_.max_pod_sets_per_prompt - 1);
    uint32_t buckets = head.examined;
    for (const RecordView* r : sc.kept) buckets = std::max(buckets, r->head.examined);
    // A kept record may have examined more keys: the old entry has their buckets (the same prompt's).
    for (size_t i = sc.buckets.size(); i < buckets; ++i)
        sc.buckets.push_back(load<Generations::Bucket>(entry.buckets + kBucketBytes * i));

    std::string& v = sc.next;
    v.clear();
    append(v, Head{keys.size(), buckets, static_cast<uint32_t>(sc.kept.size() + 1)});
    v.append(reinterpret_cast<const char*>(sc.buckets.data()), size_t{buckets} * kBucketBytes);
    v.resize(pad8(v.size()), '\0');
    append(v, head);
    v.append(reinterpret_cast<const char*>(candidates.data()), candidates.size() * 2);
    v.resize(pad8(v.size()), '\0');
    for (size_t k = 0; k < n; ++k) append(v, Result{out[k].pod, out[k].blocks, out[k].score});
    for (const RecordView* r : sc.kept) v.append(reinterpret_cast<const char*>(r->begin), r->bytes);
    try {
        entries_->set(key, v, true);
    } catch (const Error&) {
        // The cache could not take it (no victim under its bound): the result stands uncached.
    }
    return n;
}

}  // namespace kvcore::index
