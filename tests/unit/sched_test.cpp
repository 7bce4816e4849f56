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
#include "store/store.h"

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
    {
        Scheduler swap(c, pool);  // allowed; submit needs a session store
        EXPECT_EQ(status_of([&] { swap.submit(request(1, prompt_of(3, 0), 1)); }), KVC_ERR_INVALID_STATE);
    }
    c = SchedConfig{};
    c.max_batch_tokens = 0;
    EXPECT_EQ(status_of([&] { c.validate(); }), KVC_ERR_INVALID_ARGUMENT);
    Scheduler s(SchedConfig{}, pool);
    EXPECT_EQ(status_of([&] { s.set_time(1); }), KVC_ERR_INVALID_STATE);
    EXPECT_EQ(status_of([&] { s.submit(request(1, prompt_of(29, 0), 1)); }), KVC_ERR_INVALID_ARGUMENT);  // > 28 tokens
    EXPECT_EQ(status_of([&] { s.submit(request(1, {}, 1)); }), KVC_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { s.submit(request(1, {1}, 0)); }), KVC_ERR_INVALID_ARGUMENT);
}

// ---- the session store under the pool -------------------------------------------------------------

// A host pool of a small model (2 layers, 2 KV heads of 4, F32, blocks of 4 tokens).
pool::PoolConfig host_config(uint32_t num_blocks) {
    pool::PoolConfig c = pool_config(num_blocks, 4);
    c.memory = pool::Memory::kHost;
    c.layers = 2;
    c.kv_heads = 2;
    c.head_dim = 4;
    c.dtype = pool::DType::kF32;
    return c;
}

// The K/V word the fake forward writes for element e of a token's row: a function of the token, its
// position, the layer and K or V, so that any misplaced or stale row shows.
uint32_t kv_word(int32_t token, size_t pos, uint32_t layer, uint32_t kv, uint32_t e) {
    uint64_t x = (uint64_t(uint32_t(token)) << 32) ^ (uint64_t(pos) << 12) ^ (uint64_t(layer) << 8) ^ (kv << 6) ^ e;
    x = (x ^ (x >> 31)) * 0x7fb5d329728ea185ULL;
    return uint32_t(x ^ (x >> 29));
}

// The row of K (kv 0) or V (kv 1) of one layer at a slot of a host pool.
uint32_t* kv_row(const pool::Pool& pool, int64_t block, size_t offset, uint32_t layer, uint32_t kv) {
    const pool::PoolConfig& c = pool.config();
    const uint64_t row = uint64_t{c.kv_heads} * c.head_dim * 4;
    auto* at = static_cast<uint8_t*>(pool.storage()) + uint64_t(block) * c.bytes_per_block() +
               (uint64_t{layer} * 2 + kv) * c.block_size * row + offset * row;
    return reinterpret_cast<uint32_t*>(at);
}

// Positions in [first, last) of a block table whose K/V differ from what the fake forward wrote for `tokens`.
size_t kv_mismatches(const pool::Pool& pool, std::span<const int32_t> table, const std::vector<int32_t>& tokens,
                     size_t first, size_t last) {
    const pool::PoolConfig& c = pool.config();
    size_t bad = 0;
    for (size_t pos = first; pos < last; ++pos) {
        bool ok = true;
        for (uint32_t layer = 0; layer < c.layers; ++layer) {
            for (uint32_t kv = 0; kv < 2; ++kv) {
                const uint32_t* row = kv_row(pool, table[pos / c.block_size], pos % c.block_size, layer, kv);
                for (uint32_t e = 0; e < c.kv_heads * c.head_dim; ++e) ok &= row[e] == kv_word(tokens[pos], pos, layer, kv, e);
            }
        }
        bad += !ok;
    }
    return bad;
}

// An engine over a host pool with a fake forward: before computing an entry it checks that every earlier
// position holds exactly the K/V written for that token there (what attention reads), then writes the
// entry's K/V at its slots and samples with `model`.
struct KvEngine {
    pool::Pool pool;
    Scheduler s;
    Plan plan;
    std::map<uint64_t, std::vector<int32_t>> tokens;  // per request: prompt, then what it sampled
    std::map<uint64_t, std::vector<int32_t>> outputs;
    std::map<uint64_t, size_t> computed;              // per request: tokens computed by its last entry
    std::map<uint64_t, std::vector<PlanEntry>> entries;

