/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/common.h - version, status codes and error reporting shared by every kvcore header.
 *
 * Thread-safety: every function in this header may be called from any thread at any time.
 */
#ifndef KVCORE_COMMON_H
#define KVCORE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(KVCORE_BUILDING)
#    define KVC_API __declspec(dllexport)
#  else
#    define KVC_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define KVC_API __attribute__((visibility("default")))
#else
#  define KVC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI is stable within a major version. */
#define KVC_VERSION_MAJOR 0
#define KVC_VERSION_MINOR 1
#define KVC_VERSION_PATCH 0
#define KVC_VERSION_NUMBER (KVC_VERSION_MAJOR * 10000 + KVC_VERSION_MINOR * 100 + KVC_VERSION_PATCH)

/* The version of the library actually loaded: compare with KVC_VERSION_NUMBER to detect a mismatch. */
KVC_API uint32_t kvc_version_number(void);
/* "major.minor.patch"; static storage, never NULL. */
KVC_API const char* kvc_version_string(void);

/* Every fallible call returns one of these. Values never change once released; new ones are appended. */
typedef enum kvc_status {
    KVC_OK = 0,
    KVC_ERR_INVALID_ARGUMENT = 1, /* NULL handle, zero or absurd size, malformed value */
    KVC_ERR_OUT_OF_RANGE = 2,     /* an index (layer, block, slot) past its bound */
    KVC_ERR_CAPACITY = 3,         /* the object is full: no block, no session slot left */
    KVC_ERR_NO_MEMORY = 4,        /* an allocation failed */
    KVC_ERR_BUFFER_TOO_SMALL = 5, /* a caller buffer cannot hold the result; the size query says how much */
    KVC_ERR_NOT_FOUND = 6,        /* a key, session or sequence that does not exist */
    KVC_ERR_INVALID_STATE = 7,    /* the call does not fit the object's state (double free, freed handle) */
    KVC_ERR_UNSUPPORTED = 8,      /* a feature this build or platform lacks */
    KVC_ERR_IO = 9,               /* a socket, file or server failed */
    KVC_ERR_INTERNAL = 10,        /* a bug in kvcore: please report it with the message */
    KVC_ERR_QUEUE_FULL = 11       /* a bounded queue (the scheduler's) holds its maximum: retry later */
} kvc_status;

/* Eviction policies, shared by every component that evicts (pool, session store, TTL cache). LRU is the
 * default everywhere (vLLM's order); the others resist scans (a burst of one-use items) or adapt.
 * Values never change once released; new ones are appended. */
typedef enum kvc_eviction_policy {
    KVC_EVICTION_LRU = 0,    /* least recently used (vLLM's order) */
    KVC_EVICTION_S3FIFO = 1, /* S3-FIFO: a small probation queue (sized by ghost hits), a main queue, ghosts */
    KVC_EVICTION_ARC = 2     /* adaptive replacement cache: recency vs frequency, tuned by ghost hits */
} kvc_eviction_policy;

/* "lru", "s3fifo", "arc"; "unknown" for other values. Never NULL. */
KVC_API const char* kvc_eviction_policy_name(kvc_eviction_policy policy);

/* A short constant name for a status ("KVC_ERR_CAPACITY"); never NULL, also for unknown values. */
KVC_API const char* kvc_status_string(kvc_status status);

/*
 * The message of the last failed call on this thread. Never NULL; "" when no call has failed.
 * Owned by kvcore and valid until the next kvcore call on the same thread. A successful call does not
 * clear it: check the status first, then read the message.
 */
KVC_API const char* kvc_last_error_message(void);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_COMMON_H */
