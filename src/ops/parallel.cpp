// SPDX-License-Identifier: Apache-2.0
#include "ops/parallel.h"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"

namespace kvcore::ops {
namespace {

class WorkerPool {
public:
    ~WorkerPool() {
        std::lock_guard run(run_mutex_);
        stop_workers();
    }

    void run(size_t n, const TaskBody& body) {
        std::unique_lock run(run_mutex_, std::try_to_lock);
        if (!run.owns_lock() || n == 1) {
            for (size_t i = 0; i < n; ++i) body(i);
            return;
        }
        if (!started_) start_workers();
        if (workers_.empty()) {
            for (size_t i = 0; i < n; ++i) body(i);
            return;
        }
        {
            std::lock_guard lock(mutex_);
            body_ = &body;
            n_ = n;
            next_.store(0, std::memory_order_relaxed);
            active_ = workers_.size();
            error_ = nullptr;
            ++generation_;
        }
        start_.notify_all();
        work();
        std::unique_lock lock(mutex_);
        done_.wait(lock, [&] { return active_ == 0; });
        body_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

    void set_threads(uint32_t threads) {
        std::lock_guard run(run_mutex_);
        stop_workers();
        threads_ = threads;
    }

    uint32_t threads() const noexcept {
        const uint32_t t = threads_.load(std::memory_order_relaxed);
        if (t != 0) return t;
        const unsigned hw = std::thread::hardware_concurrency();
        return hw == 0 ? 1 : hw;
    }

private:
    // Runs tasks until none is left; the first exception is kept for the caller, the rest are dropped.
    void work() {
        for (size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n_;) {
            try {
                (*body_)(i);
            } catch (...) {
                std::lock_guard lock(mutex_);
                if (!error_) error_ = std::current_exception();
            }
        }
    }

    void start_workers() {
        started_ = true;
        stopping_ = false;
        const uint32_t count = threads() - 1;
        for (uint32_t w = 0; w < count; ++w) {
            workers_.emplace_back([this] {
                uint64_t seen = 0;
                for (;;) {
                    {
                        std::unique_lock lock(mutex_);
                        start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
                        if (stopping_) return;
                        seen = generation_;
                    }
                    work();
                    std::lock_guard lock(mutex_);
                    if (--active_ == 0) done_.notify_one();
                }
            });
        }
    }

    void stop_workers() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        start_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
        started_ = false;
    }

    std::mutex run_mutex_;  // one parallel_for (or reconfiguration) at a time
    std::mutex mutex_;
    std::condition_variable start_, done_;
    std::vector<std::thread> workers_;
    std::atomic<uint32_t> threads_{0};
    bool started_ = false, stopping_ = false;
    uint64_t generation_ = 0;
    const TaskBody* body_ = nullptr;
    size_t n_ = 0;
    std::atomic<size_t> next_{0};
    size_t active_ = 0;
    std::exception_ptr error_;
};

WorkerPool& worker_pool() {
    static WorkerPool pool;
    return pool;
}

}  // namespace

void parallel_for_impl(size_t n, const TaskBody& body) { worker_pool().run(n, body); }

void set_threads(uint32_t threads) {
    if (threads > 1024) fail(KVC_ERR_OUT_OF_RANGE, "threads must be 0..1024, got " + std::to_string(threads));
    worker_pool().set_threads(threads);
}

uint32_t threads() noexcept { return worker_pool().threads(); }

}  // namespace kvcore::ops
