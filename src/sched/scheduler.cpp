// SPDX-License-Identifier: Apache-2.0
#include "sched/scheduler.h"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "common/error.h"

namespace kvcore::sched {
namespace {

#define SCHED_ENSURE(ok, status, message) \
    do {                                  \
        if (!(ok)) fail(status, message); \
    } while (0)

// splitmix64: the seeded order among equals.
uint64_t mix(uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::string id_text(uint64_t id) { return "request " + std::to_string(id); }

// Numbers the schedulers of the process, so that their swap sessions in a shared store never collide.
std::atomic<uint64_t> next_instance{1};

}  // namespace

void SchedConfig::validate() const {
    auto bad = [](const std::string& what) { fail(KVC_ERR_INVALID_ARGUMENT, what); };
    if (max_batch_sequences < 1 || max_batch_sequences > (1u << 16)) bad("max_batch_sequences must be 1..65536");
    if (max_batch_tokens < 1 || max_batch_tokens > (1u << 24)) bad("max_batch_tokens must be 1..16777216");
    if (max_queue < 1 || max_queue > (1u << 24)) bad("max_queue must be 1..16777216");
    if (static_cast<uint32_t>(policy) > static_cast<uint32_t>(Policy::kCacheAware)) bad("unknown policy");
    if (static_cast<uint32_t>(preemption) > static_cast<uint32_t>(Preemption::kSwap)) bad("unknown preemption mode");
}

void Plan::clear() noexcept {
    entries.clear();
    tokens.clear();
    positions.clear();
    slots.clear();
    blocks.clear();
    preempted.clear();
    finished.clear();
}

Scheduler::Scheduler(SchedConfig config, pool::Pool& pool) : config_(std::move(config)), pool_(pool) {
    config_.validate();
    usable_tokens_ = size_t{pool_.config().num_blocks - 1} * pool_.config().block_size;
    const pool::PoolConfig& pc = pool_.config();
    shape_ = store::Shape{pc.layers, pc.kv_heads, pc.head_dim, pc.dtype};
    instance_ = next_instance.fetch_add(1, std::memory_order_relaxed);
    clock_zero_ = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

Scheduler::~Scheduler() {
    for (auto& [id, r] : requests_) {
        if (r->seq != 0) pool_.free_sequence(r->seq);
        drop_swap(*r);
    }
}

void Scheduler::set_session_store(std::shared_ptr<store::Store> store) {
    SCHED_ENSURE(waiting_.empty() && running_.empty(), KVC_ERR_INVALID_STATE,
                 "the session store can be set only while no request waits or runs");
    if (store) {
        const pool::PoolConfig& pc = pool_.config();
        SCHED_ENSURE(pc.memory == pool::Memory::kHost, KVC_ERR_INVALID_ARGUMENT,
                     "a session store needs a pool that holds its K/V in host memory with a model shape "
                     "(kvc_pool_options_set_memory KVC_MEMORY_HOST); this pool's memory kind is " +
                         std::to_string(static_cast<uint32_t>(pc.memory)));
        SCHED_ENSURE(store->config().memory == pool::Memory::kHost, KVC_ERR_INVALID_ARGUMENT,
                     "the session store must hold host memory (its K/V copies are host-only)");
        SCHED_ENSURE(pc.sliding_window == 0, KVC_ERR_UNSUPPORTED,
                     "a session store needs full attention: a sliding window's released blocks hold no K/V");
        SCHED_ENSURE(pc.dtype != pool::DType::kInt8, KVC_ERR_UNSUPPORTED,
                     "a session store does not carry INT8 scales: use another K/V type");
    }
    store_ = std::move(store);
}

std::string Scheduler::swap_session_id(uint64_t request_id) const {
    std::string id(kSwapSessionPrefix);
    id += std::to_string(instance_);
    id += '/';
    id += std::to_string(request_id);
    return id;
}

uint64_t Scheduler::now_ns() const noexcept {
    if (config_.manual_clock) return manual_now_;
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
    return static_cast<uint64_t>(now.count()) - clock_zero_;
}

void Scheduler::set_time(uint64_t now_ns) {
    SCHED_ENSURE(config_.manual_clock, KVC_ERR_INVALID_STATE, "set_time needs the manual clock (options)");
    SCHED_ENSURE(now_ns >= manual_now_, KVC_ERR_INVALID_ARGUMENT,
                 "the clock cannot go back (now " + std::to_string(manual_now_) + " ns)");
    manual_now_ = now_ns;
}

bool Scheduler::more_important(const Request* a, const Request* b) noexcept {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->arrival < b->arrival;
}

bool Scheduler::continues_after_sample(const Request& r) const noexcept {
    return r.generated() + 1 < r.max_new_tokens && r.tokens.size() + 1 <= usable_tokens_;
}

size_t Scheduler::available_blocks(size_t reserve) const {
    const size_t free = pool_.counters().free_blocks;
    return free > reserve ? free - reserve : 0;
}

void Scheduler::submit(SubmitArgs args) {
    SCHED_ENSURE(!requests_.contains(args.request_id), KVC_ERR_INVALID_ARGUMENT,
                 id_text(args.request_id) + " is already known (waiting, running or with an output not taken)");
    SCHED_ENSURE(!args.prompt.empty(), KVC_ERR_INVALID_ARGUMENT, "the prompt is empty");
    SCHED_ENSURE(args.max_new_tokens >= 1, KVC_ERR_INVALID_ARGUMENT, "max_new_tokens must be >= 1");
    SCHED_ENSURE(args.prompt.size() <= usable_tokens_, KVC_ERR_INVALID_ARGUMENT,
                 "a prompt of " + std::to_string(args.prompt.size()) + " tokens cannot fit in the pool (" +
                     std::to_string(usable_tokens_) + " tokens)");
    SCHED_ENSURE(!args.session.starts_with(kSwapSessionPrefix), KVC_ERR_INVALID_ARGUMENT,
                 "session ids starting with \"\\x01swap/\" are reserved for swap preemption");
    SCHED_ENSURE(config_.preemption != Preemption::kSwap || store_ != nullptr, KVC_ERR_INVALID_STATE,
                 "swap preemption needs a session store (kvc_sched_set_session_store)");
    if (waiting_.size() >= config_.max_queue) {
        ++counters_.rejected;
        fail(KVC_ERR_QUEUE_FULL, "the queue holds its maximum of " + std::to_string(config_.max_queue) + " requests");
    }
    auto r = std::make_unique<Request>();
    r->id = args.request_id;
    r->prompt_len = args.prompt.size();
    r->tokens = std::move(args.prompt);
    r->max_new_tokens = args.max_new_tokens;
    r->priority = args.priority;
    r->session = std::move(args.session);
    r->options = std::move(args.options);
    r->options.defer_caching = true;  // blocks are cached once their K/V are computed (commit)
    r->arrival = arrivals_;
    r->tie = config_.seed == 0 ? arrivals_ : mix(config_.seed ^ mix(arrivals_));
    r->submit_ns = r->enqueue_ns = now_ns();
    r->seq = pool_.create_sequence(r->tokens, r->options);  // validates the tokens; no blocks yet
    r->prefill_len = r->tokens.size();
    ++arrivals_;
    ++counters_.submitted;
    waiting_.push_back(r.get());
    requests_.emplace(r->id, std::move(r));
}

void Scheduler::remove_waiting(Request* r) { waiting_.erase(std::find(waiting_.begin(), waiting_.end(), r)); }

void Scheduler::forget(Request& r) {
    if (r.seq != 0) pool_.free_sequence(r.seq);
    drop_swap(r);
    requests_.erase(r.id);
}

void Scheduler::cancel(uint64_t request_id) {
    auto it = requests_.find(request_id);
    SCHED_ENSURE(it != requests_.end(), KVC_ERR_NOT_FOUND, id_text(request_id) + " is not known");
    Request& r = *it->second;
    SCHED_ENSURE(r.state != State::kFinished && !r.cancelled, KVC_ERR_INVALID_STATE,
                 id_text(request_id) + " has finished or is cancelled already");
    ++counters_.cancelled;
    if (r.in_plan) {  // the pending plan computes it: commit drops it
        r.cancelled = true;
        return;
    }
    if (r.state == State::kWaiting) {
        remove_waiting(&r);
    } else {
        running_.erase(std::find(running_.begin(), running_.end(), &r));
    }
    forget(r);
}

size_t Scheduler::pick_victim(size_t after) const {
    for (size_t j = running_.size(); j-- > after + 1;) {
        if (!running_[j]->in_plan) return j;
    }
    return SIZE_MAX;
}

void Scheduler::preempt(size_t running_index, Plan& plan) {
    Request& r = *running_[running_index];
    // Swap: the computed K/V go to the store while the blocks still hold them. A refused save leaves the
    // request to recompute; a saved one that is not preempted after all (creating the sequence below
    // failed) is saved again, over the same session, at its next preemption.
    if (config_.preemption == Preemption::kSwap && store_ && r.computed > 0 && !swap_out(r)) ++counters_.swap_failures;
    // The new sequence first: if creating it fails, nothing else has changed.
    const pool::SequenceId fresh = pool_.create_sequence(r.tokens, r.options);
    pool_.free_sequence(r.seq);
    r.seq = fresh;
    r.prefill_len = r.tokens.size();
    r.computed = 0;
    r.state = State::kWaiting;
    r.enqueue_ns = now_ns();
    running_.erase(running_.begin() + static_cast<ptrdiff_t>(running_index));
    waiting_.push_back(&r);
    plan.preempted.push_back(r.id);
    ++counters_.preemptions;
}

void Scheduler::schedule(Request& r, size_t n, Plan& plan, size_t& reserve) {
    const size_t first = r.computed;
    if (first + n > pool_.num_tokens(r.seq)) pool_.allocate(r.seq, first + n);  // a decode's slot is there
    PlanEntry e;
    e.request_id = r.id;
    e.num_computed = first;
    e.num_tokens = n;
    e.samples = first + n == r.prefill_len || r.computed >= r.prefill_len;
    e.token_begin = plan.tokens.size();
    plan.tokens.insert(plan.tokens.end(), r.tokens.begin() + static_cast<ptrdiff_t>(first),
                       r.tokens.begin() + static_cast<ptrdiff_t>(first + n));
    for (size_t i = 0; i < n; ++i) plan.positions.push_back(static_cast<int64_t>(first + i));
    plan.slots.resize(plan.slots.size() + n);
    pool_.slot_mapping(r.seq, first, std::span<int64_t>(plan.slots).subspan(e.token_begin, n));
    const std::span<const int32_t> table = pool_.block_table(r.seq);
    e.block_begin = plan.blocks.size();
    e.num_blocks = table.size();
    plan.blocks.insert(plan.blocks.end(), table.begin(), table.end());
    if (e.samples && continues_after_sample(r)) reserve += pool_.blocks_needed(r.seq, first + n + 1);
    if (!r.started) {
        r.started = true;
        counters_.first_step_ns += now_ns() - r.submit_ns;
        ++counters_.first_steps;
    }
    r.in_plan = true;
    plan.entries.push_back(e);
    counters_.scheduled_tokens += n;
}

void Scheduler::step(Plan& plan) {
    SCHED_ENSURE(pending_step_ == 0, KVC_ERR_INVALID_STATE, "commit the pending plan before the next step");
    plan.clear();
    plan.owner = this;
    plan.step = ++steps_;
    const uint64_t now = now_ns();
    size_t seq_budget = config_.max_batch_sequences, token_budget = config_.max_batch_tokens;
    size_t reserve = 0;  // blocks the commit's appends will take
    const size_t preempted_before = counters_.preemptions;

    // Running requests: decodes (pass 0), then prefill chunks (pass 1), each in importance order. A request
    // short of blocks takes them from the least important running requests this step does not hold.
    for (int pass = 0; pass < 2; ++pass) {
        for (size_t i = 0; i < running_.size() && seq_budget > 0 && token_budget > 0; ++i) {
            Request& r = *running_[i];
            const bool decode = r.computed >= r.prefill_len;
            if (r.in_plan || decode != (pass == 0)) continue;
            const size_t remaining = decode ? 1 : r.prefill_len - r.computed;
            size_t n = std::min(remaining, token_budget);
            auto needed = [&](size_t tokens) {
                const bool append = r.computed + tokens >= r.prefill_len && continues_after_sample(r);
                return pool_.blocks_needed(r.seq, r.computed + tokens + (append ? 1 : 0));
            };
            while (needed(n) > available_blocks(reserve)) {
                const size_t victim = pick_victim(i);
                if (victim == SIZE_MAX) break;
                preempt(victim, plan);
            }
            if (needed(n) > available_blocks(reserve)) {
                if (decode) {  // it cannot go on: recompute it later
                    preempt(i, plan);
                    --i;
                    continue;
                }
                // A prefill goes on with the chunk that fits (blocks_needed grows with n).
                size_t lo = 0, hi = n;
                while (lo < hi) {
                    const size_t mid = lo + (hi - lo + 1) / 2;
                    if (needed(mid) <= available_blocks(reserve)) lo = mid; else hi = mid - 1;
                }
                n = lo;
                if (n == 0) continue;
            }
            schedule(r, n, plan, reserve);
            --seq_budget;
            token_budget -= n;
        }
    }
    // Nothing could run although requests hold blocks (prefills that each hold part of the pool): the least
    // important gives its blocks back, so that the others go on next step.
    if (plan.entries.empty() && !running_.empty()) preempt(running_.size() - 1, plan);

    // New requests, unless this step preempted (they would take the blocks just given back, vLLM's rule).
    if (counters_.preemptions == preempted_before) admit(plan, seq_budget, token_budget, reserve, now);

    if (!plan.entries.empty()) {
        pending_step_ = plan.step;
        ++counters_.steps;
        counters_.scheduled_sequences += plan.entries.size();
    }
}

void Scheduler::order_waiting(std::vector<Request*>& order, uint64_t now) {
    order.assign(waiting_.begin(), waiting_.end());
    auto by_tie = [](const Request* a, const Request* b) { return a->tie < b->tie; };
    switch (config_.policy) {
        case Policy::kFifo:
            // Preempted requests keep their arrival, so they go back to the front.
            std::sort(order.begin(), order.end(), [](const Request* a, const Request* b) { return a->arrival < b->arrival; });
            break;
        case Policy::kPriority:
            std::sort(order.begin(), order.end(), [&](const Request* a, const Request* b) {
                return a->priority != b->priority ? a->priority > b->priority : by_tie(a, b);
            });
            break;
        case Policy::kCacheAware: {
            for (Request* r : order) r->cached = pool_.cached_prefix_tokens(r->seq);
            auto overdue = [&](const Request* r) { return now - r->enqueue_ns > config_.wait_bound_ns; };
            std::sort(order.begin(), order.end(), [&](const Request* a, const Request* b) {
                const bool oa = overdue(a), ob = overdue(b);
                if (oa != ob) return oa;
                if (oa) return a->arrival < b->arrival;
                return a->cached != b->cached ? a->cached > b->cached : by_tie(a, b);
            });
            break;
        }
    }
}

void Scheduler::admit(Plan& plan, size_t& seq_budget, size_t& token_budget, size_t& reserve, uint64_t now) {
    if (waiting_.empty()) return;
    // A lone request waits for company while nothing runs, up to max_wait.
    if (running_.empty() && waiting_.size() < config_.max_batch_sequences && config_.max_wait_ns > 0) {
        uint64_t oldest = UINT64_MAX;
        for (const Request* r : waiting_) oldest = std::min(oldest, r->enqueue_ns);
        if (now - oldest < config_.max_wait_ns) return;
    }
    order_waiting(order_, now);
    for (Request* r : order_) {
        if (seq_budget == 0 || token_budget == 0) break;
        const size_t cached = pool_.cached_prefix_tokens(r->seq);
        // The store supplies what it holds beyond the pool's cached prefix: those tokens take blocks but no
        // token budget (they are copied, not computed).
        HeldSession chat;
        store::Session* source = nullptr;
        const size_t start = store_ ? std::max(cached, stored_prefix(*r, chat, &source)) : cached;
        const size_t remaining = r->prefill_len - start;
        const size_t n = std::min(remaining, token_budget);
        const bool append = n == remaining && continues_after_sample(*r);
        if (pool_.blocks_needed(r->seq, start + n + (append ? 1 : 0)) > available_blocks(reserve)) {
            ++counters_.memory_stalls;  // the rest waits too: the order is kept
            break;
        }
        size_t got = 0;
        pool_.allocate(r->seq, start + n, &got);
        SCHED_ENSURE(got == cached, KVC_ERR_INTERNAL, "the pool's cached prefix changed during admission");
        if (start > cached) {
            // Fresh blocks past the cached prefix: they enter the prefix cache at the next commit, as
            // computed ones do.
            for_each_kv_run(r->seq, cached, start, [&](uint32_t layer, size_t first, size_t count, uint8_t* k, uint8_t* v) {
                store_->read_kv(*source, layer, first, count, k, v);
            });
            counters_.store_restored_tokens += start - cached;
            if (source == r->swap.get()) counters_.swapped_in_tokens += start - cached;
        }
        drop_swap(*r);  // back in the pool (or in its prefix cache)
        r->computed = start;
        r->state = State::kRunning;
        remove_waiting(r);
        running_.insert(std::upper_bound(running_.begin(), running_.end(), r, more_important), r);
        ++counters_.admitted;
        counters_.wait_ns += now - r->enqueue_ns;
        ++counters_.waits;
        counters_.prompt_tokens += r->prefill_len;
        counters_.cached_tokens += cached;
        schedule(*r, n, plan, reserve);
        --seq_budget;
        token_budget -= n;
    }
}

void Scheduler::finish(Request& r, FinishReason reason, Plan& plan) {
    if (store_ && !r.session.empty()) save_session(r);
    drop_swap(r);
    pool_.free_sequence(r.seq);
    r.seq = 0;
    r.state = State::kFinished;
    r.reason = reason;
    running_.erase(std::find(running_.begin(), running_.end(), &r));
    plan.finished.push_back(r.id);
    ++outputs_;
    ++counters_.finished;
}

void Scheduler::commit(Plan& plan, std::span<const int32_t> sampled, std::span<const uint8_t> finished) {
    SCHED_ENSURE(plan.owner == this, KVC_ERR_INVALID_ARGUMENT, "the plan is not one of this scheduler's");
    if (plan.entries.empty() && pending_step_ == 0) return;  // an empty plan needs no commit
    SCHED_ENSURE(pending_step_ != 0 && plan.step == pending_step_, KVC_ERR_INVALID_STATE,
                 "the plan is not the pending one (step " + std::to_string(plan.step) + ")");
    const size_t n = plan.entries.size();
    SCHED_ENSURE(sampled.empty() || sampled.size() == n, KVC_ERR_INVALID_ARGUMENT,
                 "sampled holds " + std::to_string(sampled.size()) + " tokens for " + std::to_string(n) + " sequences");
    SCHED_ENSURE(finished.empty() || finished.size() == n, KVC_ERR_INVALID_ARGUMENT,
                 "finished holds " + std::to_string(finished.size()) + " flags for " + std::to_string(n) + " sequences");
    // Checked before anything changes.
    for (size_t i = 0; i < n; ++i) {
        const PlanEntry& e = plan.entries[i];
        if (e.samples) {
            SCHED_ENSURE(!sampled.empty(), KVC_ERR_INVALID_ARGUMENT, "sampled is empty but the plan samples");
            SCHED_ENSURE(sampled[i] >= 0, KVC_ERR_INVALID_ARGUMENT,
                         "sampled token " + std::to_string(sampled[i]) + " for " + id_text(e.request_id) + " is negative");
        } else {
            SCHED_ENSURE(finished.empty() || finished[i] == 0, KVC_ERR_INVALID_ARGUMENT,
                         id_text(e.request_id) + " samples nothing this step: it cannot finish");
        }
    }
    pending_step_ = 0;
    plan.finished.clear();
    for (size_t i = 0; i < n; ++i) {
        const PlanEntry& e = plan.entries[i];
        Request& r = *requests_.at(e.request_id);
        r.in_plan = false;
        if (r.cancelled) {
            running_.erase(std::find(running_.begin(), running_.end(), &r));
            forget(r);
            continue;
        }
        r.computed += e.num_tokens;
        pool_.commit(r.seq, r.computed);  // their K/V are written: the full blocks may be shared now
        if (!e.samples) continue;
        r.tokens.push_back(sampled[i]);
        if (!finished.empty() && finished[i] != 0) {
            finish(r, FinishReason::kStop, plan);
        } else if (r.generated() >= r.max_new_tokens) {
            finish(r, FinishReason::kLength, plan);
        } else if (r.tokens.size() > usable_tokens_) {
            finish(r, FinishReason::kCapacity, plan);
        } else {
            try {
                pool_.append(r.seq, std::span<const int32_t>(&r.tokens.back(), 1));
            } catch (const Error& err) {
                // Only when something else took the blocks the step reserved: recompute it later.
                if (err.status() != KVC_ERR_CAPACITY) throw;
                preempt(static_cast<size_t>(std::find(running_.begin(), running_.end(), &r) - running_.begin()), plan);
            }
        }
    }
}

// ---- the session store ---------------------------------------------------------------------------

template <class Copy>
void Scheduler::for_each_kv_run(pool::SequenceId seq, size_t first, size_t last, Copy&& copy) const {
    const pool::PoolConfig& pc = pool_.config();
    const uint64_t row = uint64_t{pc.kv_heads} * pc.head_dim * pool::dtype_bytes(pc.dtype);
    const uint64_t part = pool::tensor_block_bytes(pc.block_size, pc.kv_heads, pc.head_dim, pc.dtype);
    const uint64_t block_bytes = pc.bytes_per_block();
    auto* base = static_cast<uint8_t*>(pool_.storage());
    const std::span<const int32_t> table = pool_.block_table(seq);
    // Block by block, its layers in order: each block's bytes are visited front to back (both tiers lay a
    // block out [layer][K/V][token]), which streams where layer-major order would stride.
    for (size_t t = first; t < last;) {
        const size_t offset = t % pc.block_size, run = std::min<size_t>(pc.block_size - offset, last - t);
        uint8_t* block = base + uint64_t(table[t / pc.block_size]) * block_bytes + offset * row;
        for (uint32_t layer = 0; layer < pc.layers; ++layer) {
            uint8_t* k = block + uint64_t{layer} * 2 * part;
            copy(layer, t, run, k, k + part);
        }
        t += run;
    }
}

Scheduler::HeldSession Scheduler::save_to_store(std::string_view id, const Request& r, size_t* copied) {
    HeldSession s(store_->get_or_create(id, shape_, 0, nullptr));
    const std::span<const int32_t> computed(r.tokens.data(), r.computed);
    const size_t reused = store_->begin_turn(*s.get(), computed);
    for_each_kv_run(r.seq, reused, r.computed, [&](uint32_t layer, size_t first, size_t n, uint8_t* k, uint8_t* v) {
        store_->write_kv(*s.get(), layer, first, n, k, v);
    });
    store_->commit(*s.get());
    *copied = r.computed - reused;
    return s;
}

void Scheduler::save_session(const Request& r) noexcept {
    try {
        size_t copied = 0;
        (void)save_to_store(r.session, r, &copied);  // the lease ends here: the session stays in the store
        counters_.store_saved_tokens += copied;
    } catch (...) {
        // The output stands without its session (capacity, a session of another model under the id, no
        // memory): counted, not an error of the commit.
        ++counters_.store_save_failures;
    }
}

bool Scheduler::swap_out(Request& r) {
    try {
        size_t copied = 0;
        r.swap = save_to_store(swap_session_id(r.id), r, &copied);  // held: never evicted while swapped
        counters_.swapped_out_tokens += r.computed;
        return true;
    } catch (const Error&) {
        // The store could not take it: the request recomputes, and its swap session, if created, goes.
        r.swap.reset();
        try {
            store_->remove(swap_session_id(r.id));
        } catch (const Error&) {
        }
        return false;
    }
}

void Scheduler::drop_swap(Request& r) noexcept {
    if (!r.swap) return;
    try {
        store_->remove(r.swap.get()->id);  // held: detached now, freed at the release below
    } catch (...) {
        // Already removed (a clear of the shared store): the release frees it.
    }
    r.swap.reset();
}

size_t Scheduler::stored_prefix(Request& r, HeldSession& chat, store::Session** source) {
    store::Session* s = r.swap.get();
    if (s == nullptr && !r.session.empty()) {
        try {
            chat = HeldSession(store_->try_get(r.session));
        } catch (const Error& e) {
            if (e.status() != KVC_ERR_NOT_FOUND) throw;
            return 0;
        }
        s = chat.get();
    }
    if (s == nullptr || !(s->shape == shape_)) return 0;  // another model's session under the same id
    // The prompt's last token is always computed: its logits are what the first step samples from.
    const size_t limit = std::min(s->committed, r.prefill_len - 1);
    size_t common = 0;
    while (common < limit && s->tokens[common] == r.tokens[common]) ++common;
    *source = s;
    return common;
}

std::span<const int32_t> Scheduler::output(uint64_t request_id, FinishReason* reason,
                                          const std::string** session) const {
    auto it = requests_.find(request_id);
    SCHED_ENSURE(it != requests_.end(), KVC_ERR_NOT_FOUND, id_text(request_id) + " is not known");
    const Request& r = *it->second;
    SCHED_ENSURE(r.state == State::kFinished, KVC_ERR_INVALID_STATE, id_text(request_id) + " has not finished");
    if (reason != nullptr) *reason = r.reason;
    if (session != nullptr) *session = &r.session;
    return std::span<const int32_t>(r.tokens).subspan(r.prompt_len);
}

void Scheduler::drop_output(uint64_t request_id) {
    (void)output(request_id);  // checks that it exists and has finished
    requests_.erase(request_id);
    --outputs_;
}

stats::Snapshot Scheduler::snapshot() const {
    const SchedCounters& c = counters_;
    stats::Snapshot s;
    s.component = "sched";
    s.memory_pressure_events = c.memory_stalls;
    s.tokens_queried = c.prompt_tokens;
    s.tokens_hit = c.cached_tokens;
    s.tokens_reused = c.cached_tokens;
    auto avg = [](uint64_t sum, uint64_t n) { return n == 0 ? 0.0 : double(sum) / double(n); };
    auto add = [&](const char* name, bool counter, const char* help, double value) {
        s.metrics.push_back({name, counter, help, value});
    };
    add("sched_batch_size_avg", false, "Sequences per non-empty step, on average.", avg(c.scheduled_sequences, c.steps));
    add("sched_batch_tokens_avg", false, "Tokens per non-empty step, on average.", avg(c.scheduled_tokens, c.steps));
    add("sched_wait_seconds_avg", false, "Queue time per admission, on average.", avg(c.wait_ns, c.waits) * 1e-9);
    add("sched_time_to_first_step_seconds_avg", false, "Submit to first scheduled step, on average.",
        avg(c.first_step_ns, c.first_steps) * 1e-9);
    add("sched_queue_depth", false, "Requests waiting now.", double(waiting_.size()));
    add("sched_running", false, "Requests running now.", double(running_.size()));
    add("sched_steps_total", true, "Non-empty steps.", double(c.steps));
    add("sched_scheduled_sequences_total", true, "Sequences scheduled, summed over steps.", double(c.scheduled_sequences));
    add("sched_scheduled_tokens_total", true, "Tokens scheduled, summed over steps.", double(c.scheduled_tokens));
    add("sched_preemptions_total", true, "Requests preempted (recompute or swap).", double(c.preemptions));
    add("sched_store_saved_tokens_total", true, "Tokens whose K/V finished requests copied into their sessions.",
        double(c.store_saved_tokens));
    add("sched_store_restored_tokens_total", true,
        "Tokens whose K/V admissions copied from the session store (sessions and swaps).", double(c.store_restored_tokens));
    add("sched_store_save_failures_total", true, "Finished requests whose session the store refused to save.",
        double(c.store_save_failures));
    add("sched_swapped_out_tokens_total", true, "Computed tokens saved to the store by swap preemption.",
        double(c.swapped_out_tokens));
    add("sched_swapped_in_tokens_total", true, "Tokens copied back from swap sessions at re-admission.",
        double(c.swapped_in_tokens));
    add("sched_swap_failures_total", true, "Swap preemptions that fell back to recompute (the store refused).",
        double(c.swap_failures));
    add("sched_requests_submitted_total", true, "Requests accepted by submit.", double(c.submitted));
    add("sched_requests_rejected_total", true, "Requests refused because the queue was full.", double(c.rejected));
    add("sched_requests_admitted_total", true, "Admissions (a preempted request counts again).", double(c.admitted));
    add("sched_requests_finished_total", true, "Requests finished.", double(c.finished));
    add("sched_requests_cancelled_total", true, "Requests cancelled.", double(c.cancelled));
    add("sched_wait_seconds_total", true, "Queue time of every admission.", double(c.wait_ns) * 1e-9);
    add("sched_time_to_first_step_seconds_total", true, "Submit to first step, summed over requests.",
        double(c.first_step_ns) * 1e-9);
    return s;
}

}  // namespace kvcore::sched
