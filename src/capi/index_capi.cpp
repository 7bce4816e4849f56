// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/index.h: argument checks, name interning, handle casts, exception translation. The
// index itself is src/index/index.h; what is here is the C-side configuration it does not hold (score
// weights, the speculative TTL, the ingest workers) and the count of refused batches.
#include "kvcore/index.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "capi/guard.h"
#include "capi/index_handles.h"
#include "capi/pool_handles.h"
#include "index/event_decoder.h"
#include "index/index.h"
#include "index/ingest_pool.h"

namespace idx = kvcore::index;
using kvcore::fail;
using kvcore::capi::checked_enum;
using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::is_size_query;
using kvcore::capi::make_handle;
using kvcore::capi::reject;
using kvcore::capi::require_capacity;

namespace {

struct CapiConfig {
    idx::IndexConfig index;
    idx::ScoreParams score;
    uint64_t speculative_ttl_ms = KVC_INDEX_DEFAULT_SPECULATIVE_TTL_MS;
    uint32_t ingest_threads = 0;
    uint32_t queue_capacity = 1024;

    void validate() const {
        index.validate();
        for (float w : score.tier_weight) {
            if (!std::isfinite(w) || w < 0 || w > 1000) fail(KVC_ERR_INVALID_ARGUMENT, "index: tier weight must be 0..1000");
        }
        if (speculative_ttl_ms == 0 || speculative_ttl_ms > KVC_INDEX_MAX_SPECULATIVE_TTL_MS)
            fail(KVC_ERR_INVALID_ARGUMENT, "index: speculative TTL must be 1..KVC_INDEX_MAX_SPECULATIVE_TTL_MS ms");
        if (ingest_threads > 256) fail(KVC_ERR_INVALID_ARGUMENT, "index: ingest threads must be 0..256");
        if (queue_capacity == 0) fail(KVC_ERR_INVALID_ARGUMENT, "index: ingest queue capacity must be >= 1");
    }
};

}  // namespace

struct kvc_index_options {
    CapiConfig config;
};
struct kvc_index {
    CapiConfig config;
    std::unique_ptr<idx::Index> impl;
    std::unique_ptr<idx::IngestPool> ingest;  // declared last: drained and joined before impl goes
    std::atomic<uint64_t> refused{0};         // batches that failed on the calling thread
    std::atomic<uint32_t> references{1};      // the caller's handle and each subscriber's (index_handles.h)
};
struct kvc_index_lookup_result {
    size_t keys_found = 0;
    std::vector<uint32_t> offsets;  // keys_found + 1 offsets into holders
    std::vector<idx::Holder> holders;
    std::vector<std::string> pod_names;  // per holder
};

