// SPDX-License-Identifier: Apache-2.0
// The scheduler's cost per scheduled sequence: step() + commit() at a steady batch of 64 and 256 running
// requests (32-token prompts, 64 new tokens each; a finished request is replaced at once), against an
// anchor in the same run: the pool calls such a step makes for the same sequences, alone (the block
// check, slot mapping, block table copy, cache commit and append of each decode; free, create and
// prompt allocation for each replaced request).
// And the session store's restore at admission (a conversation's K/V copied from the store into new pool
// blocks) against a memcpy of the same bytes in the same run.
#include <benchmark/benchmark.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "pool/pool.h"
#include "sched/scheduler.h"
#include "store/store.h"

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
    // One engine step: the batch, a token for each, finished requests replaced. Returns the batch size.
    const auto engine_step = [&] {
        s.step(plan);
        sampled.assign(plan.entries.size(), 7);
        s.commit(plan, sampled, {});
        for (uint64_t id : plan.finished) {
            s.drop_output(id);
            submit(kNew);
        }
        return plan.entries.size();
    };
    for (size_t i = 0; i < kNew * 2; ++i) (void)engine_step();  // warm-up to the steady state
    uint64_t sequences = 0;
    for (auto _ : state) sequences += engine_step();
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

// The larger reference shape (12 layers, 12 KV heads of 64) in F16: 36 KiB of K/V per token.
constexpr uint32_t kLayers = 12, kHeads = 12, kHeadDim = 64;
constexpr size_t kRowBytes = size_t{kHeads} * kHeadDim * 2;

// One admission that restores `tokens` tokens from the store (then cancelled, so its blocks never enter
// the prefix cache and the next admission restores again).
void BM_SchedStoreRestore(benchmark::State& state) {
    const size_t tokens = static_cast<size_t>(state.range(0));
    PoolConfig pc;
    pc.block_size = 16;
    pc.num_blocks = static_cast<uint32_t>(tokens / 16 + 4);
    pc.layers = kLayers;
    pc.kv_heads = kHeads;
    pc.head_dim = kHeadDim;
    pc.dtype = kvcore::pool::DType::kF16;
    pc.memory = kvcore::pool::Memory::kHost;
    pc.statistics = false;
    Pool pool(pc);
    kvcore::store::StoreConfig sc;
    sc.max_bytes_total = uint64_t{2} * tokens * kLayers * 2 * kRowBytes;
    auto store = kvcore::store::Store::create(sc);
    std::vector<int32_t> prompt(tokens + 1);
    std::iota(prompt.begin(), prompt.end(), 1);
    {
        const kvcore::store::Shape shape{kLayers, kHeads, kHeadDim, kvcore::pool::DType::kF16};
        kvcore::store::Lease lease = store->get_or_create("chat", shape, 0, nullptr);
        store->begin_turn(*lease.session, std::span<const int32_t>(prompt).first(tokens));
        std::vector<uint8_t> rows(tokens * kRowBytes, 0x5a);
        for (uint32_t layer = 0; layer < kLayers; ++layer) {
            store->write_kv(*lease.session, layer, 0, tokens, rows.data(), rows.data());
        }
        store->commit(*lease.session);
        store->release(lease.session);
    }
    sched::SchedConfig c;
    c.manual_clock = true;
    sched::Scheduler s(c, pool);
    s.set_session_store(store);
    sched::Plan plan;
    const std::vector<int32_t> sampled = {7};
    uint64_t id = 0;
    for (auto _ : state) {
        sched::SubmitArgs a;
        a.request_id = ++id;
        a.prompt = prompt;
        a.session = "chat";
        s.submit(std::move(a));
        s.step(plan);
        if (plan.entries.size() != 1 || plan.entries[0].num_computed != tokens) {
            state.SkipWithError("the admission did not restore the conversation");
            break;
        }
        s.cancel(id);
        s.commit(plan, sampled, {});
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * tokens * kLayers * 2 * kRowBytes));
}

// The anchor: the same bytes copied by one memcpy between two buffers of the same size.
void BM_MemcpySameBytes(benchmark::State& state) {
    const size_t bytes = static_cast<size_t>(state.range(0)) * kLayers * 2 * kRowBytes;
    std::vector<uint8_t> from(bytes, 0x5a), to(bytes, 0);
    for (auto _ : state) {
        std::memcpy(to.data(), from.data(), bytes);
        benchmark::DoNotOptimize(to.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

BENCHMARK(BM_SchedStepCommit)->Arg(64)->Arg(256);
BENCHMARK(BM_PoolCallsAlone)->Arg(64)->Arg(256);
BENCHMARK(BM_SchedStoreRestore)->Arg(512)->Arg(2048);
BENCHMARK(BM_MemcpySameBytes)->Arg(512)->Arg(2048);

}  // namespace

BENCHMARK_MAIN();
