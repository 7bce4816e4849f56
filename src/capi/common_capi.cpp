// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/common.h.
#include "kvcore/common.h"

#include "capi/guard.h"
#include "common/error.h"
#include "capi/eviction.h"
#include "common/eviction/policy.h"

#define KVC_STR2(x) #x
#define KVC_STR(x) KVC_STR2(x)

extern "C" {

uint32_t kvc_version_number(void) { return KVC_VERSION_NUMBER; }

const char* kvc_version_string(void) {
    return KVC_STR(KVC_VERSION_MAJOR) "." KVC_STR(KVC_VERSION_MINOR) "." KVC_STR(KVC_VERSION_PATCH);
}

const char* kvc_status_string(kvc_status status) {
    // Switch on the integer: a C caller may pass a value no enumerator has (see enum_bits).
    switch (kvcore::capi::enum_bits(status)) {
        case KVC_OK: return "KVC_OK";
        case KVC_ERR_INVALID_ARGUMENT: return "KVC_ERR_INVALID_ARGUMENT";
        case KVC_ERR_OUT_OF_RANGE: return "KVC_ERR_OUT_OF_RANGE";
        case KVC_ERR_CAPACITY: return "KVC_ERR_CAPACITY";
        case KVC_ERR_NO_MEMORY: return "KVC_ERR_NO_MEMORY";
        case KVC_ERR_BUFFER_TOO_SMALL: return "KVC_ERR_BUFFER_TOO_SMALL";
        case KVC_ERR_NOT_FOUND: return "KVC_ERR_NOT_FOUND";
        case KVC_ERR_INVALID_STATE: return "KVC_ERR_INVALID_STATE";
        case KVC_ERR_UNSUPPORTED: return "KVC_ERR_UNSUPPORTED";
        case KVC_ERR_IO: return "KVC_ERR_IO";
        case KVC_ERR_INTERNAL: return "KVC_ERR_INTERNAL";
        case KVC_ERR_QUEUE_FULL: return "KVC_ERR_QUEUE_FULL";
    }
    return "KVC_ERR_UNKNOWN";
}

const char* kvc_eviction_policy_name(kvc_eviction_policy policy) {
    const uint32_t raw = kvcore::capi::enum_bits(policy);
    if (raw > kvcore::capi::kLastOfferedEviction) return "unknown";
    return kvcore::eviction::kind_name(static_cast<kvcore::eviction::Kind>(raw));
}

const char* kvc_last_error_message(void) { return kvcore::last_error(); }

}  // extern "C"