namespace {

constexpr uint32_t kLastTier = KVC_INDEX_TIER_OTHER;
static_assert(kLastTier + 1 == idx::kNumTiers, "kvc_index_tier mirrors kvcore::index::Medium");

idx::KeyKind key_kind(const kvc_index_key_kind& kind) {  // by reference: an unknown value is never loaded as the enum
    return checked_enum<idx::KeyKind>(kind, KVC_INDEX_KEY_ENGINE, "key kind");
}

// Known pods among the names: ids[i] is pods[i]'s id or kNoPod. Unknown names are never interned here,
// so scoring and lookups cannot fill the pod table.
std::vector<idx::PodId> find_pods(const idx::Index& index, const char* const* pods, size_t num_pods) {
    std::vector<idx::PodId> ids(num_pods);
    for (size_t i = 0; i < num_pods; ++i) {
        if (pods[i] == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, "pods[" + std::to_string(i) + "] is NULL");
        ids[i] = index.find_pod(pods[i]);
    }
    return ids;
}

// Scores the known candidates and writes one score per candidate name (0 for unknown pods).
template <class ScoreFn>
void score_candidates(const kvc_index* x, const char* const* pods, size_t num_pods, double* scores, uint32_t* blocks,
                      ScoreFn&& score) {
    const std::vector<idx::PodId> ids = find_pods(*x->impl, pods, num_pods);
    std::vector<idx::PodId> known;
    known.reserve(num_pods);
    for (idx::PodId id : ids) {
        if (id != idx::Index::kNoPod) known.push_back(id);
    }
    std::vector<idx::PodScore> out(known.size());
    if (!known.empty()) score(std::span<const idx::PodId>(known), std::span<idx::PodScore>(out));
    for (size_t i = 0, k = 0; i < num_pods; ++i) {
        const bool found = ids[i] != idx::Index::kNoPod;
        scores[i] = found ? out[k].score : 0.0;
        if (blocks != nullptr) blocks[i] = found ? out[k].blocks : 0;
        if (found) ++k;
    }
}

idx::EventBatch decode(kvc_index* x, const uint8_t* payload, size_t n) {
    try {
        return idx::decode_event_batch({payload, n});
    } catch (const kvcore::Error&) {
        x->refused.fetch_add(1, std::memory_order_relaxed);
        throw;
    }
}

// Applies on this thread, counting a refusal.
void apply_now(kvc_index* x, const char* pod, const char* model, const idx::EventBatch& batch) {
    try {
        const idx::PodId p = x->impl->intern_pod(pod);
        x->impl->apply(p, x->impl->intern_model(model), batch);
    } catch (const kvcore::Error&) {
        x->refused.fetch_add(1, std::memory_order_relaxed);
        throw;
    }
}

// The holders of kvc_index_add / kvc_index_evict, checked before anything is named or changed. intern:
// name new pods (add); otherwise unknown pods are left out (evict: they hold nothing).
std::vector<idx::Holder> holders_of(kvc_index* x, const char* const* pods, const uint32_t* ranks,
                                    const kvc_index_tier* tiers, size_t n, bool intern) {
    if (n == 0) fail(KVC_ERR_INVALID_ARGUMENT, "index: no entries");
    std::vector<idx::Holder> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        if (pods[i] == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, "pods[" + std::to_string(i) + "] is NULL");
        if (pods[i][0] == '\0') fail(KVC_ERR_INVALID_ARGUMENT, "pods[" + std::to_string(i) + "] is empty");
        const uint32_t rank = ranks != nullptr ? ranks[i] : 0;
        if (rank > idx::kMaxRank)
            fail(KVC_ERR_INVALID_ARGUMENT, "ranks[" + std::to_string(i) + "]: data-parallel rank must be 0..4095");
        const auto tier = tiers != nullptr ? checked_enum<idx::Medium>(tiers[i], kLastTier, "tier") : idx::Medium::kGpu;
        out.push_back(idx::Holder{0, static_cast<uint16_t>(rank), tier, false});
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i) {
        const idx::PodId p = intern ? x->impl->intern_pod(pods[i]) : x->impl->find_pod(pods[i]);
        if (p == idx::Index::kNoPod) continue;
        out[kept] = out[i];
        out[kept++].pod = p;
    }
    out.resize(kept);
    return out;
}

}  // namespace

#define KVC_REQUIRE_NAME(ptr, what) KVC_REQUIRE_HANDLE(ptr, what)

