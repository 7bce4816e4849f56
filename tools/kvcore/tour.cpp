// SPDX-License-Identifier: Apache-2.0
// `kvcore tour`: the pool up close. A paged KV block pool with vLLM's sha256_cbor block hashes serves a
// few multi-turn chats (each turn resends the whole conversation), then shows prefix reuse per turn, a
// block table, a slot mapping, a copy-on-write fork, the hashes vLLM would publish, the KV events decoded
// and one Prometheus scrape. Optionally (--lru) the stats recorder inside a cache not built on kvcore.
// Everything is deterministic: the same options print the same text.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <msgpack.hpp>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "kvcore/kvcore.h"
#include "lru_cache.h"

namespace kvcore::cli {

namespace {

constexpr uint32_t kBlockSize = 16;  // vLLM's default
constexpr uint32_t kSystemTokens = 32, kUserTokens = 24, kReplyTokens = 36;
constexpr const char* kHashSeed = "42";

bool ok(kvc_status status, const char* what) { return cli::ok(status, "tour", what); }

std::string percent(double rate) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f %%", rate * 100.0);
    return b;
}

// Deterministic token ids: a shared system prompt, then per chat and turn a user message and a reply.
int32_t system_token(uint32_t k) { return static_cast<int32_t>(1000 + k); }
int32_t user_token(uint32_t chat, uint32_t turn, uint32_t k) {
    return static_cast<int32_t>(100000 + chat * 10000 + turn * 100 + k);
}
int32_t reply_token(uint32_t chat, uint32_t turn, uint32_t k) {
    return static_cast<int32_t>(200000 + chat * 10000 + turn * 100 + k);
}
char chat_name(uint32_t chat) { return static_cast<char>('A' + chat); }

// "1168..1183 1200..1207": consecutive slots as ranges, so a slot mapping fits a line.
std::string ranges(const std::vector<int64_t>& slots) {
    std::string out;
    for (size_t i = 0; i < slots.size();) {
        size_t j = i;
        while (j + 1 < slots.size() && slots[j + 1] == slots[j] + 1) ++j;
        out += (out.empty() ? "" : " ") + std::to_string(slots[i]);
        if (j > i) out += ".." + std::to_string(slots[j]);
        i = j + 1;
    }
    return out;
}

// Destroys the pool (and with it every open sequence) on every way out.
struct Pool {
    kvc_pool* pool = nullptr;
    ~Pool() { kvc_pool_destroy(pool); }
};

bool block_table(kvc_pool* pool, kvc_sequence_id seq, std::vector<int32_t>& table) {
    size_t count = 0;
    if (!ok(kvc_pool_block_table(pool, seq, nullptr, 0, &count), "block_table")) return false;
    table.resize(count);
    return ok(kvc_pool_block_table(pool, seq, table.data(), table.size(), &count), "block_table");
}

std::string join(const std::vector<int32_t>& values) {
    std::string out;
    for (const int32_t v : values) out += (out.empty() ? "" : " ") + std::to_string(v);
    return out;
}

// ---- KV events: vLLM's EventBatch is [ts, events, data_parallel_rank, ...]; each event is a tagged array
// ["BlockStored", block_hashes, ...] or a map with "type". Both are read, with any fields added later.
struct EventCounts {
    uint64_t stored = 0, stored_blocks = 0, removed = 0, removed_blocks = 0, cleared = 0, other = 0;
    std::set<uint64_t> stored_hashes;
};

const msgpack::object* map_value(const msgpack::object& map, std::string_view key) {
    for (uint32_t i = 0; i < map.via.map.size; ++i) {
        const msgpack::object_kv& kv = map.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
            return &kv.val;
        }
    }
    return nullptr;
}

