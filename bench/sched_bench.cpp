// SPDX-License-Identifier: Apache-2.0
// The scheduler's cost per scheduled sequence: step() + commit() at a steady batch of 64 and 256 running
// requests (32-token prompts, 64 new tokens each; a finished request is replaced at once), against an
// anchor in the same run: the pool calls such a step makes for the same sequences, alone (the block
// check, slot mapping, block table copy, cache commit and append of each decode; free, create and
// prompt allocation for each replaced request).
#include <benchmark/benchmark.h>

#include <numeric>
#include <vector>

#include "pool/pool.h"
#include "sched/scheduler.h"

namespace {

using kvcore::pool::Pool;
using kvcore::pool::PoolConfig;
using kvcore::pool::SequenceId;
using kvcore::pool::SequenceOptions;
namespace sched = kvcore::sched;

constexpr size_t kPrompt = 32, kNew = 64;

PoolConfig pool_config(size_t batch) {
    PoolConfig c;
    c.block_size = 16;
    c.num_blocks = static_cast<uint32_t>(batch * ((kPrompt + kNew) / 16 + 2) + 1);
    c.statistics = false;
    return c;
}

std::vector<int32_t> prompt(uint64_t id) {
    std::vector<int32_t> p(kPrompt);
    std::iota(p.begin(), p.end(), static_cast<int32_t>(id * kPrompt % 100000));  // distinct prompts: no hits
    return p;
}

void BM_SchedStepCommit(benchmark::State& state) {
    const size_t batch = static_cast<size_t>(state.range(0));
    Pool pool(pool_config(batch));
    sched::SchedConfig c;
    c.max_batch_sequences = static_cast<uint32_t>(batch);
    c.max_batch_tokens = static_cast<uint32_t>(batch * kPrompt);
    c.manual_clock = true;
    c.max_queue = static_cast<uint32_t>(batch);
    sched::Scheduler s(c, pool);
    uint64_t next_id = 0;
    auto submit = [&](size_t max_new) {
        sched::SubmitArgs a;
        a.request_id = next_id;
        a.prompt = prompt(next_id++);
        a.max_new_tokens = static_cast<uint32_t>(max_new);
        s.submit(std::move(a));
    };
    for (size_t i = 0; i < batch; ++i) submit(1 + i % kNew);  // staggered: some finish every step
    sched::Plan plan;
    std::vector<int32_t> sampled;
    // Warm-up to the steady state.
    for (size_t i = 0; i < kNew * 2; ++i) {
        s.step(plan);
        sampled.assign(plan.entries.size(), 7);
        s.commit(plan, sampled, {});
        for (uint64_t id : plan.finished) {
            s.drop_output(id);
            submit(kNew);
        }
    }
    uint64_t sequences = 0;
    for (auto _ : state) {
        s.step(plan);
        sampled.assign(plan.entries.size(), 7);
        s.commit(plan, sampled, {});
        for (uint64_t id : plan.finished) {
            s.drop_output(id);
            submit(kNew);
        }
        sequences += plan.entries.size();
    }
    state.SetItemsProcessed(static_cast<int64_t>(sequences));
    state.counters["batch"] = benchmark::Counter(double(sequences) / double(state.iterations()));
}

void BM_PoolCallsAlone(benchmark::State& state) {
    const size_t batch = static_cast<size_t>(state.range(0));
    Pool pool(pool_config(batch));
    SequenceOptions options;
    options.defer_caching = true;
    uint64_t next_id = 0;
    struct Seq {
        SequenceId id;
        size_t computed;
    };
    std::vector<Seq> seqs;
    auto start = [&](size_t computed_offset) {
        const auto p = prompt(next_id++);
        const SequenceId id = pool.create_sequence(p, options);
        pool.allocate(id, p.size());
        pool.commit(id, p.size());
        const int32_t t = 7;
        pool.append(id, std::span<const int32_t>(&t, 1));
        return Seq{id, kPrompt + computed_offset};
    };
    for (size_t i = 0; i < batch; ++i) seqs.push_back(start(0));
    // Staggered like the scheduler's steady state.
    for (size_t i = 0; i < batch; ++i) {
        for (size_t k = 0; k < i % kNew; ++k) {
            const int32_t t = 7;
            pool.append(seqs[i].id, std::span<const int32_t>(&t, 1));
            ++seqs[i].computed;
        }
    }
    std::vector<int64_t> slots(batch);
    std::vector<int32_t> blocks;
    uint64_t sequences = 0;
    for (auto _ : state) {
        blocks.clear();
        size_t reserve = 0;
        for (size_t i = 0; i < batch; ++i) {
            Seq& q = seqs[i];
            reserve += pool.blocks_needed(q.id, q.computed + 2);
            pool.slot_mapping(q.id, q.computed, std::span<int64_t>(slots).subspan(i, 1));
            const auto table = pool.block_table(q.id);
            blocks.insert(blocks.end(), table.begin(), table.end());
        }
        benchmark::DoNotOptimize(reserve);
        benchmark::DoNotOptimize(pool.counters().free_blocks);
        for (size_t i = 0; i < batch; ++i) {
            Seq& q = seqs[i];
            ++q.computed;
            pool.commit(q.id, q.computed);
            if (q.computed - kPrompt + 1 >= kNew) {
                pool.free_sequence(q.id);
                q = start(0);
            } else {
                const int32_t t = 7;
                pool.append(q.id, std::span<const int32_t>(&t, 1));
            }
        }
        sequences += batch;
    }
    state.SetItemsProcessed(static_cast<int64_t>(sequences));
}

BENCHMARK(BM_SchedStepCommit)->Arg(64)->Arg(256);
BENCHMARK(BM_PoolCallsAlone)->Arg(64)->Arg(256);

}  // namespace

BENCHMARK_MAIN();
