// SPDX-License-Identifier: Apache-2.0
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "capi_calls.h"

namespace kvcore::cli {
namespace {

// Without a decoder: a token that depends only on the request and its position, as sampling would.
int32_t synthetic_token(uint64_t id, uint64_t position) {
    uint64_t x = id * 0x9E3779B97F4A7C15ull + position * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    return static_cast<int32_t>((x >> 33) % 50000);
}

}  // namespace

double quantile(std::vector<double> values, double q) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    return values[std::min(values.size() - 1, size_t(q * double(values.size() - 1) + 0.5))];
}

Replica::Replica(const ReplicaConfig& config) : config_(config) {
    const bool with_model =
#ifdef KVCORE_CLI_WITH_MODEL
        config.model.has_value();
#else
        false;
#endif
    Owned<kvc_pool_options, kvc_pool_options_destroy> owned_po;
    require_ok(kvc_pool_options_create(&owned_po.p), "pool options");
    kvc_pool_options* const po = owned_po.p;
    require_ok(kvc_pool_options_set_num_blocks(po, config.num_blocks), "pool blocks");
    require_ok(kvc_pool_options_set_block_size(po, config.block_size), "pool block size");
    require_ok(kvc_pool_options_set_hash(po, config.hash, "42"), "pool hash");
    if (config.tune_pool) config.tune_pool(po);
    if (config.publish_events) require_ok(kvc_pool_options_set_events(po, 1, "GPU", 1u << 20), "pool events");
#ifdef KVCORE_CLI_WITH_MODEL
    if (with_model) {
        const model::Config& m = *config.model;
        require_ok(kvc_pool_options_set_model_shape(po, m.layers, m.heads, m.head_dim(), KVC_DTYPE_F32), "pool shape");
        require_ok(kvc_pool_options_set_memory(po, KVC_MEMORY_HOST), "pool memory");
    }
#endif
    require_ok(kvc_pool_create(po, &pool_), "pool");
    try {
        Owned<kvc_sched_options, kvc_sched_options_destroy> owned_so;
        require_ok(kvc_sched_options_create(&owned_so.p), "scheduler options");
        kvc_sched_options* const so = owned_so.p;
        require_ok(kvc_sched_options_set_max_batch_sequences(so, config.max_batch_sequences), "max batch sequences");
        require_ok(kvc_sched_options_set_max_batch_tokens(so, config.max_batch_tokens), "max batch tokens");
        require_ok(kvc_sched_options_set_max_queue(so, config.max_queue), "max queue");
        require_ok(kvc_sched_options_set_policy(so, config.policy, 1000000), "scheduling policy");
        // The replica's time is its own steps' time, not the wall clock: the driver sets it.
        require_ok(kvc_sched_options_set_manual_clock(so, 1), "manual clock");
        require_ok(kvc_sched_create(so, pool_, &sched_), "scheduler");
        require_ok(kvc_sched_plan_create(&plan_), "plan");
        if (config.store_bytes > 0 && with_model) {
            Owned<kvc_store_options, kvc_store_options_destroy> owned_st;
            require_ok(kvc_store_options_create(&owned_st.p), "store options");
            kvc_store_options* const st = owned_st.p;
            require_ok(kvc_store_options_set_max_bytes_total(st, config.store_bytes), "store bytes");
            require_ok(kvc_store_options_set_block_size(st, config.block_size), "store block size");
            require_ok(kvc_store_options_set_max_tokens_per_session(st, 1u << 20), "store session tokens");
            require_ok(kvc_store_create(st, &store_), "session store");
            require_ok(kvc_sched_set_session_store(sched_, store_), "attaching the session store");
        }
        if (config.publish_events) {
            Owned<kvc_event_publisher_options, kvc_event_publisher_options_destroy> owned_eo;
            require_ok(kvc_event_publisher_options_create(&owned_eo.p), "publisher options");
            kvc_event_publisher_options* const eo = owned_eo.p;
            const std::string topic = read_text(
                [&](char* b, size_t c, size_t* l) {
                    return kvc_event_publisher_topic(config.pod.c_str(), config.model_name.c_str(), b, c, l);
                },
                "topic");
            require_ok(kvc_event_publisher_options_set_topic(eo, topic.c_str()), "topic");
            require_ok(kvc_event_publisher_options_set_endpoint(eo, "tcp://127.0.0.1:0", 0), "PUB endpoint");
            require_ok(kvc_event_publisher_options_set_replay_endpoint(eo, "tcp://127.0.0.1:0"), "replay endpoint");
            require_ok(kvc_event_publisher_create(eo, &publisher_), "event publisher");
        }
#ifdef KVCORE_CLI_WITH_MODEL
        if (with_model) {
            model::KvMemory memory;
            require_ok(kvc_pool_storage(pool_, &memory.base, &memory.bytes_per_block), "pool storage");
            memory.num_blocks = config.num_blocks;
            memory.block_size = config.block_size;
            model_ = std::make_unique<model::Model>(*config.model, memory);
        }
#endif
    } catch (...) {
        release();
        throw;
    }
}

