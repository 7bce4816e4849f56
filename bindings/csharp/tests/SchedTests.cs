// SPDX-License-Identifier: Apache-2.0
// The C# binding's scheduler tests: an engine loop over a small pool with a deterministic fake sampler (three
// requests, one reusing another's cached prefix, one stopped by its finished flag), the queue bound, cancel,
// bad arguments, the named metrics, and a scheduler that outlives its closed pool.
using System;
using System.Collections.Generic;
using System.Linq;
using Kvcore;

static class SchedTests {
  static void Equal<T>(T expected, T actual, string what) {
    if (!EqualityComparer<T>.Default.Equals(expected, actual))
      throw new Exception(what + ": expected " + expected + ", got " + actual);
  }

  static void True(bool condition, string what) {
    if (!condition) throw new Exception(what);
  }

  static void Throws(Action action, Status expected) {
    try {
      action();
    } catch (KvcoreException e) {
      Equal(expected, e.Status, "status of " + e.Message);
      return;
    }
    throw new Exception("expected KvcoreException(" + expected + ")");
  }

  static int[] Range(int first, int n) { return Enumerable.Range(first, n).ToArray(); }

  // The fake sampler: the token after position p.
  static int FakeToken(long p) { return (int)(p * 7 % 50); }

  static Pool SmallPool(uint blocks) {
    using (var options = new PoolOptions()) {
      options.SetNumBlocks(blocks);
      options.SetBlockSize(4);
      return new Pool(options);
    }
  }

  // Steps and commits until nothing waits or runs, setting the finished flag of stopAfter's requests at that
  // many generated tokens; returns the steps, the outputs taken and every entry seen by request.
  static int Run(Scheduler s, SchedPlan plan, Dictionary<ulong, int> stopAfter, Dictionary<ulong, SchedOutput> outputs,
                 Dictionary<ulong, List<SchedEntry>> seen) {
    var generated = new Dictionary<ulong, int>();
    for (int steps = 0; steps < 100; steps++) {
      if (s.NumWaiting() + s.NumRunning() == 0) return steps;
      SchedEntry[] entries = s.Step(plan);
      var sampled = new int[entries.Length];
      var finished = new bool[entries.Length];
      for (int i = 0; i < entries.Length; i++) {
        SchedEntry e = entries[i];
        if (!seen.ContainsKey(e.RequestId)) seen[e.RequestId] = new List<SchedEntry>();
        seen[e.RequestId].Add(e);
        for (int j = 0; j < e.Tokens.Length; j++) {
          Equal((long)e.NumComputed + j, e.Positions[j], "position");
          Equal((long)e.BlockTable[e.Positions[j] / 4], e.Slots[j] / 4, "slot's block");
        }
        if (!e.Samples) continue;
        sampled[i] = FakeToken(e.Positions[e.Positions.Length - 1]);
        generated[e.RequestId] = (generated.ContainsKey(e.RequestId) ? generated[e.RequestId] : 0) + 1;
        finished[i] = stopAfter.ContainsKey(e.RequestId) && stopAfter[e.RequestId] == generated[e.RequestId];
      }
      s.Commit(plan, sampled, finished);
      foreach (ulong id in plan.Finished()) outputs[id] = s.TakeOutput(id);
    }
    throw new Exception("requests still running after 100 steps");
  }

  static void EngineLoop() {
    using (var pool = SmallPool(17))
    using (var options = new SchedOptions())
    using (var plan = new SchedPlan()) {
      options.SetMaxBatchSequences(4);
      options.SetMaxBatchTokens(32);
      options.SetManualClock(true);
      using (var s = new Scheduler(options, pool))
      using (var keys = new SequenceOptions()) {
        int[] a = Range(1, 12);
        int[] b = Range(1, 8).Concat(new[] { 500, 501, 502 }).ToArray();  // shares a's first 2 blocks
        int[] c = Range(100, 7);
        s.Submit(1, a, 5, 0, "chat-a");
        // a's prefill is committed before b arrives: its blocks are in the prefix cache by then.
        SchedEntry[] first = s.Step(plan);
        Equal(1, first.Length, "first step's entries");
        Equal(12, first[0].Tokens.Length, "a's prefill");
        s.Commit(plan, new[] { FakeToken(11) });
        s.Submit(2, b, 4, 1);
        keys.SetCacheSalt("tenant");
        s.Submit(3, c, 6, 0, null, keys);
        var outputs = new Dictionary<ulong, SchedOutput>();
        var seen = new Dictionary<ulong, List<SchedEntry>>();
        int steps = 1 + Run(s, plan, new Dictionary<ulong, int> { { 3, 3 } }, outputs, seen);

        var want = new[] { Tuple.Create(1UL, 12, 5, FinishReason.LENGTH), Tuple.Create(2UL, 11, 4, FinishReason.LENGTH),
                           Tuple.Create(3UL, 7, 3, FinishReason.STOP) };
        foreach (var w in want) {
          SchedOutput output = outputs[w.Item1];
          Equal(w.Item3, output.Tokens.Length, "request " + w.Item1 + "'s tokens");
          Equal(w.Item4, output.Reason, "request " + w.Item1 + "'s reason");
          for (int k = 0; k < output.Tokens.Length; k++)  // token k was sampled after position prompt - 1 + k
            Equal(FakeToken(w.Item2 - 1 + k), output.Tokens[k], "request " + w.Item1 + "'s token " + k);
        }
        Equal("chat-a", outputs[1].Session, "a's session");
        Equal("", outputs[2].Session, "b's session");
        Equal(8UL, seen[2][0].NumComputed, "b's reused prefix");
        Equal(3, seen[2][0].Tokens.Length, "b's computed tokens");
        Equal(0UL, s.NumWaiting() + s.NumRunning() + s.NumOutputs(), "gauges after the loop");
        Equal(0u, pool.NumBlocksInUse(), "blocks in use after the loop");
        using (Stats st = s.Snapshot()) {
          Equal("sched", st.Component(), "component");
          Equal(30UL, st.TokensQueried(), "tokens queried");
          Equal(8UL, st.TokensHit(), "tokens hit");
          Dictionary<string, double> metrics = st.Metrics();
          Equal(3.0, metrics["sched_requests_finished_total"], "finished");
          Equal((double)steps, st.Metric("sched_steps_total"), "steps");
          True(metrics["sched_batch_size_avg"] > 1, "requests ran together");
          Equal(0.0, metrics["sched_queue_depth"], "queue depth");
          Throws(() => st.Metric("no_such_metric"), Status.NOT_FOUND);
          True(st.ToPrometheus().Contains("kvcore_sched_steps_total{component=\"sched\"}"), "prometheus");
        }
        using (Stats pooled = pool.Snapshot()) Equal(0, pooled.Metrics().Count, "a pool's named metrics");
      }
    }
  }

