// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/event_publisher.h: the options and the topic helper always; the publisher itself
// (index/zmq_publisher.h) when the build has ZeroMQ (KVCORE_WITH_ZMQ); without it, create says
// KVC_ERR_UNSUPPORTED.
#include "kvcore/event_publisher.h"

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "capi/guard.h"
#include "capi/pool_handles.h"
#include "common/error.h"
#include "index/zmq_wire.h"
#if KVCORE_WITH_ZMQ
#include "index/zmq_publisher.h"
#endif

using kvcore::fail;
using kvcore::capi::copy_text_out;
using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::is_size_query;
using kvcore::capi::make_handle;
using kvcore::capi::reject;

namespace {

constexpr uint32_t kMaxBufferSteps = 10'000'000;

struct PublisherConfig {
    std::string endpoint = "tcp://*:5557";  // vLLM's default
    bool connect = false;
    std::string replay_endpoint;
    std::string topic;
    uint32_t buffer_steps = 10000;

    void validate() const {
        if (endpoint.empty()) fail(KVC_ERR_INVALID_ARGUMENT, "event publisher: the endpoint is empty");
        if (buffer_steps == 0 || buffer_steps > kMaxBufferSteps)
            fail(KVC_ERR_INVALID_ARGUMENT, "event publisher: buffer_steps must be 1..10000000");
    }
};

}  // namespace

struct kvc_event_publisher_options {
    PublisherConfig config;
};

#if KVCORE_WITH_ZMQ
struct kvc_event_publisher {
    std::unique_ptr<kvcore::index::ZmqPublisher> impl;
};
#else
struct kvc_event_publisher {};
#endif

extern "C" {

kvc_status kvc_event_publisher_options_create(kvc_event_publisher_options** out) {
    return make_handle(out, [] { return new kvc_event_publisher_options(); });
}
void kvc_event_publisher_options_destroy(kvc_event_publisher_options* options) { delete options; }

kvc_status kvc_event_publisher_options_set_endpoint(kvc_event_publisher_options* o, const char* endpoint,
                                                    uint32_t connect) {
    KVC_REQUIRE_HANDLE(endpoint, "endpoint");
    if (connect > 1) return reject(KVC_ERR_INVALID_ARGUMENT, "event publisher: connect must be 0 (bind) or 1");
    return edit_validated(o, [&](PublisherConfig& c) {
        c.endpoint = endpoint;
        c.connect = connect != 0;
    });
}

kvc_status kvc_event_publisher_options_set_replay_endpoint(kvc_event_publisher_options* o, const char* endpoint) {
    KVC_REQUIRE_HANDLE(endpoint, "endpoint");
    return edit_validated(o, [&](PublisherConfig& c) { c.replay_endpoint = endpoint; });
}

kvc_status kvc_event_publisher_options_set_topic(kvc_event_publisher_options* o, const char* topic) {
    KVC_REQUIRE_HANDLE(topic, "topic");
    return edit_validated(o, [&](PublisherConfig& c) { c.topic = topic; });
}

kvc_status kvc_event_publisher_options_set_buffer_steps(kvc_event_publisher_options* o, uint32_t steps) {
    return edit_validated(o, [&](PublisherConfig& c) { c.buffer_steps = steps; });
}

kvc_status kvc_event_publisher_topic(const char* pod, const char* model, char* buf, size_t capacity,
                                     size_t* length) {
    KVC_REQUIRE_HANDLE(pod, "pod");
    KVC_REQUIRE_HANDLE(model, "model");
    return guard([&] {
        // What the subscriber's parse_topic reads back: a pod without '@', a model (which may hold '@').
        const std::string_view p(pod), m(model);
        if (p.empty() || p.find('@') != std::string_view::npos)
            fail(KVC_ERR_INVALID_ARGUMENT, "event publisher topic: the pod must be non-empty and without '@'");
        if (m.empty()) fail(KVC_ERR_INVALID_ARGUMENT, "event publisher topic: the model is empty");
        copy_text_out(kvcore::index::make_topic(p, m), buf, capacity, length, "topic");
    });
}

kvc_status kvc_event_publisher_create(const kvc_event_publisher_options* options, kvc_event_publisher** out) {
    if (out == nullptr) return reject(KVC_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    KVC_REQUIRE_HANDLE(options, "options");
#if KVCORE_WITH_ZMQ
    return make_handle(out, [&] {
        const PublisherConfig& c = options->config;
        kvcore::index::PublisherOptions po;
        po.endpoint = c.endpoint;
        po.connect = c.connect;
        po.replay_endpoint = c.replay_endpoint;
        po.topic = c.topic;
        po.buffer_steps = c.buffer_steps;
        auto p = std::make_unique<kvc_event_publisher>();
        p->impl = std::make_unique<kvcore::index::ZmqPublisher>(std::move(po));
        return p.release();
    });
#else
    return reject(KVC_ERR_UNSUPPORTED, "event publisher: this kvcore was built without ZeroMQ (KVCORE_ZMQ=OFF)");
#endif
}

void kvc_event_publisher_destroy(kvc_event_publisher* publisher) {
    // Joining the replay thread and closing sockets throws only on a bug; a destroy must not let it escape.
    try {
        delete publisher;
    } catch (...) {
    }
}

#if KVCORE_WITH_ZMQ
kvc_status kvc_event_publisher_publish(kvc_event_publisher* p, const uint8_t* payload, size_t n, uint64_t* seq) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    KVC_REQUIRE_ARRAY(payload, n, "payload");
    return guard([&] {
        const uint64_t s = p->impl->publish(std::span<const uint8_t>(payload, n));
        if (seq != nullptr) *seq = s;
    });
}

kvc_status kvc_event_publisher_publish_pool(kvc_event_publisher* p, kvc_pool* pool, kvc_event_encoding encoding,
                                            uint64_t* seq, uint32_t* events) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    KVC_REQUIRE_HANDLE(pool, "pool");
    return guard([&] {
        const auto format = kvcore::capi::checked_enum<kvcore::pool::EventEncoding>(encoding, KVC_EVENTS_MAP,
                                                                                     "event encoding");
        // Encoded first (it refuses a pool with events off), cleared only once sent: a failure keeps them.
        const std::vector<uint8_t> batch = pool->impl.encode_events(format);
        const uint64_t pending = pool->impl.counters().events_pending;
        if (pending != 0) {
            const uint64_t s = p->impl->publish(batch);
            pool->impl.clear_events();
            if (seq != nullptr) *seq = s;
        }
        if (events != nullptr) *events = static_cast<uint32_t>(std::min<uint64_t>(pending, UINT32_MAX));
    });
}

