// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"runtime"
	"time"
	"unsafe"

	"github.com/kvcore/kvcore/bindings/go/internal/capi"
)

// SchedPolicy orders the waiting requests.
type SchedPolicy int

const (
	SchedFIFO       SchedPolicy = 0 // arrival order (a preempted request keeps its place)
	SchedPriority   SchedPolicy = 1 // higher priority first, then arrival
	SchedCacheAware SchedPolicy = 2 // longest cached prefix first; those waiting past WaitBound go first
)

// PreemptionMode is what the scheduler does to a running request when decode runs out of blocks.
type PreemptionMode int

const (
	PreemptRecompute PreemptionMode = 0 // free the blocks, requeue, recompute the K/V
	PreemptSwap      PreemptionMode = 1 // keep the K/V in the session store (SetSessionStore), copy them back
)

// FinishReason says why a request finished.
type FinishReason int

const (
	FinishStop     FinishReason = 0 // Commit's finished flag (a stop token)
	FinishLength   FinishReason = 1 // MaxNewTokens reached
	FinishCapacity FinishReason = 2 // the pool cannot hold one more token of it
)

// defaultWaitBound is kvc_sched_options' cache-aware wait bound.
const defaultWaitBound = time.Second

// SchedOptions configure a Scheduler; zero fields keep kvcore's defaults (256 sequences, 8192 tokens, no
// wait, a queue of 4096, FIFO, recompute, seed 0, the monotonic clock).
type SchedOptions struct {
	MaxBatchSequences uint32        // sequences per step
	MaxBatchTokens    uint32        // tokens computed per step, all sequences together (a decode counts 1)
	MaxWait           time.Duration // how long a lone request waits for company while nothing runs (µs resolution)
	MaxQueue          uint32        // waiting requests at most; Submit beyond it is a QueueFull error
	Policy            SchedPolicy
	WaitBound         time.Duration // SchedCacheAware only; default 1 s
	Preemption        PreemptionMode
	Seed              uint64 // order among equals: 0 is arrival order, another value a permutation seeded by it
	ManualClock       bool   // time starts at 0 and moves only by SetTime
}

// Request is one request to Submit.
type Request struct {
	ID           uint64 // unique among the requests the scheduler holds
	Prompt       []int32
	MaxNewTokens uint32
	Priority     uint32           // higher first under SchedPriority, preempted last under every policy
	Session      string           // kept with the output; with a session store, restored from and saved into
	Keys         *SequenceOptions // LoRA, cache salt, multimodal items; may be nil
}

// PlanEntry is one sequence of a step's batch: compute Tokens at Positions (their K/V go to Slots),
// attending over NumComputed + len(Tokens) tokens through BlockTable; sample a token for it when Samples.
type PlanEntry struct {
	RequestID   uint64
	NumComputed int // tokens computed before this step: the first position
	Samples     bool
	Tokens      []int32
	Positions   []int64
	Slots       []int64 // block * block size + offset
	BlockTable  []int32
}

// Output is a finished request's generated tokens, why it finished and its session ("" for none).
type Output struct {
	Tokens  []int32
	Reason  FinishReason
	Session string
}

// SchedGauges are the scheduler's current queue sizes.
type SchedGauges struct {
	Waiting, Running, Outputs uint64 // Outputs: finished, not yet taken
}

// Scheduler is continuous batching over one Pool. It is not safe for concurrent use: one goroutine (the
// engine loop) makes every call. It keeps its pool alive: the pool's memory is freed after both are closed;
// likewise its session store's, once the scheduler is closed or detaches it.
type Scheduler struct {
	native[capi.Scheduler]
	pool *Pool
}

