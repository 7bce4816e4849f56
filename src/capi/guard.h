// The one place where C++ exceptions stop: every C entry point that can throw runs its body through
// kvcore::capi::guard, which maps exceptions to a kvc_status and the thread-local message.
#pragma once

#include <new>
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

// Checks a handle argument; `what` names it in the message ("recorder is NULL").
#define KVC_REQUIRE_HANDLE(ptr, what) \
    do { \
        if ((ptr) == nullptr) return ::kvcore::capi::reject(KVC_ERR_INVALID_ARGUMENT, what " is NULL"); \
    } while (0)

}  // namespace kvcore::capi