    KvEngine(uint32_t num_blocks, SchedConfig config, std::shared_ptr<store::Store> store)
        : pool(host_config(num_blocks)), s(config, pool) {
        if (store) s.set_session_store(std::move(store));
    }
    void submit(uint64_t id, std::vector<int32_t> prompt, uint32_t max_new, const std::string& session = "",
                uint32_t priority = 0) {
        SubmitArgs a = request(id, prompt, max_new, priority);
        a.session = session;
        s.submit(std::move(a));
        tokens[id] = std::move(prompt);
    }
    void step() {
        s.step(plan);
        const uint32_t bs = pool.config().block_size;
        std::vector<int32_t> sampled(plan.entries.size(), 0);
        for (size_t i = 0; i < plan.entries.size(); ++i) {
            const PlanEntry& e = plan.entries[i];
            const std::vector<int32_t>& t = tokens.at(e.request_id);
            const std::span<const int32_t> table(plan.blocks.data() + e.block_begin, e.num_blocks);
            EXPECT_EQ(kv_mismatches(pool, table, t, 0, e.num_computed), 0u)
                << "request " << e.request_id << " reads wrong K/V before position " << e.num_computed;
            for (size_t j = 0; j < e.num_tokens; ++j) {
                const size_t pos = e.num_computed + j;
                const int64_t slot = plan.slots[e.token_begin + j];
                EXPECT_EQ(plan.tokens[e.token_begin + j], t[pos]);
                for (uint32_t layer = 0; layer < pool.config().layers; ++layer) {
                    for (uint32_t kv = 0; kv < 2; ++kv) {
                        uint32_t* row = kv_row(pool, slot / bs, size_t(slot % bs), layer, kv);
                        for (uint32_t w = 0; w < pool.config().kv_heads * pool.config().head_dim; ++w) {
                            row[w] = kv_word(t[pos], pos, layer, kv, w);
                        }
                    }
                }
            }
            if (e.samples) sampled[i] = model(plan.tokens[e.token_begin + e.num_tokens - 1]);
            entries[e.request_id].push_back(e);
        }
        s.commit(plan, sampled, {});
        for (size_t i = 0; i < plan.entries.size(); ++i) {
            const PlanEntry& e = plan.entries[i];
            computed[e.request_id] = e.num_computed + e.num_tokens;
            if (e.samples && tokens.contains(e.request_id)) tokens[e.request_id].push_back(sampled[i]);
        }
        for (uint64_t id : plan.finished) {
            auto t = s.output(id);
            outputs[id].assign(t.begin(), t.end());
            s.drop_output(id);
        }
        pool.check_invariants();
    }
    void drain(int max_steps = 2000) {
        for (int i = 0; i < max_steps && s.num_waiting() + s.num_running() > 0; ++i) step();
        EXPECT_EQ(s.num_waiting() + s.num_running(), 0u) << "bounded loop ended with work left";
    }
};

std::shared_ptr<store::Store> make_store(uint32_t max_tokens_per_session = 4096) {
    store::StoreConfig c;
    c.block_size = 8;  // unlike the pool's 4: copies run over both block sizes
    c.max_tokens_per_session = max_tokens_per_session;
    c.max_bytes_total = 1 << 20;  // the store's pools reserve what the bound allows
    return store::Store::create(c);
}