extern "C" {

// ---- options ----

kvc_status kvc_index_options_create(kvc_index_options** out) {
    return make_handle(out, [&] { return new kvc_index_options(); });
}
void kvc_index_options_destroy(kvc_index_options* options) { delete options; }

kvc_status kvc_index_options_set_hash(kvc_index_options* o, kvc_hash_algo algo, const char* seed) {
    KVC_REQUIRE_HANDLE(seed, "seed");
    return edit_validated(o, [&](CapiConfig& c) {
        c.index.hash_algo = checked_enum<kvcore::pool::HashAlgo>(algo, KVC_HASH_SHA256_CBOR, "hash algorithm");
        c.index.hash_seed = seed;
    });
}
kvc_status kvc_index_options_set_block_size(kvc_index_options* o, uint32_t tokens) {
    return edit_validated(o, [&](CapiConfig& c) { c.index.block_size = tokens; });
}
kvc_status kvc_index_options_set_engine_keys_direct(kvc_index_options* o, uint32_t enabled) {
    return edit_validated(o, [&](CapiConfig& c) { c.index.engine_keys_direct = enabled != 0; });
}
kvc_status kvc_index_options_set_shards(kvc_index_options* o, uint32_t shards) {
    return edit_validated(o, [&](CapiConfig& c) { c.index.shards = shards; });
}
kvc_status kvc_index_options_set_byte_budget(kvc_index_options* o, uint64_t bytes) {
    return edit_validated(o, [&](CapiConfig& c) { c.index.byte_budget = bytes; });
}
kvc_status kvc_index_options_set_max_orphan_blocks(kvc_index_options* o, uint32_t blocks) {
    return edit_validated(o, [&](CapiConfig& c) { c.index.max_orphan_blocks = blocks; });
}
kvc_status kvc_index_options_set_tier_weight(kvc_index_options* o, kvc_index_tier tier, double weight) {
    return edit_validated(o, [&](CapiConfig& c) {
        const auto t = checked_enum<uint32_t>(tier, kLastTier, "tier");
        if (!std::isfinite(weight) || weight < 0 || weight > 1000)
            fail(KVC_ERR_INVALID_ARGUMENT, "index: tier weight must be 0..1000");
        c.score.tier_weight[t] = static_cast<float>(weight);
    });
}
kvc_status kvc_index_options_set_speculative_ttl_ms(kvc_index_options* o, uint64_t ttl_ms) {
    return edit_validated(o, [&](CapiConfig& c) { c.speculative_ttl_ms = ttl_ms; });
}
kvc_status kvc_index_options_set_score_cache(kvc_index_options* o, uint32_t max_entries, uint64_t ttl_ms,
                                             uint32_t max_pod_sets_per_prompt) {
    return edit_validated(o, [&](CapiConfig& c) {
        c.index.score_cache = idx::ScoreCacheConfig{max_entries, ttl_ms, max_pod_sets_per_prompt};
    });
}
kvc_status kvc_index_options_set_redis(kvc_index_options* o, const char* url) {
    KVC_REQUIRE_HANDLE(url, "url");
    return edit_validated(o, [&](CapiConfig& c) {
        c.index.redis.url = url;
        c.index.redis.validate();  // the url's own message, also with a byte budget set
    });
}
kvc_status kvc_index_options_set_redis_key_ttl_ms(kvc_index_options* o, uint64_t ttl_ms) {
    return edit_validated(o, [&](CapiConfig& c) { c.index.redis.key_ttl_ms = ttl_ms; });
}
kvc_status kvc_index_options_set_redis_key_prefix(kvc_index_options* o, const char* prefix) {
    KVC_REQUIRE_HANDLE(prefix, "prefix");
    return edit_validated(o, [&](CapiConfig& c) { c.index.redis.key_prefix = prefix; });
}
kvc_status kvc_index_options_set_ingest_threads(kvc_index_options* o, uint32_t threads, uint32_t queue_capacity) {
    return edit_validated(o, [&](CapiConfig& c) {
        c.ingest_threads = threads;
        c.queue_capacity = queue_capacity;
    });
}

// ---- index ----

kvc_status kvc_index_create(const kvc_index_options* options, kvc_index** out) {
    return make_handle(out, [&] {
        auto x = std::make_unique<kvc_index>();
        x->config = options != nullptr ? options->config : CapiConfig{};
        x->config.validate();
        x->impl = std::make_unique<idx::Index>(x->config.index);
        if (x->config.ingest_threads != 0)
            x->ingest = std::make_unique<idx::IngestPool>(*x->impl, x->config.ingest_threads, x->config.queue_capacity);
        return x.release();
    });
}
void kvc_index_destroy(kvc_index* index) { kvcore::capi::index_release(index); }

kvc_status kvc_index_apply_batch(kvc_index* x, const char* pod, const char* model, const uint8_t* payload, size_t n) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(pod, "pod");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(payload, n, "payload");
    return guard([&] { apply_now(x, pod, model, decode(x, payload, n)); });
}

kvc_status kvc_index_submit_batch(kvc_index* x, const char* pod, const char* model, const uint8_t* payload, size_t n) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(pod, "pod");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(payload, n, "payload");
    if (!x->ingest) return reject(KVC_ERR_INVALID_STATE, "index: created without ingest threads");
    return guard([&] {
        idx::EventBatch batch = decode(x, payload, n);
        idx::PodId p;
        idx::ModelId m;
        try {
            p = x->impl->intern_pod(pod);
            m = x->impl->intern_model(model);
        } catch (const kvcore::Error&) {
            x->refused.fetch_add(1, std::memory_order_relaxed);
            throw;
        }
        x->ingest->submit(p, m, std::move(batch));
    });
}

kvc_status kvc_index_flush(kvc_index* x) {
    KVC_REQUIRE_HANDLE(x, "index");
    return guard([&] {
        if (x->ingest) x->ingest->flush();
    });
}

