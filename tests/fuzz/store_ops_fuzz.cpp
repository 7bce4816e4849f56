// SPDX-License-Identifier: Apache-2.0
// Drives a small session store through random sequences of kvc_store_* / kvc_session_* calls (several
// leases at once, conversations that share prefixes, removes and clears of held sessions, the store
// destroyed under its leases) against a model of what the header promises, and checks after every call:
// statuses are the documented ones, a held session is never evicted, gauges stay inside the bounds, a
// refusal (KVC_ERR_CAPACITY) changes nothing and happens only when the bounds leave no room, begin_turn
// reuses exactly the common committed prefix, and K/V read back equal what was written.
//
// K/V model: the rows written for token i are a function of the conversation up to i (as a model's
// forward would make them), so a block shared between sessions with the same prefix must hold the same
// rows whoever wrote it. The model tracks, per session, layer and token, whether the rows are known
// (written by the session, or kept from its committed prefix, or reused from a prefix other sessions
// committed); known rows must read back exactly. A commit of unwritten rows is allowed but leaves garbage
// in shareable blocks, so from then on rows reused from other sessions are not checked ("tainted").
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "kvcore/kvcore.h"

namespace {

using kvcore::fuzz::FuzzInput;

uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct ShapeDef {
    uint32_t layers, kv_heads, head_dim;
    kvc_dtype dtype;
    uint64_t row_bytes, bytes_per_block;
    bool operator==(const ShapeDef& o) const {
        return layers == o.layers && kv_heads == o.kv_heads && head_dim == o.head_dim && dtype == o.dtype;
    }
};

uint32_t dtype_bytes(kvc_dtype d) { return d == KVC_DTYPE_F32 ? 4 : (d == KVC_DTYPE_F16 || d == KVC_DTYPE_BF16) ? 2 : 1; }

struct Sess {
    std::string id;
    int shape = 0;
    uint32_t max_tokens = 0;
    std::vector<int32_t> tokens;
    std::vector<uint64_t> prefix;  // prefix[i]: hash of tokens[0..i]
    size_t committed = 0;
    std::vector<std::vector<uint8_t>> known;  // [layer][token]
    int holders = 0;
    bool attached = false;  // in the store under its id (as far as the model knows)
};

struct Lease {
    kvc_session* handle;
    std::shared_ptr<Sess> sess;
};

// The rows of token i of a conversation whose prefix hash is h, in one layer, K (kv 0) or V (kv 1).
void rows_of(uint64_t h, uint32_t layer, uint32_t kv, uint8_t* out, uint64_t bytes) {
    for (uint64_t j = 0; j < bytes; ++j) out[j] = static_cast<uint8_t>(mix(h ^ (uint64_t{layer * 2 + kv} << 56) ^ (j * 0x100000001b3ull)) >> 13);
}

bool known_status(kvc_status st) {
    return st == KVC_OK || st == KVC_ERR_INVALID_ARGUMENT || st == KVC_ERR_OUT_OF_RANGE || st == KVC_ERR_CAPACITY ||
           st == KVC_ERR_BUFFER_TOO_SMALL || st == KVC_ERR_NOT_FOUND || st == KVC_ERR_INVALID_STATE;
}

// KVCORE_FUZZ_TRACE=1 prints the calls, to turn a saved input into a call sequence.
const bool kTrace = std::getenv("KVCORE_FUZZ_TRACE") != nullptr;
#define TRACE(...) \
    do { \
        if (kTrace) std::fprintf(stderr, __VA_ARGS__); \
    } while (0)

std::string str(const std::vector<int32_t>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
    return out + "]";
}

uint64_t blocks_for(uint64_t tokens, uint32_t block_size) { return (tokens + block_size - 1) / block_size; }

class Harness {
public:
    explicit Harness(FuzzInput& in) : in_(in) {}
    void run();

private:
    FuzzInput& in_;
    // Options.
    uint32_t max_sessions_ = 1, max_tokens_ = 1, block_size_ = 1;

