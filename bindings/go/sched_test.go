// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeToken is the test's deterministic sampler: the token after position p.
func fakeToken(p int64) int32 { return int32(p*7) % 50 }

// schedRun steps and commits until nothing waits or runs, sampling fakeToken and setting the finished flag
// of stopAfter's requests at that many generated tokens; it returns the outputs taken and the entries seen.
func schedRun(t *testing.T, s *Scheduler, plan *SchedPlan, stopAfter map[uint64]int, outputs map[uint64]Output,
	seen map[uint64][]PlanEntry) (steps int) {
	t.Helper()
	generated := map[uint64]int{}
	for ; steps < 100; steps++ {
		g, err := s.Gauges()
		must(t, err)
		if g.Waiting+g.Running == 0 {
			return steps
		}
		entries, err := s.Step(plan)
		must(t, err)
		sampled := make([]int32, len(entries))
		finished := make([]bool, len(entries))
		for i, e := range entries {
			seen[e.RequestID] = append(seen[e.RequestID], e)
			for j, slot := range e.Slots {
				if int64(e.BlockTable[e.Positions[j]/4]) != slot/4 || e.Positions[j] != int64(e.NumComputed+j) {
					t.Fatalf("entry %+v: token %d's slot is not its block table's", e, j)
				}
			}
			if e.Samples {
				sampled[i] = fakeToken(e.Positions[len(e.Positions)-1])
				generated[e.RequestID]++
				finished[i] = generated[e.RequestID] == stopAfter[e.RequestID]
			}
		}
		must(t, s.Commit(plan, sampled, finished))
		done, err := plan.Finished()
		must(t, err)
		for _, id := range done {
			out, err := s.TakeOutput(id)
			must(t, err)
			outputs[id] = out
		}
	}
	t.Fatalf("requests still running after %d steps", steps)
	return steps
}

func TestSchedulerEngineLoop(t *testing.T) {
	pool, err := NewPool(&PoolOptions{NumBlocks: 17, BlockSize: 4})
	must(t, err)
	defer pool.Close()
	s, err := NewScheduler(pool, &SchedOptions{MaxBatchSequences: 4, MaxBatchTokens: 32, ManualClock: true})
	must(t, err)
	defer s.Close()
	plan, err := NewSchedPlan()
	must(t, err)
	defer plan.Close()

	a := tokenRange(12, 1)
	b := append(tokenRange(8, 1), 500, 501, 502) // shares a's first 2 blocks
	c := tokenRange(7, 100)
	outputs, seen := map[uint64]Output{}, map[uint64][]PlanEntry{}
	must(t, s.Submit(Request{ID: 1, Prompt: a, MaxNewTokens: 5, Session: "chat-a"}))
	// a's prefill is committed before b arrives: its blocks are in the prefix cache by then.
	entries, err := s.Step(plan)
	must(t, err)
	if len(entries) != 1 || len(entries[0].Tokens) != 12 || !entries[0].Samples {
		t.Fatalf("first step %+v", entries)
	}
	must(t, s.Commit(plan, []int32{fakeToken(11)}, nil))
	must(t, s.Submit(Request{ID: 2, Prompt: b, MaxNewTokens: 4, Priority: 1}))
	must(t, s.Submit(Request{ID: 3, Prompt: c, MaxNewTokens: 6, Keys: &SequenceOptions{CacheSalt: "tenant"}}))
	steps := 1 + schedRun(t, s, plan, map[uint64]int{3: 3}, outputs, seen)

	want := map[uint64]struct {
		prompt int
		n      int
		reason FinishReason
	}{1: {12, 5, FinishLength}, 2: {11, 4, FinishLength}, 3: {7, 3, FinishStop}}
	for id, w := range want {
		out, ok := outputs[id]
		if !ok || len(out.Tokens) != w.n || out.Reason != w.reason {
			t.Fatalf("request %d: output %+v, want %d tokens, reason %d", id, out, w.n, w.reason)
		}
		for k, token := range out.Tokens { // token k was sampled after position prompt-1+k
			if token != fakeToken(int64(w.prompt-1+k)) {
				t.Fatalf("request %d: token %d is %d", id, k, token)
			}
		}
	}
	if outputs[1].Session != "chat-a" || outputs[2].Session != "" {
		t.Fatalf("sessions %q %q", outputs[1].Session, outputs[2].Session)
	}
	if first := seen[2][0]; first.NumComputed != 8 || len(first.Tokens) != 3 {
		t.Fatalf("b's first entry computes %d tokens after %d: its shared prefix was not reused", len(first.Tokens),
			first.NumComputed)
	}
	g, err := s.Gauges()
	must(t, err)
	pg, err := pool.Gauges()
	must(t, err)
	if g != (SchedGauges{}) || pg.BlocksInUse != 0 || pg.Sequences != 0 {
		t.Fatalf("after the loop: %+v, pool %+v", g, pg)
	}
	st, err := s.Snapshot()
	must(t, err)
	if st.Component != "sched" || st.TokensQueried != 30 || st.TokensHit != 8 {
		t.Fatalf("snapshot %s: queried %d, hit %d", st.Component, st.TokensQueried, st.TokensHit)
	}
	if st.Metrics["sched_requests_finished_total"] != 3 || st.Metrics["sched_steps_total"] != float64(steps) ||
		st.Metrics["sched_batch_size_avg"] <= 1 || st.Metrics["sched_queue_depth"] != 0 {
		t.Fatalf("metrics after %d steps: %v", steps, st.Metrics)
	}
	if !strings.Contains(st.Prometheus, "kvcore_sched_steps_total{component=\"sched\"}") {
		t.Fatalf("prometheus:\n%s", st.Prometheus)
	}
	if text, err := PrometheusText(pool, s); err != nil || !strings.Contains(text, "kvcore_sched_running{component=\"sched\"} 0") {
		t.Fatalf("one scrape of the pool and the scheduler: %v\n%s", err, text)
	}
	if ps, err := pool.Snapshot(); err != nil || ps.Metrics != nil {
		t.Fatalf("a pool has no named metrics: %v %v", ps.Metrics, err)
	}
}