bool decode_events(const std::vector<uint8_t>& bytes, EventCounts& counts) {
    try {
        const msgpack::object_handle handle = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        const msgpack::object& batch = handle.get();
        const msgpack::object* events = nullptr;
        if (batch.type == msgpack::type::ARRAY && batch.via.array.size >= 2) events = &batch.via.array.ptr[1];
        if (batch.type == msgpack::type::MAP) events = map_value(batch, "events");
        if (events == nullptr || events->type != msgpack::type::ARRAY) return false;
        for (uint32_t i = 0; i < events->via.array.size; ++i) {
            const msgpack::object& event = events->via.array.ptr[i];
            const msgpack::object* type = nullptr;
            const msgpack::object* hashes = nullptr;
            if (event.type == msgpack::type::ARRAY && event.via.array.size >= 1) {
                type = &event.via.array.ptr[0];
                if (event.via.array.size >= 2) hashes = &event.via.array.ptr[1];
            } else if (event.type == msgpack::type::MAP) {
                type = map_value(event, "type");
                hashes = map_value(event, "block_hashes");
            }
            if (type == nullptr || type->type != msgpack::type::STR) return false;
            const std::string_view name(type->via.str.ptr, type->via.str.size);
            const uint32_t blocks = hashes != nullptr && hashes->type == msgpack::type::ARRAY ? hashes->via.array.size : 0;
            if (name == "BlockStored") {
                ++counts.stored;
                counts.stored_blocks += blocks;
                for (uint32_t h = 0; h < blocks; ++h) {
                    const msgpack::object& hash = hashes->via.array.ptr[h];
                    if (hash.type == msgpack::type::POSITIVE_INTEGER) counts.stored_hashes.insert(hash.via.u64);
                }
            } else if (name == "BlockRemoved") {
                ++counts.removed;
                counts.removed_blocks += blocks;
            } else if (name == "AllBlocksCleared") {
                ++counts.cleared;
            } else {
                ++counts.other;
            }
        }
        return true;
    } catch (const std::exception&) {  // msgpack::unpack_error, type_error
        return false;
    }
}

// ---- the pool part ----------------------------------------------------------------------------------

struct Conversation {
    std::vector<int32_t> history;  // everything said so far, system prompt included
};

// Admits one request: *seq is the open sequence, or 0 when the pool had no room for it (the pool then
// refused it and nothing changed). False only when a call failed.
bool admit(kvc_pool* pool, const std::vector<int32_t>& prompt, kvc_sequence_id& seq, size_t& reused) {
    seq = 0;
    reused = 0;
    if (!ok(kvc_pool_sequence_create(pool, prompt.data(), prompt.size(), nullptr, &seq), "sequence_create")) return false;
    const kvc_status st = kvc_pool_allocate(pool, seq, prompt.size(), &reused);
    if (st == KVC_ERR_CAPACITY) {
        const bool freed = ok(kvc_pool_sequence_free(pool, seq), "free");
        seq = 0;
        return freed;
    }
    return ok(st, "allocate");
}