    // K and V of every layer, each block_size rows; an INT8 part then holds a float scale per token and head
    // after its rows rounded up to 4 bytes (include/kvcore/ops.h).
    uint64_t bytes_per_block(const ShapeDef& sd) const {
        uint64_t part = uint64_t{block_size_} * sd.row_bytes;
        if (sd.dtype == KVC_DTYPE_INT8) part = (part + 3) / 4 * 4 + uint64_t{block_size_} * sd.kv_heads * 4;
        return part * sd.layers * 2;
    }
    uint64_t max_bytes_total_ = 0, max_bytes_per_session_ = 0;
    bool enabled_ = true, persist_ = true, sharing_ = true;
    uint64_t seed_ = 0;
    ShapeDef shapes_[2]{};
    // State.
    kvc_store* store_ = nullptr;
    std::map<std::string, std::shared_ptr<Sess>> attached_;
    std::vector<Lease> leases_;
    bool tainted_ = false;
    uint64_t hits_ = 0, created_ = 0, reused_total_ = 0;

    static const char* id_name(uint32_t i) {
        static const char* const kIds[] = {"a", "b", "chat-42", "d", "a:b"};
        return kIds[i];
    }
    std::vector<std::shared_ptr<Sess>> held_sessions() const {
        std::vector<std::shared_ptr<Sess>> out;
        for (const Lease& l : leases_) {
            if (std::find(out.begin(), out.end(), l.sess) == out.end()) out.push_back(l.sess);
        }
        return out;
    }
    size_t held_attached() const {
        size_t n = 0;
        for (const auto& s : held_sessions()) n += s->attached;
        return n;
    }
    // Bytes that the held sessions other than `self`, plus `self` at `tokens` tokens, can take at most.
    uint64_t held_bytes_with(const Sess& self, uint64_t tokens) const {
        uint64_t bytes = blocks_for(tokens, block_size_) * shapes_[self.shape].bytes_per_block;
        for (const auto& s : held_sessions()) {
            if (s.get() != &self) bytes += blocks_for(s->tokens.size(), block_size_) * shapes_[s->shape].bytes_per_block;
        }
        return bytes;
    }
    bool over_own_bounds(const Sess& s, uint64_t tokens) const {
        const uint64_t bytes = blocks_for(tokens, block_size_) * shapes_[s.shape].bytes_per_block;
        return tokens > s.max_tokens || (max_bytes_per_session_ != 0 && bytes > max_bytes_per_session_) ||
               bytes > max_bytes_total_;
    }
    void set_tokens(Sess& s, const std::vector<int32_t>& tokens, size_t keep) {
        s.tokens = tokens;
        s.prefix.resize(tokens.size());
        for (size_t i = keep; i < tokens.size(); ++i) {
            s.prefix[i] = mix((i == 0 ? seed_ : s.prefix[i - 1]) ^ (uint64_t(uint32_t(tokens[i])) + 0x51));
        }
        for (auto& k : s.known) k.resize(tokens.size());
        for (auto& k : s.known) std::fill(k.begin() + static_cast<ptrdiff_t>(std::min(keep, k.size())), k.end(), 0);
    }
    std::shared_ptr<Sess> new_sess(const std::string& id, int shape, uint32_t max_tokens) {
        auto s = std::make_shared<Sess>();
        s->id = id;
        s->shape = shape;
        s->max_tokens = max_tokens;
        s->known.resize(shapes_[shape].layers);
        return s;
    }

    void check_session(const Lease& l);
    void check_store();
    void check_sharing();
    std::vector<int32_t> conversation_for(const Sess& s);