func TestSchedulerQueueCancelAndErrors(t *testing.T) {
	pool, err := NewPool(&PoolOptions{NumBlocks: 17, BlockSize: 4})
	must(t, err)
	defer pool.Close()
	if _, err := NewScheduler(pool, &SchedOptions{MaxBatchTokens: 1 << 25}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("2^25 batch tokens: %v", err)
	}
	if _, err := NewScheduler(pool, &SchedOptions{Policy: 7}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("policy 7: %v", err)
	}
	s, err := NewScheduler(pool, &SchedOptions{MaxQueue: 1})
	must(t, err)
	defer s.Close()
	plan, err := NewSchedPlan()
	must(t, err)
	defer plan.Close()

	if err := s.SetTime(5); !IsStatus(err, InvalidState) {
		t.Fatalf("the monotonic clock set: %v", err)
	}
	must(t, s.Submit(Request{ID: 7, Prompt: tokenRange(5, 1), MaxNewTokens: 2}))
	if err := s.Submit(Request{ID: 8, Prompt: tokenRange(5, 1), MaxNewTokens: 2}); !IsStatus(err, QueueFull) {
		t.Fatalf("a second request in a queue of 1: %v", err)
	}
	if _, err := s.TakeOutput(7); !IsStatus(err, InvalidState) {
		t.Fatalf("the output of a waiting request: %v", err)
	}
	must(t, s.Cancel(7))
	if err := s.Cancel(7); !IsStatus(err, NotFound) {
		t.Fatalf("cancelled twice: %v", err)
	}
	for _, bad := range []Request{{ID: 9, MaxNewTokens: 2}, {ID: 9, Prompt: []int32{1}, MaxNewTokens: 0},
		{ID: 9, Prompt: []int32{-1}, MaxNewTokens: 2}} {
		if err := s.Submit(bad); !IsStatus(err, InvalidArgument) {
			t.Fatalf("submit %+v: %v", bad, err)
		}
	}
	must(t, s.Submit(Request{ID: 9, Prompt: tokenRange(5, 1), MaxNewTokens: 2}))
	if err := s.Submit(Request{ID: 11, Prompt: tokenRange(5, 1), MaxNewTokens: 2}); !IsStatus(err, QueueFull) {
		t.Fatalf("queue bound: %v", err)
	}
	entries, err := s.Step(plan)
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("entries %+v", entries)
	}
	if _, err := s.Step(plan); !IsStatus(err, InvalidState) {
		t.Fatalf("a step before the commit: %v", err)
	}
	if err := s.Submit(Request{ID: 9, Prompt: tokenRange(5, 1), MaxNewTokens: 2}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("an id already held (running): %v", err)
	}
	must(t, s.Submit(Request{ID: 10, Prompt: tokenRange(5, 1), MaxNewTokens: 2})) // the queue is free again
	if err := s.Commit(plan, nil, nil); !IsStatus(err, InvalidArgument) {
		t.Fatalf("a commit without the sampled token: %v", err)
	}
	must(t, s.Cancel(9)) // in the pending plan: its commit drops it
	must(t, s.Cancel(10))
	must(t, s.Commit(plan, []int32{3}, nil))
	if ids, err := plan.Finished(); err != nil || len(ids) != 0 {
		t.Fatalf("finished %v %v", ids, err)
	}
	if _, err := s.TakeOutput(9); !IsStatus(err, NotFound) {
		t.Fatalf("a cancelled request's output: %v", err)
	}
	st, err := s.Snapshot()
	must(t, err)
	if st.Metrics["sched_requests_cancelled_total"] != 3 || st.Metrics["sched_requests_rejected_total"] < 2 {
		t.Fatalf("metrics %v", st.Metrics)
	}
	if pg, _ := pool.Gauges(); pg.BlocksInUse != 0 {
		t.Fatalf("cancelled requests hold %d blocks", pg.BlocksInUse)
	}
	must(t, plan.Close())
	if _, err := s.Step(plan); err != ErrClosed {
		t.Fatalf("a closed plan: %v", err)
	}
}