int run_pool_part(const TourOptions& o, kvc_exposition* scrape) {
    kvc_pool_options* options = nullptr;
    Pool p;
    const uint32_t events_kept = 1 << 16;
    bool good = ok(kvc_pool_options_create(&options), "pool options") &&
                ok(kvc_pool_options_set_num_blocks(options, o.blocks), "--blocks") &&
                ok(kvc_pool_options_set_block_size(options, kBlockSize), "block size") &&
                ok(kvc_pool_options_set_hash(options, KVC_HASH_SHA256_CBOR, kHashSeed), "hash") &&
                ok(kvc_pool_options_set_events(options, 1, "GPU", events_kept), "events") &&
                ok(kvc_pool_options_set_window_requests(options, o.chats), "window") &&
                ok(kvc_pool_create(options, &p.pool), "pool");
    kvc_pool_options_destroy(options);
    if (!good) return kExitFailure;
    kvc_pool* pool = p.pool;

    std::printf("kvcore %s tour: a paged KV block pool serving %u chats of %u turns\n", kvc_version_string(), o.chats,
                o.turns);
    std::printf("pool: %u blocks of %u tokens (block 0 reserved), sha256_cbor hashes seeded \"%s\" as vLLM's, "
                "KV events on\n", o.blocks - 1, kBlockSize, kHashSeed);
    std::printf("every chat opens with the same %u-token system prompt; each turn resends the conversation plus "
                "%u new\ntokens and decodes a %u-token reply. Hit rates: over the last %u requests and since the "
                "start.\n\n", kSystemTokens, kUserTokens, kReplyTokens, o.chats);
    std::printf("  turn chat  prompt  reused  computed   last %u   cumulative\n", o.chats);

    std::vector<Conversation> chats(o.chats);
    for (auto& c : chats) {
        for (uint32_t k = 0; k < kSystemTokens; ++k) c.history.push_back(system_token(k));
    }
    uint64_t refused = 0;
    for (uint32_t turn = 1; turn <= o.turns; ++turn) {
        for (uint32_t c = 0; c < o.chats; ++c) {
            std::vector<int32_t>& h = chats[c].history;
            for (uint32_t k = 0; k < kUserTokens; ++k) h.push_back(user_token(c, turn, k));
            kvc_sequence_id seq = 0;
            size_t reused = 0;
            if (!admit(pool, h, seq, reused)) return kExitFailure;
            for (uint32_t k = 0; k < kReplyTokens; ++k) {  // the reply, one decode step per token
                const int32_t token = reply_token(c, turn, k);
                if (seq != 0 && !ok(kvc_pool_append(pool, seq, &token, 1), "append")) return kExitFailure;
                h.push_back(token);
            }
            if (seq != 0 && !ok(kvc_pool_sequence_free(pool, seq), "free")) return kExitFailure;
            kvc_stats* s = nullptr;
            if (!ok(kvc_pool_snapshot(pool, &s), "snapshot")) return kExitFailure;
            const size_t prompt = h.size() - kReplyTokens;
            if (seq == 0) {
                ++refused;
                std::printf("  %4u    %c  %6zu  no room in the pool\n", turn, chat_name(c), prompt);
            } else {
                std::printf("  %4u    %c  %6zu  %6zu  %8zu  %8s  %11s\n", turn, chat_name(c), prompt, reused,
                            prompt - reused, percent(kvc_pool_window_token_hit_rate(pool)).c_str(),
                            percent(kvc_stats_token_hit_rate(s)).c_str());
            }
            kvc_stats_destroy(s);
        }
    }

    // A closer look at one more request: chat A's follow-up, sampled twice (vLLM's n=2).
    std::vector<int32_t> prompt = chats[0].history;
    for (uint32_t k = 0; k < kUserTokens; ++k) prompt.push_back(user_token(0, o.turns + 1, k));
    kvc_sequence_id seq = 0, sample = 0;
    size_t reused = 0;
    if (!admit(pool, prompt, seq, reused)) return kExitFailure;
    if (seq == 0) {  // tour_min_blocks() makes room for it
        std::fprintf(stderr, "kvcore tour: no room for the follow-up request\n");
        return kExitFailure;
    }
    std::vector<int32_t> table;
    std::vector<int64_t> slots(kUserTokens);
    if (!block_table(pool, seq, table) ||
        !ok(kvc_pool_slot_mapping(pool, seq, prompt.size() - kUserTokens, slots.data(), slots.size()), "slot_mapping")) {
        return kExitFailure;
    }
    std::printf("\nchat A, turn %u: %zu prompt tokens, %zu reused from the cache, %zu computed\n", o.turns + 1,
                prompt.size(), reused, prompt.size() - reused);
    std::printf("  block table (%zu blocks)  %s\n", table.size(), join(table).c_str());
    std::printf("  slot mapping of its %u new tokens (slot = block x %u + offset): %s\n", kUserTokens, kBlockSize,
                ranges(slots).c_str());

    // Two samples share every block; the first token written into the shared, partly filled last block
    // gets that block copied (copy-on-write), and the embedder performs the copy before the next step.
    const int32_t last_block = table.back();
    const size_t filled = prompt.size() % kBlockSize == 0 ? kBlockSize : prompt.size() % kBlockSize;
    if (!ok(kvc_pool_fork(pool, seq, &sample), "fork")) return kExitFailure;
    const int32_t first_tokens[2] = {reply_token(0, o.turns + 1, 0), reply_token(0, o.turns + 1, 50)};
    if (!ok(kvc_pool_append(pool, seq, &first_tokens[0], 1), "append") ||
        !ok(kvc_pool_append(pool, sample, &first_tokens[1], 1), "append")) {
        return kExitFailure;
    }
    size_t pairs = 0;
    if (!ok(kvc_pool_drain_copies(pool, nullptr, 0, &pairs), "drain_copies")) return kExitFailure;
    std::vector<int32_t> copies(2 * pairs);
    if (!ok(kvc_pool_drain_copies(pool, copies.data(), pairs, &pairs), "drain_copies")) return kExitFailure;
    std::vector<int32_t> table_a, table_b;
    if (!block_table(pool, seq, table_a) || !block_table(pool, sample, table_b)) return kExitFailure;
    std::printf("copy-on-write: a second sample (kvc_pool_fork) shares all %zu blocks; the last, %d, holds %zu of %u "
                "tokens\n", table.size(), last_block, filled, kBlockSize);
    std::string pair_text;
    for (size_t i = 0; i < pairs; ++i) {
        pair_text += (i ? ", " : "") + std::to_string(copies[2 * i]) + " -> " + std::to_string(copies[2 * i + 1]);
    }
    std::printf("  each sample writes a token; copies to make first (kvc_pool_drain_copies, src -> dst): %s\n",
                pairs == 0 ? "none" : pair_text.c_str());
    std::printf("  the block tables now end in %d (sample 1) and %d (sample 2)\n", table_a.back(), table_b.back());
    if (!ok(kvc_pool_sequence_free(pool, sample), "free") || !ok(kvc_pool_sequence_free(pool, seq), "free")) {
        return kExitFailure;
    }

    // What vLLM publishes for this prompt, computed without a pool.
    size_t count = 0;
    std::vector<uint64_t> hashes;
    if (!ok(kvc_hash_blocks(KVC_HASH_SHA256_CBOR, kHashSeed, kBlockSize, prompt.data(), prompt.size(), nullptr,
                            nullptr, 0, &count), "hash_blocks")) {
        return kExitFailure;
    }
    hashes.resize(count);
    if (!ok(kvc_hash_blocks(KVC_HASH_SHA256_CBOR, kHashSeed, kBlockSize, prompt.data(), prompt.size(), nullptr,
                            hashes.data(), hashes.size(), &count), "hash_blocks")) {
        return kExitFailure;
    }

    kvc_stats* final_stats = nullptr;
    if (!ok(kvc_pool_snapshot(pool, &final_stats), "snapshot")) return kExitFailure;
    const bool added = ok(kvc_exposition_add(scrape, final_stats), "exposition_add");
    const uint64_t evictions = kvc_stats_evictions(final_stats);
    kvc_stats_destroy(final_stats);
    if (!added) return kExitFailure;

    // New model weights make every cached block stale: the cache is cleared, and routers are told.
    if (!ok(kvc_pool_reset_prefix_cache(pool), "reset_prefix_cache")) return kExitFailure;
    const kvc_event_encoding encoding = o.events == EventEncoding::kMap ? KVC_EVENTS_MAP : KVC_EVENTS_ARRAY;
    size_t length = 0;
    if (!ok(kvc_pool_drain_events(pool, encoding, nullptr, 0, &length), "drain_events")) return kExitFailure;
    std::vector<uint8_t> batch(length);
    if (!ok(kvc_pool_drain_events(pool, encoding, batch.data(), batch.size(), &length), "drain_events")) {
        return kExitFailure;
    }
    EventCounts events;
    if (!decode_events(batch, events)) {
        std::fprintf(stderr, "kvcore tour: the pool's event batch did not decode as vLLM's EventBatch\n");
        return kExitFailure;
    }
    std::printf("\nnew model weights make every cached block stale: kvc_pool_reset_prefix_cache\n");
    std::printf("KV events: one msgpack EventBatch of %zu bytes (kvc_pool_drain_events, %s events), decoded:\n",
                batch.size(), o.events == EventEncoding::kMap ? "map" : "array");
    std::printf("  BlockStored %" PRIu64 " (%" PRIu64 " blocks), BlockRemoved %" PRIu64 " (%" PRIu64
                " blocks evicted), AllBlocksCleared %" PRIu64 "\n",
                events.stored, events.stored_blocks, events.removed, events.removed_blocks, events.cleared);
    if (events.other > 0) std::printf("  other event types: %" PRIu64 "\n", events.other);
    if (kvc_pool_events_dropped(pool) > 0) {
        std::printf("  dropped (queue full): %" PRIu64 "\n", kvc_pool_events_dropped(pool));
    }
    const auto published = static_cast<size_t>(std::count_if(
        hashes.begin(), hashes.end(), [&](uint64_t h) { return events.stored_hashes.count(h) != 0; }));
    std::printf("vLLM block hashes of chat A's last prompt (kvc_hash_blocks, as `kvcore hash` prints them):\n");
    std::printf("  %zu full blocks: %" PRIu64 ", %" PRIu64 ", ... %" PRIu64 "\n", hashes.size(), hashes.front(),
                hashes.size() > 1 ? hashes[1] : hashes.front(), hashes.back());
    std::printf("  %zu of %zu appear in the pool's BlockStored events\n", published, hashes.size());
    std::printf("pool: %" PRIu64 " evictions, %" PRIu64 " requests refused for want of blocks\n", evictions, refused);
    return kExitOk;
}

