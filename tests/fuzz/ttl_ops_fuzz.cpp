// SPDX-License-Identifier: Apache-2.0
// Drives a small TTL cache on a fake clock (advanced by the input) through random kvc_ttl_* calls: sets,
// gets with exact, small and size-query buffers, one-entry copies, invalidate, clear, cleanup, get_all,
// two-phase loads (several tickets at once, finished, finished twice, dropped unfinished, outliving the
// cache) and get_or_load with a C loader that succeeds or fails. A model (namespace, key) -> (value,
// valid, written, expiry) says what must come back: exactly when the cache is unbounded; when it is
// bounded the cache may have evicted a key, so the model is a superset and a hit must still match it.
// Checked after every call: statuses, values and valid flags, the size bound, size and get_all against
// the model, the expiry times, and the statistics (every lookup counted once as hit, negative hit or miss).
#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_input.h"
#include "kvcore/kvcore.h"

namespace {

using kvcore::fuzz::FuzzInput;
using Key = std::pair<std::string, std::string>;

constexpr uint64_t kNsPerMs = 1000000;

uint64_t fake_clock(void* user) { return *static_cast<const uint64_t*>(user); }

uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

struct Entry {
    std::string value;
    bool valid = false;
    uint64_t written = 0, expires = 0;
};

struct LoaderCall {
    std::string ns, key;  // what the loader must be asked for
    std::string value;
    bool set_value = false, succeed = true;
    int calls = 0;
};

kvc_status loader(void* user, const char* ns, const char* key, kvc_ttl_value* out) {
    auto& call = *static_cast<LoaderCall*>(user);
    ++call.calls;
    FUZZ_REQUIRE(call.ns == ns && call.key == key);
    if (call.set_value) {
        FUZZ_REQUIRE(kvc_ttl_value_set(out, reinterpret_cast<const uint8_t*>("junk"), 4) == KVC_OK);  // replaced next
        FUZZ_REQUIRE(kvc_ttl_value_set(out, reinterpret_cast<const uint8_t*>(call.value.data()), call.value.size()) == KVC_OK);
    }
    return call.succeed ? KVC_OK : KVC_ERR_IO;
}

struct Ticket {
    kvc_ttl_ticket* handle;
    Key key;
    bool finished = false;
};

// One copied entry, read back through the kvc_ttl_entries getters.
struct Copied {
    std::string ns, key, value;
    bool valid;
    uint64_t age_ms, expires_in_ms;
};

std::vector<Copied> read_entries(const kvc_ttl_entries* e) {
    std::vector<Copied> out;
    const size_t count = kvc_ttl_entries_count(e);
    for (size_t i = 0; i < count; ++i) {
        Copied c{};
        size_t len = 0;
        FUZZ_REQUIRE(kvc_ttl_entries_namespace(e, i, nullptr, 0, &len) == KVC_OK);
        c.ns.resize(len + 1);
        FUZZ_REQUIRE(kvc_ttl_entries_namespace(e, i, c.ns.data(), c.ns.size(), &len) == KVC_OK && c.ns[len] == '\0');
        c.ns.resize(len);
        FUZZ_REQUIRE(kvc_ttl_entries_key(e, i, nullptr, 0, &len) == KVC_OK);
        c.key.resize(len + 1);
        FUZZ_REQUIRE(kvc_ttl_entries_key(e, i, c.key.data(), c.key.size(), &len) == KVC_OK && c.key[len] == '\0');
        c.key.resize(len);
        uint32_t valid = 7;
        FUZZ_REQUIRE(kvc_ttl_entries_value(e, i, nullptr, 0, &len, &valid) == KVC_OK);
        c.value.resize(len);
        FUZZ_REQUIRE(kvc_ttl_entries_value(e, i, reinterpret_cast<uint8_t*>(c.value.data()), len, &len, &valid) == KVC_OK);
        FUZZ_REQUIRE(valid <= 1 && len == c.value.size());
        c.valid = valid != 0;
        FUZZ_REQUIRE(kvc_ttl_entries_times(e, i, &c.age_ms, &c.expires_in_ms) == KVC_OK);
        FUZZ_REQUIRE(c.expires_in_ms >= 1);
        out.push_back(std::move(c));
    }
    FUZZ_REQUIRE(kvc_ttl_entries_key(e, count, nullptr, 0, nullptr) == KVC_ERR_OUT_OF_RANGE);
    FUZZ_REQUIRE(kvc_ttl_entries_times(e, count, nullptr, nullptr) == KVC_ERR_OUT_OF_RANGE);
    return out;
}

class Harness {
public:
    explicit Harness(FuzzInput& in) : in_(in) {}
    void run();

private:
    FuzzInput& in_;
    uint64_t now_ = 0, ttl_ns_ = 0, negative_ttl_ns_ = 0, max_entries_ = 0;
    kvc_ttl_cache* cache_ = nullptr;
    std::map<Key, Entry> model_;  // exact when unbounded; a superset of the stored entries when bounded
    std::vector<Ticket> tickets_;
    // Statistics as the model counts them.
    uint64_t hits_ = 0, misses_ = 0, negative_hits_ = 0, loads_ = 0, load_failures_ = 0, insertions_ = 0,
             expirations_ = 0;

