// SPDX-License-Identifier: Apache-2.0
// One serving replica as `kvcore demo` and `kvcore simulate` run it, built only from kvcore's public C API
// plus the reference decoder: a paged pool, a continuous-batching scheduler over it, optionally the decoder
// computing real K/V and tokens in the pool's memory, a session store under the pool, and a ZeroMQ
// publisher of the pool's KV events. Not thread-safe: one thread drives a replica.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "kvcore/kvcore.h"
#ifdef KVCORE_CLI_WITH_MODEL
#include "model/model.h"
#include "model/sampler.h"
#endif

namespace kvcore::cli {

// Seconds a step would take on the hardware being simulated, when no decoder computes it.
struct StepCost {
    double step_seconds = 0.010;       // fixed cost of a step (launches, sampling, the scheduler)
    double token_seconds = 0.000060;   // per token computed (prefill and decode alike)
};

struct ReplicaConfig {
    std::string pod;                 // the name the index knows it by ("replica-0")
    std::string model_name = "kvcore-reference";
    uint32_t num_blocks = 256;
    uint32_t block_size = 16;
    kvc_hash_algo hash = KVC_HASH_SHA256_CBOR;  // seeded "42"
    std::function<void(kvc_pool_options*)> tune_pool;  // more pool options (an eviction policy); may be empty
    uint32_t max_batch_sequences = 16;
    uint32_t max_batch_tokens = 512;
    uint32_t max_queue = 4096;       // waiting requests; submit beyond it is KVC_ERR_QUEUE_FULL
    kvc_sched_policy policy = KVC_SCHED_FIFO;
    bool publish_events = false;     // a PUB socket on 127.0.0.1 (a free port) with a replay ROUTER
    uint64_t store_bytes = 0;        // a session store of that many bytes under the pool (0: none)
#ifdef KVCORE_CLI_WITH_MODEL
    std::optional<model::Config> model;  // the decoder; none: synthetic tokens, time from `cost`
    model::Sampling sampling{.temperature = 0.8f, .top_k = 40, .seed = 0};  // seed: xor'ed with the request id
#endif
    StepCost cost;
};

// What one step did.
struct StepReport {
    size_t sequences = 0, tokens = 0, sampled = 0;
    double seconds = 0;                 // measured (decoder) or modeled (cost)
    std::vector<uint64_t> first_tokens;  // requests that got their first token in this step
    std::vector<uint64_t> finished;      // their outputs wait in take_output
    uint64_t distinct_blocks = 0;        // blocks the step's sequences attend (shared ones once)
    uint64_t attended_tokens = 0;        // tokens they attend, all sequences together
};

// The q-quantile (nearest rank) of measured values, such as times to first token; 0 for none.
[[nodiscard]] double quantile(std::vector<double> values, double q);

class Replica {
public:
    // Throws kvcore::Error naming the failed call.
    explicit Replica(const ReplicaConfig& config);
    ~Replica();
    Replica(const Replica&) = delete;
    Replica& operator=(const Replica&) = delete;

    // kvc_sched_submit's status (KVC_ERR_QUEUE_FULL among them); the session id may be "".
    kvc_status submit(uint64_t request_id, std::span<const int32_t> prompt, uint32_t max_new_tokens,
                      const std::string& session);
    // One scheduler step, the forward pass over its batch, the commit, the events published. Throws
    // kvcore::Error on a failed call.
    StepReport step();
    // The scheduler's clock (its waits and times to first step): a replica's time is its own steps' time,
    // which the driver advances, never the wall clock. Never backwards.
    void set_time(double seconds);
    // A finished request's generated tokens (forgotten afterwards).
    std::vector<int32_t> take_output(uint64_t request_id);

    [[nodiscard]] uint64_t load() const { return kvc_sched_num_waiting(sched_) + kvc_sched_num_running(sched_); }
    [[nodiscard]] bool idle() const { return load() == 0; }
    [[nodiscard]] const std::string& pod() const { return config_.pod; }
    [[nodiscard]] kvc_pool* pool() const { return pool_; }
    [[nodiscard]] kvc_sched* sched() const { return sched_; }
    [[nodiscard]] kvc_store* store() const { return store_; }
    [[nodiscard]] kvc_event_publisher* publisher() const { return publisher_; }
    [[nodiscard]] std::string endpoint() const;         // the PUB endpoint ("" without events)
    [[nodiscard]] std::string replay_endpoint() const;  // the replay ROUTER's
    [[nodiscard]] uint64_t published() const;           // batches published so far
    // Sends an empty EventBatch: how a subscriber's connection is confirmed before real traffic.
    void publish_probe();

private:
    void forward(StepReport& report);
    [[nodiscard]] bool has_model() const;  // the decoder computes the steps (else: synthetic tokens, cost model)
    void release() noexcept;  // the C handles, also when the constructor fails

    ReplicaConfig config_;
    kvc_pool* pool_ = nullptr;
    kvc_store* store_ = nullptr;
    kvc_sched* sched_ = nullptr;
    kvc_sched_plan* plan_ = nullptr;
    kvc_event_publisher* publisher_ = nullptr;
#ifdef KVCORE_CLI_WITH_MODEL
    std::unique_ptr<model::Model> model_;
    std::unordered_map<uint64_t, model::Sampler> samplers_;
    std::vector<float> logits_;
#endif
    std::unordered_map<uint64_t, uint32_t> generated_;  // tokens sampled so far per running request
    // Scratch of the plan's arrays, per entry, reused across steps.
    struct Entry {
        uint64_t id = 0;
        size_t num_tokens = 0, num_computed = 0;
        uint32_t samples = 0;
        std::vector<int32_t> tokens, table;
        std::vector<int64_t> slots;
    };
    std::vector<Entry> entries_;
    std::vector<int32_t> sampled_;
    std::vector<uint8_t> finished_;
    std::vector<uint64_t> ids_;
    std::vector<uint32_t> block_seen_;  // per block: the step that last counted it
    uint32_t step_number_ = 0;
};

}  // namespace kvcore::cli