    void op_get_or_create();
    void op_try_get();
    void op_release(size_t index);
    void op_begin_turn(Lease& l);
    void op_append(Lease& l);
    void op_write(Lease& l, bool whole);
    void op_read(Lease& l);
    void op_commit(Lease& l);
    void op_remove();
    void op_clear();
    void op_destroy();
};

void Harness::check_session(const Lease& l) {
    const Sess& s = *l.sess;
    size_t tokens = SIZE_MAX, committed = SIZE_MAX, max_tokens = 0;
    FUZZ_REQUIRE(kvc_session_tokens(l.handle, &tokens, &committed) == KVC_OK);
    FUZZ_REQUIRE(tokens == s.tokens.size() && committed == s.committed);
    FUZZ_REQUIRE(kvc_session_max_tokens(l.handle, &max_tokens) == KVC_OK && max_tokens == s.max_tokens);
    FUZZ_REQUIRE(tokens <= max_tokens);
    size_t count = 0;
    FUZZ_REQUIRE(kvc_session_block_table(l.handle, nullptr, 0, &count) == KVC_OK);
    FUZZ_REQUIRE(count == blocks_for(tokens, block_size_));
    void* base = nullptr;
    uint64_t bpb = 0;
    uint32_t bs = 0;
    FUZZ_REQUIRE(kvc_session_storage(l.handle, &base, &bpb, &bs) == KVC_OK);
    FUZZ_REQUIRE(base != nullptr && bpb == shapes_[s.shape].bytes_per_block && bs == block_size_);
}

void Harness::check_store() {
    const auto held = held_sessions();
    for (const Lease& l : leases_) check_session(l);
    if (store_ == nullptr) return;
    const uint64_t sessions = kvc_store_num_sessions(store_), bytes = kvc_store_bytes_in_use(store_);
    FUZZ_REQUIRE(sessions <= max_sessions_);
    FUZZ_REQUIRE(held_attached() <= sessions && sessions <= attached_.size());
    if (!enabled_) FUZZ_REQUIRE(sessions == 0);
    FUZZ_REQUIRE(bytes <= max_bytes_total_);
    FUZZ_REQUIRE(bytes <= kvc_store_peak_bytes(store_));
    // Every held session's blocks are in use (shared ones count once: the largest per shape is a floor).
    uint64_t floor[2] = {0, 0};
    for (const auto& s : held) {
        floor[s->shape] = std::max(floor[s->shape], blocks_for(s->tokens.size(), block_size_) * shapes_[s->shape].bytes_per_block);
    }
    FUZZ_REQUIRE(bytes >= floor[0] + floor[1]);
    if (held.empty() && attached_.empty()) FUZZ_REQUIRE(bytes == 0);
}

// Two held sessions share a block only inside the prefix both committed, at the same place, for the same
// tokens; with prefix sharing off, never.
void Harness::check_sharing() {
    const auto held = held_sessions();
    std::vector<std::vector<int32_t>> tables(held.size());
    for (size_t i = 0; i < held.size(); ++i) {
        const auto it = std::find_if(leases_.begin(), leases_.end(), [&](const Lease& l) { return l.sess == held[i]; });
        size_t count = 0;
        tables[i].resize(blocks_for(held[i]->tokens.size(), block_size_) + 1, -5);
        FUZZ_REQUIRE(kvc_session_block_table(it->handle, tables[i].data(), tables[i].size(), &count) == KVC_OK);
        FUZZ_REQUIRE(count + 1 == tables[i].size() && tables[i][count] == -5);
        tables[i].pop_back();
        for (size_t p = 0; p < count; ++p) {
            FUZZ_REQUIRE(tables[i][p] >= 0);
            for (size_t q = 0; q < p; ++q) FUZZ_REQUIRE(tables[i][p] != tables[i][q]);
        }
    }
    for (size_t i = 0; i < held.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
            if (held[i]->shape != held[j]->shape) continue;
            for (size_t p = 0; p < tables[i].size(); ++p) {
                for (size_t q = 0; q < tables[j].size(); ++q) {
                    if (tables[i][p] != tables[j][q]) continue;
                    FUZZ_REQUIRE(sharing_);
                    FUZZ_REQUIRE(p == q);
                    const Sess &a = *held[i], &b = *held[j];
                    const size_t end = std::min({a.tokens.size(), b.tokens.size(), (p + 1) * block_size_});
                    for (size_t t = p * block_size_; t < end; ++t) {
                        FUZZ_REQUIRE(a.tokens[t] == b.tokens[t]);
                        FUZZ_REQUIRE(t < a.committed && t < b.committed);
                    }
                }
            }
        }
    }
}

std::vector<int32_t> Harness::conversation_for(const Sess& s) {
    std::vector<int32_t> conv;
    const uint8_t kind = in_.byte() % 8;
    if (kind <= 2) {  // the session's own conversation, cut somewhere
        conv = s.tokens;
        conv.resize(in_.below(static_cast<uint32_t>(conv.size() + 1)));
        if (kind == 0) conv = s.tokens;
    } else if (kind <= 4) {  // a system prompt
        const uint32_t p = in_.below(3), len = 2 + p * 5;
        for (uint32_t i = 0; i < len; ++i) conv.push_back(static_cast<int32_t>((p * 7 + i * 3) % 5));
    } else if (kind == 5 && !leases_.empty()) {  // another session's conversation
        const Sess& o = *leases_[in_.below(static_cast<uint32_t>(leases_.size()))].sess;
        conv = o.tokens;
        conv.resize(in_.below(static_cast<uint32_t>(conv.size() + 1)));
    } else if (kind == 6) {
        return conv;  // empty: ends the session's conversation
    }
    const uint32_t more = in_.below(9);
    for (uint32_t i = 0; i < more; ++i) conv.push_back(static_cast<int32_t>(in_.below(5)));
    if (in_.byte() % 32 == 0 && !conv.empty()) conv[in_.below(static_cast<uint32_t>(conv.size()))] = -1;
    if (conv.size() > 80) conv.resize(80);
    return conv;
}

