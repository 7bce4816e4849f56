/* SPDX-License-Identifier: Apache-2.0 */
// The router's ingest path over ZeroMQ: a ZmqSubscriber whose handler decodes each batch and applies it
// to an Index, on the subscriber's thread or, with an IngestPool, on the pod's ingest worker (order kept
// per pod; the pool's bounded queues push back on the subscriber, whose socket then queues, and past its
// high-water mark ZeroMQ drops: a gap, which replay fills).
//
// An engine restart (the subscriber sees the stream's seq start again) means the engine process and
// its prefix cache are gone: the new process never sends BlockRemoved for the old blocks, so their
// entries would stay in the index for good and attract requests to a pod that no longer has them. The
// first batch after a restart is therefore applied with an AllBlocksCleared for its (pod, model, rank)
// in front, in the same batch: cleared and refilled at once, in order with the pod's other batches.
// A stream is one engine's publisher and vLLM gives each data-parallel rank its own, so the batch's rank
// is the restarted one's.
//
// Threads: start() and stop() from one owning thread; counters() from any thread. The index (and the
// pool) must outlive the feed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "index/index.h"
#include "index/ingest_pool.h"
#include "index/zmq_subscriber.h"

namespace kvcore::index {

struct FeedCounters {
    uint64_t applied = 0;          // batches applied (or queued on the ingest pool)
    uint64_t decode_failures = 0;  // payloads the decoder refused: nothing of them applied
    uint64_t apply_failures = 0;   // batches the index refused (a name past the limits, a bad value)
    uint64_t restart_clears = 0;   // engine restarts whose old entries were cleared
};

class IndexFeed {
public:
    // ingest: nullptr applies on the subscriber's thread. refused: when not null, every decode or apply
    // failure is also added there (the C API's count of refused batches).
    IndexFeed(Index& index, IngestPool* ingest, SubscriberOptions options,
              std::atomic<uint64_t>* refused = nullptr);
    ~IndexFeed();  // stop()
    IndexFeed(const IndexFeed&) = delete;
    IndexFeed& operator=(const IndexFeed&) = delete;

    void start() { subscriber_.start(); }  // throws as ZmqSubscriber::start
    void stop() { subscriber_.stop(); }
    [[nodiscard]] bool running() const noexcept { return subscriber_.running(); }
    [[nodiscard]] std::string bound_endpoint() const { return subscriber_.bound_endpoint(); }
    [[nodiscard]] SubscriberCounters subscriber_counters() const { return subscriber_.counters(); }
    [[nodiscard]] FeedCounters counters() const;

private:
    void handle(const ReceivedBatch& received);
    void count_failure(std::atomic<uint64_t>& counter) noexcept;

    Index& index_;
    IngestPool* ingest_;
    std::atomic<uint64_t>* refused_;
    std::atomic<uint64_t> applied_{0}, decode_failures_{0}, apply_failures_{0}, restart_clears_{0};
    ZmqSubscriber subscriber_;  // last: its thread stops before the counters it writes go
};

}  // namespace kvcore::index