kvc_status kvc_index_request_keys(const kvc_index* x, const int32_t* tokens, size_t n,
                                  const kvc_sequence_options* seq_options, uint64_t* keys, size_t capacity,
                                  size_t* count) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_ARRAY(tokens, n, "tokens");
    return guard([&] {
        const bool query = is_size_query(keys, capacity);
        const kvcore::pool::ExtraKeys none;
        const std::vector<uint64_t> out =
            x->impl->request_keys({tokens, n}, seq_options != nullptr ? seq_options->options.keys : none);
        if (count != nullptr) *count = out.size();
        if (query) return;
        require_capacity(capacity, out.size(), "keys");
        std::copy(out.begin(), out.end(), keys);
    });
}

kvc_status kvc_index_score_tokens(const kvc_index* x, const char* model, const int32_t* tokens, size_t n,
                                  const kvc_sequence_options* seq_options, const char* const* pods, size_t num_pods,
                                  double* scores, uint32_t* blocks) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(tokens, n, "tokens");
    KVC_REQUIRE_ARRAY(pods, num_pods, "pods");
    KVC_REQUIRE_ARRAY(scores, num_pods, "scores");
    return guard([&] {
        const kvcore::pool::ExtraKeys none;
        const auto& extra = seq_options != nullptr ? seq_options->options.keys : none;
        const idx::ModelId m = x->impl->intern_model(model);
        score_candidates(x, pods, num_pods, scores, blocks, [&](auto candidates, auto out) {
            x->impl->score_tokens(m, {tokens, n}, extra, candidates, out, x->config.score);
        });
    });
}

kvc_status kvc_index_score_keys(const kvc_index* x, const char* model, const uint64_t* keys, size_t n,
                                kvc_index_key_kind kind, const char* const* pods, size_t num_pods, double* scores,
                                uint32_t* blocks) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(keys, n, "keys");
    KVC_REQUIRE_ARRAY(pods, num_pods, "pods");
    KVC_REQUIRE_ARRAY(scores, num_pods, "scores");
    return guard([&] {
        const idx::KeyKind k = key_kind(kind);
        const idx::ModelId m = x->impl->intern_model(model);
        score_candidates(x, pods, num_pods, scores, blocks, [&](auto candidates, auto out) {
            x->impl->score(m, {keys, n}, candidates, out, x->config.score, k);
        });
    });
}

kvc_status kvc_index_lookup(const kvc_index* x, const char* model, const uint64_t* keys, size_t n,
                            kvc_index_key_kind kind, const char* const* pods, size_t num_pods,
                            kvc_index_lookup_result** out) {
    KVC_REQUIRE_HANDLE(out, "out");
    *out = nullptr;
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(keys, n, "keys");
    KVC_REQUIRE_ARRAY(pods, num_pods, "pods");
    return guard([&] {
        const idx::KeyKind k = key_kind(kind);
        const idx::ModelId m = x->impl->intern_model(model);
        auto result = std::make_unique<kvc_index_lookup_result>();
        std::vector<idx::PodId> filter;
        if (num_pods != 0) {
            for (idx::PodId id : find_pods(*x->impl, pods, num_pods)) {
                if (id != idx::Index::kNoPod) filter.push_back(id);
            }
            // Only unknown pods in the filter: none holds anything (an empty filter would mean every pod).
            if (filter.empty()) {
                result->offsets.push_back(0);
                *out = result.release();
                return;
            }
        }
        idx::LookupResult found = x->impl->lookup(m, {keys, n}, filter, k);
        result->keys_found = found.keys_found;
        result->offsets = std::move(found.offsets);
        if (result->offsets.empty()) result->offsets.push_back(0);
        result->holders = std::move(found.holders);
        result->pod_names.reserve(result->holders.size());
        for (const idx::Holder& h : result->holders) result->pod_names.push_back(x->impl->pod_name(h.pod));
        *out = result.release();
    });
}

void kvc_index_lookup_result_destroy(kvc_index_lookup_result* result) { delete result; }

size_t kvc_index_lookup_result_keys_found(const kvc_index_lookup_result* result) {
    return result != nullptr ? result->keys_found : 0;
}

kvc_status kvc_index_lookup_result_holders(const kvc_index_lookup_result* r, size_t key_index, size_t* count) {
    KVC_REQUIRE_HANDLE(r, "result");
    KVC_REQUIRE_HANDLE(count, "count");
    return guard([&] {
        if (key_index >= r->keys_found)
            fail(KVC_ERR_OUT_OF_RANGE, "key " + std::to_string(key_index) + " of " + std::to_string(r->keys_found) +
                                           " found");
        *count = r->offsets[key_index + 1] - r->offsets[key_index];
    });
}

