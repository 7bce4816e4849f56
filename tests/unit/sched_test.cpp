// SPDX-License-Identifier: Apache-2.0
// The continuous-batching scheduler over a metadata-only pool, driven by a fake model whose next token is
// a function of the last input token, so that any schedule (chunks, preemptions) must give the same tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "sched/scheduler.h"

namespace kvcore::sched {
namespace {

int32_t model(int32_t last) { return (last * 31 + 7) % 997; }

pool::PoolConfig pool_config(uint32_t num_blocks, uint32_t block_size = 4) {
    pool::PoolConfig c;
    c.num_blocks = num_blocks;
    c.block_size = block_size;
    return c;
}

SchedConfig manual(uint32_t seqs = 64, uint32_t tokens = 1024) {
    SchedConfig c;
    c.max_batch_sequences = seqs;
    c.max_batch_tokens = tokens;
    c.manual_clock = true;
    return c;
}

std::vector<int32_t> prompt_of(size_t n, int32_t start) {
    std::vector<int32_t> p(n);
    std::iota(p.begin(), p.end(), start);
    return p;
}

SubmitArgs request(uint64_t id, std::vector<int32_t> prompt, uint32_t max_new, uint32_t priority = 0) {
    SubmitArgs a;
    a.request_id = id;
    a.prompt = std::move(prompt);
    a.max_new_tokens = max_new;
    a.priority = priority;
    return a;
}

// Checks a plan against the pool (slots in the block table at each position) and samples every entry
// that samples with the fake model.
std::vector<int32_t> sample(const Plan& plan, const pool::Pool& pool) {
    const uint32_t bs = pool.config().block_size;
    std::vector<int32_t> sampled(plan.entries.size(), 0);
    for (size_t i = 0; i < plan.entries.size(); ++i) {
        const PlanEntry& e = plan.entries[i];
        EXPECT_GE(e.num_tokens, 1u);
        for (size_t j = 0; j < e.num_tokens; ++j) {
            const int64_t pos = plan.positions[e.token_begin + j], slot = plan.slots[e.token_begin + j];
            EXPECT_EQ(pos, int64_t(e.num_computed + j));
            EXPECT_LT(size_t(pos) / bs, e.num_blocks);
            EXPECT_EQ(plan.blocks[e.block_begin + size_t(pos) / bs], slot / bs);
            EXPECT_EQ(slot % bs, pos % bs);
        }
        if (e.samples) sampled[i] = model(plan.tokens[e.token_begin + e.num_tokens - 1]);
    }
    return sampled;
}

// One step and its commit; returns the plan's entries.
std::vector<PlanEntry> run_step(Scheduler& s, pool::Pool& pool, Plan& plan, std::vector<uint8_t> finished = {}) {
    s.step(plan);
    const std::vector<int32_t> sampled = sample(plan, pool);
    if (!finished.empty()) finished.resize(plan.entries.size(), 0);
    s.commit(plan, sampled, finished);
    pool.check_invariants();
    return plan.entries;
}

// Steps until nothing is left (bounded); returns each finished request's output.
std::map<uint64_t, std::vector<int32_t>> drain(Scheduler& s, pool::Pool& pool, Plan& plan, int max_steps = 10000) {
    std::map<uint64_t, std::vector<int32_t>> out;
    for (int i = 0; i < max_steps && (s.num_waiting() + s.num_running()) > 0; ++i) {
        run_step(s, pool, plan);
        for (uint64_t id : plan.finished) {
            auto tokens = s.output(id);
            EXPECT_FALSE(out.contains(id)) << "request " << id << " finished twice";
            out[id].assign(tokens.begin(), tokens.end());
            s.drop_output(id);
        }
    }
    EXPECT_EQ(s.num_waiting() + s.num_running(), 0u);
    return out;
}

// What the fake model generates after a prompt, computed directly.
std::vector<int32_t> expected_output(const std::vector<int32_t>& prompt, size_t n) {
    std::vector<int32_t> out;
    int32_t last = prompt.back();
    for (size_t i = 0; i < n; ++i) out.push_back(last = model(last));
    return out;
}

kvc_status status_of(auto&& body) {
    try {
        body();
        return KVC_OK;
    } catch (const Error& e) {
        return e.status();
    }
}

TEST(Sched, BatchSequenceAndTokenLimits) {
    pool::Pool pool(pool_config(256));
    Scheduler s(manual(4, 10), pool);
    for (uint64_t id = 1; id <= 6; ++id) s.submit(request(id, prompt_of(4, int32_t(id) * 100), 3));
    Plan plan;
    auto entries = run_step(s, pool, plan);
    // 10 tokens: two whole prompts and a chunk of 2 of the third.
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].num_tokens, 4u);
    EXPECT_EQ(entries[1].num_tokens, 4u);
    EXPECT_EQ(entries[2].num_tokens, 2u);
    EXPECT_FALSE(entries[2].samples);
    entries = run_step(s, pool, plan);
    // Two decodes first, then the rest of request 3, then request 4 (4 sequences at most).
    ASSERT_EQ(entries.size(), 4u);
    EXPECT_EQ(entries[0].num_tokens, 1u);
    EXPECT_EQ(entries[1].num_tokens, 1u);
    EXPECT_EQ(entries[2].request_id, 3u);
    EXPECT_EQ(entries[2].num_tokens, 2u);
    EXPECT_TRUE(entries[2].samples);
    EXPECT_EQ(entries[3].request_id, 4u);
    for (int i = 0; i < 10; ++i) {
        s.step(plan);
        EXPECT_LE(plan.entries.size(), 4u);
        EXPECT_LE(plan.tokens.size(), 10u);
        s.commit(plan, sample(plan, pool), {});
    }
}