TEST(SchedStore, RestoresAConversationWhosePoolBlocksWereEvicted) {
    for (const bool with_store : {false, true}) {
        SCOPED_TRACE(with_store ? "with a session store" : "without");
        const auto st = with_store ? make_store() : nullptr;
        KvEngine eng(9, manual(), st);  // 8 usable blocks of 4 tokens
        const auto turn1 = prompt_of(10, 100);
        eng.submit(1, turn1, 4, "chat");
        eng.drain();
        ASSERT_EQ(eng.outputs[1], expected_output(turn1, 4));
        if (with_store) {
            // Saved: the prompt and the generated tokens but the last (its K/V are not computed).
            store::Lease lease = st->try_get("chat");
            EXPECT_EQ(lease.session->committed, 13u);
            EXPECT_EQ(std::vector<int32_t>(lease.session->tokens.begin(), lease.session->tokens.end()),
                      std::vector<int32_t>(eng.tokens[1].begin(), eng.tokens[1].begin() + 13));
            st->release(lease.session);
            EXPECT_EQ(eng.s.counters().store_saved_tokens, 13u);
        }
        // Other traffic takes every block: the conversation's cached blocks are evicted.
        eng.submit(2, prompt_of(28, 500), 2);
        eng.drain();
        EXPECT_EQ(eng.pool.counters().blocks_in_use, 0u);

        auto turn2 = eng.tokens[1];  // the whole conversation, then the user's next message
        turn2.insert(turn2.end(), {900, 901, 902, 903, 904});
        eng.submit(3, turn2, 3, "chat");
        eng.step();
        ASSERT_EQ(eng.plan.entries.size(), 1u);
        const PlanEntry first = eng.plan.entries[0];
        EXPECT_EQ(eng.s.counters().cached_tokens, 0u);  // the pool's prefix cache had nothing left
        if (!with_store) {
            EXPECT_EQ(first.num_computed, 0u);
            continue;
        }
        EXPECT_EQ(first.num_computed, 13u);
        EXPECT_EQ(first.num_tokens, 19u - 13u);
        EXPECT_EQ(eng.s.counters().store_restored_tokens, 13u);
        // The restored blocks hold the K/V written by turn 1, byte for byte (the engine's check covered
        // them before the step computed; here the blocks after it), and the commit cached them.
        const std::span<const int32_t> table(eng.plan.blocks.data() + first.block_begin, first.num_blocks);
        EXPECT_EQ(kv_mismatches(eng.pool, table, eng.tokens[3], 0, 19), 0u);
        {
            pool::SequenceOptions o;
            const pool::SequenceId probe = eng.pool.create_sequence(turn2, o);
            EXPECT_EQ(eng.pool.cached_prefix_tokens(probe), 16u);  // 13 restored + 6 computed: 4 full blocks
            eng.pool.free_sequence(probe);
        }
        eng.drain();
        EXPECT_EQ(eng.outputs[3], expected_output(turn2, 3));
        // Turn 2 saved only what the session lacked: 19 + 2 computed tokens, 13 already there.
        EXPECT_EQ(eng.s.counters().store_saved_tokens, 13u + 8u);
        const stats::Snapshot snap = eng.s.snapshot();
        EXPECT_DOUBLE_EQ(snap.find_metric("sched_store_restored_tokens_total")->value, 13.0);
        EXPECT_DOUBLE_EQ(snap.find_metric("sched_store_saved_tokens_total")->value, 21.0);
        EXPECT_DOUBLE_EQ(snap.find_metric("sched_store_save_failures_total")->value, 0.0);
        st->check_invariants();
    }
}

TEST(SchedStore, ARefusedSaveIsCountedAndTheCommitStands) {
    const auto st = make_store(8);  // a session holds at most 8 tokens
    // A session of another model under an id the scheduler will use.
    store::Lease other = st->get_or_create("other-model", store::Shape{1, 1, 8, pool::DType::kF16}, 0, nullptr);
    st->release(other.session);
    KvEngine eng(64, manual(), st);
    eng.submit(1, prompt_of(10, 1), 2, "long");        // 11 computed tokens: over the bound
    eng.submit(2, prompt_of(3, 50), 2, "short");       // 4: saved
    eng.submit(3, prompt_of(3, 80), 2, "other-model");  // refused: another shape
    eng.drain();
    EXPECT_EQ(eng.outputs[1], expected_output(prompt_of(10, 1), 2));
    EXPECT_EQ(eng.outputs[3], expected_output(prompt_of(3, 80), 2));
    EXPECT_EQ(eng.s.counters().store_save_failures, 2u);
    EXPECT_EQ(eng.s.counters().store_saved_tokens, 4u);
    EXPECT_DOUBLE_EQ(eng.s.snapshot().find_metric("sched_store_save_failures_total")->value, 2.0);
    // A session of another shape is never restored from either.
    auto p = prompt_of(3, 80);
    p.push_back(7);
    eng.submit(4, p, 1, "other-model");
    eng.step();
    EXPECT_EQ(eng.s.counters().store_restored_tokens, 0u);
    eng.drain();
    st->check_invariants();
}

// Three requests over 6 usable blocks of 4 (the recompute test's workload): 2 and 3 are preempted.
struct SwapRun {
    std::map<uint64_t, std::vector<int32_t>> outputs;
    std::vector<std::pair<uint64_t, size_t>> preempted;  // request, tokens computed when preempted
    std::vector<size_t> resumed_at;                      // num_computed of each one's next entry
    SchedCounters counters;
};