func TestSchedulerOutlivesAClosedPool(t *testing.T) {
	pool, err := NewPool(&PoolOptions{NumBlocks: 9, BlockSize: 4})
	must(t, err)
	s, err := NewScheduler(pool, nil)
	must(t, err)
	defer s.Close()
	plan, err := NewSchedPlan()
	must(t, err)
	defer plan.Close()
	must(t, pool.Close()) // the native pool stays until its scheduler goes
	if _, err := NewScheduler(pool, nil); err != ErrClosed {
		t.Fatalf("a scheduler over a closed pool: %v", err)
	}
	must(t, s.Submit(Request{ID: 1, Prompt: tokenRange(6, 1), MaxNewTokens: 2}))
	outputs := map[uint64]Output{}
	schedRun(t, s, plan, nil, outputs, map[uint64][]PlanEntry{})
	if len(outputs[1].Tokens) != 2 {
		t.Fatalf("outputs %+v", outputs)
	}
}

// The session store tests run an engine over a host pool with a model shape: each step checks that every
// position before an entry's first holds the K/V written for its token there (what attention would read),
// then writes the entry's K/V at its slots, so a restore or swap that copies wrong K/V is caught.
const (
	kvBlock   = 4
	kvHeadDim = 4
)

var kvShape = ModelShape{Layers: 1, KVHeads: 1, HeadDim: kvHeadDim, DType: F32}

// kvValue is the fake forward's element e of the K (kv 0) or V (kv 1) row of token at pos.
func kvValue(token int32, pos, kv, e int) float32 {
	return float32((int(token)*31+pos*7+kv*11+e*3)%101) + 0.5*float32(kv)
}

// kvEngine is an engine over a pool's host storage; tokens holds each request's prompt and samples.
type kvEngine struct {
	t      *testing.T
	s      *Scheduler
	plan   *SchedPlan
	layout *KvLayout
	k, v   uintptr
	tokens map[uint64][]int32
	first  map[uint64]int // each request's first entry's NumComputed
	bad    int            // positions that held wrong K/V
}