void Harness::op_get_or_create() {
    const std::string id = id_name(in_.below(5));
    const int shape = in_.byte() % 8 == 0 ? 1 : 0;
    const uint32_t arg = in_.byte() % 3 == 0 ? 0 : in_.below(max_tokens_ + 2);
    const ShapeDef& sd = shapes_[shape];
    const uint32_t mt = arg == 0 ? max_tokens_ : arg;
    const auto it = enabled_ ? attached_.find(id) : attached_.end();
    const std::shared_ptr<Sess> found = it != attached_.end() ? it->second : nullptr;
    const bool block_too_big =
        sd.bytes_per_block > max_bytes_total_ || (max_bytes_per_session_ != 0 && sd.bytes_per_block > max_bytes_per_session_);
    const bool all_held = enabled_ && held_attached() >= max_sessions_;
    kvc_session* handle = nullptr;
    uint32_t created = 7;
    const kvc_status st =
        kvc_store_get_or_create(store_, id.c_str(), sd.layers, sd.kv_heads, sd.head_dim, sd.dtype, arg, &handle, &created);
    TRACE("get_or_create(%s, shape %d, max_tokens %u) = %d created %u\n", id.c_str(), shape, arg, st, created);
    FUZZ_REQUIRE(known_status(st));
    FUZZ_REQUIRE((st == KVC_OK) == (handle != nullptr));
    if (arg > max_tokens_) {
        FUZZ_REQUIRE(st == KVC_ERR_CAPACITY);
        return;
    }
    const bool fits_found = found && found->shape == shape && found->tokens.size() <= mt;
    if (found && found->holders > 0) {  // held: never evicted, so found
        FUZZ_REQUIRE(st == (fits_found ? KVC_OK : KVC_ERR_INVALID_STATE));
    }
    if (st == KVC_ERR_INVALID_STATE) {
        FUZZ_REQUIRE(found && !fits_found);
        return;
    }
    if (st == KVC_ERR_CAPACITY) {
        FUZZ_REQUIRE(block_too_big || all_held);
        return;
    }
    if (!found) FUZZ_REQUIRE(st == ((block_too_big || all_held) ? KVC_ERR_CAPACITY : KVC_OK));
    FUZZ_REQUIRE(st == KVC_OK && (created == 0 || created == 1));
    if (created == 0) {
        FUZZ_REQUIRE(fits_found);
        ++hits_;
        found->max_tokens = mt;
        ++found->holders;
        leases_.push_back({handle, found});
        return;
    }
    ++created_;
    if (found) {  // evicted while idle; the id starts over
        FUZZ_REQUIRE(found->holders == 0);
        found->attached = false;
        attached_.erase(id);
    }
    auto s = new_sess(id, shape, mt);
    s->holders = 1;
    s->attached = enabled_;
    if (enabled_) attached_[id] = s;
    leases_.push_back({handle, s});
    size_t length = 0;
    char buf[16];
    FUZZ_REQUIRE(kvc_session_id(handle, nullptr, 0, &length) == KVC_OK && length == id.size());
    FUZZ_REQUIRE(kvc_session_id(handle, buf, length, &length) == KVC_ERR_BUFFER_TOO_SMALL);
    FUZZ_REQUIRE(kvc_session_id(handle, buf, sizeof buf, &length) == KVC_OK && id == buf);
}

void Harness::op_try_get() {
    const std::string id = id_name(in_.below(5));
    kvc_session* handle = reinterpret_cast<kvc_session*>(&in_);
    const kvc_status st = kvc_store_try_get(store_, id.c_str(), &handle);
    TRACE("try_get(%s) = %d\n", id.c_str(), st);
    FUZZ_REQUIRE(st == KVC_OK || st == KVC_ERR_NOT_FOUND);
    FUZZ_REQUIRE((st == KVC_OK) == (handle != nullptr));
    const auto it = attached_.find(id);
    if (!enabled_ || it == attached_.end()) {
        FUZZ_REQUIRE(st == KVC_ERR_NOT_FOUND);
        return;
    }
    const auto s = it->second;
    if (st == KVC_ERR_NOT_FOUND) {  // evicted while idle
        FUZZ_REQUIRE(s->holders == 0);
        s->attached = false;
        attached_.erase(it);
        return;
    }
    ++hits_;
    ++s->holders;
    leases_.push_back({handle, s});
}