SwapRun run_preemptions(Preemption mode, const std::shared_ptr<store::Store>& st) {
    SchedConfig c = manual();
    c.preemption = mode;
    KvEngine eng(7, c, st);
    eng.submit(1, prompt_of(3, 10), 12, "", 5);
    eng.submit(2, prompt_of(3, 20), 12, "", 1);
    eng.submit(3, prompt_of(3, 30), 12, "", 1);
    SwapRun run;
    std::map<uint64_t, size_t> waiting;  // preempted, not yet resumed: index into run.preempted
    for (int i = 0; i < 300 && eng.s.num_waiting() + eng.s.num_running() > 0; ++i) {
        const std::map<uint64_t, size_t> before = eng.computed;
        eng.step();
        for (const PlanEntry& e : eng.plan.entries) {
            if (auto it = waiting.find(e.request_id); it != waiting.end()) {
                run.resumed_at[it->second] = e.num_computed;
                waiting.erase(it);
            }
        }
        for (uint64_t id : eng.plan.preempted) {
            waiting[id] = run.preempted.size();
            run.preempted.emplace_back(id, before.at(id));
            run.resumed_at.push_back(SIZE_MAX);
        }
    }
    EXPECT_EQ(eng.s.num_waiting() + eng.s.num_running(), 0u);
    EXPECT_EQ(eng.pool.counters().blocks_in_use, 0u);
    run.outputs = eng.outputs;
    run.counters = eng.s.counters();
    return run;
}

TEST(SchedStore, SwapPreemptionResumesWithoutRecomputingAndGivesTheSameTokens) {
    const SwapRun recompute = run_preemptions(Preemption::kRecompute, nullptr);
    const auto st = make_store();
    const SwapRun swap = run_preemptions(Preemption::kSwap, st);
    ASSERT_GE(swap.preempted.size(), 2u);
    for (size_t i = 0; i < swap.preempted.size(); ++i) {
        EXPECT_EQ(swap.resumed_at[i], swap.preempted[i].second)
            << "request " << swap.preempted[i].first << " did not resume where it was preempted";
    }
    // Recompute starts again from what the prefix cache kept, which here is less.
    bool recomputed = false;
    for (size_t i = 0; i < recompute.preempted.size(); ++i) recomputed |= recompute.resumed_at[i] < recompute.preempted[i].second;
    EXPECT_TRUE(recomputed);
    EXPECT_LT(swap.counters.scheduled_tokens, recompute.counters.scheduled_tokens);
    for (uint64_t id : {1u, 2u, 3u}) {
        EXPECT_EQ(swap.outputs.at(id), recompute.outputs.at(id)) << "request " << id;
        EXPECT_EQ(swap.outputs.at(id), expected_output(prompt_of(3, int32_t(id) * 10), 12)) << "request " << id;
    }
    size_t out = 0;
    for (const auto& [id, n] : swap.preempted) out += n;
    EXPECT_EQ(swap.counters.swapped_out_tokens, out);
    EXPECT_GT(swap.counters.swapped_in_tokens, 0u);
    EXPECT_LE(swap.counters.swapped_in_tokens, out);
    EXPECT_EQ(swap.counters.swap_failures, 0u);
    EXPECT_EQ(st->num_sessions(), 0u);  // swap sessions are removed once restored
    EXPECT_EQ(st->held_sessions(), 0u);
    st->check_invariants();
}

TEST(SchedStore, ARefusedSwapFallsBackToRecompute) {
    const SwapRun swap = run_preemptions(Preemption::kSwap, make_store(2));  // no session takes 3 tokens
    ASSERT_GE(swap.preempted.size(), 2u);
    EXPECT_EQ(swap.counters.swap_failures, swap.preempted.size());
    EXPECT_EQ(swap.counters.swapped_out_tokens, 0u);
    for (uint64_t id : {1u, 2u, 3u}) EXPECT_EQ(swap.outputs.at(id), expected_output(prompt_of(3, int32_t(id) * 10), 12));
}

TEST(SchedStore, CancelOfASwappedRequestRemovesItsSession) {
    const auto st = make_store();
    SchedConfig c = manual();
    c.preemption = Preemption::kSwap;
    KvEngine eng(7, c, st);
    eng.submit(1, prompt_of(3, 10), 12, "", 5);
    eng.submit(2, prompt_of(3, 20), 12, "", 1);
    eng.submit(3, prompt_of(3, 30), 12, "", 1);
    uint64_t victim = 0;
    for (int i = 0; i < 100 && victim == 0; ++i) {
        eng.step();
        if (!eng.plan.preempted.empty()) victim = eng.plan.preempted[0];
    }
    ASSERT_NE(victim, 0u);
    EXPECT_EQ(st->num_sessions(), 1u);
    const std::string id = eng.s.swap_session_id(victim);
    EXPECT_EQ(id.rfind("\x01swap/", 0), 0u);
    store::Lease lease = st->try_get(id);
    EXPECT_EQ(lease.session->committed, eng.computed[victim]);
    st->release(lease.session);
    eng.s.cancel(victim);
    EXPECT_EQ(st->num_sessions(), 0u);
    EXPECT_EQ(st->held_sessions(), 0u);
    EXPECT_EQ(status_of([&] { (void)st->try_get(id); }), KVC_ERR_NOT_FOUND);
    eng.tokens.erase(victim);
    eng.drain();
    EXPECT_FALSE(eng.outputs.contains(victim));
    st->check_invariants();
}