// ---- the optional LRU part: a cache not built on kvcore, reporting through a kvc_recorder ------------

// Zipf(s=1.0) over [0, n): inverse-CDF sampling from a precomputed table (8 bytes a key).
class Zipf {
public:
    explicit Zipf(uint32_t n) : cdf_(n) {
        double sum = 0;
        for (uint32_t i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / (i + 1.0));
        for (double& c : cdf_) c /= sum;
    }
    uint32_t operator()(std::mt19937_64& rng) {
        const double u = std::uniform_real_distribution<double>(0, 1)(rng);
        return static_cast<uint32_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
    }

private:
    std::vector<double> cdf_;
};

int run_lru_part(const TourOptions& o, kvc_exposition* scrape) {
    constexpr int64_t kBytesPerEntry = 16 * 1024;  // a KV block of a small model, for the bytes gauge
    kvc_recorder_options* options = nullptr;
    kvc_recorder* recorder = nullptr;
    bool good = ok(kvc_recorder_options_create(&options), "recorder options") &&
                ok(kvc_recorder_options_set_component(options, "tour_lru"), "component") &&
                ok(kvc_recorder_create(options, &recorder), "recorder");
    kvc_recorder_options_destroy(options);
    if (!good) return kExitFailure;
    struct Owner {
        kvc_recorder* r;
        ~Owner() { kvc_recorder_destroy(r); }
    } owner{recorder};

    std::printf("\nthe stats recorder in any cache: a plain LRU of %u entries (not built on kvcore), %u Zipf keys, "
                "%" PRIu64 " lookups;\nhalfway the hot keys move: the windowed hit rate shows the drop, the "
                "cumulative one hides it\n", o.capacity, o.keys, o.accesses);
    std::mt19937_64 rng(o.seed);
    Zipf zipf(o.keys);
    LruCache cache(o.capacity);
    const uint64_t shift_at = o.accesses / 2;
    for (uint64_t i = 0; i < o.accesses; ++i) {
        uint64_t key = zipf(rng);
        if (i >= shift_at) key += o.keys;  // a new hot set: every old entry goes cold
        bool evicted = false;
        const bool hit = cache.access(key, &evicted);
        good = ok(kvc_recorder_record_access(recorder, hit), "record_access");
        // An eviction makes room for an insertion the cache accepted: counted as an eviction, and not as
        // memory pressure, which counts only requests refused for want of memory (this cache refuses none).
        if (good && evicted) {
            good = ok(kvc_recorder_record_evictions(recorder, 1), "record_evictions") &&
                   ok(kvc_recorder_add_bytes(recorder, -kBytesPerEntry), "add_bytes");
        }
        if (good && !hit) {
            good = ok(kvc_recorder_record_insertions(recorder, 1), "record_insertions") &&
                   ok(kvc_recorder_add_bytes(recorder, kBytesPerEntry), "add_bytes");
        }
        if (!good) return kExitFailure;
        if (i + 1 == shift_at || i + 1 == shift_at + std::max<uint64_t>(o.capacity / 4, 1) || i + 1 == o.accesses) {
            kvc_stats* s = nullptr;
            if (!ok(kvc_recorder_snapshot(recorder, &s), "snapshot")) return kExitFailure;
            std::printf("  after %9" PRIu64 " lookups: cumulative %s, last %u lookups %s\n", i + 1,
                        percent(kvc_stats_hit_rate(s)).c_str(), kvc_stats_window_size(s),
                        percent(kvc_stats_window_hit_rate(s)).c_str());
            kvc_stats_destroy(s);
        }
    }
    kvc_stats* stats = nullptr;
    if (!ok(kvc_recorder_snapshot(recorder, &stats), "snapshot")) return kExitFailure;
    std::printf("  insertions %" PRIu64 ", evictions %" PRIu64 ", memory pressure events %" PRIu64 "\n",
                kvc_stats_insertions(stats), kvc_stats_evictions(stats), kvc_stats_memory_pressure_events(stats));
    good = ok(kvc_exposition_add(scrape, stats), "exposition_add");
    kvc_stats_destroy(stats);
    return good ? kExitOk : kExitFailure;
}