void Harness::op_release(size_t index) {
    const Lease l = leases_[index];
    leases_.erase(leases_.begin() + static_cast<ptrdiff_t>(index));
    kvc_session_release(l.handle);
    TRACE("release(%s)\n", l.sess->id.c_str());
    Sess& s = *l.sess;
    if (--s.holders > 0 || !s.attached) return;
    if (!persist_) {  // a session lives for one request
        s.attached = false;
        attached_.erase(s.id);
    }
}

void Harness::op_begin_turn(Lease& l) {
    Sess& s = *l.sess;
    const std::vector<int32_t> conv = conversation_for(s);
    const bool negative = std::any_of(conv.begin(), conv.end(), [](int32_t t) { return t < 0; });
    const size_t n = conv.size();
    size_t reused = SIZE_MAX;
    const kvc_status st = kvc_session_begin_turn(l.handle, conv.data(), n, &reused);
    TRACE("begin_turn(%s, %s) = %d reused %zu; bytes in use %llu\n", s.id.c_str(), str(conv).c_str(), st, reused,
          static_cast<unsigned long long>(kvc_store_bytes_in_use(store_)));
    FUZZ_REQUIRE(known_status(st));
    if (negative) {
        FUZZ_REQUIRE(st == KVC_ERR_INVALID_ARGUMENT);
        return;
    }
    if (over_own_bounds(s, n)) {
        FUZZ_REQUIRE(st == KVC_ERR_CAPACITY);
        return;
    }
    // Room for it once every idle session is gone: it must not be refused.
    if (held_bytes_with(s, n) <= max_bytes_total_) FUZZ_REQUIRE(st == KVC_OK);
    if (st != KVC_OK) {
        FUZZ_REQUIRE(st == KVC_ERR_CAPACITY);
        return;  // check_session: nothing changed
    }
    FUZZ_REQUIRE(reused <= n);
    size_t lcp = 0;
    while (lcp < std::min(n, s.committed) && conv[lcp] == s.tokens[lcp]) ++lcp;
    if (lcp > 0) {
        FUZZ_REQUIRE(reused == lcp);
        set_tokens(s, conv, lcp);
    } else {
        // Rows of full blocks other sessions committed (never the last token).
        FUZZ_REQUIRE(n == 0 || reused < n);
        FUZZ_REQUIRE(reused % block_size_ == 0);
        if (!sharing_) FUZZ_REQUIRE(reused == 0);
        set_tokens(s, conv, 0);
        for (auto& k : s.known) std::fill(k.begin(), k.begin() + static_cast<ptrdiff_t>(reused), tainted_ ? 0 : 1);
    }
    s.committed = reused;
    reused_total_ += reused;
}

void Harness::op_append(Lease& l) {
    Sess& s = *l.sess;
    std::vector<int32_t> more(in_.below(5));
    for (auto& t : more) t = static_cast<int32_t>(in_.below(5));
    const bool negative = in_.byte() % 32 == 0 && !more.empty();
    if (negative) more.back() = -3;
    const kvc_status st = kvc_session_append_tokens(l.handle, more.empty() ? nullptr : more.data(), more.size());
    TRACE("append(%s, %s) = %d\n", s.id.c_str(), str(more).c_str(), st);
    FUZZ_REQUIRE(known_status(st));
    if (more.empty() || negative) {
        FUZZ_REQUIRE(st == KVC_ERR_INVALID_ARGUMENT);
        return;
    }
    if (s.tokens.empty()) {
        FUZZ_REQUIRE(st == KVC_ERR_INVALID_STATE);
        return;
    }
    const size_t n = s.tokens.size() + more.size();
    if (over_own_bounds(s, n)) {
        FUZZ_REQUIRE(st == KVC_ERR_CAPACITY);
        return;
    }
    if (held_bytes_with(s, n) <= max_bytes_total_) FUZZ_REQUIRE(st == KVC_OK);
    if (st != KVC_OK) {
        FUZZ_REQUIRE(st == KVC_ERR_CAPACITY);
        return;
    }
    std::vector<int32_t> conv = s.tokens;
    conv.insert(conv.end(), more.begin(), more.end());
    set_tokens(s, conv, s.tokens.size());
}

