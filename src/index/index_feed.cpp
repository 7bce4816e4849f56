// SPDX-License-Identifier: Apache-2.0
#include "index/index_feed.h"

#include <utility>
#include <variant>

#include "common/error.h"
#include "index/event_decoder.h"

namespace kvcore::index {

IndexFeed::IndexFeed(Index& index, IngestPool* ingest, SubscriberOptions options, std::atomic<uint64_t>* refused)
    : index_(index),
      ingest_(ingest),
      refused_(refused),
      subscriber_(std::move(options), [this](const ReceivedBatch& b) { handle(b); }) {}

IndexFeed::~IndexFeed() { subscriber_.stop(); }

void IndexFeed::count_failure(std::atomic<uint64_t>& counter) noexcept {
    counter.fetch_add(1, std::memory_order_relaxed);
    if (refused_ != nullptr) refused_->fetch_add(1, std::memory_order_relaxed);
}

void IndexFeed::handle(const ReceivedBatch& received) {
    EventBatch batch;
    bool decoded = true;
    try {
        batch = decode_event_batch(received.payload);
    } catch (const Error&) {
        count_failure(decode_failures_);
        decoded = false;
    }
    // A restart clears the old entries even when its first batch is unreadable: the cache is gone either
    // way. Without a readable batch the rank is unknown; rank 0 (absent) is what such a batch would mean.
    if (received.engine_restarted) {
        if (!decoded) batch = EventBatch{};
        batch.events.emplace(batch.events.begin(), std::in_place_type<AllBlocksCleared>);
    } else if (!decoded) {
        return;
    }
    try {
        const PodId pod = index_.intern_pod(received.pod);
        const ModelId model = index_.intern_model(received.model);
        if (ingest_ != nullptr) {
            ingest_->submit(pod, model, std::move(batch));
        } else {
            index_.apply(pod, model, batch);
        }
    } catch (const Error&) {
        count_failure(apply_failures_);
        return;
    }
    if (received.engine_restarted) restart_clears_.fetch_add(1, std::memory_order_relaxed);
    if (decoded) applied_.fetch_add(1, std::memory_order_relaxed);
}

FeedCounters IndexFeed::counters() const {
    return {applied_.load(std::memory_order_relaxed), decode_failures_.load(std::memory_order_relaxed),
            apply_failures_.load(std::memory_order_relaxed), restart_clears_.load(std::memory_order_relaxed)};
}

}  // namespace kvcore::index
