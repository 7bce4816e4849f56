/* SPDX-License-Identifier: Apache-2.0 */
// The one place where C++ exceptions stop: every C entry point that can throw runs its body through
// kvcore::capi::guard, which maps exceptions to a kvc_status and the thread-local message.
#pragma once

#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string>

#include "common/error.h"

namespace kvcore::capi {

// Sets the message and returns the status, for argument checks that need no exception.
inline kvc_status reject(kvc_status status, const char* message) noexcept {
    set_last_error(message);
    return status;
}

template <class Body>
kvc_status guard(Body&& body) noexcept {
    try {
        body();
        return KVC_OK;
    } catch (const Error& e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc&) {
        set_last_error("out of memory");
        return KVC_ERR_NO_MEMORY;
    } catch (const std::exception& e) {
        set_last_error(e.what());
        return KVC_ERR_INTERNAL;
    } catch (...) {
        set_last_error("unknown C++ exception");
        return KVC_ERR_INTERNAL;
    }
}

// Creators: `out` must not be NULL, and *out stays NULL unless make() returns the new handle.
template <class Handle, class Make>
kvc_status make_handle(Handle** out, Make&& make) noexcept {
    if (out == nullptr) return reject(KVC_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    return guard([&] { *out = make(); });
}

// Options setters validate a copy and keep it only when valid, so a rejected value changes nothing.
// Each options handle holds its component's config as `config`, which has validate().
template <class Options, class Edit>
kvc_status edit_validated(Options* options, Edit&& edit) noexcept {
    if (options == nullptr) return reject(KVC_ERR_INVALID_ARGUMENT, "options is NULL");
    return guard([&] {
        auto candidate = options->config;
        edit(candidate);
        candidate.validate();
        options->config = std::move(candidate);
    });
}

// A C caller may pass any integer where the API takes one of its enums, but in C++ an enum object
// holding a value outside its enumerators' range is undefined behaviour. So the parameter's bytes are
// read as an integer and checked before anything compares or converts it as an enum.
template <class CEnum>
[[nodiscard]] uint32_t enum_bits(const CEnum& value) noexcept {
    static_assert(sizeof(CEnum) == sizeof(uint32_t), "kvc_* enums are 32-bit");
    uint32_t raw;
    std::memcpy(&raw, &value, sizeof raw);
    return raw;
}

// The C enum `value` as the C++ enum To, when it is 0..last; otherwise KVC_ERR_INVALID_ARGUMENT naming it.
template <class To, class CEnum>
[[nodiscard]] To checked_enum(const CEnum& value, uint32_t last, const char* what) {
    const uint32_t raw = enum_bits(value);
    if (raw > last) {
        fail(KVC_ERR_INVALID_ARGUMENT, std::string("unknown ") + what + " " + std::to_string(static_cast<int32_t>(raw)) +
                                           " (expected 0.." + std::to_string(last) + ")");
    }
    return static_cast<To>(raw);
}

// Caller buffers (zstd style): NULL with capacity 0 is a size query; NULL with a capacity is an error.
inline bool is_size_query(const void* buf, size_t capacity) {
    if (buf == nullptr && capacity == 0) return true;
    if (buf == nullptr) fail(KVC_ERR_INVALID_ARGUMENT, "buf is NULL but capacity is not 0");
    return false;
}

inline void require_capacity(size_t capacity, size_t needed, const char* what) {
    if (capacity < needed) {
        fail(KVC_ERR_BUFFER_TOO_SMALL, std::string(what) + ": room for " + std::to_string(capacity) + ", " +
                                           std::to_string(needed) + " needed");
    }
}

// Writes text and its NUL to a caller buffer; *length (may be NULL) = its length without the NUL.
inline void copy_text_out(const std::string& text, char* buf, size_t capacity, size_t* length, const char* what) {
    if (length != nullptr) *length = text.size();
    if (is_size_query(buf, capacity)) return;
    require_capacity(capacity, text.size() + 1, what);
    std::memcpy(buf, text.c_str(), text.size() + 1);
}

// Copies values to a caller buffer; *count (may be NULL) = how many. False for a size query (nothing
// copied). memcpy's pointers must not be NULL even for 0 bytes, and an empty span's data() may be.
template <class T>
bool copy_array_out(std::span<const T> values, T* buf, size_t capacity, size_t* count, const char* what) {
    if (count != nullptr) *count = values.size();
    if (is_size_query(buf, capacity)) return false;
    require_capacity(capacity, values.size(), what);
    if (!values.empty()) std::memcpy(buf, values.data(), values.size_bytes());
    return true;
}

// Checks an input array argument: NULL is fine only with n == 0 ("tokens is NULL but n is not 0").
#define KVC_REQUIRE_ARRAY(ptr, n, what) \
    do { \
        if ((ptr) == nullptr && (n) != 0) { \
            return ::kvcore::capi::reject(KVC_ERR_INVALID_ARGUMENT, what " is NULL but n is not 0"); \
        } \
    } while (0)

// Checks a handle argument; `what` names it in the message ("recorder is NULL").
#define KVC_REQUIRE_HANDLE(ptr, what) \
    do { \
        if ((ptr) == nullptr) return ::kvcore::capi::reject(KVC_ERR_INVALID_ARGUMENT, what " is NULL"); \
    } while (0)

}  // namespace kvcore::capi