Replica::~Replica() { release(); }

void Replica::set_time(double seconds) {
    require_ok(kvc_sched_set_time_us(sched_, static_cast<uint64_t>(seconds * 1e6)), "scheduler clock");
}

void Replica::release() noexcept {
    kvc_event_publisher_destroy(publisher_);
    kvc_sched_plan_destroy(plan_);
    kvc_sched_destroy(sched_);  // before its pool and store
    kvc_store_destroy(store_);
    kvc_pool_destroy(pool_);
    publisher_ = nullptr, plan_ = nullptr, sched_ = nullptr, store_ = nullptr, pool_ = nullptr;
}

kvc_status Replica::submit(uint64_t request_id, std::span<const int32_t> prompt, uint32_t max_new_tokens,
                           const std::string& session) {
    const kvc_status status = kvc_sched_submit(sched_, request_id, prompt.data(), prompt.size(), max_new_tokens, 0,
                                               session.c_str(), nullptr);
#ifdef KVCORE_CLI_WITH_MODEL
    if (status == KVC_OK && model_) {
        model::Sampling s = config_.sampling;
        s.seed ^= request_id * 0x9E3779B97F4A7C15ull;
        samplers_.insert_or_assign(request_id, model::Sampler(s));
    }
#endif
    if (status == KVC_OK) generated_[request_id] = 0;
    return status;
}

StepReport Replica::step() {
    StepReport report;
    const auto start = std::chrono::steady_clock::now();  // the step's whole cost: scheduling, forward, commit
    require_ok(kvc_sched_step(sched_, plan_), "scheduler step");
    const size_t n = kvc_sched_plan_count(plan_);
    report.sequences = n;
    report.tokens = kvc_sched_plan_num_tokens(plan_);
    if (n == 0) return report;
    if (entries_.size() < n) entries_.resize(n);
    block_seen_.resize(config_.num_blocks, 0);
    if (++step_number_ == 0) std::fill(block_seen_.begin(), block_seen_.end(), 0), step_number_ = 1;
    for (size_t i = 0; i < n; ++i) {
        Entry& e = entries_[i];
        require_ok(kvc_sched_plan_sequence(plan_, i, &e.id, &e.num_tokens, &e.num_computed, &e.samples), "plan entry");
        read_array(e.tokens, [&](int32_t* b, size_t c, size_t* k) { return kvc_sched_plan_tokens(plan_, i, b, c, k); },
                   "plan tokens");
        read_array(e.slots, [&](int64_t* b, size_t c, size_t* k) { return kvc_sched_plan_slots(plan_, i, b, c, k); },
                   "plan slots");
        read_array(e.table,
                   [&](int32_t* b, size_t c, size_t* k) { return kvc_sched_plan_block_table(plan_, i, b, c, k); },
                   "plan block table");
        for (const int32_t b : e.table) {
            if (block_seen_[size_t(b)] != step_number_) block_seen_[size_t(b)] = step_number_, ++report.distinct_blocks;
        }
        report.attended_tokens += e.num_computed + e.num_tokens;
    }

    sampled_.assign(n, 0);
    finished_.assign(n, 0);
    forward(report);
    for (size_t i = 0; i < n; ++i) {
        const Entry& e = entries_[i];
        if (!e.samples) continue;
        ++report.sampled;
        if (generated_[e.id]++ == 0) report.first_tokens.push_back(e.id);
    }
    require_ok(kvc_sched_commit(sched_, plan_, sampled_.data(), n, finished_.data(), n), "commit");
    const double measured = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool computed = has_model();
    report.seconds = computed ? measured : config_.cost.step_seconds + config_.cost.token_seconds * double(report.tokens);

    read_array(ids_, [&](uint64_t* b, size_t c, size_t* k) { return kvc_sched_plan_finished(plan_, b, c, k); },
               "finished requests");
    report.finished = ids_;
    if (publisher_ != nullptr) {
        require_ok(kvc_event_publisher_publish_pool(publisher_, pool_, KVC_EVENTS_MAP, nullptr, nullptr), "publishing events");
    }
    return report;
}

