// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/index_subscriber.h: the options, and the index's ZeroMQ feed (index/index_feed.h)
// when the build has ZeroMQ (KVCORE_WITH_ZMQ); without it, create says KVC_ERR_UNSUPPORTED.
#include "kvcore/index_subscriber.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "capi/guard.h"
#include "capi/index_handles.h"
#include "common/error.h"
#if KVCORE_WITH_ZMQ
#include "index/index_feed.h"
#endif

using kvcore::fail;
using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::is_size_query;
using kvcore::capi::make_handle;
using kvcore::capi::reject;
using kvcore::capi::require_capacity;

namespace {

constexpr size_t kMaxEngines = 4096;
constexpr uint32_t kMaxReplayTimeoutMs = 600000;

struct Engine {
    std::string endpoint, replay_endpoint;
};

struct SubscriberConfig {
    std::string bind_endpoint;
    std::vector<Engine> engines;
    std::map<std::string, std::string> replay_by_pod;
    uint32_t replay_timeout_ms = 2000;

    void validate() const {
        if (engines.size() > kMaxEngines) fail(KVC_ERR_INVALID_ARGUMENT, "index subscriber: at most 4096 engines");
        for (const Engine& e : engines) {
            if (e.endpoint.empty()) fail(KVC_ERR_INVALID_ARGUMENT, "index subscriber: an engine endpoint is empty");
        }
        if (replay_timeout_ms == 0 || replay_timeout_ms > kMaxReplayTimeoutMs)
            fail(KVC_ERR_INVALID_ARGUMENT, "index subscriber: replay timeout must be 1..600000 ms");
    }
};

}  // namespace

struct kvc_index_subscriber_options {
    SubscriberConfig config;
};

#if KVCORE_WITH_ZMQ
struct kvc_index_subscriber {
    kvc_index* index = nullptr;  // retained: released after the feed has stopped
    std::unique_ptr<kvcore::index::IndexFeed> feed;
    ~kvc_index_subscriber() {
        feed.reset();
        kvcore::capi::index_release(index);
    }
};
#else
struct kvc_index_subscriber {};
#endif