void Harness::op_write(Lease& l, bool whole) {
    Sess& s = *l.sess;
    const ShapeDef& sd = shapes_[s.shape];
    const size_t tokens = s.tokens.size();
    uint32_t layer_lo = 0, layer_hi = sd.layers;
    size_t first = s.committed, n = tokens - s.committed;
    if (!whole) {
        layer_lo = in_.below(sd.layers + 1);
        layer_hi = layer_lo + 1;
        first = in_.below(static_cast<uint32_t>(tokens + 2));
        n = in_.below(static_cast<uint32_t>(tokens + 2));
    }
    std::vector<uint8_t> keys(std::max<size_t>(n, 1) * sd.row_bytes), values(keys.size());
    for (uint32_t layer = layer_lo; layer < layer_hi; ++layer) {
        const bool ok_range = layer < sd.layers && first >= s.committed && first <= tokens && n <= tokens - first;
        if (ok_range) {
            for (size_t i = 0; i < n; ++i) {
                rows_of(s.prefix[first + i], layer, 0, keys.data() + i * sd.row_bytes, sd.row_bytes);
                rows_of(s.prefix[first + i], layer, 1, values.data() + i * sd.row_bytes, sd.row_bytes);
            }
        }
        const bool null_rows = n == 0 && in_.byte() % 2 == 0;
        const kvc_status st = kvc_session_write_kv(l.handle, layer, first, n, null_rows ? nullptr : keys.data(),
                                                   null_rows ? nullptr : values.data());
        TRACE("write_kv(%s, layer %u, first %zu, n %zu) = %d\n", s.id.c_str(), layer, first, n, st);
        FUZZ_REQUIRE(st == (ok_range ? KVC_OK : KVC_ERR_OUT_OF_RANGE));
        if (st == KVC_OK) std::fill_n(s.known[layer].begin() + static_cast<ptrdiff_t>(first), n, 1);
    }
}

void Harness::op_read(Lease& l) {
    const Sess& s = *l.sess;
    const ShapeDef& sd = shapes_[s.shape];
    const size_t tokens = s.tokens.size();
    const uint32_t layer = in_.below(sd.layers + (in_.byte() % 8 == 0));
    size_t first = 0, n = tokens;
    if (in_.byte() % 2 == 0) {
        first = in_.below(static_cast<uint32_t>(tokens + 2));
        n = in_.below(static_cast<uint32_t>(tokens + 2));
    }
    const size_t needed = n * sd.row_bytes;
    size_t bytes = 0;
    FUZZ_REQUIRE(kvc_session_read_kv(l.handle, layer, first, n, nullptr, nullptr, 0, &bytes) == KVC_OK);
    FUZZ_REQUIRE(bytes == needed);
    const bool small = needed > 0 && in_.byte() % 4 == 0;
    const size_t capacity = small ? needed - 1 - in_.below(static_cast<uint32_t>(needed)) % needed : needed;
    std::vector<uint8_t> keys(std::max<size_t>(needed, 1), 0xA5), values(keys.size(), 0x5A);
    const kvc_status st = kvc_session_read_kv(l.handle, layer, first, n, keys.data(), values.data(), capacity, &bytes);
    const bool ok_range = layer < sd.layers && first <= tokens && n <= tokens - first;
    TRACE("read_kv(%s, layer %u, first %zu, n %zu, capacity %zu) = %d\n", s.id.c_str(), layer, first, n, capacity, st);
    if (small) {
        FUZZ_REQUIRE(st == KVC_ERR_BUFFER_TOO_SMALL || (!ok_range && st == KVC_ERR_OUT_OF_RANGE));
        return;
    }
    FUZZ_REQUIRE(st == (ok_range ? KVC_OK : KVC_ERR_OUT_OF_RANGE));
    if (st != KVC_OK) return;
    std::vector<uint8_t> want(sd.row_bytes);
    for (size_t i = 0; i < n; ++i) {
        if (!s.known[layer][first + i]) continue;
        rows_of(s.prefix[first + i], layer, 0, want.data(), sd.row_bytes);
        FUZZ_REQUIRE(std::memcmp(keys.data() + i * sd.row_bytes, want.data(), sd.row_bytes) == 0);
        rows_of(s.prefix[first + i], layer, 1, want.data(), sd.row_bytes);
        FUZZ_REQUIRE(std::memcmp(values.data() + i * sd.row_bytes, want.data(), sd.row_bytes) == 0);
    }
}

