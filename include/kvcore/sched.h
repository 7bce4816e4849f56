/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvcore/sched.h - continuous batching over one paged block pool.
 *
 * The engine loop:
 *   kvc_sched_submit(...) as requests arrive (request ids are the caller's uint64_t values, unique among
 *   the requests the scheduler holds: waiting, running, or finished with an output not yet taken)
 *   loop: kvc_sched_step(sched, plan)            the next batch
 *         for each i < kvc_sched_plan_count(plan): its tokens, positions, slots and block table
 *         run the model over the batch (write each token's K/V at its slot), sample where the entry samples
 *         kvc_sched_commit(sched, plan, sampled, n, finished, n)
 *         for each id of kvc_sched_plan_finished(plan): kvc_sched_take_output(...)
 *
 * A step schedules, in this order: running decodes, chunks of running prefills, then waiting requests in
 * the policy's order, under max batch sequences, max batch tokens (a long prompt is prefilled in chunks
 * over several steps) and the pool's free blocks: a request is admitted only when its chunk fits, its
 * cached prefix counting as free (prefix blocks in use elsewhere cost nothing, free cached ones are
 * revived). Admission keeps the order: when the next request does not fit, later ones wait too. While
 * nothing runs, fewer than max batch sequences requests wait up to max_wait for company.
 * When a running request cannot get a block, the least important running request is preempted (lowest
 * priority, then the newest submitted): its blocks are freed and it is requeued with its generated tokens
 * appended to its prompt, so it resumes with the same tokens. By recompute its K/V are computed again; by
 * swap they are saved to the session store first and copied back at re-admission, so the plan resumes
 * it where it stopped. A step that preempts admits no new request. Blocks the commit's appends need are
 * reserved by the step, so the pool must not be used by anything else between step and commit (reading
 * its gauges and stats is fine).
 *
 * Prefix caching: a block enters the pool's prefix cache when its K/V are computed (at commit), so a
 * request never reuses a block the model has not written yet. Multi-turn reuse: submit the whole
 * conversation as the next turn's prompt; its cached blocks are reused.
 *
 * The session store (kvc_sched_set_session_store, optional) is the host tier under the pool:
 * - at commit, a request that finishes with a non-empty session id saves its conversation (the prompt and
 *   the generated tokens whose K/V are computed: all but the last sampled token) into the store session
 *   of that id (created with the pool's model shape; only the tokens past what the session already holds
 *   are copied). A store refusal (capacity, another model's session under the id) does not fail the
 *   commit: it is counted (sched_store_save_failures_total) and the output stands.
 * - at admission, when the store session of the request's id holds a longer computed prefix of the prompt
 *   than the pool's prefix cache, those tokens' K/V are copied from the store into the request's new
 *   blocks and count as computed: the plan's num_computed starts after them (never the prompt's last
 *   token). The blocks enter the prefix cache at the next commit, as computed ones do.
 * - swap preemption saves a request's computed K/V into the store session "\x01swap/<n>/<request id>"
 *   (<n> numbers the schedulers of the process; ids starting with "\x01swap/" are reserved: submit
 *   refuses them as session ids), held (never evicted) until the request is admitted again (the K/V are
 *   copied back and the session removed) or cancelled (removed). When the store refuses the save, that
 *   preemption falls back to recompute (sched_swap_failures_total).
 * A store may be shared by several schedulers (engine replicas, each on its own thread): its calls are
 * thread-safe. Requests of one session id must not run on two schedulers at the same time (a session is
 * used by one lease at a time); a chat's turns, which follow one another, may go to different replicas.
 * The pool then must hold its K/V in host memory (KVC_MEMORY_HOST, kvc_pool_storage's layout) with full
 * attention and a type other than INT8; the store must hold host memory.
 *
 * A request finishes when it has max_new_tokens tokens, when commit's finished flag is set for it
 * (a stop token), or when the pool could not hold one more token (reason KVC_SCHED_FINISH_CAPACITY).
 *
 * Thread-safety: a kvc_sched is not thread-safe: one thread (the engine loop) makes every call on it,
 * submit and cancel included (feed requests from other threads through your own queue). A kvc_sched_plan
 * belongs to the thread using it; its getters may be called from any thread while nothing changes it.
 * kvc_sched_options: build on one thread, then only read. Destroy calls accept NULL; destroy the
 * scheduler before its pool (it frees its sequences there) and before its session store, or detach it.
 */
#ifndef KVCORE_SCHED_H
#define KVCORE_SCHED_H

#include "kvcore/common.h"
#include "kvcore/pool.h"
#include "kvcore/stats.h"
#include "kvcore/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_sched_options kvc_sched_options;
typedef struct kvc_sched kvc_sched;
typedef struct kvc_sched_plan kvc_sched_plan;

/* Values never change once released; new ones are appended. */
typedef enum kvc_sched_policy {
    KVC_SCHED_FIFO = 0,       /* arrival order (a preempted request keeps its place) */
    KVC_SCHED_PRIORITY = 1,   /* higher priority first, then arrival */
    KVC_SCHED_CACHE_AWARE = 2 /* SGLang's: longest cached prefix first; requests that waited longer than
                                 the wait bound go first, in arrival order */
} kvc_sched_policy;

typedef enum kvc_preemption_mode {
    KVC_PREEMPT_RECOMPUTE = 0, /* free the blocks, requeue, recompute the K/V */
    KVC_PREEMPT_SWAP = 1       /* save the computed K/V to the session store, copy them back at re-admission;
                                  needs kvc_sched_set_session_store (submit answers KVC_ERR_INVALID_STATE
                                  without one). A save the store refuses falls back to recompute */
} kvc_preemption_mode;

/* Why a request finished (kvc_sched_take_output's *reason). */
typedef enum kvc_sched_finish_reason {
    KVC_SCHED_FINISH_STOP = 0,     /* commit's finished flag */
    KVC_SCHED_FINISH_LENGTH = 1,   /* max_new_tokens reached */
    KVC_SCHED_FINISH_CAPACITY = 2  /* the pool cannot hold one more token of it */
} kvc_sched_finish_reason;

/* ---- options (defaults: 256 sequences, 8192 tokens, no wait, queue of 4096, FIFO, cache-aware wait bound
 *      1 s, recompute, seed 0, the monotonic clock) ------------------------------------------------ */
KVC_API kvc_status kvc_sched_options_create(kvc_sched_options** out);
KVC_API void kvc_sched_options_destroy(kvc_sched_options* options);
KVC_API kvc_status kvc_sched_options_set_max_batch_sequences(kvc_sched_options* options, uint32_t sequences); /* 1..65536 */
/* Tokens computed per step, all sequences together (decodes count 1): 1..2^24. */
KVC_API kvc_status kvc_sched_options_set_max_batch_tokens(kvc_sched_options* options, uint32_t tokens);
/* How long a lone request waits for company while nothing runs (0: never waits). */
KVC_API kvc_status kvc_sched_options_set_max_wait_us(kvc_sched_options* options, uint64_t microseconds);
/* Waiting requests at most (1..2^24); submit beyond it is KVC_ERR_QUEUE_FULL. Preempted requests are
 * requeued whatever the bound. */
KVC_API kvc_status kvc_sched_options_set_max_queue(kvc_sched_options* options, uint32_t requests);
/* wait_bound_us matters to KVC_SCHED_CACHE_AWARE only. */
KVC_API kvc_status kvc_sched_options_set_policy(kvc_sched_options* options, kvc_sched_policy policy,
                                                uint64_t wait_bound_us);
KVC_API kvc_status kvc_sched_options_set_preemption(kvc_sched_options* options, kvc_preemption_mode mode);
/* Order among equals (same priority, same cached prefix): 0 is arrival order, another value a permutation
 * seeded by it. Every decision is a function of the calls and the clock, so with the manual clock two runs
 * of the same calls give the same plans. */
KVC_API kvc_status kvc_sched_options_set_seed(kvc_sched_options* options, uint64_t seed);
/* enabled != 0: the scheduler's time starts at 0 and moves only by kvc_sched_set_time_us. */
KVC_API kvc_status kvc_sched_options_set_manual_clock(kvc_sched_options* options, uint32_t enabled);

/* ---- the scheduler ------------------------------------------------------------------------------ */
/* options may be NULL. The pool is borrowed: it must outlive the scheduler. */
KVC_API kvc_status kvc_sched_create(const kvc_sched_options* options, kvc_pool* pool, kvc_sched** out);
KVC_API void kvc_sched_destroy(kvc_sched* sched);
/* Attaches the session store (see the top of this header), or detaches it with store NULL. The store is
 * borrowed: it must outlive the scheduler or be detached first; several schedulers may share it. Only
 * while no request waits or runs (KVC_ERR_INVALID_STATE). KVC_ERR_INVALID_ARGUMENT when the pool does not
 * hold its K/V in host memory (a metadata-only or device pool) or the store does not; KVC_ERR_UNSUPPORTED
 * for a pool with a sliding window or INT8 K/V. */
KVC_API kvc_status kvc_sched_set_session_store(kvc_sched* sched, kvc_store* store);

/* Queues a request: n >= 1 prompt tokens (>= 0, at most the pool's tokens), max_new_tokens >= 1, priority
 * (higher first under KVC_SCHED_PRIORITY, preempted last under every policy), session_id (may be NULL or
 * "": none; with a session store, the store session it is restored from and saved into), keys (may be
 * NULL: LoRA name, cache salt, multimodal items for block hashing, retention priority; copied).
 * KVC_ERR_QUEUE_FULL when the queue is full; KVC_ERR_INVALID_ARGUMENT for an id already held or a
 * reserved session id; KVC_ERR_INVALID_STATE under KVC_PREEMPT_SWAP without a session store. */
KVC_API kvc_status kvc_sched_submit(kvc_sched* sched, uint64_t request_id, const int32_t* prompt, size_t n,
                                    uint32_t max_new_tokens, uint32_t priority, const char* session_id,
                                    const kvc_sequence_options* keys);
/* A waiting or running request: freed at once (a swapped-out one's store session removed), or at the
 * commit of the pending plan that holds it (which then ignores its entry). KVC_ERR_NOT_FOUND for an
 * unknown id, KVC_ERR_INVALID_STATE for a finished one. */
KVC_API kvc_status kvc_sched_cancel(kvc_sched* sched, uint64_t request_id);
/* Manual clock only (KVC_ERR_INVALID_STATE otherwise); never backwards (KVC_ERR_INVALID_ARGUMENT). */
KVC_API kvc_status kvc_sched_set_time_us(kvc_sched* sched, uint64_t now_us);

/* The next batch into plan (its previous content is replaced). A plan with sequences must be committed
 * before the next step (KVC_ERR_INVALID_STATE); an empty plan needs no commit. */
KVC_API kvc_status kvc_sched_step(kvc_sched* sched, kvc_sched_plan* plan);
/* sampled[i]: the token sampled for plan entry i (read only where the entry samples; NULL when none does);
 * finished[i] != 0 ends entry i's request after its token (only entries that sample; NULL: none).
 * n_sampled and n_finished are the plan's count (or 0 with NULL). Appends each sampled token (the slot of
 * the next decode), registers computed blocks in the prefix cache, finishes requests: their ids are then
 * in kvc_sched_plan_finished. Checks everything before changing anything. */
KVC_API kvc_status kvc_sched_commit(kvc_sched* sched, kvc_sched_plan* plan, const int32_t* sampled, size_t n_sampled,
                                    const uint8_t* finished, size_t n_finished);
/* A finished request's generated tokens; tokens NULL with capacity 0 is a size query (nothing taken),
 * otherwise they are copied and the request forgotten (its id is free again). reason (may be NULL) gets a
 * kvc_sched_finish_reason. KVC_ERR_NOT_FOUND for an unknown id, KVC_ERR_INVALID_STATE before it finishes. */
KVC_API kvc_status kvc_sched_take_output(kvc_sched* sched, uint64_t request_id, int32_t* tokens, size_t capacity,
                                         size_t* count, uint32_t* reason);
/* The session id a finished request was submitted with, written as kvc_stats_to_json writes text (size
 * query with buf NULL and capacity 0; *length without the NUL). Before kvc_sched_take_output takes it. */
KVC_API kvc_status kvc_sched_output_session(kvc_sched* sched, uint64_t request_id, char* buf, size_t capacity,
                                            size_t* length);

/* Statistics (component "sched"): memory pressure counts admissions refused for want of blocks, tokens
 * queried / hit the prompt tokens admitted and their cached prefix; named metrics (kvc_stats_metric):
 * sched_batch_size_avg, sched_batch_tokens_avg, sched_wait_seconds_avg,
 * sched_time_to_first_step_seconds_avg, sched_queue_depth, sched_running, and the counters
 * sched_steps_total, sched_scheduled_sequences_total, sched_scheduled_tokens_total,
 * sched_preemptions_total, sched_requests_{submitted,rejected,admitted,finished,cancelled}_total,
 * sched_wait_seconds_total, sched_time_to_first_step_seconds_total; with a session store
 * sched_store_saved_tokens_total (K/V copied into sessions at finish), sched_store_restored_tokens_total
 * (copied from the store at admission, swaps included), sched_store_save_failures_total (finishes whose
 * save the store refused), sched_swapped_out_tokens_total (computed tokens saved by swap preemption),
 * sched_swapped_in_tokens_total (copied back from swap sessions; tokens the pool's prefix cache still
 * held are not copied), sched_swap_failures_total (swaps that fell back to recompute). */
KVC_API kvc_status kvc_sched_snapshot(kvc_sched* sched, kvc_stats** out);

/* Gauges; a NULL scheduler reads as 0. */
KVC_API uint64_t kvc_sched_num_waiting(const kvc_sched* sched);
KVC_API uint64_t kvc_sched_num_running(const kvc_sched* sched);
KVC_API uint64_t kvc_sched_num_outputs(const kvc_sched* sched); /* finished, not yet taken */

/* ---- plans ------------------------------------------------------------------------------------ */
KVC_API kvc_status kvc_sched_plan_create(kvc_sched_plan** out);
KVC_API void kvc_sched_plan_destroy(kvc_sched_plan* plan);
/* Scheduled sequences (0 for NULL). */
KVC_API size_t kvc_sched_plan_count(const kvc_sched_plan* plan);
/* Tokens to compute, all sequences together (0 for NULL). */
KVC_API size_t kvc_sched_plan_num_tokens(const kvc_sched_plan* plan);
/* Entry i (< count, else KVC_ERR_OUT_OF_RANGE): its request, how many tokens it computes now, how many
 * were computed before (its first position; attention spans num_computed + num_tokens tokens), and
 * whether the step samples a token for it (1: last prefill chunk or decode). Out pointers may be NULL. */
KVC_API kvc_status kvc_sched_plan_sequence(const kvc_sched_plan* plan, size_t i, uint64_t* request_id,
                                           size_t* num_tokens, size_t* num_computed, uint32_t* samples);
/* Entry i's arrays; buffer NULL with capacity 0 is a size query, a smaller capacity KVC_ERR_BUFFER_TOO_SMALL. */
KVC_API kvc_status kvc_sched_plan_tokens(const kvc_sched_plan* plan, size_t i, int32_t* tokens, size_t capacity,
                                         size_t* count);
KVC_API kvc_status kvc_sched_plan_positions(const kvc_sched_plan* plan, size_t i, int64_t* positions,
                                            size_t capacity, size_t* count);
/* Slot of each token: block * block_size + offset (kvc_pool_slot_mapping's). */
KVC_API kvc_status kvc_sched_plan_slots(const kvc_sched_plan* plan, size_t i, int64_t* slots, size_t capacity,
                                        size_t* count);
KVC_API kvc_status kvc_sched_plan_block_table(const kvc_sched_plan* plan, size_t i, int32_t* blocks,
                                              size_t capacity, size_t* count);
/* Requests the step preempted (requeued; their blocks are freed, their K/V kept in the store when
 * swapped), and requests the commit finished. */
KVC_API kvc_status kvc_sched_plan_preempted(const kvc_sched_plan* plan, uint64_t* ids, size_t capacity,
                                            size_t* count);
KVC_API kvc_status kvc_sched_plan_finished(const kvc_sched_plan* plan, uint64_t* ids, size_t capacity,
                                           size_t* count);

#ifdef __cplusplus
}
#endif

#endif /* KVCORE_SCHED_H */