    bool bounded() const { return max_entries_ != 0; }
    Key key_from() {
        static const char* const kNs[] = {"", "a", "a:b", "\xff"};
        static const char* const kKeys[] = {"", "b:c", "c", "x", "model-7"};
        return {kNs[in_.below(4)], kKeys[in_.below(5)]};
    }
    std::string value_from() {
        std::string v(in_.below(13), '\0');
        for (char& c : v) c = static_cast<char>(in_.below(4) * 60);
        return v;
    }
    bool live(const Entry& e) const { return now_ < e.expires; }
    // A lookup or write of k first removes its expired entry (one expiration).
    void drop_expired(const Key& k) {
        const auto it = model_.find(k);
        if (it != model_.end() && !live(it->second)) {
            model_.erase(it);
            ++expirations_;
        }
    }
    void put(const Key& k, const std::string& value, bool valid) {
        drop_expired(k);
        if (model_.find(k) == model_.end()) ++insertions_;
        model_[k] = {value, valid, now_, saturating_add(now_, valid ? ttl_ns_ : negative_ttl_ns_)};
    }
    bool has_flight(const Key& k) const {
        return std::any_of(tickets_.begin(), tickets_.end(), [&](const Ticket& t) { return !t.finished && t.key == k; });
    }
    // A lookup's outcome against the model (after drop_expired). hit: the cache returned an entry.
    void observe(const Key& k, bool hit, const std::string* value, bool valid) {
        const auto it = model_.find(k);
        if (hit) {
            FUZZ_REQUIRE(it != model_.end());
            FUZZ_REQUIRE(it->second.valid == valid);
            if (value != nullptr) FUZZ_REQUIRE(it->second.value == *value);
            ++(valid ? hits_ : negative_hits_);
        } else {
            if (it != model_.end()) {  // only an evicted key may go missing
                FUZZ_REQUIRE(bounded());
                model_.erase(it);
            }
            ++misses_;
        }
    }
    void check_times(const Copied& c, const Entry& e) const {
        FUZZ_REQUIRE(c.age_ms == (now_ - std::min(e.written, now_)) / kNsPerMs);
        FUZZ_REQUIRE(c.expires_in_ms == (e.expires - now_ + kNsPerMs - 1) / kNsPerMs);
    }

