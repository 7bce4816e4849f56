// SPDX-License-Identifier: Apache-2.0
// C shims for kvcore/sched.h: argument checks, handle casts, exception translation. No logic.
#include "kvcore/sched.h"

#include <cstring>
#include <string>

#include "capi/guard.h"
#include "capi/pool_handles.h"
#include "capi/stats_handles.h"
#include "capi/store_handles.h"
#include "sched/scheduler.h"

namespace sched = kvcore::sched;
using kvcore::fail;
using kvcore::capi::checked_enum;
using kvcore::capi::copy_array_out;
using kvcore::capi::edit_validated;
using kvcore::capi::guard;
using kvcore::capi::is_size_query;
using kvcore::capi::make_handle;
using kvcore::capi::reject;
using kvcore::capi::require_capacity;

struct kvc_sched_options {
    sched::SchedConfig config;
};

struct kvc_sched {
    kvc_sched(sched::SchedConfig config, kvcore::pool::Pool& pool) : impl(std::move(config), pool) {}
    sched::Scheduler impl;
};

struct kvc_sched_plan {
    sched::Plan plan;
};

namespace {

constexpr uint64_t kMaxMicroseconds = UINT64_MAX / 1000;

uint64_t to_ns(uint64_t us, const char* what) {
    if (us > kMaxMicroseconds) fail(KVC_ERR_INVALID_ARGUMENT, std::string(what) + " is too large");
    return us * 1000;
}

const sched::PlanEntry& entry(const kvc_sched_plan* p, size_t i) {
    if (i >= p->plan.entries.size()) {
        fail(KVC_ERR_OUT_OF_RANGE, "entry " + std::to_string(i) + " is out of range: the plan has " +
                                       std::to_string(p->plan.entries.size()));
    }
    return p->plan.entries[i];
}

}  // namespace