bool Replica::has_model() const {
#ifdef KVCORE_CLI_WITH_MODEL
    return model_ != nullptr;
#else
    return false;
#endif
}

void Replica::forward(StepReport& report) {
    const size_t n = report.sequences;
#ifdef KVCORE_CLI_WITH_MODEL
    if (model_) {
        std::vector<model::SequenceStep> batch(n);
        for (size_t i = 0; i < n; ++i) {
            const Entry& e = entries_[i];
            batch[i] = {.tokens = e.tokens,
                        .start = static_cast<uint32_t>(e.num_computed),
                        .slots = e.slots,
                        .block_table = e.table};
        }
        model_->forward(batch, logits_);
        const uint32_t vocab = model_->config().vocab;
        for (size_t i = 0; i < n; ++i) {
            const Entry& e = entries_[i];
            if (!e.samples) continue;
            sampled_[i] = samplers_.at(e.id).next(std::span<const float>(logits_.data() + i * vocab, vocab));
        }
        return;
    }
#endif
    for (size_t i = 0; i < n; ++i) {
        const Entry& e = entries_[i];
        if (e.samples) sampled_[i] = synthetic_token(e.id, e.num_computed + e.num_tokens);
    }
}

std::vector<int32_t> Replica::take_output(uint64_t request_id) {
    std::vector<int32_t> tokens;
    read_array(
        tokens, [&](int32_t* b, size_t c, size_t* k) { return kvc_sched_take_output(sched_, request_id, b, c, k, nullptr); },
        "output");
    generated_.erase(request_id);
#ifdef KVCORE_CLI_WITH_MODEL
    samplers_.erase(request_id);
#endif
    return tokens;
}

std::string Replica::endpoint() const {
    if (publisher_ == nullptr) return {};
    return read_text([&](char* b, size_t c, size_t* l) { return kvc_event_publisher_endpoint(publisher_, b, c, l); },
                     "PUB endpoint");
}

std::string Replica::replay_endpoint() const {
    if (publisher_ == nullptr) return {};
    return read_text(
        [&](char* b, size_t c, size_t* l) { return kvc_event_publisher_replay_endpoint(publisher_, b, c, l); },
        "replay endpoint");
}

uint64_t Replica::published() const {
    uint64_t value = 0;
    if (publisher_ != nullptr) require_ok(kvc_event_publisher_counters(publisher_, &value, 1, nullptr), "publisher counters");
    return value;
}

void Replica::publish_probe() {
    // msgpack [0.0, [], 0]: vLLM's EventBatch with no events.
    static const uint8_t kEmptyBatch[] = {0x93, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0x90, 0x00};
    require_ok(kvc_event_publisher_publish(publisher_, kEmptyBatch, sizeof kEmptyBatch, nullptr), "probe");
}

}  // namespace kvcore::cli
