// SPDX-License-Identifier: Apache-2.0
// A process-wide pool of worker threads for the CPU kernels, with one operation: run body(i) for i in
// [0, n) on the caller and the workers, each index once, and return when all are done. Tasks are taken one
// at a time from an atomic counter, so uneven tasks (sequences of different lengths) balance themselves.
// One parallel_for runs at a time; a caller that finds the pool busy runs its loop alone (never waits
// behind another caller's work, never deadlocks when called from inside a task).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvcore::ops {

class TaskBody {
public:
    template <class F>
    explicit TaskBody(F& f) : object_(&f), call_([](void* o, size_t i) { (*static_cast<F*>(o))(i); }) {}
    void operator()(size_t i) const { call_(object_, i); }

private:
    void* object_;
    void (*call_)(void*, size_t);
};

void parallel_for_impl(size_t n, const TaskBody& body);

template <class F>
void parallel_for(size_t n, F&& body) {
    if (n == 0) return;
    parallel_for_impl(n, TaskBody(body));
}

// 0: one thread per core. Waits for a running parallel_for. Throws on > 1024.
void set_threads(uint32_t threads);
[[nodiscard]] uint32_t threads() noexcept;

}  // namespace kvcore::ops
