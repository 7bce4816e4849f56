// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/ttl.h: argument checks, handle casts, exception translation. No logic beyond the
// loader form, which is the two-phase calls in sequence.
#include "kvcore/ttl.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "capi/eviction.h"
#include "capi/guard.h"
#include "capi/stats_handles.h"
#include "ttl/cache.h"

namespace ttl = kvcore::ttl;
using kvcore::fail;
using kvcore::capi::checked_enum;
using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::is_size_query;
using kvcore::capi::make_handle;
using kvcore::capi::reject;
using kvcore::capi::require_capacity;

struct kvc_ttl_options {
    ttl::TtlConfig config;
};
struct kvc_ttl_cache {
    std::shared_ptr<ttl::Cache> impl;
    std::unique_ptr<ttl::CleanupThread> cleanup;  // declared last: joined before impl is released
};
struct kvc_ttl_ticket {
    std::unique_ptr<ttl::Ticket> impl;
};
struct kvc_ttl_entries {
    std::vector<ttl::EntryCopy> entries;
    uint64_t taken_ns;
};
struct kvc_ttl_value {
    std::string bytes;
};

namespace {

// A lookup's value into the caller's buffer: buf NULL with capacity 0 is a size query.
ttl::ValueOut value_out(uint8_t* buf, size_t capacity) {
    (void)is_size_query(buf, capacity);  // rejects NULL with a capacity
    return {buf, capacity};
}

// After a lookup that found a value: the outputs, then BUFFER_TOO_SMALL if it did not fit a real buffer.
void deliver(const ttl::ValueOut& out, size_t* len, uint32_t* valid) {
    if (len != nullptr) *len = out.len;
    if (valid != nullptr) *valid = out.valid ? 1 : 0;
    if (out.buf == nullptr && out.capacity == 0) return;
    require_capacity(out.capacity, out.len, "value buffer");
}

ttl::Key key_of(const char* ns, const char* key) { return {std::string_view(ns), std::string_view(key)}; }

// Strings of an entries copy into a caller buffer with a NUL (stats-export style).
void copy_string(const std::string& s, char* buf, size_t capacity, size_t* len) {
    if (len != nullptr) *len = s.size();
    if (is_size_query(buf, capacity)) return;
    require_capacity(capacity, s.size() + 1, "string buffer (with its NUL)");
    std::memcpy(buf, s.c_str(), s.size() + 1);
}

const ttl::EntryCopy& entry_at(const kvc_ttl_entries* e, size_t index) {
    if (index >= e->entries.size()) {
        fail(KVC_ERR_OUT_OF_RANGE,
             "entry " + std::to_string(index) + " of " + std::to_string(e->entries.size()));
    }
    return e->entries[index];
}

// A lookup's result as a one-entry copy. A result handed over by another thread's load was stored just
// now, so its times are those of a fresh entry.
kvc_ttl_entries* result_copy(const kvc_ttl_cache* c, const char* ns, const char* key, ttl::EntryCopy&& copy) {
    const uint64_t now = c->impl->now_ns();
    copy.ns = ns;
    copy.key = key;
    if (copy.expires_ns == 0) {
        copy.written_ns = now;
        copy.expires_ns = c->impl->expiry(copy.valid, now);
    }
    return new kvc_ttl_entries{{std::move(copy)}, now};
}

}  // namespace

#define KVC_REQUIRE_KEY(ns, key) \
    do { \
        KVC_REQUIRE_HANDLE(ns, "ns"); \
        KVC_REQUIRE_HANDLE(key, "key"); \
    } while (0)