kvc_status kvc_index_lookup_result_holder(const kvc_index_lookup_result* r, size_t key_index, size_t h,
                                          const char** pod, uint32_t* rank, kvc_index_tier* tier,
                                          uint32_t* speculative) {
    KVC_REQUIRE_HANDLE(r, "result");
    return guard([&] {
        if (key_index >= r->keys_found)
            fail(KVC_ERR_OUT_OF_RANGE, "key " + std::to_string(key_index) + " of " + std::to_string(r->keys_found) +
                                           " found");
        const size_t first = r->offsets[key_index], holders = r->offsets[key_index + 1] - first;
        if (h >= holders)
            fail(KVC_ERR_OUT_OF_RANGE, "holder " + std::to_string(h) + " of " + std::to_string(holders));
        const idx::Holder& holder = r->holders[first + h];
        if (pod != nullptr) *pod = r->pod_names[first + h].c_str();
        if (rank != nullptr) *rank = holder.rank;
        if (tier != nullptr) *tier = static_cast<kvc_index_tier>(holder.tier);
        if (speculative != nullptr) *speculative = holder.speculative ? 1 : 0;
    });
}

kvc_status kvc_index_add_speculative(kvc_index* x, const char* model, const uint64_t* keys, size_t n, const char* pod,
                                     uint64_t ttl_ms) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(keys, n, "keys");
    KVC_REQUIRE_NAME(pod, "pod");
    if (ttl_ms > KVC_INDEX_MAX_SPECULATIVE_TTL_MS)
        return reject(KVC_ERR_INVALID_ARGUMENT, "index: speculative TTL must be 0 (default) or 1..KVC_INDEX_MAX_SPECULATIVE_TTL_MS ms");
    return guard([&] {
        const uint64_t ms = ttl_ms != 0 ? ttl_ms : x->config.speculative_ttl_ms;
        const idx::ModelId m = x->impl->intern_model(model);
        x->impl->add_speculative(m, {keys, n}, x->impl->intern_pod(pod), ms * 1000000u);
    });
}

kvc_status kvc_index_add(kvc_index* x, const char* model, const uint64_t* engine_keys, size_t num_engine_keys,
                         const uint64_t* request_keys, size_t num_request_keys, const char* const* pods,
                         const uint32_t* ranks, const kvc_index_tier* tiers, size_t num_entries) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(engine_keys, num_engine_keys, "engine_keys");
    KVC_REQUIRE_ARRAY(request_keys, num_request_keys, "request_keys");
    KVC_REQUIRE_ARRAY(pods, num_entries, "pods");
    return guard([&] {
        // Everything is checked before a pod or model is named, so a refused call leaves no new names.
        idx::Index::check_key_counts(num_engine_keys, num_request_keys);
        holders_of(x, pods, ranks, tiers, num_entries, false);
        const idx::ModelId m = x->impl->intern_model(model);
        const std::vector<idx::Holder> holders = holders_of(x, pods, ranks, tiers, num_entries, true);
        x->impl->add(m, {engine_keys, num_engine_keys}, {request_keys, num_request_keys}, holders);
    });
}

kvc_status kvc_index_evict(kvc_index* x, const char* model, uint64_t key, kvc_index_key_kind kind,
                           const char* const* pods, const uint32_t* ranks, const kvc_index_tier* tiers,
                           size_t num_entries) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(pods, num_entries, "pods");
    return guard([&] {
        const idx::KeyKind k = key_kind(kind);
        const std::vector<idx::Holder> holders = holders_of(x, pods, ranks, tiers, num_entries, false);
        if (holders.empty()) return;  // only unknown pods: they hold nothing
        x->impl->evict(x->impl->intern_model(model), key, k, holders);
    });
}

kvc_status kvc_index_remove_speculative(kvc_index* x, const char* model, const uint64_t* keys, size_t n,
                                        const char* pod) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(model, "model");
    KVC_REQUIRE_ARRAY(keys, n, "keys");
    KVC_REQUIRE_NAME(pod, "pod");
    return guard([&] {
        const idx::PodId p = x->impl->find_pod(pod);
        if (p == idx::Index::kNoPod) return;
        x->impl->remove_speculative(x->impl->intern_model(model), {keys, n}, p);
    });
}