    void op_get();
    void op_get_entry();
    void op_invalidate();
    void op_cleanup();
    void op_get_all();
    void op_begin_load(bool entry_form);
    void op_finish();
    void op_get_or_load();
    void op_advance();
    void check();
    void check_stats();
};

// A value buffer: exact room, a size query, or a random (maybe too small) capacity.
struct Buffer {
    uint8_t bytes[16];
    uint8_t* buf;
    size_t capacity;
    Buffer(FuzzInput& in) {
        std::memset(bytes, 0xEE, sizeof bytes);
        const uint8_t mode = in.byte() % 4;
        buf = mode == 1 ? nullptr : bytes;
        capacity = mode == 1 ? 0 : mode == 2 ? in.below(13) : sizeof bytes;
    }
    bool query() const { return buf == nullptr; }
    // The status a lookup returning len bytes must have, and, when it copied, the bytes.
    kvc_status expected(size_t len) const { return !query() && len > capacity ? KVC_ERR_BUFFER_TOO_SMALL : KVC_OK; }
    bool untouched() const {
        return std::all_of(std::begin(bytes), std::end(bytes), [](uint8_t b) { return b == 0xEE; });
    }
};

void Harness::op_get() {
    const Key k = key_from();
    Buffer b(in_);
    size_t len = 99;
    uint32_t valid = 7;
    const kvc_status st = kvc_ttl_get(cache_, k.first.c_str(), k.second.c_str(), b.buf, b.capacity, &len, &valid);
    drop_expired(k);
    if (st == KVC_ERR_NOT_FOUND) {
        FUZZ_REQUIRE(len == 0 && valid == 0);
        observe(k, false, nullptr, false);
        return;
    }
    FUZZ_REQUIRE(valid <= 1);
    FUZZ_REQUIRE(st == b.expected(len));
    const std::string got = st == KVC_OK && !b.query() ? std::string(reinterpret_cast<char*>(b.bytes), len) : "";
    if (st != KVC_OK) FUZZ_REQUIRE(b.untouched());
    observe(k, true, st == KVC_OK && !b.query() ? &got : nullptr, valid != 0);
    FUZZ_REQUIRE(model_.at(k).value.size() == len);
}

void Harness::op_get_entry() {
    const Key k = key_from();
    kvc_ttl_entries* e = reinterpret_cast<kvc_ttl_entries*>(this);
    const kvc_status st = kvc_ttl_get_entry(cache_, k.first.c_str(), k.second.c_str(), &e);
    drop_expired(k);
    FUZZ_REQUIRE(st == KVC_OK || st == KVC_ERR_NOT_FOUND);
    FUZZ_REQUIRE((st == KVC_OK) == (e != nullptr));
    if (st != KVC_OK) {
        observe(k, false, nullptr, false);
        return;
    }
    const auto copies = read_entries(e);
    kvc_ttl_entries_destroy(e);
    FUZZ_REQUIRE(copies.size() == 1 && copies[0].ns == k.first && copies[0].key == k.second);
    observe(k, true, &copies[0].value, copies[0].valid);
    check_times(copies[0], model_.at(k));
}

void Harness::op_invalidate() {
    const Key k = key_from();
    const kvc_status st = kvc_ttl_invalidate(cache_, k.first.c_str(), k.second.c_str());
    drop_expired(k);
    const bool was_live = model_.count(k) != 0;
    if (!was_live || !bounded()) FUZZ_REQUIRE(st == (was_live ? KVC_OK : KVC_ERR_NOT_FOUND));
    FUZZ_REQUIRE(st == KVC_OK || st == KVC_ERR_NOT_FOUND);
    model_.erase(k);
}

void Harness::op_cleanup() {
    uint64_t removed = 99;
    FUZZ_REQUIRE(kvc_ttl_cleanup(cache_, &removed) == KVC_OK);
    uint64_t expired = 0;
    for (auto it = model_.begin(); it != model_.end();) {
        if (live(it->second)) {
            ++it;
        } else {
            ++expired;
            it = model_.erase(it);
        }
    }
    if (bounded()) {
        FUZZ_REQUIRE(removed <= expired);
        expirations_ += removed;  // not checked when bounded
    } else {
        FUZZ_REQUIRE(removed == expired);
        expirations_ += expired;
    }
}

void Harness::op_get_all() {
    kvc_ttl_entries* e = nullptr;
    FUZZ_REQUIRE(kvc_ttl_get_all(cache_, &e) == KVC_OK);
    const auto copies = read_entries(e);
    // Deep copies: a write after the copy does not change it.
    if (!copies.empty()) FUZZ_REQUIRE(kvc_ttl_set(cache_, copies[0].ns.c_str(), copies[0].key.c_str(), nullptr, 0, 0) == KVC_OK);
    FUZZ_REQUIRE(read_entries(e).size() == copies.size());
    if (!copies.empty()) {
        std::string v(16, '\0');
        size_t len = 0;
        uint32_t valid = 0;
        FUZZ_REQUIRE(kvc_ttl_entries_value(e, 0, reinterpret_cast<uint8_t*>(v.data()), v.size(), &len, &valid) == KVC_OK);
        FUZZ_REQUIRE(v.substr(0, len) == copies[0].value && (valid != 0) == copies[0].valid);
    }
    kvc_ttl_entries_destroy(e);
    for (size_t i = 1; i < copies.size(); ++i) {
        FUZZ_REQUIRE(std::tie(copies[i - 1].ns, copies[i - 1].key) < std::tie(copies[i].ns, copies[i].key));
    }
    std::vector<Key> seen;
    for (const Copied& c : copies) {
        const Key k{c.ns, c.key};
        const auto it = model_.find(k);
        FUZZ_REQUIRE(it != model_.end() && live(it->second));
        FUZZ_REQUIRE(it->second.value == c.value && it->second.valid == c.valid);
        check_times(c, it->second);
        seen.push_back(k);
    }
    // Live model entries missing from the copy: evicted (bounded only).
    for (auto it = model_.begin(); it != model_.end();) {
        if (live(it->second) && std::find(seen.begin(), seen.end(), it->first) == seen.end()) {
            FUZZ_REQUIRE(bounded());
            it = model_.erase(it);
        } else {
            ++it;
        }
    }
    if (!copies.empty()) put({copies[0].ns, copies[0].key}, "", false);
}

void Harness::op_begin_load(bool entry_form) {
    const Key k = key_from();
    kvc_ttl_ticket* ticket = reinterpret_cast<kvc_ttl_ticket*>(this);
    kvc_status st;
    std::string got;
    bool got_value = false;
    uint32_t valid = 7;
    size_t len = 99;
    Buffer b(in_);
    if (entry_form) {
        kvc_ttl_entries* e = reinterpret_cast<kvc_ttl_entries*>(this);
        st = kvc_ttl_begin_load_entry(cache_, k.first.c_str(), k.second.c_str(), &e, &ticket);
        if (st == KVC_OK) FUZZ_REQUIRE((e == nullptr) != (ticket == nullptr));
        if (st != KVC_OK) FUZZ_REQUIRE(e == nullptr && ticket == nullptr);
        if (e != nullptr) {
            const auto copies = read_entries(e);
            kvc_ttl_entries_destroy(e);
            FUZZ_REQUIRE(copies.size() == 1 && copies[0].ns == k.first && copies[0].key == k.second);
            got = copies[0].value;
            got_value = true;
            valid = copies[0].valid;
            len = got.size();
        }
    } else {
        st = kvc_ttl_begin_load(cache_, k.first.c_str(), k.second.c_str(), b.buf, b.capacity, &len, &valid, &ticket);
        if (st != KVC_OK) FUZZ_REQUIRE(ticket == nullptr);
        if (st == KVC_OK && ticket == nullptr && !b.query()) {
            got.assign(reinterpret_cast<char*>(b.bytes), len);
            got_value = true;
        }
    }
    drop_expired(k);
    const bool present = model_.count(k) != 0;
    if (st == KVC_ERR_INVALID_STATE) {  // this thread holds the key's unfinished ticket
        FUZZ_REQUIRE(has_flight(k));
        if (present) {
            FUZZ_REQUIRE(bounded());
            model_.erase(k);
        }
        return;
    }
    if (ticket != nullptr) {
        FUZZ_REQUIRE(st == KVC_OK && !has_flight(k));
        if (!entry_form) FUZZ_REQUIRE(len == 0 && valid == 0);
        observe(k, false, nullptr, false);
        ++loads_;
        tickets_.push_back({ticket, k, false});
        return;
    }
    FUZZ_REQUIRE(entry_form ? st == KVC_OK : st == b.expected(len));
    FUZZ_REQUIRE(valid <= 1);
    observe(k, true, got_value ? &got : nullptr, valid != 0);
    FUZZ_REQUIRE(model_.at(k).value.size() == len);
}

void Harness::op_finish() {
    const size_t i = in_.below(static_cast<uint32_t>(tickets_.size()));
    Ticket& t = tickets_[i];
    const uint8_t how = in_.byte() % 4;
    if (how == 0) {  // dropped: unfinished, it fails its load with an empty value
        kvc_ttl_ticket_destroy(t.handle);
        if (!t.finished && cache_ != nullptr) put(t.key, "", false);
        if (!t.finished) ++load_failures_;
        tickets_.erase(tickets_.begin() + static_cast<ptrdiff_t>(i));
        return;
    }
    const std::string value = value_from();
    const bool valid = how != 1;
    const kvc_status st = kvc_ttl_ticket_finish(t.handle, value.empty() ? nullptr : reinterpret_cast<const uint8_t*>(value.data()),
                                                value.size(), valid);
    FUZZ_REQUIRE(st == (t.finished ? KVC_ERR_INVALID_STATE : KVC_OK));
    if (st != KVC_OK) return;
    t.finished = true;
    if (!valid) ++load_failures_;
    if (cache_ != nullptr) put(t.key, value, valid);
}

void Harness::op_get_or_load() {
    const Key k = key_from();
    LoaderCall call;
    call.ns = k.first;
    call.key = k.second;
    call.succeed = in_.byte() % 3 != 0;
    call.set_value = in_.byte() % 4 != 0;
    if (call.set_value) call.value = value_from();
    Buffer b(in_);
    size_t len = 99;
    uint32_t valid = 7;
    const kvc_status st =
        kvc_ttl_get_or_load(cache_, k.first.c_str(), k.second.c_str(), loader, &call, b.buf, b.capacity, &len, &valid);
    FUZZ_REQUIRE(st != KVC_ERR_NOT_FOUND);
    drop_expired(k);
    const bool present = model_.count(k) != 0;
    if (st == KVC_ERR_INVALID_STATE) {
        FUZZ_REQUIRE(has_flight(k) && call.calls == 0);
        if (present) {
            FUZZ_REQUIRE(bounded());
            model_.erase(k);
        }
        return;
    }
    FUZZ_REQUIRE(call.calls <= 1);
    FUZZ_REQUIRE(st == b.expected(len) && valid <= 1);
    const std::string got = st == KVC_OK && !b.query() ? std::string(reinterpret_cast<char*>(b.bytes), len) : "";
    if (st != KVC_OK) FUZZ_REQUIRE(b.untouched());
    if (call.calls == 0) {  // served from the cache
        observe(k, true, st == KVC_OK && !b.query() ? &got : nullptr, valid != 0);
        FUZZ_REQUIRE(model_.at(k).value.size() == len);
        return;
    }
    FUZZ_REQUIRE(!has_flight(k));
    observe(k, false, nullptr, false);
    ++loads_;
    if (!call.succeed) ++load_failures_;
    FUZZ_REQUIRE(valid == (call.succeed ? 1u : 0u) && len == call.value.size());
    if (st == KVC_OK && !b.query()) FUZZ_REQUIRE(got == call.value);
    put(k, call.value, call.succeed);
}

void Harness::op_advance() {
    const uint8_t how = in_.byte() % 4;
    uint64_t to = now_;
    if (how == 0) to = saturating_add(now_, in_.below(4096));
    if (how == 1) to = saturating_add(now_, uint64_t{in_.below(3000)} * kNsPerMs);
    if (how >= 2 && !model_.empty()) {  // to just before, or exactly at, an entry's expiry
        auto it = model_.begin();
        std::advance(it, in_.below(static_cast<uint32_t>(model_.size())));
        const uint64_t at = it->second.expires - (how == 2 ? 1 : 0);
        to = std::max(now_, at);
    }
    now_ = to;
}

void Harness::check_stats() {
    kvc_stats* stats = nullptr;
    FUZZ_REQUIRE(kvc_ttl_snapshot(cache_, &stats) == KVC_OK);
    FUZZ_REQUIRE(kvc_stats_hits(stats) == hits_);
    FUZZ_REQUIRE(kvc_stats_misses(stats) == misses_);
    FUZZ_REQUIRE(kvc_stats_negative_hits(stats) == negative_hits_);
    FUZZ_REQUIRE(kvc_stats_loads(stats) == loads_);
    FUZZ_REQUIRE(kvc_stats_load_failures(stats) == load_failures_);
    if (!bounded()) {
        FUZZ_REQUIRE(kvc_stats_insertions(stats) == insertions_);
        FUZZ_REQUIRE(kvc_stats_evictions(stats) == 0);
        FUZZ_REQUIRE(kvc_stats_expirations(stats) == expirations_);
        uint64_t bytes = 0;
        for (const auto& [k, e] : model_) bytes += k.first.size() + k.second.size() + e.value.size();
        FUZZ_REQUIRE(kvc_stats_bytes_in_use(stats) == bytes);
    }
    kvc_stats_destroy(stats);
}

void Harness::check() {
    const uint64_t size = kvc_ttl_size(cache_);
    const auto live_in_model = static_cast<uint64_t>(
        std::count_if(model_.begin(), model_.end(), [&](const auto& kv) { return live(kv.second); }));
    if (bounded()) {
        FUZZ_REQUIRE(size <= max_entries_ && size <= live_in_model);
    } else {
        FUZZ_REQUIRE(size == live_in_model);
    }
}

void Harness::run() {
    kvc_ttl_options* options = nullptr;
    FUZZ_REQUIRE(kvc_ttl_options_create(&options) == KVC_OK);
    const uint8_t start = in_.byte() % 4;
    now_ = start == 0 ? 0 : start == 1 ? in_.u64() : start == 2 ? UINT64_MAX - in_.below(5000) * kNsPerMs : 1000;
    const uint64_t ttl_ms = in_.byte() % 8 == 0 ? 1 + in_.u64() % 1000000000000ull : 1 + in_.below(1000);
    const uint64_t negative_ms = in_.byte() % 8 == 0 ? 1 + in_.u64() % 1000000000000ull : 1 + in_.below(1000);
    ttl_ns_ = ttl_ms * kNsPerMs;
    negative_ttl_ns_ = negative_ms * kNsPerMs;
    max_entries_ = in_.below(9);
    FUZZ_REQUIRE(kvc_ttl_options_set_ttl_ms(options, 0) == KVC_ERR_INVALID_ARGUMENT);
    FUZZ_REQUIRE(kvc_ttl_options_set_negative_ttl_ms(options, KVC_TTL_MAX_MS + 1) == KVC_ERR_INVALID_ARGUMENT);
    FUZZ_REQUIRE(kvc_ttl_options_set_ttl_ms(options, ttl_ms) == KVC_OK);
    FUZZ_REQUIRE(kvc_ttl_options_set_negative_ttl_ms(options, negative_ms) == KVC_OK);
    FUZZ_REQUIRE(kvc_ttl_options_set_max_entries(options, max_entries_) == KVC_OK);
    FUZZ_REQUIRE(kvc_ttl_options_set_eviction_policy(options, static_cast<kvc_eviction_policy>(in_.below(KVC_EVICTION_ARC + 1))) == KVC_OK);
    FUZZ_REQUIRE(kvc_ttl_options_set_clock(options, fake_clock, &now_) == KVC_OK);
    // A cleanup thread that never wakes during the run: created and joined.
    if (in_.byte() % 8 == 0) {
        FUZZ_REQUIRE(kvc_ttl_options_set_cleanup_interval_ms(options, KVC_TTL_MAX_CLEANUP_INTERVAL_MS) == KVC_OK);
    }
    kvc_status st = kvc_ttl_create(options, &cache_);
    if (st == KVC_ERR_UNSUPPORTED) {
        FUZZ_REQUIRE(bounded());
        FUZZ_REQUIRE(kvc_ttl_options_set_eviction_policy(options, KVC_EVICTION_LRU) == KVC_OK);
        st = kvc_ttl_create(options, &cache_);
    }
    FUZZ_REQUIRE(st == KVC_OK);
    kvc_ttl_options_destroy(options);

    for (int step = 0; step < 300 && !in_.done(); ++step) {
        const uint8_t op = in_.byte() % 16;
        switch (op) {
            case 0:
            case 1:
            case 2: {
                const Key k = key_from();
                const std::string value = value_from();
                const bool valid = in_.byte() % 4 != 0;
                FUZZ_REQUIRE(kvc_ttl_set(cache_, k.first.c_str(), k.second.c_str(),
                                         value.empty() ? nullptr : reinterpret_cast<const uint8_t*>(value.data()),
                                         value.size(), valid) == KVC_OK);
                put(k, value, valid);
                break;
            }
            case 3:
            case 4:
                op_get();
                break;
            case 5:
                op_get_entry();
                break;
            case 6:
                op_invalidate();
                break;
            case 7:
                if (in_.byte() % 4 == 0) {
                    FUZZ_REQUIRE(kvc_ttl_clear(cache_) == KVC_OK);
                    model_.clear();
                }
                break;
            case 8:
                op_cleanup();
                break;
            case 9:
                op_get_all();
                break;
            case 10:
                if (tickets_.size() < 6) op_begin_load(in_.byte() % 2 == 0);
                break;
            case 11:
                if (!tickets_.empty()) op_finish();
                break;
            case 12:
                op_get_or_load();
                break;
            case 13:
            case 14:
                op_advance();
                break;
            default:
                check_stats();
                break;
        }
        check();
    }
    check_stats();
    // Tickets may outlive their cache: finishing or dropping them afterwards is safe.
    const bool destroy_first = in_.byte() % 2 == 0;
    if (destroy_first) {
        kvc_ttl_destroy(cache_);
        cache_ = nullptr;
    }
    while (!tickets_.empty()) op_finish();
    kvc_ttl_destroy(cache_);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzInput in(data, size);
    Harness(in).run();
    return 0;
}
