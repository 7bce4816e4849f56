/* SPDX-License-Identifier: Apache-2.0 */
// The continuous-batching scheduler over one paged block pool (vLLM's scheduler, SGLang's cache-aware
// ordering). Each step forms a batch: running decodes first, then chunks of prefill of running requests,
// then new admissions, under a sequence budget, a token budget and the pool's free blocks (a cached
// prefix counts as free). commit() takes the sampled tokens, appends them (the slot of the next decode)
// and finishes requests. When a decode cannot get a block, the least important running request (lowest
// priority, newest among equals) is preempted: its blocks are freed and it is requeued with its generated
// tokens appended to its prompt; by recompute its K/V are computed again, by swap they are saved to the
// session store first and copied back at re-admission.
//
// The session store (optional, set_session_store) is the host tier under the pool: a finished request
// with a session id saves its conversation's K/V into the store session of that id, and an admission
// copies from the store the computed prefix that the pool's prefix cache no longer holds. Store calls are
// thread-safe, so several schedulers (engine replicas, each on its own thread) may share one store.
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
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/pool.h"
#include "stats/snapshot.h"
#include "store/store.h"

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
    // The session store: tokens whose K/V were copied into sessions at finish / out of them at admission,
    // finishes whose save the store refused (capacity, another model's session under the id).
    uint64_t store_saved_tokens = 0, store_restored_tokens = 0, store_save_failures = 0;
    // Swap preemption: computed tokens saved at preemption, tokens copied back at re-admission, and
    // preemptions that fell back to recompute because the store refused the save.
    uint64_t swapped_out_tokens = 0, swapped_in_tokens = 0, swap_failures = 0;
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

    // The session store under the pool (nullptr detaches it). Only while no request waits or runs
    // (KVC_ERR_INVALID_STATE). The pool must hold its K/V in host memory with full attention and a type
    // other than INT8 (whose scales the store does not carry), the store host memory
    // (KVC_ERR_INVALID_ARGUMENT / KVC_ERR_UNSUPPORTED otherwise).
    void set_session_store(std::shared_ptr<store::Store> store);
    [[nodiscard]] const std::shared_ptr<store::Store>& session_store() const noexcept { return store_; }
    // The store session a swapped-out request's K/V go to: kSwapSessionPrefix, this scheduler's number
    // in the process, '/', the request id (unique among schedulers sharing a store).
    [[nodiscard]] std::string swap_session_id(uint64_t request_id) const;
    static constexpr std::string_view kSwapSessionPrefix = "\x01swap/";

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
    // A store lease that ends with its owner.
    class HeldSession {
    public:
        HeldSession() = default;
        explicit HeldSession(store::Lease lease) noexcept : lease_(std::move(lease)) {}
        HeldSession(HeldSession&& o) noexcept : lease_(std::exchange(o.lease_, {})) {}
        HeldSession& operator=(HeldSession&& o) noexcept {
            if (this != &o) {
                reset();
                lease_ = std::exchange(o.lease_, {});
            }
            return *this;
        }
        ~HeldSession() { reset(); }
        void reset() noexcept {
            if (lease_.session != nullptr) lease_.store->release(lease_.session);
            lease_ = {};
        }
        [[nodiscard]] store::Session* get() const noexcept { return lease_.session; }
        explicit operator bool() const noexcept { return lease_.session != nullptr; }

    private:
        store::Lease lease_;
    };
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
        HeldSession swap;   // while swapped out: the store session holding its computed K/V
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

    // ---- the session store ----
    // Calls copy(layer, first, n, k, v) for each run of tokens [first, last) of a pool sequence that lies
    // in one pool block, with k and v its rows ([token][kv_head][head_dim]) in the pool's memory.
    template <class Copy>
    void for_each_kv_run(pool::SequenceId seq, size_t first, size_t last, Copy&& copy) const;
    // Saves the K/V of r's computed tokens into store session `id` (created if absent); returns its lease
    // and the tokens copied (the session's reused prefix is not copied again). Throws the store's errors.
    HeldSession save_to_store(std::string_view id, const Request& r, size_t* copied);
    // At finish: saves r's conversation into its session, counting a refusal instead of failing.
    void save_session(const Request& r) noexcept;
    // At preemption (swap): saves r's computed K/V into its swap session (held in r.swap); false when
    // the store refused (r then recomputes).
    bool swap_out(Request& r);
    // Removes r's swap session from the store and ends its lease.
    void drop_swap(Request& r) noexcept;
    // The longest prefix of r's prompt (never its last token) whose K/V the store holds: from its swap
    // session, else from its chat session (leased into `chat`); *source the session to copy from.
    size_t stored_prefix(Request& r, HeldSession& chat, store::Session** source);

    SchedConfig config_;
    pool::Pool& pool_;
    size_t usable_tokens_;  // tokens the whole pool holds
    std::shared_ptr<store::Store> store_;  // nullptr: none
    store::Shape shape_;                   // the pool's model shape, the store sessions' too
    uint64_t instance_ = 0;                // this scheduler's number in the process (swap session ids)
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
