/* SPDX-License-Identifier: Apache-2.0 */
#include "index/ingest_pool.h"

#include "common/error.h"

namespace kvcore::index {

IngestPool::IngestPool(Index& index, uint32_t threads, uint32_t queue_capacity)
    : index_(index), capacity_(queue_capacity) {
    if (threads == 0 || threads > 256) fail(KVC_ERR_INVALID_ARGUMENT, "ingest: threads must be 1..256");
    if (queue_capacity == 0) fail(KVC_ERR_INVALID_ARGUMENT, "ingest: queue_capacity must be >= 1");
    for (uint32_t i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
    for (auto& w : workers_) w->thread = std::thread([this, &w = *w] { run(w); });
}

IngestPool::~IngestPool() {
    for (auto& w : workers_) {
        std::lock_guard lock(w->mu);
        w->stop = true;
        w->not_empty.notify_all();
    }
    for (auto& w : workers_) w->thread.join();
}

void IngestPool::submit(PodId pod, ModelId model, EventBatch batch) {
    Worker& w = worker_of(pod);
    std::unique_lock lock(w.mu);
    w.not_full.wait(lock, [&] { return w.queue.size() < capacity_; });
    w.queue.push_back(Item{pod, model, std::move(batch)});
    w.not_empty.notify_one();
}

bool IngestPool::try_submit(PodId pod, ModelId model, EventBatch& batch) {
    Worker& w = worker_of(pod);
    std::lock_guard lock(w.mu);
    if (w.queue.size() >= capacity_) return false;
    w.queue.push_back(Item{pod, model, std::move(batch)});
    w.not_empty.notify_one();
    return true;
}

void IngestPool::run(Worker& w) {
    std::unique_lock lock(w.mu);
    for (;;) {
        w.not_empty.wait(lock, [&] { return w.stop || !w.queue.empty(); });
        if (w.queue.empty()) return;  // stopping, and everything queued is done
        Item item = std::move(w.queue.front());
        w.queue.pop_front();
        w.busy = true;
        w.not_full.notify_one();
        lock.unlock();
        std::string error;
        try {
            index_.apply(item.pod, item.model, item.batch);
        } catch (const std::exception& e) {
            error = e.what();
        }
        lock.lock();
        w.busy = false;
        if (error.empty()) {
            ++w.applied;
        } else {
            ++w.failed;
            w.last_error = std::move(error);
        }
        if (w.queue.empty()) w.idle.notify_all();
    }
}

void IngestPool::flush() {
    for (auto& w : workers_) {
        std::unique_lock lock(w->mu);
        w->idle.wait(lock, [&] { return w->queue.empty() && !w->busy; });
    }
}

uint64_t IngestPool::applied() const {
    uint64_t n = 0;
    for (auto& w : workers_) {
        std::lock_guard lock(w->mu);
        n += w->applied;
    }
    return n;
}

uint64_t IngestPool::failed() const {
    uint64_t n = 0;
    for (auto& w : workers_) {
        std::lock_guard lock(w->mu);
        n += w->failed;
    }
    return n;
}

std::string IngestPool::last_error() const {
    for (auto& w : workers_) {
        std::lock_guard lock(w->mu);
        if (!w->last_error.empty()) return w->last_error;
    }
    return {};
}

}  // namespace kvcore::index
