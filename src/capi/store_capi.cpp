// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/store.h: argument checks, handle casts, exception translation. No logic.
#include "kvcore/store.h"

#include <cstring>
#include <string>

#include "capi/eviction.h"
#include "capi/guard.h"
#include "capi/stats_handles.h"
#include "capi/store_handles.h"

namespace store = kvcore::store;
namespace pool = kvcore::pool;
using kvcore::capi::checked_enum;
using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::copy_array_out;
using kvcore::capi::is_size_query;
using kvcore::capi::make_handle;
using kvcore::capi::reject;
using kvcore::capi::require_capacity;

struct kvc_store_options {
    store::StoreConfig config;
};

extern "C" {

// ---- options ----

kvc_status kvc_store_options_create(kvc_store_options** out) {
    return make_handle(out, [&] { return new kvc_store_options(); });
}
void kvc_store_options_destroy(kvc_store_options* options) { delete options; }

kvc_status kvc_store_options_set_enabled(kvc_store_options* o, uint32_t enabled) {
    return edit_validated(o, [&](store::StoreConfig& c) { c.enabled = enabled != 0; });
}
kvc_status kvc_store_options_set_max_tokens_per_session(kvc_store_options* o, uint32_t tokens) {
    return edit_validated(o, [&](store::StoreConfig& c) { c.max_tokens_per_session = tokens; });
}
kvc_status kvc_store_options_set_max_sessions(kvc_store_options* o, uint32_t sessions) {
    return edit_validated(o, [&](store::StoreConfig& c) { c.max_sessions = sessions; });
}
kvc_status kvc_store_options_set_max_bytes_total(kvc_store_options* o, uint64_t bytes) {
    return edit_validated(o, [&](store::StoreConfig& c) { c.max_bytes_total = bytes; });
}
kvc_status kvc_store_options_set_max_bytes_per_session(kvc_store_options* o, uint64_t bytes) {
    return edit_validated(o, [&](store::StoreConfig& c) { c.max_bytes_per_session = bytes; });
}
kvc_status kvc_store_options_set_eviction_policy(kvc_store_options* o, kvc_eviction_policy policy) {
    return edit_validated(o, [&](store::StoreConfig& c) {
        c.policy = kvcore::capi::eviction_kind(policy);
    });
}
kvc_status kvc_store_options_set_persist_across_requests(kvc_store_options* o, uint32_t persist) {
    return edit_validated(o, [&](store::StoreConfig& c) { c.persist_across_requests = persist != 0; });
}
kvc_status kvc_store_options_set_prefix_sharing(kvc_store_options* o, uint32_t enabled) {
    return edit_validated(o, [&](store::StoreConfig& c) { c.prefix_sharing = enabled != 0; });
}
kvc_status kvc_store_options_set_block_size(kvc_store_options* o, uint32_t tokens) {
    return edit_validated(o, [&](store::StoreConfig& c) { c.block_size = tokens; });
}
kvc_status kvc_store_options_set_memory(kvc_store_options* o, kvc_memory memory) {
    return edit_validated(o, [&](store::StoreConfig& c) {
        c.memory = checked_enum<pool::Memory>(memory, KVC_MEMORY_DEVICE, "memory kind");
    });
}
kvc_status kvc_store_options_set_component(kvc_store_options* o, const char* component) {
    KVC_REQUIRE_HANDLE(component, "component");
    return edit_validated(o, [&](store::StoreConfig& c) { c.component = component; });
}

// ---- the store ----

kvc_status kvc_store_create(const kvc_store_options* options, kvc_store** out) {
    return make_handle(out, [&] {
        return new kvc_store{store::Store::create(options != nullptr ? options->config : store::StoreConfig{})};
    });
}
void kvc_store_destroy(kvc_store* s) {
    if (s == nullptr) return;
    (void)guard([&] { s->core->close(); });  // a void C function: nothing may escape it
    delete s;
}

kvc_status kvc_store_get_or_create(kvc_store* s, const char* id, uint32_t layers, uint32_t kv_heads, uint32_t head_dim,
                                   kvc_dtype dtype, uint32_t max_tokens, kvc_session** out, uint32_t* created) {
    KVC_REQUIRE_HANDLE(s, "store");
    KVC_REQUIRE_HANDLE(id, "id");
    return make_handle(out, [&] {
        store::Shape shape{layers, kv_heads, head_dim, checked_enum<pool::DType>(dtype, KVC_DTYPE_INT8, "dtype")};
        bool made = false;
        auto* lease = new kvc_session{s->core->get_or_create(id, shape, max_tokens, &made)};
        if (created != nullptr) *created = made ? 1 : 0;
        return lease;
    });
}
kvc_status kvc_store_try_get(kvc_store* s, const char* id, kvc_session** out) {
    KVC_REQUIRE_HANDLE(s, "store");
    KVC_REQUIRE_HANDLE(id, "id");
    return make_handle(out, [&] { return new kvc_session{s->core->try_get(id)}; });
}
kvc_status kvc_store_remove(kvc_store* s, const char* id) {
    KVC_REQUIRE_HANDLE(s, "store");
    KVC_REQUIRE_HANDLE(id, "id");
    return guard([&] { s->core->remove(id); });
}
kvc_status kvc_store_clear(kvc_store* s) {
    KVC_REQUIRE_HANDLE(s, "store");
    return guard([&] { s->core->clear(); });
}
kvc_status kvc_store_snapshot(kvc_store* s, kvc_stats** out) {
    KVC_REQUIRE_HANDLE(s, "store");
    return make_handle(out, [&] { return new kvc_stats{s->core->snapshot()}; });
}
uint64_t kvc_store_num_sessions(const kvc_store* s) { return s ? s->core->num_sessions() : 0; }
uint64_t kvc_store_bytes_in_use(const kvc_store* s) { return s ? s->core->bytes_in_use() : 0; }
uint64_t kvc_store_peak_bytes(const kvc_store* s) { return s ? s->core->peak_bytes() : 0; }

// ---- sessions ----

void kvc_session_release(kvc_session* x) {
    if (x == nullptr) return;
    x->store().release(x->lease.session);
    delete x;
}

kvc_status kvc_session_begin_turn(kvc_session* x, const int32_t* tokens, size_t n, size_t* reused) {
    KVC_REQUIRE_HANDLE(x, "session");
    KVC_REQUIRE_ARRAY(tokens, n, "tokens");
    return guard([&] {
        const size_t r = x->store().begin_turn(x->session(), {tokens, n});
        if (reused != nullptr) *reused = r;
    });
}
kvc_status kvc_session_append_tokens(kvc_session* x, const int32_t* tokens, size_t n) {
    KVC_REQUIRE_HANDLE(x, "session");
    KVC_REQUIRE_HANDLE(tokens, "tokens");
    if (n == 0) return reject(KVC_ERR_INVALID_ARGUMENT, "n is 0: append at least one token");
    return guard([&] { x->store().append(x->session(), {tokens, n}); });
}
kvc_status kvc_session_write_kv(kvc_session* x, uint32_t layer, size_t first, size_t n, const void* keys,
                                const void* values) {
    KVC_REQUIRE_HANDLE(x, "session");
    if (n != 0 && (keys == nullptr || values == nullptr)) {
        return reject(KVC_ERR_INVALID_ARGUMENT, "keys or values is NULL but n is not 0");
    }
    return guard([&] { x->store().write_kv(x->session(), layer, first, n, keys, values); });
}
kvc_status kvc_session_read_kv(kvc_session* x, uint32_t layer, size_t first, size_t n, void* keys, void* values,
                               size_t capacity, size_t* bytes) {
    KVC_REQUIRE_HANDLE(x, "session");
    return guard([&] {
        const uint64_t needed = uint64_t(n) * x->session().pool->row_bytes;
        if (bytes != nullptr) *bytes = static_cast<size_t>(needed);
        if (keys == nullptr && values == nullptr && capacity == 0) return;  // size query
        if (keys == nullptr || values == nullptr) kvcore::fail(KVC_ERR_INVALID_ARGUMENT, "keys or values is NULL");
        require_capacity(capacity, static_cast<size_t>(needed), "K/V rows");
        x->store().read_kv(x->session(), layer, first, n, keys, values);
    });
}
kvc_status kvc_session_commit(kvc_session* x) {
    KVC_REQUIRE_HANDLE(x, "session");
    return guard([&] { x->store().commit(x->session()); });
}
kvc_status kvc_session_tokens(kvc_session* x, size_t* tokens, size_t* committed) {
    KVC_REQUIRE_HANDLE(x, "session");
    if (tokens != nullptr) *tokens = x->session().tokens.size();
    if (committed != nullptr) *committed = x->session().committed;
    return KVC_OK;
}
kvc_status kvc_session_max_tokens(kvc_session* x, size_t* max_tokens) {
    KVC_REQUIRE_HANDLE(x, "session");
    KVC_REQUIRE_HANDLE(max_tokens, "max_tokens");
    *max_tokens = x->store().max_tokens(x->session());
    return KVC_OK;
}
kvc_status kvc_session_id(kvc_session* x, char* buf, size_t capacity, size_t* length) {
    KVC_REQUIRE_HANDLE(x, "session");
    return guard([&] {
        const std::string& id = x->session().id;
        if (length != nullptr) *length = id.size();
        if (is_size_query(buf, capacity)) return;
        require_capacity(capacity, id.size() + 1, "session id");
        std::memcpy(buf, id.c_str(), id.size() + 1);
    });
}
kvc_status kvc_session_block_table(kvc_session* x, int32_t* blocks, size_t capacity, size_t* count) {
    KVC_REQUIRE_HANDLE(x, "session");
    return guard([&] {
        copy_array_out(std::span<const int32_t>(x->session().blocks), blocks, capacity, count, "block table");
    });
}
kvc_status kvc_session_storage(kvc_session* x, void** base, uint64_t* bytes_per_block, uint32_t* block_size) {
    KVC_REQUIRE_HANDLE(x, "session");
    const store::PoolEntry& pe = *x->session().pool;
    if (base != nullptr) *base = pe.pool->storage();
    if (bytes_per_block != nullptr) *bytes_per_block = pe.bytes_per_block;
    if (block_size != nullptr) *block_size = x->store().config().block_size;
    return KVC_OK;
}

}  // extern "C"
