/* SPDX-License-Identifier: Apache-2.0 */
// The continuous-batching scheduler over one paged block pool (vLLM's scheduler, SGLang's cache-aware
// ordering). Each step forms a batch: running decodes first, then chunks of prefill of running requests,
// then new admissions, under a sequence budget, a token budget and the pool's free blocks (a cached
// prefix counts as free). commit() takes the sampled tokens, appends them (the slot of the next decode)
// and finishes requests. When a decode cannot get a block, the least important running request (lowest
// priority, newest among equals) is preempted by recompute: its blocks are freed and it is requeued
// with its generated tokens appended to its prompt.
//
// Blocks the commit will take (the appends of requests that sample and go on) are reserved by the step,
// so commit never runs out of blocks as long as nothing else allocates from the pool in between.
//
// Pool sequences use defer_caching: a block enters the prefix cache at commit, once the embedder has
// computed its K/V, so no request ever hits a block whose K/V are not written yet.
//
// Not thread-safe: one thread (the engine loop) calls everything, submit and cancel included.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "pool/pool.h"
#include "stats/snapshot.h"

namespace kvcore::sched {

enum class Policy : uint32_t { kFifo = 0, kPriority = 1, kCacheAware = 2 };
enum class Preemption : uint32_t { kRecompute = 0, kSwap = 1 };
enum class FinishReason : uint32_t { kStop = 0, kLength = 1, kCapacity = 2 };

struct SchedConfig {
    uint32_t max_batch_sequences = 256;
    uint32_t max_batch_tokens = 8192;
    uint64_t max_wait_ns = 0;  // how long a lone request waits for company while nothing runs
    uint32_t max_queue = 4096;  // waiting requests (preempted ones are requeued regardless)
    Policy policy = Policy::kFifo;
    uint64_t wait_bound_ns = 1'000'000'000;  // cache-aware: waited longer, goes first in arrival order
    Preemption preemption = Preemption::kRecompute;
    uint64_t seed = 0;  // order among equals: 0 arrival order, otherwise a permutation seeded by it
    bool manual_clock = false;  // time moves only by set_time (tests, replays): no wall-clock dependence

    void validate() const;  // throws kvcore::Error naming the bad field
};

// One scheduled sequence of a plan; its arrays live in the plan's flat vectors at [begin, begin + n).
struct PlanEntry {
    uint64_t request_id = 0;
    size_t num_computed = 0;  // tokens with K/V before this step; positions start here
    size_t num_tokens = 0;    // tokens to compute now (a prefill chunk, or 1 for a decode)
    bool samples = false;     // the step yields logits to sample (last prefill chunk, decode)
    size_t token_begin = 0;   // into tokens, positions and slots
    size_t block_begin = 0, num_blocks = 0;  // into blocks
};

struct Plan {
    const void* owner = nullptr;  // the scheduler that made it
    uint64_t step = 0;            // which step; commit checks it
    std::vector<PlanEntry> entries;
    std::vector<int32_t> tokens;
    std::vector<int64_t> positions, slots;
    std::vector<int32_t> blocks;
    std::vector<uint64_t> preempted;  // requests requeued by this step
    std::vector<uint64_t> finished;   // requests its commit finished

    void clear() noexcept;
};

struct SubmitArgs {
    uint64_t request_id = 0;
    std::vector<int32_t> prompt;
    uint32_t max_new_tokens = 1;
    uint32_t priority = 0;  // higher goes first (priority policy) and is preempted last
    std::string session;
    pool::SequenceOptions options;  // extra keys for block hashing, retention
};

struct SchedCounters {
    uint64_t submitted = 0, rejected = 0, admitted = 0, finished = 0, cancelled = 0, preemptions = 0;
    uint64_t steps = 0, scheduled_sequences = 0, scheduled_tokens = 0;
    uint64_t memory_stalls = 0;  // steps whose next admission did not fit in the free blocks
    uint64_t wait_ns = 0, waits = 0;                // queue time of every admission
    uint64_t first_step_ns = 0, first_steps = 0;    // submit to first scheduled step
    uint64_t prompt_tokens = 0, cached_tokens = 0;  // at admission
};

class Scheduler {
public:
    // The pool must outlive the scheduler; nothing else may allocate from it between step and commit.
    Scheduler(SchedConfig config, pool::Pool& pool);
    ~Scheduler();  // frees its requests' pool sequences
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // KVC_ERR_QUEUE_FULL with max_queue waiting; KVC_ERR_INVALID_ARGUMENT for a known id, an empty
    // prompt, max_new_tokens 0 or a prompt larger than the pool.
    void submit(SubmitArgs args);
    // A waiting or running request; its blocks are freed at once, or at the commit of the pending plan
    // holding it. KVC_ERR_NOT_FOUND for an unknown id, KVC_ERR_INVALID_STATE for a finished one.
    void cancel(uint64_t request_id);
    // The next batch into plan (cleared first). KVC_ERR_INVALID_STATE while a non-empty plan awaits commit.
    void step(Plan& plan);
    // sampled[i] for entries that sample (others ignored); finished[i] != 0 stops a sampling entry's request
    // after its token. Appends, finishes (plan.finished) and clears the pending plan.
    void commit(Plan& plan, std::span<const int32_t> sampled, std::span<const uint8_t> finished);
    // A finished request's generated tokens (valid until it is dropped or the scheduler changes), why it
    // ended, and its session. KVC_ERR_NOT_FOUND for an unknown id, KVC_ERR_INVALID_STATE before it finishes.
    [[nodiscard]] std::span<const int32_t> output(uint64_t request_id, FinishReason* reason = nullptr,
                                                  const std::string** session = nullptr) const;
    // Forgets a finished request (its output is read): its id may be submitted again.
    void drop_output(uint64_t request_id);