func newKVEngine(t *testing.T, pool *Pool, s *Scheduler) *kvEngine {
	g, err := pool.Gauges()
	must(t, err)
	layout, err := NewKvLayout(KvShape{Layers: 1, NumBlocks: g.NumBlocks, BlockSize: kvBlock, KVHeads: 1,
		HeadDim: kvHeadDim, DType: F32})
	must(t, err)
	t.Cleanup(func() { layout.Close() })
	base, bytesPerBlock, err := pool.Storage()
	must(t, err)
	must(t, layout.SetStrides(bytesPerBlock, 2*layout.BlockBytes()))
	plan, err := NewSchedPlan()
	must(t, err)
	t.Cleanup(func() { plan.Close() })
	return &kvEngine{t: t, s: s, plan: plan, layout: layout, k: base, v: base + uintptr(layout.BlockBytes()),
		tokens: map[uint64][]int32{}, first: map[uint64]int{}}
}

func (e *kvEngine) submit(r Request) {
	must(e.t, e.s.Submit(r))
	e.tokens[r.ID] = append([]int32(nil), r.Prompt...)
}

// step runs one step and commits it; it returns the requests the step preempted.
func (e *kvEngine) step() (preempted []uint64) {
	t := e.t
	entries, err := e.s.Step(e.plan)
	must(t, err)
	sampled := make([]int32, len(entries))
	for i, entry := range entries {
		tokens := e.tokens[entry.RequestID]
		if _, seen := e.first[entry.RequestID]; !seen {
			e.first[entry.RequestID] = entry.NumComputed
		}
		if n := entry.NumComputed; n > 0 {
			keys, values := make([]float32, n*kvHeadDim), make([]float32, n*kvHeadDim)
			must(t, e.layout.GatherAt(0, e.k, e.v, entry.BlockTable, len(entry.BlockTable), []int32{int32(n)}, keys,
				values))
			for pos := 0; pos < n; pos++ {
				for x := 0; x < kvHeadDim; x++ {
					if keys[pos*kvHeadDim+x] != kvValue(tokens[pos], pos, 0, x) ||
						values[pos*kvHeadDim+x] != kvValue(tokens[pos], pos, 1, x) {
						e.bad++
						break
					}
				}
			}
		}
		keys, values := make([]float32, len(entry.Tokens)*kvHeadDim), make([]float32, len(entry.Tokens)*kvHeadDim)
		for j, token := range entry.Tokens {
			for x := 0; x < kvHeadDim; x++ {
				keys[j*kvHeadDim+x] = kvValue(token, int(entry.Positions[j]), 0, x)
				values[j*kvHeadDim+x] = kvValue(token, int(entry.Positions[j]), 1, x)
			}
		}
		must(t, e.layout.WriteAt(0, e.k, e.v, keys, values, entry.Slots))
		if entry.Samples {
			sampled[i] = fakeToken(entry.Positions[len(entry.Positions)-1])
			e.tokens[entry.RequestID] = append(tokens, sampled[i])
		}
	}
	must(t, e.s.Commit(e.plan, sampled, nil))
	done, err := e.plan.Finished()
	must(t, err)
	for _, id := range done {
		out, err := e.s.TakeOutput(id)
		must(t, err)
		if got := e.tokens[id][len(e.tokens[id])-len(out.Tokens):]; !sameElements(got, out.Tokens) {
			t.Fatalf("request %d: output %v, sampled %v", id, out.Tokens, got)
		}
	}
	preempted, err = e.plan.Preempted()
	must(t, err)
	return preempted
}

// drain steps until nothing waits or runs.
func (e *kvEngine) drain() {
	for steps := 0; steps < 200; steps++ {
		g, err := e.s.Gauges()
		must(e.t, err)
		if g.Waiting+g.Running == 0 {
			return
		}
		e.step()
	}
	e.t.Fatal("requests still running after 200 steps")
}