void Harness::op_commit(Lease& l) {
    Sess& s = *l.sess;
    FUZZ_REQUIRE(kvc_session_commit(l.handle) == KVC_OK);
    TRACE("commit(%s)\n", s.id.c_str());
    for (const auto& k : s.known) {
        if (sharing_ && std::find(k.begin(), k.end(), 0) != k.end()) tainted_ = true;  // garbage made shareable
    }
    s.committed = s.tokens.size();
}

void Harness::op_remove() {
    const std::string id = id_name(in_.below(5));
    const kvc_status st = kvc_store_remove(store_, id.c_str());
    TRACE("remove(%s) = %d\n", id.c_str(), st);
    const auto it = attached_.find(id);
    if (it == attached_.end()) {
        FUZZ_REQUIRE(st == KVC_ERR_NOT_FOUND);
        return;
    }
    if (it->second->holders > 0) FUZZ_REQUIRE(st == KVC_OK);
    FUZZ_REQUIRE(st == KVC_OK || st == KVC_ERR_NOT_FOUND);  // not found: evicted while idle
    it->second->attached = false;
    attached_.erase(it);
}

void Harness::op_clear() {
    FUZZ_REQUIRE(kvc_store_clear(store_) == KVC_OK);
    TRACE("clear()\n");
    for (auto& [id, s] : attached_) s->attached = false;
    attached_.clear();
    FUZZ_REQUIRE(kvc_store_num_sessions(store_) == 0);
    if (leases_.empty()) FUZZ_REQUIRE(kvc_store_bytes_in_use(store_) == 0);
}

void Harness::op_destroy() {
    // Stats first: lookups and reuse counted as the model counted them.
    kvc_stats* stats = nullptr;
    FUZZ_REQUIRE(kvc_store_snapshot(store_, &stats) == KVC_OK);
    FUZZ_REQUIRE(kvc_stats_hits(stats) == hits_);
    FUZZ_REQUIRE(kvc_stats_insertions(stats) == created_);
    FUZZ_REQUIRE(kvc_stats_misses(stats) >= created_);
    FUZZ_REQUIRE(kvc_stats_tokens_reused(stats) == reused_total_);
    FUZZ_REQUIRE(kvc_stats_bytes_in_use(stats) == kvc_store_bytes_in_use(store_));
    FUZZ_REQUIRE(kvc_stats_peak_bytes(stats) == kvc_store_peak_bytes(store_));
    kvc_stats_destroy(stats);
    TRACE("destroy()\n");
    kvc_store_destroy(store_);  // held sessions live on until their release
    store_ = nullptr;
    for (auto& [id, s] : attached_) s->attached = false;
    attached_.clear();
}