// NewScheduler makes a scheduler over pool; opts may be nil for the defaults.
func NewScheduler(pool *Pool, opts *SchedOptions) (s *Scheduler, err error) {
	if pool == nil || pool.closed {
		return nil, ErrClosed
	}
	defer catch(&err)
	var o capi.SchedOptions
	if opts != nil {
		o = capi.NewSchedOptions()
		defer capi.DeleteSchedOptions(o)
		if opts.MaxBatchSequences != 0 {
			o.SetMaxBatchSequences(uint(opts.MaxBatchSequences))
		}
		if opts.MaxBatchTokens != 0 {
			o.SetMaxBatchTokens(uint(opts.MaxBatchTokens))
		}
		o.SetMaxWaitUs(uint64(opts.MaxWait / time.Microsecond))
		if opts.MaxQueue != 0 {
			o.SetMaxQueue(uint(opts.MaxQueue))
		}
		bound := opts.WaitBound
		if bound == 0 {
			bound = defaultWaitBound
		}
		o.SetPolicy(capi.Enum_SS_kvc_sched_policy(opts.Policy), uint64(bound/time.Microsecond))
		o.SetPreemption(capi.Enum_SS_kvc_preemption_mode(opts.Preemption))
		o.SetSeed(opts.Seed)
		o.SetManualClock(opts.ManualClock)
	}
	raw := capi.NewScheduler(o, pool.raw)
	runtime.KeepAlive(pool)
	s = &Scheduler{native[capi.Scheduler]{raw: raw, free: capi.DeleteScheduler}, pool}
	runtime.SetFinalizer(s, (*Scheduler).Close)
	return s, nil
}

// Close frees the scheduler and its sequences in the pool. It is safe to call more than once.
func (s *Scheduler) Close() error {
	s.close()
	runtime.SetFinalizer(s, nil)
	return nil
}

func (s *Scheduler) do(fn func(capi.Scheduler)) error { return s.call(s, fn) }

// SetSessionStore attaches the session store under the pool (see kvcore/sched.h): a finished request with
// a Session saves its conversation's K/V there, admission restores a longer stored prefix from it, and
// PreemptSwap swaps preempted requests' K/V into it; nil detaches. Only while no request waits or runs
// (InvalidState); the pool must hold its K/V in host memory with a model shape. The native store stays
// alive while attached, even once the Store is closed or finalized.
func (s *Scheduler) SetSessionStore(store *Store) error {
	if store == nil {
		return s.do(func(c capi.Scheduler) { c.SetSessionStoreRaw(nil, true) })
	}
	if store.closed {
		return ErrClosed
	}
	err := s.do(func(c capi.Scheduler) { c.SetSessionStoreRaw(store.raw, false) })
	runtime.KeepAlive(store)
	return err
}

// Submit queues a request; a full queue is a QueueFull error, an id already held InvalidArgument.
func (s *Scheduler) Submit(r Request) error {
	return s.do(func(c capi.Scheduler) {
		withSequenceOptions(r.Keys, func(o capi.SequenceOptions) {
			c.SubmitRaw(r.ID, r.Prompt, int64(len(r.Prompt)), uint(r.MaxNewTokens), uint(r.Priority), r.Session, o)
		})
	})
}

// Cancel frees a waiting or running request now, or at the commit of the pending plan that holds it.
// NotFound for an unknown id, InvalidState for a finished one.
func (s *Scheduler) Cancel(id uint64) error {
	return s.do(func(c capi.Scheduler) { c.Cancel(id) })
}

// SetTime moves the manual clock (ManualClock only; never backwards), at microsecond resolution.
func (s *Scheduler) SetTime(now time.Duration) error {
	return s.do(func(c capi.Scheduler) { c.SetTimeUs(uint64(now / time.Microsecond)) })
}

// Step forms the next batch into plan and returns its entries (none: nothing to run, no commit needed). A
// plan with entries must be committed before the next step.
func (s *Scheduler) Step(plan *SchedPlan) (entries []PlanEntry, err error) {
	if plan == nil || plan.closed {
		return nil, ErrClosed
	}
	if err = s.do(func(c capi.Scheduler) { c.StepRaw(plan.raw) }); err != nil {
		return nil, err
	}
	return plan.Entries()
}

// Commit ends the step: sampled[i] is entry i's token (read where the entry samples; nil when none does),
// finished[i] ends entry i's request after its token (a stop token; nil: none). plan.Finished then lists
// the requests done.
func (s *Scheduler) Commit(plan *SchedPlan, sampled []int32, finished []bool) error {
	if plan == nil || plan.closed {
		return ErrClosed
	}
	var flags []byte
	if len(finished) != 0 {
		// A Go bool is one byte holding 0 or 1: the C API's flag array.
		flags = unsafe.Slice((*byte)(unsafe.Pointer(&finished[0])), len(finished))
	}
	err := s.do(func(c capi.Scheduler) {
		c.CommitRaw(plan.raw, sampled, int64(len(sampled)), flags, int64(len(flags)))
	})
	runtime.KeepAlive(plan)
	return err
}