// checkGenerated checks that request id generated n tokens after its prompt of promptLen, each the sampler's.
func (e *kvEngine) checkGenerated(id uint64, promptLen, n int) {
	tokens := e.tokens[id]
	if len(tokens) != promptLen+n {
		e.t.Fatalf("request %d: %d tokens, want %d", id, len(tokens), promptLen+n)
	}
	for k := promptLen; k < len(tokens); k++ {
		if tokens[k] != fakeToken(int64(k-1)) {
			e.t.Fatalf("request %d: token %d is %d", id, k, tokens[k])
		}
	}
}

// chatTurns runs turn 1 of session "chat" (10 tokens, 4 new), other traffic that takes every block of the
// 8-block pool, then turn 2 (the conversation and 5 new tokens, 3 new); it returns turn 2's first
// NumComputed: the tokens restored from the store.
func (e *kvEngine) chatTurns(first uint64) int {
	e.submit(Request{ID: first, Prompt: tokenRange(10, 100), MaxNewTokens: 4, Session: "chat"})
	e.drain()
	e.checkGenerated(first, 10, 4)
	e.submit(Request{ID: first + 1, Prompt: tokenRange(28, 500), MaxNewTokens: 2})
	e.drain()
	turn2 := append(append([]int32(nil), e.tokens[first]...), tokenRange(5, 900)...)
	e.submit(Request{ID: first + 2, Prompt: turn2, MaxNewTokens: 3, Session: "chat"})
	e.drain()
	e.checkGenerated(first+2, 19, 3)
	if e.bad != 0 {
		e.t.Fatalf("%d positions held wrong K/V", e.bad)
	}
	return e.first[first+2]
}

// smallStore bounds its bytes: the store sizes its block pool from that bound.
func smallStore(t *testing.T) *Store {
	store, err := NewStore(&StoreOptions{MaxBytesTotal: 1 << 20})
	must(t, err)
	return store
}

func hostPool(t *testing.T) *Pool {
	pool, err := NewPool(&PoolOptions{NumBlocks: 9, BlockSize: kvBlock, Shape: &kvShape, Memory: HostMemory})
	must(t, err)
	return pool
}

func TestSchedulerSessionStoreAndSwap(t *testing.T) {
	pool := hostPool(t)
	defer pool.Close()
	store := smallStore(t)
	defer store.Close()
	s, err := NewScheduler(pool, &SchedOptions{ManualClock: true, Preemption: PreemptSwap})
	must(t, err)
	defer s.Close()
	must(t, s.SetSessionStore(store))
	e := newKVEngine(t, pool, s)

	// Turn 2 finds turn 1's 13 computed tokens (10 prompt, 3 of the 4 sampled) in the store, not in the pool.
	if restored := e.chatTurns(1); restored != 13 {
		t.Fatalf("turn 2 starts after %d tokens, want the 13 restored", restored)
	}
	st, err := s.Snapshot()
	must(t, err)
	if st.Metrics["sched_store_restored_tokens_total"] != 13 || st.Metrics["sched_store_saved_tokens_total"] != 21 ||
		st.Metrics["sched_store_save_failures_total"] != 0 {
		t.Fatalf("store metrics after two turns: %v", st.Metrics)
	}

	// Swap: three requests of 3 tokens growing to 15 need 12 blocks of 8; the least important is swapped out.
	for i := uint64(0); i < 3; i++ {
		priority := uint32(1)
		if i == 0 {
			priority = 5
		}
		e.submit(Request{ID: 10 + i, Prompt: tokenRange(3, int32(10*(i+1))), MaxNewTokens: 12, Priority: priority})
	}
	var preempted []uint64
	for steps := 0; steps < 100 && len(preempted) == 0; steps++ {
		preempted = e.step()
	}
	if len(preempted) != 1 || preempted[0] == 10 {
		t.Fatalf("preempted %v: want one request of priority 1", preempted)
	}
	if g, _ := store.Gauges(); g.Sessions != 2 {
		t.Fatalf("%d store sessions: want the chat and the swap", g.Sessions)
	}
	if err := s.SetSessionStore(nil); !IsStatus(err, InvalidState) {
		t.Fatalf("detaching while requests run: %v", err)
	}
	e.drain()
	for i := uint64(0); i < 3; i++ {
		e.checkGenerated(10+i, 3, 12)
	}
	if e.bad != 0 {
		t.Fatalf("%d positions held wrong K/V after the swap", e.bad)
	}
	st, err = s.Snapshot()
	must(t, err)
	if st.Metrics["sched_swapped_out_tokens_total"] <= 0 || st.Metrics["sched_swap_failures_total"] != 0 ||
		st.Metrics["sched_preemptions_total"] < 1 {
		t.Fatalf("swap metrics: %v", st.Metrics)
	}
	if g, _ := store.Gauges(); g.Sessions != 1 {
		t.Fatalf("%d store sessions after the swap: want the chat only", g.Sessions)
	}
	must(t, s.SetSessionStore(nil))
}