    void set_time(uint64_t now_ns);  // manual clock only; never backwards
    [[nodiscard]] uint64_t now_ns() const noexcept;

    [[nodiscard]] size_t num_waiting() const noexcept { return waiting_.size(); }
    [[nodiscard]] size_t num_running() const noexcept { return running_.size(); }
    [[nodiscard]] size_t num_outputs() const noexcept { return outputs_; }
    [[nodiscard]] const SchedCounters& counters() const noexcept { return counters_; }
    [[nodiscard]] stats::Snapshot snapshot() const;
    [[nodiscard]] const SchedConfig& config() const noexcept { return config_; }

private:
    enum class State : uint8_t { kWaiting, kRunning, kFinished };
    struct Request {
        uint64_t id = 0;
        std::vector<int32_t> tokens;  // prompt, then the generated tokens
        size_t prompt_len = 0;
        uint32_t max_new_tokens = 0, priority = 0;
        std::string session;
        pool::SequenceOptions options;
        uint64_t arrival = 0;  // submit order
        uint64_t tie = 0;      // order among equals (seeded)
        uint64_t submit_ns = 0, enqueue_ns = 0;
        bool started = false;  // scheduled at least once (time to first step counted)
        State state = State::kWaiting;
        pool::SequenceId seq = 0;
        size_t prefill_len = 0;  // tokens the pool sequence was created with (prompt, or all after preemption)
        size_t computed = 0;     // tokens whose K/V are computed
        bool in_plan = false, cancelled = false;
        FinishReason reason = FinishReason::kStop;
        size_t cached = 0;  // cache-aware ordering: cached prefix tokens this step
        [[nodiscard]] size_t generated() const noexcept { return tokens.size() - prompt_len; }
    };

    // Running requests are kept in this order: higher priority first, older first.
    static bool more_important(const Request* a, const Request* b) noexcept;
    // Whether a request that samples now goes on (its token then needs a slot).
    [[nodiscard]] bool continues_after_sample(const Request& r) const noexcept;
    // Schedules n tokens of r (allocating their slots) and reserves the commit's append.
    void schedule(Request& r, size_t n, Plan& plan, size_t& reserve);
    // Requeues r (recompute): a fresh pool sequence over all its tokens.
    void preempt(size_t running_index, Plan& plan);
    [[nodiscard]] size_t available_blocks(size_t reserve) const;
    // The least important running request after `after` that the plan does not hold; SIZE_MAX if none.
    [[nodiscard]] size_t pick_victim(size_t after) const;
    void order_waiting(std::vector<Request*>& order, uint64_t now);
    void admit(Plan& plan, size_t& seq_budget, size_t& token_budget, size_t& reserve, uint64_t now);
    void finish(Request& r, FinishReason reason, Plan& plan);
    void forget(Request& r);  // frees its pool sequence and drops it
    void remove_waiting(Request* r);

    SchedConfig config_;
    pool::Pool& pool_;
    size_t usable_tokens_;  // tokens the whole pool holds
    std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;
    std::vector<Request*> waiting_;  // arrival order of enqueueing
    std::vector<Request*> running_;  // more_important order
    std::vector<Request*> order_;    // scratch for admission
    uint64_t arrivals_ = 0;
    uint64_t steps_ = 0;
    uint64_t pending_step_ = 0;  // the step awaiting commit, 0 when none
    uint64_t manual_now_ = 0;
    uint64_t clock_zero_ = 0;
    size_t outputs_ = 0;
    SchedCounters counters_;
};

}  // namespace kvcore::sched