bool print_scrape(const kvc_exposition* scrape, bool with_lru) {
    size_t length = 0;
    if (!ok(kvc_exposition_to_prometheus(scrape, nullptr, 0, &length), "to_prometheus")) return false;
    std::string text(length + 1, '\0');
    if (!ok(kvc_exposition_to_prometheus(scrape, text.data(), text.size(), nullptr), "to_prometheus")) return false;
    text.resize(length);
    std::printf("\nPrometheus text exposition (kvc_exposition), one scrape of %s:\n%s",
                with_lru ? "the pool and tour_lru" : "the pool", text.c_str());
    return true;
}

}  // namespace

uint32_t tour_min_blocks(uint32_t turns) {
    // The follow-up request (the longest), one block per sample for the fork's first tokens, the null block.
    const uint64_t prompt = kSystemTokens + uint64_t{turns} * (kUserTokens + kReplyTokens) + kUserTokens;
    return static_cast<uint32_t>((prompt + kBlockSize - 1) / kBlockSize + 3);
}

int run_tour(const TourOptions& o) {
    kvc_exposition* scrape = nullptr;
    if (!ok(kvc_exposition_create(&scrape), "exposition")) return kExitFailure;
    int rc = run_pool_part(o, scrape);
    if (rc == kExitOk && o.lru) rc = run_lru_part(o, scrape);
    if (rc == kExitOk && o.prometheus && !print_scrape(scrape, o.lru)) rc = kExitFailure;
    kvc_exposition_destroy(scrape);
    return rc;
}

}  // namespace kvcore::cli