kvc_status kvc_event_publisher_endpoint(const kvc_event_publisher* p, char* buf, size_t capacity, size_t* length) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    return guard([&] { copy_text_out(p->impl->endpoint(), buf, capacity, length, "endpoint"); });
}

kvc_status kvc_event_publisher_replay_endpoint(const kvc_event_publisher* p, char* buf, size_t capacity,
                                               size_t* length) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    return guard([&] { copy_text_out(p->impl->replay_endpoint(), buf, capacity, length, "replay endpoint"); });
}

kvc_status kvc_event_publisher_counters(const kvc_event_publisher* p, uint64_t* values, size_t capacity,
                                        size_t* count) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    return guard([&] {
        if (count != nullptr) *count = KVC_EVENT_PUBLISHER_COUNTER_COUNT;
        if (is_size_query(values, capacity)) return;
        const kvcore::index::PublisherCounters c = p->impl->counters();
        const uint64_t all[KVC_EVENT_PUBLISHER_COUNTER_COUNT] = {c.published, c.replay_requests, c.replayed_batches,
                                                                 c.bad_replay_requests, c.replays_abandoned};
        std::copy(all, all + std::min<size_t>(capacity, KVC_EVENT_PUBLISHER_COUNTER_COUNT), values);
    });
}
#else
// Never reached with a valid handle (none can be created); the checks still answer as documented.
kvc_status kvc_event_publisher_publish(kvc_event_publisher* p, const uint8_t*, size_t, uint64_t*) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    return reject(KVC_ERR_UNSUPPORTED, "event publisher: built without ZeroMQ");
}
kvc_status kvc_event_publisher_publish_pool(kvc_event_publisher* p, kvc_pool*, kvc_event_encoding, uint64_t*,
                                            uint32_t*) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    return reject(KVC_ERR_UNSUPPORTED, "event publisher: built without ZeroMQ");
}
kvc_status kvc_event_publisher_endpoint(const kvc_event_publisher* p, char*, size_t, size_t*) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    return reject(KVC_ERR_UNSUPPORTED, "event publisher: built without ZeroMQ");
}
kvc_status kvc_event_publisher_replay_endpoint(const kvc_event_publisher* p, char*, size_t, size_t*) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    return reject(KVC_ERR_UNSUPPORTED, "event publisher: built without ZeroMQ");
}
kvc_status kvc_event_publisher_counters(const kvc_event_publisher* p, uint64_t*, size_t, size_t*) {
    KVC_REQUIRE_HANDLE(p, "publisher");
    return reject(KVC_ERR_UNSUPPORTED, "event publisher: built without ZeroMQ");
}
#endif

const char* kvc_event_publisher_counter_name(kvc_event_publisher_counter counter) {
    static const char* const names[KVC_EVENT_PUBLISHER_COUNTER_COUNT] = {
        "published", "replay_requests", "replayed_batches", "bad_replay_requests", "replays_abandoned"};
    const uint32_t raw = kvcore::capi::enum_bits(counter);
    return raw < KVC_EVENT_PUBLISHER_COUNTER_COUNT ? names[raw] : "unknown";
}

}  // extern "C"