func TestSchedulerSessionStoreErrors(t *testing.T) {
	pool := hostPool(t)
	defer pool.Close()
	store := smallStore(t)
	defer store.Close()
	swap, err := NewScheduler(pool, &SchedOptions{Preemption: PreemptSwap})
	must(t, err)
	defer swap.Close()
	if err := swap.Submit(Request{ID: 1, Prompt: tokenRange(5, 1), MaxNewTokens: 2}); !IsStatus(err, InvalidState) {
		t.Fatalf("swap without a store: %v", err)
	}
	s, err := NewScheduler(pool, nil)
	must(t, err)
	defer s.Close()
	must(t, s.Submit(Request{ID: 1, Prompt: tokenRange(5, 1), MaxNewTokens: 2}))
	if err := s.SetSessionStore(store); !IsStatus(err, InvalidState) {
		t.Fatalf("attaching while a request waits: %v", err)
	}
	must(t, s.Cancel(1))
	must(t, s.SetSessionStore(store))
	must(t, s.SetSessionStore(nil))

	meta, err := NewPool(&PoolOptions{NumBlocks: 9, BlockSize: kvBlock})
	must(t, err)
	defer meta.Close()
	m, err := NewScheduler(meta, nil)
	must(t, err)
	defer m.Close()
	if err := m.SetSessionStore(store); !IsStatus(err, InvalidArgument) {
		t.Fatalf("a store under a metadata-only pool: %v", err)
	}
	closed, err := NewStore(nil)
	must(t, err)
	must(t, closed.Close())
	if err := s.SetSessionStore(closed); err != ErrClosed {
		t.Fatalf("a closed store: %v", err)
	}
}

// A store closed while attached, or dropped and finalized, lives on under its scheduler.
func TestSchedulerKeepsItsStore(t *testing.T) {
	pool := hostPool(t)
	defer pool.Close()
	s, err := NewScheduler(pool, &SchedOptions{ManualClock: true})
	must(t, err)
	defer s.Close()
	e := newKVEngine(t, pool, s)

	store := smallStore(t)
	must(t, s.SetSessionStore(store))
	must(t, store.Close())
	if restored := e.chatTurns(1); restored != 13 {
		t.Fatalf("a closed store restored %d tokens", restored)
	}
	must(t, s.SetSessionStore(nil)) // the closed store is freed here

	finalized := make(chan struct{})
	func() {
		dropped := smallStore(t)
		must(t, s.SetSessionStore(dropped))
		runtime.SetFinalizer(dropped, nil) // the finalizer that Close would have been, made observable
		runtime.SetFinalizer(dropped, func(st *Store) {
			st.Close()
			close(finalized)
		})
	}()
	for tries := 0; ; tries++ {
		runtime.GC()
		select {
		case <-finalized:
		case <-time.After(10 * time.Millisecond):
			if tries < 100 {
				continue
			}
			t.Fatal("the dropped store was never finalized")
		}
		break
	}
	if restored := e.chatTurns(10); restored != 13 {
		t.Fatalf("a finalized store restored %d tokens", restored)
	}
	st, err := s.Snapshot()
	must(t, err)
	if st.Metrics["sched_store_restored_tokens_total"] != 26 {
		t.Fatalf("restored %v tokens over both stores", st.Metrics["sched_store_restored_tokens_total"])
	}
}