extern "C" {

// ---- options ----

kvc_status kvc_sched_options_create(kvc_sched_options** out) {
    return make_handle(out, [&] { return new kvc_sched_options(); });
}
void kvc_sched_options_destroy(kvc_sched_options* options) { delete options; }

kvc_status kvc_sched_options_set_max_batch_sequences(kvc_sched_options* o, uint32_t sequences) {
    return edit_validated(o, [&](sched::SchedConfig& c) { c.max_batch_sequences = sequences; });
}
kvc_status kvc_sched_options_set_max_batch_tokens(kvc_sched_options* o, uint32_t tokens) {
    return edit_validated(o, [&](sched::SchedConfig& c) { c.max_batch_tokens = tokens; });
}
kvc_status kvc_sched_options_set_max_wait_us(kvc_sched_options* o, uint64_t us) {
    return edit_validated(o, [&](sched::SchedConfig& c) { c.max_wait_ns = to_ns(us, "max_wait_us"); });
}
kvc_status kvc_sched_options_set_max_queue(kvc_sched_options* o, uint32_t requests) {
    return edit_validated(o, [&](sched::SchedConfig& c) { c.max_queue = requests; });
}
kvc_status kvc_sched_options_set_policy(kvc_sched_options* o, kvc_sched_policy policy, uint64_t wait_bound_us) {
    return edit_validated(o, [&](sched::SchedConfig& c) {
        c.policy = checked_enum<sched::Policy>(policy, KVC_SCHED_CACHE_AWARE, "scheduling policy");
        c.wait_bound_ns = to_ns(wait_bound_us, "wait_bound_us");
    });
}
kvc_status kvc_sched_options_set_preemption(kvc_sched_options* o, kvc_preemption_mode mode) {
    return edit_validated(o, [&](sched::SchedConfig& c) {
        c.preemption = checked_enum<sched::Preemption>(mode, KVC_PREEMPT_SWAP, "preemption mode");
    });
}
kvc_status kvc_sched_options_set_seed(kvc_sched_options* o, uint64_t seed) {
    return edit_validated(o, [&](sched::SchedConfig& c) { c.seed = seed; });
}
kvc_status kvc_sched_options_set_manual_clock(kvc_sched_options* o, uint32_t enabled) {
    return edit_validated(o, [&](sched::SchedConfig& c) { c.manual_clock = enabled != 0; });
}

// ---- the scheduler ----

kvc_status kvc_sched_create(const kvc_sched_options* options, kvc_pool* pool, kvc_sched** out) {
    KVC_REQUIRE_HANDLE(pool, "pool");
    return make_handle(out, [&] {
        return new kvc_sched(options != nullptr ? options->config : sched::SchedConfig{}, pool->impl);
    });
}
void kvc_sched_destroy(kvc_sched* s) { delete s; }

kvc_status kvc_sched_set_session_store(kvc_sched* s, kvc_store* store) {
    KVC_REQUIRE_HANDLE(s, "sched");
    return guard([&] { s->impl.set_session_store(store != nullptr ? store->core : nullptr); });
}

kvc_status kvc_sched_submit(kvc_sched* s, uint64_t request_id, const int32_t* prompt, size_t n,
                            uint32_t max_new_tokens, uint32_t priority, const char* session_id,
                            const kvc_sequence_options* keys) {
    KVC_REQUIRE_HANDLE(s, "sched");
    KVC_REQUIRE_ARRAY(prompt, n, "prompt");
    return guard([&] {
        sched::SubmitArgs args;
        args.request_id = request_id;
        args.prompt.assign(prompt, prompt + n);
        args.max_new_tokens = max_new_tokens;
        args.priority = priority;
        if (session_id != nullptr) args.session = session_id;
        if (keys != nullptr) args.options = keys->options;
        s->impl.submit(std::move(args));
    });
}
kvc_status kvc_sched_cancel(kvc_sched* s, uint64_t request_id) {
    KVC_REQUIRE_HANDLE(s, "sched");
    return guard([&] { s->impl.cancel(request_id); });
}
kvc_status kvc_sched_set_time_us(kvc_sched* s, uint64_t now_us) {
    KVC_REQUIRE_HANDLE(s, "sched");
    return guard([&] { s->impl.set_time(to_ns(now_us, "now_us")); });
}

kvc_status kvc_sched_step(kvc_sched* s, kvc_sched_plan* plan) {
    KVC_REQUIRE_HANDLE(s, "sched");
    KVC_REQUIRE_HANDLE(plan, "plan");
    return guard([&] { s->impl.step(plan->plan); });
}
kvc_status kvc_sched_commit(kvc_sched* s, kvc_sched_plan* plan, const int32_t* sampled, size_t n_sampled,
                            const uint8_t* finished, size_t n_finished) {
    KVC_REQUIRE_HANDLE(s, "sched");
    KVC_REQUIRE_HANDLE(plan, "plan");
    KVC_REQUIRE_ARRAY(sampled, n_sampled, "sampled");
    KVC_REQUIRE_ARRAY(finished, n_finished, "finished");
    return guard([&] {
        s->impl.commit(plan->plan, std::span<const int32_t>(sampled, n_sampled),
                       std::span<const uint8_t>(finished, n_finished));
    });
}
kvc_status kvc_sched_take_output(kvc_sched* s, uint64_t request_id, int32_t* tokens, size_t capacity, size_t* count,
                                 uint32_t* reason) {
    KVC_REQUIRE_HANDLE(s, "sched");
    return guard([&] {
        sched::FinishReason why{};
        const std::span<const int32_t> out = s->impl.output(request_id, &why);
        if (reason != nullptr) *reason = static_cast<uint32_t>(why);
        if (copy_array_out(out, tokens, capacity, count, "tokens")) s->impl.drop_output(request_id);
    });
}
kvc_status kvc_sched_output_session(kvc_sched* s, uint64_t request_id, char* buf, size_t capacity, size_t* length) {
    KVC_REQUIRE_HANDLE(s, "sched");
    return guard([&] {
        const std::string* session = nullptr;
        (void)s->impl.output(request_id, nullptr, &session);
        kvcore::capi::copy_text_out(*session, buf, capacity, length, "buf");
    });
}
kvc_status kvc_sched_snapshot(kvc_sched* s, kvc_stats** out) {
    KVC_REQUIRE_HANDLE(s, "sched");
    return make_handle(out, [&] { return new kvc_stats{s->impl.snapshot()}; });
}

uint64_t kvc_sched_num_waiting(const kvc_sched* s) { return s ? s->impl.num_waiting() : 0; }
uint64_t kvc_sched_num_running(const kvc_sched* s) { return s ? s->impl.num_running() : 0; }
uint64_t kvc_sched_num_outputs(const kvc_sched* s) { return s ? s->impl.num_outputs() : 0; }

// ---- plans ----

kvc_status kvc_sched_plan_create(kvc_sched_plan** out) {
    return make_handle(out, [&] { return new kvc_sched_plan(); });
}
void kvc_sched_plan_destroy(kvc_sched_plan* plan) { delete plan; }
size_t kvc_sched_plan_count(const kvc_sched_plan* p) { return p ? p->plan.entries.size() : 0; }
size_t kvc_sched_plan_num_tokens(const kvc_sched_plan* p) { return p ? p->plan.tokens.size() : 0; }

kvc_status kvc_sched_plan_sequence(const kvc_sched_plan* p, size_t i, uint64_t* request_id, size_t* num_tokens,
                                   size_t* num_computed, uint32_t* samples) {
    KVC_REQUIRE_HANDLE(p, "plan");
    return guard([&] {
        const sched::PlanEntry& e = entry(p, i);
        if (request_id != nullptr) *request_id = e.request_id;
        if (num_tokens != nullptr) *num_tokens = e.num_tokens;
        if (num_computed != nullptr) *num_computed = e.num_computed;
        if (samples != nullptr) *samples = e.samples ? 1 : 0;
    });
}
kvc_status kvc_sched_plan_tokens(const kvc_sched_plan* p, size_t i, int32_t* tokens, size_t capacity, size_t* count) {
    KVC_REQUIRE_HANDLE(p, "plan");
    return guard([&] {
        const sched::PlanEntry& e = entry(p, i);
        copy_array_out(std::span(p->plan.tokens).subspan(e.token_begin, e.num_tokens), tokens, capacity, count,
                       "tokens");
    });
}
kvc_status kvc_sched_plan_positions(const kvc_sched_plan* p, size_t i, int64_t* positions, size_t capacity,
                                    size_t* count) {
    KVC_REQUIRE_HANDLE(p, "plan");
    return guard([&] {
        const sched::PlanEntry& e = entry(p, i);
        copy_array_out(std::span(p->plan.positions).subspan(e.token_begin, e.num_tokens), positions, capacity, count,
                       "positions");
    });
}
kvc_status kvc_sched_plan_slots(const kvc_sched_plan* p, size_t i, int64_t* slots, size_t capacity, size_t* count) {
    KVC_REQUIRE_HANDLE(p, "plan");
    return guard([&] {
        const sched::PlanEntry& e = entry(p, i);
        copy_array_out(std::span(p->plan.slots).subspan(e.token_begin, e.num_tokens), slots, capacity, count,
                       "slots");
    });
}
kvc_status kvc_sched_plan_block_table(const kvc_sched_plan* p, size_t i, int32_t* blocks, size_t capacity,
                                      size_t* count) {
    KVC_REQUIRE_HANDLE(p, "plan");
    return guard([&] {
        const sched::PlanEntry& e = entry(p, i);
        copy_array_out(std::span(p->plan.blocks).subspan(e.block_begin, e.num_blocks), blocks, capacity, count,
                       "blocks");
    });
}
kvc_status kvc_sched_plan_preempted(const kvc_sched_plan* p, uint64_t* ids, size_t capacity, size_t* count) {
    KVC_REQUIRE_HANDLE(p, "plan");
    return guard([&] { copy_array_out(std::span(p->plan.preempted), ids, capacity, count, "ids"); });
}
kvc_status kvc_sched_plan_finished(const kvc_sched_plan* p, uint64_t* ids, size_t capacity, size_t* count) {
    KVC_REQUIRE_HANDLE(p, "plan");
    return guard([&] { copy_array_out(std::span(p->plan.finished), ids, capacity, count, "ids"); });
}

}  // extern "C"
