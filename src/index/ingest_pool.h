/* SPDX-License-Identifier: Apache-2.0 */
// Ingest workers for the cluster index: N threads, each owning the pods that hash to it (pod id mod N),
// so one pod's batches apply in arrival order while different pods apply in parallel. Each worker has a
// bounded queue: submit() waits for room (backpressure to the transport), try_submit() does not. A batch
// that fails to apply is counted and its message kept; the worker goes on with the next.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "index/index.h"

namespace kvcore::index {

class IngestPool {
public:
    // threads: 1..256; queue_capacity: batches per worker queue, >= 1.
    IngestPool(Index& index, uint32_t threads, uint32_t queue_capacity);
    ~IngestPool();  // finishes what is queued, then joins
    IngestPool(const IngestPool&) = delete;
    IngestPool& operator=(const IngestPool&) = delete;

    void submit(PodId pod, ModelId model, EventBatch batch);
    [[nodiscard]] bool try_submit(PodId pod, ModelId model, EventBatch& batch);  // false: queue full
    // Waits until every batch submitted before the call is applied.
    void flush();

    [[nodiscard]] uint64_t applied() const;
    [[nodiscard]] uint64_t failed() const;
    [[nodiscard]] std::string last_error() const;

private:
    struct Item {
        PodId pod;
        ModelId model;
        EventBatch batch;
    };
    struct Worker {
        mutable std::mutex mu;
        std::condition_variable not_empty, not_full, idle;
        std::deque<Item> queue;
        bool busy = false, stop = false;
        uint64_t applied = 0, failed = 0;
        std::string last_error;
        std::thread thread;
    };
    void run(Worker& w);
    Worker& worker_of(PodId pod) { return *workers_[pod % workers_.size()]; }

    Index& index_;
    uint32_t capacity_;
    std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace kvcore::index