void Harness::run() {
    kvc_store_options* options = nullptr;
    FUZZ_REQUIRE(kvc_store_options_create(&options) == KVC_OK);
    max_sessions_ = 1 + in_.below(4);
    max_tokens_ = 1 + in_.below(64);
    block_size_ = 1 + in_.below(8);
    enabled_ = in_.byte() % 5 != 0;
    persist_ = in_.byte() % 4 != 0;
    sharing_ = in_.byte() % 3 != 0;
    seed_ = in_.byte();
    static const kvc_dtype kDtypes[] = {KVC_DTYPE_F16, KVC_DTYPE_BF16, KVC_DTYPE_F32, KVC_DTYPE_FP8, KVC_DTYPE_INT8};
    for (ShapeDef& sd : shapes_) {
        sd.layers = 1 + in_.below(2);
        sd.kv_heads = 1 + in_.below(2);
        sd.head_dim = 1 + in_.below(4);
        sd.dtype = kDtypes[in_.below(5)];
        sd.row_bytes = uint64_t{sd.kv_heads} * sd.head_dim * dtype_bytes(sd.dtype);
        sd.bytes_per_block = bytes_per_block(sd);
    }
    if (shapes_[1] == shapes_[0]) {  // the second shape is another pool
        shapes_[1].head_dim = 5;
        shapes_[1].row_bytes = uint64_t{shapes_[1].kv_heads} * 5 * dtype_bytes(shapes_[1].dtype);
        shapes_[1].bytes_per_block = bytes_per_block(shapes_[1]);
    }
    // Byte bounds of a few blocks of the first shape, now and then less than one block.
    const uint64_t bpb = shapes_[0].bytes_per_block;
    max_bytes_total_ = in_.byte() % 16 == 0 ? 1 + in_.below(static_cast<uint32_t>(bpb)) : bpb * (1 + in_.below(24));
    max_bytes_per_session_ = in_.byte() % 3 == 0 ? bpb * (1 + in_.below(8)) - in_.below(2) : 0;
    const auto policy = static_cast<kvc_eviction_policy>(in_.below(KVC_EVICTION_ARC + 1));
    FUZZ_REQUIRE(kvc_store_options_set_max_sessions(options, max_sessions_) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_max_tokens_per_session(options, max_tokens_) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_block_size(options, block_size_) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_enabled(options, enabled_) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_persist_across_requests(options, persist_) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_prefix_sharing(options, sharing_) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_max_bytes_total(options, max_bytes_total_) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_max_bytes_per_session(options, max_bytes_per_session_) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_eviction_policy(options, policy) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_memory(options, KVC_MEMORY_HOST) == KVC_OK);
    FUZZ_REQUIRE(kvc_store_options_set_max_sessions(options, 0) == KVC_ERR_INVALID_ARGUMENT);
    FUZZ_REQUIRE(kvc_store_options_set_block_size(options, 0) == KVC_ERR_INVALID_ARGUMENT);
    TRACE("store: max sessions %u, max tokens %u, block size %u, enabled %d, persist %d, sharing %d, policy %d, "
          "max bytes total %llu, per session %llu, bytes per block %llu / %llu\n",
          max_sessions_, max_tokens_, block_size_, enabled_, persist_, sharing_, policy,
          static_cast<unsigned long long>(max_bytes_total_), static_cast<unsigned long long>(max_bytes_per_session_),
          static_cast<unsigned long long>(shapes_[0].bytes_per_block), static_cast<unsigned long long>(shapes_[1].bytes_per_block));
    kvc_status st = kvc_store_create(options, &store_);
    if (st == KVC_ERR_UNSUPPORTED) {  // a policy this build lacks
        FUZZ_REQUIRE(kvc_store_options_set_eviction_policy(options, KVC_EVICTION_LRU) == KVC_OK);
        st = kvc_store_create(options, &store_);
    }
    FUZZ_REQUIRE(st == KVC_OK);
    kvc_store_options_destroy(options);

    for (int step = 0; step < 300 && !in_.done(); ++step) {
        const uint8_t op = in_.byte() % 20;
        const bool needs_store = op <= 1 || (op >= 14 && op <= 16) || op == 19;
        const bool needs_lease = !needs_store && op != 18;
        if (needs_store && store_ == nullptr) continue;
        if (needs_lease && leases_.empty()) continue;
        Lease* l = leases_.empty() ? nullptr : &leases_[in_.below(static_cast<uint32_t>(leases_.size()))];
        switch (op) {
            case 0:
            case 1:
                if (leases_.size() < 8) op_get_or_create();
                break;
            case 2:
            case 3:
                op_begin_turn(*l);
                break;
            case 4:
                op_append(*l);
                break;
            case 5:
            case 6:  // the forward pass: every layer's rows of the new tokens
                op_write(*l, true);
                break;
            case 7:
                op_write(*l, false);
                break;
            case 8:
            case 9:
                op_read(*l);
                break;
            case 10:
            case 11:
                op_commit(*l);
                break;
            case 12:
            case 13:
                op_release(static_cast<size_t>(l - leases_.data()));
                break;
            case 14:
                if (leases_.size() < 8) op_try_get();
                break;
            case 15:
                op_remove();
                break;
            case 16:
                if (in_.byte() % 4 == 0) op_clear();
                break;
            case 17:
                check_sharing();
                break;
            case 18:
                if (l != nullptr) {  // a turn end to end: begin, forward, commit
                    op_begin_turn(*l);
                    op_write(*l, true);
                    op_commit(*l);
                }
                break;
            default:
                if (in_.byte() % 8 == 0) op_destroy();
                break;
        }
        check_store();
    }
    check_sharing();
    // Leases end in random order, also after the store's handle is gone.
    if (store_ != nullptr && in_.byte() % 2 == 0) op_destroy();
    while (!leases_.empty()) {
        op_release(in_.below(static_cast<uint32_t>(leases_.size())));
        check_store();
    }
    if (store_ != nullptr) {
        if (!persist_ || !enabled_) FUZZ_REQUIRE(kvc_store_num_sessions(store_) == 0);
        op_clear();
        FUZZ_REQUIRE(kvc_store_bytes_in_use(store_) == 0);
        op_destroy();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzInput in(data, size);
    Harness(in).run();
    return 0;
}