TEST(Sched, ChunkedPrefillComputesThePromptInOrder) {
    pool::Pool pool(pool_config(64));
    Scheduler s(manual(8, 16), pool);
    const auto prompt = prompt_of(40, 1);
    s.submit(request(7, prompt, 5));
    Plan plan;
    std::vector<size_t> chunks;
    for (int i = 0; i < 3; ++i) {
        auto e = run_step(s, pool, plan);
        ASSERT_EQ(e.size(), 1u);
        EXPECT_EQ(e[0].num_computed, size_t(16 * i));
        EXPECT_EQ(std::vector<int32_t>(plan.tokens.begin(), plan.tokens.end()),
                  std::vector<int32_t>(prompt.begin() + 16 * i, prompt.begin() + 16 * i + e[0].num_tokens));
        EXPECT_EQ(e[0].samples, i == 2);
        chunks.push_back(e[0].num_tokens);
    }
    EXPECT_EQ(chunks, (std::vector<size_t>{16, 16, 8}));
    auto out = drain(s, pool, plan);
    EXPECT_EQ(out[7], expected_output(prompt, 5));
    EXPECT_EQ(pool.counters().blocks_in_use, 0u);
}

TEST(Sched, LoneRequestWaitsAtMostMaxWait) {
    pool::Pool pool(pool_config(64));
    SchedConfig c = manual(4);
    c.max_wait_ns = 1'000'000;
    Scheduler s(c, pool);
    Plan plan;
    s.submit(request(1, prompt_of(3, 1), 5));
    s.step(plan);
    EXPECT_TRUE(plan.entries.empty());
    s.set_time(999'999);
    s.step(plan);
    EXPECT_TRUE(plan.entries.empty());
    s.set_time(1'000'000);
    s.step(plan);
    EXPECT_EQ(plan.entries.size(), 1u);
    s.commit(plan, sample(plan, pool), {});
    // A request joining a running batch does not wait.
    s.submit(request(20, prompt_of(3, 50), 2));
    s.step(plan);
    EXPECT_TRUE(std::any_of(plan.entries.begin(), plan.entries.end(), [](auto& e) { return e.request_id == 20; }));
    s.commit(plan, sample(plan, pool), {});
    drain(s, pool, plan);
    // Nor does a full batch.
    for (uint64_t id = 10; id < 14; ++id) s.submit(request(id, prompt_of(3, 1), 2));
    s.step(plan);
    EXPECT_EQ(plan.entries.size(), 4u);
}

TEST(Sched, AdmissionCountsOnlyWhatThePoolCanHoldWithCachedPrefixesFree) {
    // 8 usable blocks of 4 tokens.
    pool::Pool pool(pool_config(9));
    Scheduler s(manual(), pool);
    Plan plan;
    const auto shared = prompt_of(16, 1);
    s.submit(request(1, shared, 100));
    run_step(s, pool, plan);  // prefill: 4 blocks, and the decode's
    EXPECT_EQ(pool.counters().blocks_in_use, 5u);

    // 19 tokens without a cached prefix need 5 blocks (+ the append): only 3 are free.
    s.submit(request(2, prompt_of(19, 500), 10));
    run_step(s, pool, plan);
    ASSERT_EQ(plan.entries.size(), 1u);
    EXPECT_EQ(s.counters().memory_stalls, 1u);
    // The same 16 tokens first: 4 blocks in use by request 1 count as free, 1 more is needed. Request 2
    // waits ahead of it (FIFO keeps the order), so cancel it.
    s.cancel(2);
    auto with_prefix = shared;
    with_prefix.insert(with_prefix.end(), {900, 901, 902});
    s.submit(request(3, with_prefix, 1));
    run_step(s, pool, plan);
    ASSERT_EQ(plan.entries.size(), 2u);
    EXPECT_EQ(plan.entries[1].request_id, 3u);
    EXPECT_EQ(plan.entries[1].num_computed, 16u);
    EXPECT_EQ(plan.entries[1].num_tokens, 3u);
    EXPECT_EQ(s.counters().cached_tokens, 16u);
}

TEST(Sched, PreemptsLowestPriorityNewestFirstAndRecomputesTheSameTokens) {
    // 6 usable blocks of 4: three requests of 3 prompt tokens fill them at 8 tokens each.
    pool::Pool pool(pool_config(7));
    Scheduler s(manual(), pool);
    Plan plan;
    std::map<uint64_t, std::vector<int32_t>> prompts = {
        {1, prompt_of(3, 10)}, {2, prompt_of(3, 20)}, {3, prompt_of(3, 30)}};
    s.submit(request(1, prompts[1], 12, 5));
    s.submit(request(2, prompts[2], 12, 1));
    s.submit(request(3, prompts[3], 12, 1));
    std::vector<uint64_t> preempted;
    std::map<uint64_t, std::vector<int32_t>> out;
    for (int i = 0; i < 200 && s.num_waiting() + s.num_running() > 0; ++i) {
        run_step(s, pool, plan);
        preempted.insert(preempted.end(), plan.preempted.begin(), plan.preempted.end());
        for (uint64_t id : plan.finished) {
            auto t = s.output(id);
            out[id].assign(t.begin(), t.end());
            s.drop_output(id);
        }
    }
    ASSERT_GE(preempted.size(), 2u);
    EXPECT_EQ(preempted[0], 3u);  // priority 1 and newest
    EXPECT_EQ(preempted[1], 2u);
    EXPECT_EQ(std::count(preempted.begin(), preempted.end(), 1u), 0);  // the highest priority is never taken
    for (auto& [id, p] : prompts) EXPECT_EQ(out[id], expected_output(p, 12)) << "request " << id;
    EXPECT_EQ(pool.counters().blocks_in_use, 0u);
    EXPECT_EQ(s.counters().preemptions, preempted.size());
}

// The order in which requests are first scheduled, one sequence per step.
std::vector<uint64_t> first_scheduled(Scheduler& s, pool::Pool& pool, int steps) {
    Plan plan;
    std::vector<uint64_t> order;
    for (int i = 0; i < steps; ++i) {
        run_step(s, pool, plan);
        for (const PlanEntry& e : plan.entries) {
            if (std::find(order.begin(), order.end(), e.request_id) == order.end()) order.push_back(e.request_id);
        }
    }
    return order;
}

TEST(Sched, FifoAndPriorityOrders) {
    for (Policy policy : {Policy::kFifo, Policy::kPriority}) {
        pool::Pool pool(pool_config(64));
        SchedConfig c = manual(1);
        c.policy = policy;
        Scheduler s(c, pool);
        s.submit(request(1, prompt_of(3, 1), 1, 1));
        s.submit(request(2, prompt_of(3, 2), 1, 3));
        s.submit(request(3, prompt_of(3, 3), 1, 2));
        s.submit(request(4, prompt_of(3, 4), 1, 3));
        const auto order = first_scheduled(s, pool, 4);
        if (policy == Policy::kFifo) {
            EXPECT_EQ(order, (std::vector<uint64_t>{1, 2, 3, 4}));
        } else {
            EXPECT_EQ(order, (std::vector<uint64_t>{2, 4, 3, 1}));
        }
    }
}

TEST(Sched, CacheAwareOrderPrefersLongestCachedPrefixWithinTheWaitBound) {
    pool::Pool pool(pool_config(128));
    SchedConfig c = manual(1);
    c.policy = Policy::kCacheAware;
    c.wait_bound_ns = 1000;
    Scheduler s(c, pool);
    Plan plan;
    const auto system = prompt_of(16, 1);
    s.submit(request(1, system, 1));
    drain(s, pool, plan);  // its blocks are cached now

    auto warm = [&](int32_t tail) {
        auto p = system;
        p.push_back(tail);
        return p;
    };
    s.submit(request(10, prompt_of(17, 300), 1));  // nothing cached
    s.submit(request(11, warm(7), 1));             // 16 tokens cached
    EXPECT_EQ(first_scheduled(s, pool, 2), (std::vector<uint64_t>{11, 10}));

    // Past the wait bound, arrival order wins over the cache.
    s.submit(request(20, prompt_of(17, 600), 1));
    s.set_time(2000);
    s.submit(request(21, warm(8), 1));
    EXPECT_EQ(first_scheduled(s, pool, 2), (std::vector<uint64_t>{20, 21}));
}

TEST(Sched, QueueFull) {
    pool::Pool pool(pool_config(64));
    SchedConfig c = manual();
    c.max_queue = 2;
    Scheduler s(c, pool);
    s.submit(request(1, prompt_of(3, 1), 1));
    s.submit(request(2, prompt_of(3, 1), 1));
    EXPECT_EQ(status_of([&] { s.submit(request(3, prompt_of(3, 1), 1)); }), KVC_ERR_QUEUE_FULL);
    EXPECT_EQ(status_of([&] { s.submit(request(1, prompt_of(3, 1), 1)); }), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(s.counters().rejected, 1u);
    Plan plan;
    run_step(s, pool, plan);  // both admitted: the queue has room again
    s.submit(request(3, prompt_of(3, 1), 1));
}

TEST(Sched, CancelQueuedRunningAndPending) {
    pool::Pool pool(pool_config(64));
    Scheduler s(manual(2), pool);
    Plan plan;
    for (uint64_t id = 1; id <= 4; ++id) s.submit(request(id, prompt_of(6, int32_t(id)), 50));
    run_step(s, pool, plan);  // 1 and 2 run
    s.cancel(4);              // queued
    s.cancel(1);              // running, not in a plan
    EXPECT_EQ(s.num_running(), 1u);
    s.step(plan);             // 2 decodes, 3 admitted
    ASSERT_EQ(plan.entries.size(), 2u);
    s.cancel(3);              // in the pending plan
    s.commit(plan, sample(plan, pool), {});
    EXPECT_EQ(s.num_running(), 1u);
    EXPECT_EQ(status_of([&] { s.cancel(3); }), KVC_ERR_NOT_FOUND);
    EXPECT_EQ(status_of([&] { s.cancel(99); }), KVC_ERR_NOT_FOUND);
    auto out = drain(s, pool, plan);
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(out[2].size(), 50u);
    EXPECT_EQ(pool.counters().blocks_in_use, 0u);
    EXPECT_EQ(pool.counters().live_sequences, 0u);
    EXPECT_EQ(s.counters().cancelled, 3u);
}

TEST(Sched, FinishedFlagStopsAndCommitChecksItsArguments) {
    pool::Pool pool(pool_config(64));
    Scheduler s(manual(), pool);
    Plan plan;
    s.submit(request(1, prompt_of(3, 1), 10));
    s.step(plan);
    EXPECT_EQ(status_of([&] { s.step(plan); }), KVC_ERR_INVALID_STATE);  // commit first
    const std::vector<int32_t> bad = {-1};
    EXPECT_EQ(status_of([&] { s.commit(plan, bad, {}); }), KVC_ERR_INVALID_ARGUMENT);
    const std::vector<uint8_t> stop = {1};
    s.commit(plan, sample(plan, pool), stop);
    ASSERT_EQ(plan.finished, (std::vector<uint64_t>{1}));
    FinishReason why{};
    EXPECT_EQ(s.output(1, &why).size(), 1u);
    EXPECT_EQ(why, FinishReason::kStop);
    EXPECT_EQ(pool.counters().blocks_in_use, 0u);
}

// A randomized workload; returns every plan as text.
std::vector<std::string> random_run(uint64_t seed, Policy policy, uint32_t num_blocks,
                                    std::map<uint64_t, std::vector<int32_t>>* outputs = nullptr,
                                    std::map<uint64_t, std::vector<int32_t>>* prompts = nullptr,
                                    std::map<uint64_t, uint32_t>* max_new = nullptr,
                                    std::vector<uint64_t>* cancelled = nullptr, uint64_t* preemptions = nullptr) {
    pool::Pool pool(pool_config(num_blocks, 4));
    SchedConfig c = manual(8, 24);
    c.policy = policy;
    c.seed = seed;
    c.max_queue = 64;
    c.wait_bound_ns = 50;
    Scheduler s(c, pool);
    Plan plan;
    std::mt19937_64 rng(seed);
    std::vector<std::string> trace;
    uint64_t next_id = 1;
    std::vector<uint64_t> live;
    const std::vector<int32_t> shared = prompt_of(8, 1);
    for (int i = 0; i < 3000; ++i) {
        s.set_time(uint64_t(i) * 10);
        if (i < 300 && rng() % 3 == 0) {
            auto p = rng() % 2 ? shared : std::vector<int32_t>{};
            const size_t extra = 1 + rng() % 20;
            for (size_t k = 0; k < extra; ++k) p.push_back(int32_t(rng() % 500));
            const uint32_t n = 1 + uint32_t(rng() % 12);
            const uint64_t id = next_id++;
            if (status_of([&] { s.submit(request(id, p, n, uint32_t(rng() % 3))); }) == KVC_OK) {
                if (prompts) (*prompts)[id] = p;
                if (max_new) (*max_new)[id] = n;
                live.push_back(id);
            }
        }
        if (!live.empty() && rng() % 25 == 0) {
            const size_t k = rng() % live.size();
            if (status_of([&] { s.cancel(live[k]); }) == KVC_OK && cancelled) cancelled->push_back(live[k]);
        }
        s.step(plan);
        std::string line;
        for (const PlanEntry& e : plan.entries) {
            line += std::to_string(e.request_id) + ":" + std::to_string(e.num_computed) + "+" +
                    std::to_string(e.num_tokens) + "@" + std::to_string(plan.slots[e.token_begin]) + " ";
        }
        for (uint64_t id : plan.preempted) line += "p" + std::to_string(id) + " ";
        trace.push_back(line);
        s.commit(plan, sample(plan, pool), {});
        pool.check_invariants();
        for (uint64_t id : plan.finished) {
            auto t = s.output(id);
            if (outputs) {
                EXPECT_FALSE(outputs->contains(id));
                (*outputs)[id].assign(t.begin(), t.end());
            }
            s.drop_output(id);
        }
        if (i >= 300 && s.num_waiting() + s.num_running() == 0) break;
    }
    EXPECT_EQ(s.num_waiting() + s.num_running(), 0u) << "bounded loop ended with work left";
    if (preemptions) *preemptions += s.counters().preemptions;
    EXPECT_EQ(pool.counters().blocks_in_use, 0u);
    EXPECT_EQ(pool.counters().live_sequences, 0u);
    return trace;
}

TEST(Sched, DeterministicModeGivesTheSamePlans) {
    for (Policy policy : {Policy::kFifo, Policy::kPriority, Policy::kCacheAware}) {
        const auto a = random_run(42, policy, 40);
        const auto b = random_run(42, policy, 40);
        EXPECT_EQ(a, b);
    }
}

TEST(Sched, RandomizedStressKeepsInvariants) {
    uint64_t preemptions = 0;
    for (uint64_t seed : {1u, 2u, 3u}) {
        for (Policy policy : {Policy::kFifo, Policy::kPriority, Policy::kCacheAware}) {
            std::map<uint64_t, std::vector<int32_t>> outputs, prompts;
            std::map<uint64_t, uint32_t> max_new;
            std::vector<uint64_t> cancelled;
            // 24 usable blocks of 4 tokens: preemptions happen.
            random_run(seed, policy, 25, &outputs, &prompts, &max_new, &cancelled, &preemptions);
            for (auto& [id, p] : prompts) {
                const bool was_cancelled = std::find(cancelled.begin(), cancelled.end(), id) != cancelled.end();
                if (was_cancelled) {
                    EXPECT_FALSE(outputs.contains(id));
                    continue;
                }
                ASSERT_TRUE(outputs.contains(id)) << "request " << id << " never finished";
                EXPECT_EQ(outputs[id], expected_output(p, max_new[id])) << "request " << id;
            }
        }
    }
    EXPECT_GT(preemptions, 0u);  // the pool is small enough that recompute is exercised
}

TEST(Sched, SnapshotMetrics) {
    pool::Pool pool(pool_config(64));
    Scheduler s(manual(4), pool);
    Plan plan;
    for (uint64_t id = 1; id <= 4; ++id) s.submit(request(id, prompt_of(3, int32_t(id)), 2));
    s.set_time(5000);
    drain(s, pool, plan);
    const stats::Snapshot snap = s.snapshot();
    EXPECT_EQ(snap.component, "sched");
    ASSERT_NE(snap.find_metric("sched_batch_size_avg"), nullptr);
    EXPECT_DOUBLE_EQ(snap.find_metric("sched_batch_size_avg")->value, 4.0);  // 2 steps of 4
    EXPECT_DOUBLE_EQ(snap.find_metric("sched_wait_seconds_avg")->value, 5e-6);
    EXPECT_DOUBLE_EQ(snap.find_metric("sched_time_to_first_step_seconds_avg")->value, 5e-6);
    EXPECT_DOUBLE_EQ(snap.find_metric("sched_requests_finished_total")->value, 4.0);
    EXPECT_DOUBLE_EQ(snap.find_metric("sched_queue_depth")->value, 0.0);
    EXPECT_NE(snap.to_prometheus().find("kvcore_sched_preemptions_total{component=\"sched\"} 0"), std::string::npos);
    EXPECT_NE(snap.to_json().find("\"sched_steps_total\":2"), std::string::npos);
}

TEST(Sched, OptionsValidate) {
    pool::Pool pool(pool_config(8));
    SchedConfig c;
    c.preemption = Preemption::kSwap;
    EXPECT_EQ(status_of([&] { Scheduler s(c, pool); }), KVC_ERR_UNSUPPORTED);
    c = SchedConfig{};
    c.max_batch_tokens = 0;
    EXPECT_EQ(status_of([&] { c.validate(); }), KVC_ERR_INVALID_ARGUMENT);
    Scheduler s(SchedConfig{}, pool);
    EXPECT_EQ(status_of([&] { s.set_time(1); }), KVC_ERR_INVALID_STATE);
    EXPECT_EQ(status_of([&] { s.submit(request(1, prompt_of(29, 0), 1)); }), KVC_ERR_INVALID_ARGUMENT);  // > 28 tokens
    EXPECT_EQ(status_of([&] { s.submit(request(1, {}, 1)); }), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { s.submit(request(1, {1}, 0)); }), KVC_ERR_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace kvcore::sched