extern "C" {

// ---- options ----

kvc_status kvc_ttl_options_create(kvc_ttl_options** out) {
    return make_handle(out, [&] { return new kvc_ttl_options(); });
}
void kvc_ttl_options_destroy(kvc_ttl_options* options) { delete options; }

kvc_status kvc_ttl_options_set_ttl_ms(kvc_ttl_options* o, uint64_t ttl_ms) {
    return edit_validated(o, [&](ttl::TtlConfig& c) { c.ttl_ms = ttl_ms; });
}
kvc_status kvc_ttl_options_set_negative_ttl_ms(kvc_ttl_options* o, uint64_t negative_ttl_ms) {
    return edit_validated(o, [&](ttl::TtlConfig& c) { c.negative_ttl_ms = negative_ttl_ms; });
}
kvc_status kvc_ttl_options_set_max_entries(kvc_ttl_options* o, uint64_t max_entries) {
    return edit_validated(o, [&](ttl::TtlConfig& c) { c.max_entries = max_entries; });
}
kvc_status kvc_ttl_options_set_eviction_policy(kvc_ttl_options* o, kvc_eviction_policy policy) {
    return edit_validated(o, [&](ttl::TtlConfig& c) {
        c.policy = kvcore::capi::eviction_kind(policy);
    });
}
kvc_status kvc_ttl_options_set_cleanup_interval_ms(kvc_ttl_options* o, uint64_t interval_ms) {
    return edit_validated(o, [&](ttl::TtlConfig& c) { c.cleanup_interval_ms = interval_ms; });
}
kvc_status kvc_ttl_options_set_clock(kvc_ttl_options* o, kvc_ttl_clock clock, void* user) {
    return edit_validated(o, [&](ttl::TtlConfig& c) {
        c.clock = clock;
        c.clock_user = clock != nullptr ? user : nullptr;
    });
}
kvc_status kvc_ttl_options_set_component(kvc_ttl_options* o, const char* component) {
    KVC_REQUIRE_HANDLE(component, "component");
    return edit_validated(o, [&](ttl::TtlConfig& c) { c.component = component; });
}

// ---- cache ----

kvc_status kvc_ttl_create(const kvc_ttl_options* options, kvc_ttl_cache** out) {
    return make_handle(out, [&] {
        auto handle = std::make_unique<kvc_ttl_cache>();
        handle->impl = ttl::Cache::create(options != nullptr ? options->config : ttl::TtlConfig{});
        const uint64_t interval = handle->impl->config().cleanup_interval_ms;
        if (interval != 0) handle->cleanup = std::make_unique<ttl::CleanupThread>(handle->impl, interval);
        return handle.release();
    });
}
void kvc_ttl_destroy(kvc_ttl_cache* cache) { delete cache; }

kvc_status kvc_ttl_set(kvc_ttl_cache* c, const char* ns, const char* key, const uint8_t* value, size_t n,
                       uint32_t valid) {
    KVC_REQUIRE_HANDLE(c, "cache");
    KVC_REQUIRE_KEY(ns, key);
    KVC_REQUIRE_ARRAY(value, n, "value");
    return guard([&] {
        c->impl->set(key_of(ns, key), {reinterpret_cast<const char*>(value), n}, valid != 0);
    });
}

kvc_status kvc_ttl_get(kvc_ttl_cache* c, const char* ns, const char* key, uint8_t* buf, size_t capacity, size_t* len,
                       uint32_t* valid) {
    KVC_REQUIRE_HANDLE(c, "cache");
    KVC_REQUIRE_KEY(ns, key);
    return guard([&] {
        ttl::ValueOut out = value_out(buf, capacity);
        if (c->impl->get(key_of(ns, key), out) == ttl::Outcome::kMiss) {
            if (len != nullptr) *len = 0;
            if (valid != nullptr) *valid = 0;
            fail(KVC_ERR_NOT_FOUND, "no live entry for this namespace and key");
        }
        deliver(out, len, valid);
    });
}

kvc_status kvc_ttl_get_entry(kvc_ttl_cache* c, const char* ns, const char* key, kvc_ttl_entries** out) {
    KVC_REQUIRE_HANDLE(out, "out");
    *out = nullptr;
    KVC_REQUIRE_HANDLE(c, "cache");
    KVC_REQUIRE_KEY(ns, key);
    return guard([&] {
        ttl::EntryCopy copy;
        ttl::ValueOut value;
        value.copy = &copy;
        if (c->impl->get(key_of(ns, key), value) == ttl::Outcome::kMiss) {
            fail(KVC_ERR_NOT_FOUND, "no live entry for this namespace and key");
        }
        *out = result_copy(c, ns, key, std::move(copy));
    });
}

kvc_status kvc_ttl_invalidate(kvc_ttl_cache* c, const char* ns, const char* key) {
    KVC_REQUIRE_HANDLE(c, "cache");
    KVC_REQUIRE_KEY(ns, key);
    return guard([&] {
        if (!c->impl->invalidate(key_of(ns, key))) fail(KVC_ERR_NOT_FOUND, "no live entry for this namespace and key");
    });
}

kvc_status kvc_ttl_clear(kvc_ttl_cache* c) {
    KVC_REQUIRE_HANDLE(c, "cache");
    return guard([&] { c->impl->clear(); });
}

uint64_t kvc_ttl_size(const kvc_ttl_cache* c) {
    if (c == nullptr) return 0;
    uint64_t n = 0;
    (void)guard([&] { n = c->impl->size(); });
    return n;
}

kvc_status kvc_ttl_cleanup(kvc_ttl_cache* c, uint64_t* removed) {
    KVC_REQUIRE_HANDLE(c, "cache");
    return guard([&] {
        const uint64_t n = c->impl->cleanup();
        if (removed != nullptr) *removed = n;
    });
}

kvc_status kvc_ttl_get_all(kvc_ttl_cache* c, kvc_ttl_entries** out) {
    KVC_REQUIRE_HANDLE(c, "cache");
    return make_handle(out, [&] {
        const uint64_t now = c->impl->now_ns();
        return new kvc_ttl_entries{c->impl->get_all(now), now};
    });
}

kvc_status kvc_ttl_snapshot(const kvc_ttl_cache* c, kvc_stats** out) {
    KVC_REQUIRE_HANDLE(c, "cache");
    return make_handle(out, [&] { return new kvc_stats{c->impl->snapshot()}; });
}

// ---- loads ----

kvc_status kvc_ttl_begin_load(kvc_ttl_cache* c, const char* ns, const char* key, uint8_t* buf, size_t capacity,
                              size_t* len, uint32_t* valid, kvc_ttl_ticket** ticket) {
    KVC_REQUIRE_HANDLE(ticket, "ticket");
    *ticket = nullptr;
    KVC_REQUIRE_HANDLE(c, "cache");
    KVC_REQUIRE_KEY(ns, key);
    return guard([&] {
        ttl::ValueOut out = value_out(buf, capacity);
        auto begun = c->impl->begin_load(key_of(ns, key), out);
        if (begun.ticket) {
            if (len != nullptr) *len = 0;
            if (valid != nullptr) *valid = 0;
            *ticket = new kvc_ttl_ticket{std::move(begun.ticket)};  // on bad_alloc the ticket fails its load
            return;
        }
        deliver(out, len, valid);
    });
}

kvc_status kvc_ttl_begin_load_entry(kvc_ttl_cache* c, const char* ns, const char* key, kvc_ttl_entries** out,
                                    kvc_ttl_ticket** ticket) {
    KVC_REQUIRE_HANDLE(out, "out");
    KVC_REQUIRE_HANDLE(ticket, "ticket");
    *out = nullptr;
    *ticket = nullptr;
    KVC_REQUIRE_HANDLE(c, "cache");
    KVC_REQUIRE_KEY(ns, key);
    return guard([&] {
        ttl::EntryCopy copy;
        ttl::ValueOut value;
        value.copy = &copy;
        auto begun = c->impl->begin_load(key_of(ns, key), value);
        if (begun.ticket) {
            *ticket = new kvc_ttl_ticket{std::move(begun.ticket)};  // on bad_alloc the ticket fails its load
            return;
        }
        *out = result_copy(c, ns, key, std::move(copy));
    });
}

kvc_status kvc_ttl_ticket_finish(kvc_ttl_ticket* t, const uint8_t* value, size_t n, uint32_t valid) {
    KVC_REQUIRE_HANDLE(t, "ticket");
    KVC_REQUIRE_ARRAY(value, n, "value");
    return guard([&] { t->impl->finish({reinterpret_cast<const char*>(value), n}, valid != 0); });
}

void kvc_ttl_ticket_destroy(kvc_ttl_ticket* t) { delete t; }

kvc_status kvc_ttl_value_set(kvc_ttl_value* out, const uint8_t* value, size_t n) {
    KVC_REQUIRE_HANDLE(out, "out");
    KVC_REQUIRE_ARRAY(value, n, "value");
    return guard([&] { out->bytes.assign(reinterpret_cast<const char*>(value), n); });
}

kvc_status kvc_ttl_get_or_load(kvc_ttl_cache* c, const char* ns, const char* key, kvc_ttl_loader loader, void* user,
                               uint8_t* buf, size_t capacity, size_t* len, uint32_t* valid) {
    KVC_REQUIRE_HANDLE(loader, "loader");
    kvc_ttl_ticket* ticket = nullptr;
    const kvc_status begun = kvc_ttl_begin_load(c, ns, key, buf, capacity, len, valid, &ticket);
    if (begun != KVC_OK || ticket == nullptr) return begun;
    const std::unique_ptr<kvc_ttl_ticket, void (*)(kvc_ttl_ticket*)> own(ticket, kvc_ttl_ticket_destroy);
    kvc_ttl_value result;
    // The loader is the caller's C code: a status, never an exception, comes back.
    const bool loaded = loader(user, ns, key, &result) == KVC_OK;
    const auto* bytes = reinterpret_cast<const uint8_t*>(result.bytes.data());
    const kvc_status finished = kvc_ttl_ticket_finish(ticket, bytes, result.bytes.size(), loaded ? 1 : 0);
    if (finished != KVC_OK) return finished;
    return guard([&] {
        ttl::ValueOut out = value_out(buf, capacity);
        out.take(result.bytes, loaded);
        deliver(out, len, valid);
    });
}

// ---- entries ----

void kvc_ttl_entries_destroy(kvc_ttl_entries* entries) { delete entries; }

size_t kvc_ttl_entries_count(const kvc_ttl_entries* entries) { return entries ? entries->entries.size() : 0; }

kvc_status kvc_ttl_entries_namespace(const kvc_ttl_entries* e, size_t index, char* buf, size_t capacity, size_t* len) {
    KVC_REQUIRE_HANDLE(e, "entries");
    return guard([&] { copy_string(entry_at(e, index).ns, buf, capacity, len); });
}

kvc_status kvc_ttl_entries_key(const kvc_ttl_entries* e, size_t index, char* buf, size_t capacity, size_t* len) {
    KVC_REQUIRE_HANDLE(e, "entries");
    return guard([&] { copy_string(entry_at(e, index).key, buf, capacity, len); });
}

kvc_status kvc_ttl_entries_value(const kvc_ttl_entries* e, size_t index, uint8_t* buf, size_t capacity, size_t* len,
                                 uint32_t* valid) {
    KVC_REQUIRE_HANDLE(e, "entries");
    return guard([&] {
        const ttl::EntryCopy& entry = entry_at(e, index);
        ttl::ValueOut out = value_out(buf, capacity);
        out.take(entry.value, entry.valid);
        deliver(out, len, valid);
    });
}

kvc_status kvc_ttl_entries_times(const kvc_ttl_entries* e, size_t index, uint64_t* age_ms, uint64_t* expires_in_ms) {
    KVC_REQUIRE_HANDLE(e, "entries");
    return guard([&] {
        const ttl::EntryCopy& entry = entry_at(e, index);
        constexpr uint64_t kNsPerMs = 1'000'000;
        // A caller's clock may step back; an age is never negative.
        if (age_ms != nullptr) *age_ms = (e->taken_ns - std::min(entry.written_ns, e->taken_ns)) / kNsPerMs;
        // Rounded up: a live entry has time left, however little.
        // The copy's clock reading may follow the lookup's: an entry found live has at least 1 ms left.
        if (expires_in_ms != nullptr) {
            *expires_in_ms = std::max<uint64_t>(
                1, (entry.expires_ns - std::min(entry.expires_ns, e->taken_ns) + kNsPerMs - 1) / kNsPerMs);
        }
    });
}

}  // extern "C"
