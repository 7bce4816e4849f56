// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"strings"
	"testing"
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