kvc_status kvc_index_expire_speculative(kvc_index* x) {
    KVC_REQUIRE_HANDLE(x, "index");
    return guard([&] { x->impl->expire_speculative(); });
}

kvc_status kvc_index_clear(kvc_index* x, const char* pod, const char* model, uint32_t rank) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(pod, "pod");
    KVC_REQUIRE_NAME(model, "model");
    if (rank > idx::kMaxRank) return reject(KVC_ERR_INVALID_ARGUMENT, "index: data-parallel rank must be 0..4095");
    return guard([&] {
        const idx::PodId p = x->impl->find_pod(pod);
        if (p == idx::Index::kNoPod) fail(KVC_ERR_NOT_FOUND, std::string("index: unknown pod ") + pod);
        // The engine's own AllBlocksCleared, so it orders with the pod's batches and counts as a clear.
        idx::EventBatch batch;
        batch.data_parallel_rank = rank;
        batch.events.emplace_back(idx::AllBlocksCleared{});
        const idx::ModelId m = x->impl->intern_model(model);
        if (x->ingest) {
            x->ingest->submit(p, m, std::move(batch));
        } else {
            x->impl->apply(p, m, batch);
        }
    });
}

kvc_status kvc_index_remove_pod(kvc_index* x, const char* pod) {
    KVC_REQUIRE_HANDLE(x, "index");
    KVC_REQUIRE_NAME(pod, "pod");
    return guard([&] {
        if (x->ingest) x->ingest->flush();
        const idx::PodId p = x->impl->find_pod(pod);
        if (p == idx::Index::kNoPod) fail(KVC_ERR_NOT_FOUND, std::string("index: unknown pod ") + pod);
        x->impl->remove_pod(p);
    });
}

kvc_status kvc_index_counters(const kvc_index* x, uint64_t* values, size_t capacity, size_t* count) {
    KVC_REQUIRE_HANDLE(x, "index");
    return guard([&] {
        if (count != nullptr) *count = KVC_INDEX_COUNTER_COUNT;
        if (is_size_query(values, capacity)) return;
        const idx::IndexCounters c = x->impl->counters();
        const uint64_t failed = x->refused.load(std::memory_order_relaxed) + (x->ingest ? x->ingest->failed() : 0);
        const uint64_t all[KVC_INDEX_COUNTER_COUNT] = {
            c.keys,          c.holders,         c.speculative,   c.charged_bytes,  c.memory_bytes,
            c.engine_blocks, c.orphan_blocks,   c.evictions,     c.expired,        c.batches,
            failed,          c.blocks_stored,   c.blocks_removed, c.clears,        c.orphans_healed,
            c.orphans_dropped, c.unknown_events, c.score_cache_hits, c.score_cache_misses,
            c.score_cache_invalidations, c.redis_errors, c.redis_reconnects};
        std::copy(all, all + std::min<size_t>(capacity, KVC_INDEX_COUNTER_COUNT), values);
    });
}

const char* kvc_index_counter_name(kvc_index_counter counter) {
    static const char* const names[KVC_INDEX_COUNTER_COUNT] = {
        "keys",          "holders",         "speculative",    "charged_bytes", "memory_bytes",   "engine_blocks",
        "orphan_blocks", "evictions",       "expired",        "batches_applied", "batches_failed", "blocks_stored",
        "blocks_removed", "clears",         "orphans_healed", "orphans_dropped", "unknown_events",
        "score_cache_hits", "score_cache_misses", "score_cache_invalidations", "redis_errors", "redis_reconnects"};
    const uint32_t raw = kvcore::capi::enum_bits(counter);
    return raw < KVC_INDEX_COUNTER_COUNT ? names[raw] : "unknown";
}

const char* kvc_index_tier_name(kvc_index_tier tier) {
    static const char* const names[] = {"gpu", "cpu", "fs", "obj", "other"};
    const uint32_t raw = kvcore::capi::enum_bits(tier);
    return raw <= kLastTier ? names[raw] : "unknown";
}

}  // extern "C"

kvcore::capi::IndexParts kvcore::capi::index_parts(kvc_index& x) noexcept { return {*x.impl, x.ingest.get(), x.refused}; }
void kvcore::capi::index_retain(kvc_index& x) noexcept { x.references.fetch_add(1, std::memory_order_relaxed); }
void kvcore::capi::index_release(kvc_index* x) noexcept {
    if (x != nullptr && x->references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete x;
}