TEST(SchedStore, SetSessionStoreChecksThePoolTheStoreAndTheState) {
    const auto st = make_store();
    {
        pool::Pool meta(pool_config(16));  // metadata only: no K/V to copy
        Scheduler s(manual(), meta);
        EXPECT_EQ(status_of([&] { s.set_session_store(st); }), KVC_ERR_INVALID_ARGUMENT);
    }
    for (int variant = 0; variant < 2; ++variant) {
        pool::PoolConfig pc = host_config(16);
        if (variant == 0) pc.dtype = pool::DType::kInt8;
        if (variant == 1) pc.sliding_window = 8;
        pool::Pool p(pc);
        Scheduler s(manual(), p);
        EXPECT_EQ(status_of([&] { s.set_session_store(st); }), KVC_ERR_UNSUPPORTED);
    }
    pool::Pool host(host_config(16));
    Scheduler s(manual(), host);
    store::StoreConfig dc;
    dc.memory = pool::Memory::kDevice;
    EXPECT_EQ(status_of([&] { s.set_session_store(store::Store::create(dc)); }), KVC_ERR_INVALID_ARGUMENT);
    s.set_session_store(st);
    SubmitArgs reserved = request(9, prompt_of(3, 1), 1);
    reserved.session = "\x01swap/7";
    EXPECT_EQ(status_of([&] { s.submit(std::move(reserved)); }), KVC_ERR_INVALID_ARGUMENT);
    s.submit(request(1, prompt_of(3, 1), 1));
    EXPECT_EQ(status_of([&] { s.set_session_store(nullptr); }), KVC_ERR_INVALID_STATE);
    s.cancel(1);
    s.set_session_store(nullptr);
    EXPECT_EQ(s.session_store(), nullptr);
}

// Two schedulers (engine replicas) share one store: a chat's turns alternate between them and each turn
// finds the previous one's K/V; under pressure both swap into the same store without colliding.
TEST(SchedStore, ReplicasShareOneStore) {
    const auto st = make_store();
    SchedConfig c = manual();
    c.preemption = Preemption::kSwap;
    KvEngine a(13, c, st), b(13, c, st);
    std::vector<int32_t> conversation = prompt_of(5, 1);
    uint64_t id = 1;
    for (int turn = 0; turn < 4; ++turn) {
        KvEngine& eng = turn % 2 ? b : a;
        // Pressure: two requests without a session run beside the turn.
        eng.submit(id + 100, prompt_of(9, 300 + turn * 10), 10, "", 0);
        eng.submit(id + 200, prompt_of(9, 600 + turn * 10), 10, "", 0);
        eng.submit(id, conversation, 6, "chat", 1);
        eng.drain();
        ASSERT_TRUE(eng.outputs.contains(id));
        EXPECT_EQ(eng.outputs[id], expected_output(conversation, 6));
        EXPECT_EQ(eng.outputs[id + 100], expected_output(prompt_of(9, 300 + turn * 10), 10));
        if (turn > 0) {
            // All but the new message and the last sampled token come from the other replica's save.
            EXPECT_EQ(eng.entries[id].front().num_computed, conversation.size() - 2 - 1);
        }
        conversation = eng.tokens[id];
        conversation.insert(conversation.end(), {int32_t(800 + turn), int32_t(900 + turn)});
        ++id;
    }
    EXPECT_GT(a.s.counters().store_restored_tokens + b.s.counters().store_restored_tokens, 0u);
    EXPECT_GT(a.s.counters().swapped_in_tokens + b.s.counters().swapped_in_tokens, 0u);  // pressure swapped
    EXPECT_EQ(st->num_sessions(), 1u);  // the chat; no swap session is left
    st->check_invariants();
}

}  // namespace
}  // namespace kvcore::sched
