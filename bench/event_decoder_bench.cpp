// SPDX-License-Identifier: Apache-2.0
// Decode throughput of kvcore::index::decode_event_batch on a realistic batch: 16 BlockStored events of
// 4 blocks x 16 tokens (a prompt's worth of new blocks, as one engine step publishes them), written by
// kvcore's pool encoder (vLLM's byte layout) with tagged-array events and with map events. Baseline in
// the same run: msgpack-c's unpack of the same bytes into its object tree (msgpack::unpack, which
// allocates the tree in a zone), before any conversion to typed events, i.e. less work than decoding.
#include <benchmark/benchmark.h>

#include <msgpack.hpp>
#include <vector>

#include "index/event_decoder.h"
#include "pool/events.h"

namespace {

using kvcore::pool::EventEncoding;
using kvcore::pool::KvEvent;

constexpr int kEvents = 16;
constexpr uint32_t kBlocksPerEvent = 4;
constexpr uint32_t kBlockSize = 16;

std::vector<uint8_t> batch(EventEncoding encoding) {
    kvcore::pool::EventLog log(true, "GPU", 1024, 0);
    uint64_t hash = 0x9e3779b97f4a7c15ULL;
    int32_t token = 1000;
    for (int e = 0; e < kEvents; ++e) {
        KvEvent event{.kind = KvEvent::Kind::kBlockStored, .block_size = kBlockSize};
        event.parent_block_hash = hash;
        for (uint32_t b = 0; b < kBlocksPerEvent; ++b) {
            hash = hash * 6364136223846793005ULL + 1442695040888963407ULL;  // full 64-bit hashes, as vLLM's
            event.block_hashes.push_back(hash);
        }
        for (uint32_t t = 0; t < kBlocksPerEvent * kBlockSize; ++t) event.token_ids.push_back(token++ % 150000);
        log.push(std::move(event));
    }
    return log.encode(encoding, 1700000000.25);
}

void set_rates(benchmark::State& state, size_t bytes) {
    const auto iterations = static_cast<double>(state.iterations());
    state.counters["events/s"] = benchmark::Counter(iterations * kEvents, benchmark::Counter::kIsRate);
    state.counters["blocks/s"] =
        benchmark::Counter(iterations * kEvents * kBlocksPerEvent, benchmark::Counter::kIsRate);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

void BM_Decode(benchmark::State& state) {
    const std::vector<uint8_t> bytes = batch(static_cast<EventEncoding>(state.range(0)));
    for (auto _ : state) {
        kvcore::index::EventBatch decoded = kvcore::index::decode_event_batch(bytes);
        benchmark::DoNotOptimize(decoded);
    }
    set_rates(state, bytes.size());
}

void BM_Baseline_MsgpackCUnpack(benchmark::State& state) {
    const std::vector<uint8_t> bytes = batch(static_cast<EventEncoding>(state.range(0)));
    for (auto _ : state) {
        msgpack::object_handle oh = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        benchmark::DoNotOptimize(oh.get());
    }
    set_rates(state, bytes.size());
}

// 0: tagged-array events (vLLM until mid-2026), 1: map events (current vLLM).
BENCHMARK(BM_Decode)->ArgName("map")->Arg(0)->Arg(1);
BENCHMARK(BM_Baseline_MsgpackCUnpack)->ArgName("map")->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