  static void QueueCancelAndErrors() {
    using (var pool = SmallPool(17))
    using (var plan = new SchedPlan()) {
      using (var options = new SchedOptions()) {
        Throws(() => options.SetMaxBatchTokens(1u << 25), Status.INVALID_ARGUMENT);
        Throws(() => options.SetMaxBatchSequences(0), Status.INVALID_ARGUMENT);
        Throws(() => options.SetPolicy((SchedPolicy)7, 0), Status.INVALID_ARGUMENT);
        options.SetPolicy(SchedPolicy.PRIORITY, 0);
        options.SetMaxQueue(1);
        using (var s = new Scheduler(options, pool)) {
          Throws(() => s.SetTimeUs(5), Status.INVALID_STATE);  // the monotonic clock
          s.Submit(7, Range(1, 5), 2);
          Throws(() => s.Submit(8, Range(1, 5), 2), Status.QUEUE_FULL);
          Equal("KVC_ERR_QUEUE_FULL", Library.StatusString(Status.QUEUE_FULL), "status string");
          Throws(() => s.TakeOutput(7), Status.INVALID_STATE);
          s.Cancel(7);
          Throws(() => s.Cancel(7), Status.NOT_FOUND);
          Throws(() => s.Submit(9, new int[0], 2), Status.INVALID_ARGUMENT);
          Throws(() => s.Submit(9, new[] { 1 }, 0), Status.INVALID_ARGUMENT);
          Throws(() => s.Submit(9, new[] { -1 }, 2), Status.INVALID_ARGUMENT);
          try {
            s.Submit(9, null, 2);
            throw new Exception("a null prompt was accepted");
          } catch (ArgumentNullException) {
          }
          s.Submit(9, Range(1, 5), 2);
          Throws(() => s.Submit(11, Range(1, 5), 2), Status.QUEUE_FULL);
          Equal(1, s.Step(plan).Length, "entries");
          Throws(() => s.Step(plan), Status.INVALID_STATE);  // before the commit
          Throws(() => s.Submit(9, Range(1, 5), 2), Status.INVALID_ARGUMENT);  // running
          s.Submit(10, Range(1, 5), 2);  // the queue is free again
          Throws(() => s.Commit(plan, null), Status.INVALID_ARGUMENT);  // the entry samples
          s.Cancel(9);  // in the pending plan: its commit drops it
          s.Cancel(10);
          s.Commit(plan, new[] { 3 });
          Equal(0, plan.Finished().Length, "finished");
          Throws(() => s.TakeOutput(9), Status.NOT_FOUND);
          using (Stats st = s.Snapshot()) {
            Equal(3.0, st.Metric("sched_requests_cancelled_total"), "cancelled");
            True(st.Metric("sched_requests_rejected_total") >= 2, "rejected");
          }
          Equal(0u, pool.NumBlocksInUse(), "blocks of cancelled requests");
          plan.Dispose();
          Throws(() => s.Step(plan), Status.INVALID_STATE);
        }
      }
    }
  }

  static void OutlivesAClosedPool() {
    Pool pool = SmallPool(9);
    using (var s = new Scheduler(pool))
    using (var plan = new SchedPlan()) {
      pool.Dispose();  // the native pool stays until its scheduler goes
      Throws(() => new Scheduler(pool), Status.INVALID_STATE);
      s.Submit(1, Range(1, 6), 2);
      var outputs = new Dictionary<ulong, SchedOutput>();
      Run(s, plan, new Dictionary<ulong, int>(), outputs, new Dictionary<ulong, List<SchedEntry>>());
      Equal(2, outputs[1].Tokens.Length, "tokens");
    }
  }

  static int Main() {
    EngineLoop();
    QueueCancelAndErrors();
    OutlivesAClosedPool();
    Console.WriteLine("sched tests passed");
    return 0;
  }
}