// TakeOutput returns a finished request's output and forgets the request (its id is free again).
// NotFound for an unknown id, InvalidState before it finishes.
func (s *Scheduler) TakeOutput(id uint64) (out Output, err error) {
	err = s.do(func(c capi.Scheduler) {
		out.Reason = FinishReason(c.OutputReason(id))
		out.Session = c.OutputSession(id)
		out.Tokens = make([]int32, c.OutputSize(id))
		c.TakeOutputInto(id, out.Tokens, int64(len(out.Tokens)))
	})
	return out, err
}

// OutputSession is the session id a finished request was submitted with, before its output is taken.
func (s *Scheduler) OutputSession(id uint64) (session string, err error) {
	err = s.do(func(c capi.Scheduler) { session = c.OutputSession(id) })
	return session, err
}

// Gauges reads the scheduler's queue sizes.
func (s *Scheduler) Gauges() (g SchedGauges, err error) {
	err = s.do(func(c capi.Scheduler) {
		g = SchedGauges{Waiting: c.NumWaiting(), Running: c.NumRunning(), Outputs: c.NumOutputs()}
	})
	return g, err
}

// Snapshot returns the scheduler's statistics (component "sched"), its own in Stats.Metrics
// (sched_batch_size_avg, sched_queue_depth, sched_preemptions_total, ...).
func (s *Scheduler) Snapshot() (st *Stats, err error) {
	err = s.do(func(c capi.Scheduler) { st = statsFrom(c.Snapshot()) })
	return st, err
}

func (s *Scheduler) addTo(exposition capi.Exposition) error {
	return s.do(func(c capi.Scheduler) {
		raw := c.Snapshot()
		defer capi.DeleteStats(raw)
		exposition.Add(raw)
	})
}

// SchedPlan holds one step's batch; reuse it step after step.
type SchedPlan struct {
	native[capi.SchedPlan]
}

// NewSchedPlan makes an empty plan.
func NewSchedPlan() (p *SchedPlan, err error) {
	defer catch(&err)
	p = &SchedPlan{native[capi.SchedPlan]{raw: capi.NewSchedPlan(), free: capi.DeleteSchedPlan}}
	runtime.SetFinalizer(p, (*SchedPlan).Close)
	return p, nil
}

// Close frees the plan. It is safe to call more than once.
func (p *SchedPlan) Close() error {
	p.close()
	runtime.SetFinalizer(p, nil)
	return nil
}

func (p *SchedPlan) do(fn func(capi.SchedPlan)) error { return p.call(p, fn) }

// Entries copies the plan's entries with their arrays, in the plan's order.
func (p *SchedPlan) Entries() (entries []PlanEntry, err error) {
	err = p.do(func(c capi.SchedPlan) {
		entries = make([]PlanEntry, c.Count())
		for i := range entries {
			at := int64(i)
			n := c.EntryTokens(at)
			e := PlanEntry{RequestID: c.RequestId(at), NumComputed: int(c.NumComputed(at)), Samples: c.Samples(at),
				Tokens: make([]int32, n), Positions: make([]int64, n), Slots: make([]int64, n),
				BlockTable: make([]int32, c.BlockTableSize(at))}
			c.TokensInto(at, e.Tokens, n)
			c.PositionsInto(at, e.Positions, n)
			c.SlotsInto(at, e.Slots, n)
			c.BlockTableInto(at, e.BlockTable, int64(len(e.BlockTable)))
			entries[i] = e
		}
	})
	return entries, err
}

// NumTokens is the tokens to compute, all entries together.
func (p *SchedPlan) NumTokens() (n int, err error) {
	err = p.do(func(c capi.SchedPlan) { n = int(c.NumTokens()) })
	return n, err
}

// Preempted lists the requests the step preempted (requeued; their K/V recomputed, or kept in the session
// store when swapped).
func (p *SchedPlan) Preempted() (ids []uint64, err error) {
	err = p.do(func(c capi.SchedPlan) {
		ids = make([]uint64, c.PreemptedSize())
		c.PreemptedInto(ids, int64(len(ids)))
	})
	return ids, err
}

// Finished lists the requests the commit finished: take their outputs.
func (p *SchedPlan) Finished() (ids []uint64, err error) {
	err = p.do(func(c capi.SchedPlan) {
		ids = make([]uint64, c.FinishedSize())
		c.FinishedInto(ids, int64(len(ids)))
	})
	return ids, err
}