extern "C" {

kvc_status kvc_index_subscriber_options_create(kvc_index_subscriber_options** out) {
    return make_handle(out, [] { return new kvc_index_subscriber_options(); });
}
void kvc_index_subscriber_options_destroy(kvc_index_subscriber_options* options) { delete options; }

kvc_status kvc_index_subscriber_options_set_bind(kvc_index_subscriber_options* o, const char* endpoint) {
    KVC_REQUIRE_HANDLE(endpoint, "endpoint");
    return edit_validated(o, [&](SubscriberConfig& c) { c.bind_endpoint = endpoint; });
}

kvc_status kvc_index_subscriber_options_add_engine(kvc_index_subscriber_options* o, const char* endpoint,
                                                   const char* replay_endpoint) {
    KVC_REQUIRE_HANDLE(endpoint, "endpoint");
    return edit_validated(o, [&](SubscriberConfig& c) {
        c.engines.push_back({endpoint, replay_endpoint != nullptr ? replay_endpoint : ""});
    });
}

kvc_status kvc_index_subscriber_options_set_pod_replay(kvc_index_subscriber_options* o, const char* pod,
                                                       const char* replay_endpoint) {
    KVC_REQUIRE_HANDLE(pod, "pod");
    KVC_REQUIRE_HANDLE(replay_endpoint, "replay_endpoint");
    return edit_validated(o, [&](SubscriberConfig& c) {
        if (*replay_endpoint == '\0') {
            c.replay_by_pod.erase(pod);
        } else {
            c.replay_by_pod[pod] = replay_endpoint;
        }
    });
}

kvc_status kvc_index_subscriber_options_set_replay_timeout_ms(kvc_index_subscriber_options* o, uint32_t timeout_ms) {
    return edit_validated(o, [&](SubscriberConfig& c) { c.replay_timeout_ms = timeout_ms; });
}

kvc_status kvc_index_subscriber_create(kvc_index* index, const kvc_index_subscriber_options* options,
                                       kvc_index_subscriber** out) {
    if (out == nullptr) return reject(KVC_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    KVC_REQUIRE_HANDLE(index, "index");
    KVC_REQUIRE_HANDLE(options, "options");
#if KVCORE_WITH_ZMQ
    return make_handle(out, [&] {
        const SubscriberConfig& c = options->config;
        if (c.bind_endpoint.empty() && c.engines.empty())
            fail(KVC_ERR_INVALID_ARGUMENT, "index subscriber: no endpoint (set a bind endpoint or add an engine)");
        kvcore::index::SubscriberOptions so;
        so.bind_endpoint = c.bind_endpoint;
        for (const Engine& e : c.engines) so.engines.push_back({e.endpoint, e.replay_endpoint});
        so.replay_by_pod = c.replay_by_pod;
        so.replay_timeout_ms = static_cast<int>(c.replay_timeout_ms);
        const kvcore::capi::IndexParts parts = kvcore::capi::index_parts(*index);
        auto s = std::make_unique<kvc_index_subscriber>();
        s->feed = std::make_unique<kvcore::index::IndexFeed>(parts.index, parts.ingest, std::move(so), &parts.refused);
        kvcore::capi::index_retain(*index);
        s->index = index;
        return s.release();
    });
#else
    return reject(KVC_ERR_UNSUPPORTED, "index subscriber: this kvcore was built without ZeroMQ (KVCORE_ZMQ=OFF)");
#endif
}

void kvc_index_subscriber_destroy(kvc_index_subscriber* subscriber) {
    // Stopping joins the thread and closes sockets: nothing there throws but a bug, and a destroy must
    // not let it escape.
    try {
        delete subscriber;
    } catch (...) {
    }
}

#if KVCORE_WITH_ZMQ
kvc_status kvc_index_subscriber_start(kvc_index_subscriber* s) {
    KVC_REQUIRE_HANDLE(s, "subscriber");
    return guard([&] { s->feed->start(); });
}

kvc_status kvc_index_subscriber_stop(kvc_index_subscriber* s) {
    KVC_REQUIRE_HANDLE(s, "subscriber");
    return guard([&] { s->feed->stop(); });
}

kvc_status kvc_index_subscriber_bound_endpoint(const kvc_index_subscriber* s, char* buf, size_t capacity,
                                               size_t* length) {
    KVC_REQUIRE_HANDLE(s, "subscriber");
    return guard([&] {
        kvcore::capi::copy_text_out(s->feed->bound_endpoint(), buf, capacity, length, "bound endpoint");
    });
}

kvc_status kvc_index_subscriber_counters(const kvc_index_subscriber* s, uint64_t* values, size_t capacity,
                                         size_t* count) {
    KVC_REQUIRE_HANDLE(s, "subscriber");
    return guard([&] {
        if (count != nullptr) *count = KVC_INDEX_SUBSCRIBER_COUNTER_COUNT;
        if (is_size_query(values, capacity)) return;
        const kvcore::index::SubscriberCounters c = s->feed->subscriber_counters();
        const kvcore::index::FeedCounters f = s->feed->counters();
        const uint64_t all[KVC_INDEX_SUBSCRIBER_COUNTER_COUNT] = {
            c.messages,       c.delivered,   c.malformed,        c.bad_topics,        c.gaps,
            c.replays_requested, c.replayed_batches, c.duplicates, c.replays_failed, c.lost_batches,
            c.restarts,       c.streams_refused, f.applied,      f.decode_failures,   f.apply_failures,
            f.restart_clears};
        std::copy(all, all + std::min<size_t>(capacity, KVC_INDEX_SUBSCRIBER_COUNTER_COUNT), values);
    });
}
#else
// Never reached with a valid handle (none can be created); the checks still answer as documented.
kvc_status kvc_index_subscriber_start(kvc_index_subscriber* s) {
    KVC_REQUIRE_HANDLE(s, "subscriber");
    return reject(KVC_ERR_UNSUPPORTED, "index subscriber: built without ZeroMQ");
}
kvc_status kvc_index_subscriber_stop(kvc_index_subscriber* s) {
    KVC_REQUIRE_HANDLE(s, "subscriber");
    return reject(KVC_ERR_UNSUPPORTED, "index subscriber: built without ZeroMQ");
}
kvc_status kvc_index_subscriber_bound_endpoint(const kvc_index_subscriber* s, char*, size_t, size_t*) {
    KVC_REQUIRE_HANDLE(s, "subscriber");
    return reject(KVC_ERR_UNSUPPORTED, "index subscriber: built without ZeroMQ");
}
kvc_status kvc_index_subscriber_counters(const kvc_index_subscriber* s, uint64_t*, size_t, size_t*) {
    KVC_REQUIRE_HANDLE(s, "subscriber");
    return reject(KVC_ERR_UNSUPPORTED, "index subscriber: built without ZeroMQ");
}
#endif

const char* kvc_index_subscriber_counter_name(kvc_index_subscriber_counter counter) {
    static const char* const names[KVC_INDEX_SUBSCRIBER_COUNTER_COUNT] = {
        "messages",        "delivered",       "malformed",      "bad_topics",     "gaps",
        "replays_requested", "replayed_batches", "duplicates",  "replays_failed", "lost_batches",
        "restarts",        "streams_refused", "batches_applied", "decode_failures", "apply_failures",
        "restart_clears"};
    const uint32_t raw = kvcore::capi::enum_bits(counter);
    return raw < KVC_INDEX_SUBSCRIBER_COUNTER_COUNT ? names[raw] : "unknown";
}

}  // extern "C"
