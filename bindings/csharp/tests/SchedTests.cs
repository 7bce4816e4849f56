// SPDX-License-Identifier: Apache-2.0
// The C# binding's scheduler tests: an engine loop over a small pool with a deterministic fake sampler (three
// requests, one reusing another's cached prefix, one stopped by its finished flag), the queue bound, cancel,
// bad arguments, the named metrics, a scheduler that outlives its closed pool; then a session store under a host
// pool (a conversation restored after eviction, swap preemption, the errors) and one disposed or finalized while
// attached.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using Kvcore;
using static Expect;

static class SchedTests {
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

  // ---- the session store: an engine over a host pool with a model shape. Each step checks that every position
  // before an entry's first holds the K/V written for its token there (what attention would read), then writes
  // the entry's K/V at its slots, so a restore or swap that copies wrong K/V is caught. ----
  const uint KvBlock = 4, HeadDim = 4;

  // The fake forward's element e of the K (kv 0) or V (kv 1) row of token at pos.
  static float KvValue(int token, long pos, int kv, int e) {
    return (float)((token * 31 + pos * 7 + kv * 11 + e * 3) % 101) + 0.5f * kv;
  }

  sealed class KvEngine : IDisposable {
    readonly Scheduler s;
    readonly SchedPlan plan = new SchedPlan();
    readonly KvLayout layout;
    readonly IntPtr k, v;
    public readonly Dictionary<ulong, List<int>> Tokens = new Dictionary<ulong, List<int>>();  // prompt, samples
    public readonly Dictionary<ulong, ulong> First = new Dictionary<ulong, ulong>();  // first entry's NumComputed
    public int Bad;  // positions that held wrong K/V

    public KvEngine(Pool pool, Scheduler s) {
      this.s = s;
      layout = new KvLayout(1, pool.NumBlocks(), KvBlock, 1, HeadDim, DType.F32);
      layout.SetStrides(pool.BytesPerBlock(), 2 * layout.BlockBytes());
      k = new IntPtr((long)pool.StorageAddress());
      v = new IntPtr((long)(pool.StorageAddress() + layout.BlockBytes()));
    }

    public void Dispose() {
      plan.Dispose();
      layout.Dispose();
    }

    public void Submit(ulong id, int[] prompt, uint maxNewTokens, uint priority = 0, string session = null) {
      s.Submit(id, prompt, maxNewTokens, priority, session);
      Tokens[id] = new List<int>(prompt);
    }

    // One step, committed; returns the requests it preempted.
    public ulong[] Step() {
      SchedEntry[] entries = s.Step(plan);
      var sampled = new int[entries.Length];
      for (int i = 0; i < entries.Length; i++) {
        SchedEntry e = entries[i];
        List<int> tokens = Tokens[e.RequestId];
        if (!First.ContainsKey(e.RequestId)) First[e.RequestId] = e.NumComputed;
        int n = (int)e.NumComputed;
        if (n > 0) {
          float[] keys = new float[n * HeadDim], values = new float[n * HeadDim];
          layout.Gather(0, k, v, e.BlockTable, (uint)e.BlockTable.Length, new[] { n }, keys, values);
          for (int pos = 0; pos < n; pos++) {
            for (int x = 0; x < HeadDim; x++) {
              if (keys[pos * HeadDim + x] == KvValue(tokens[pos], pos, 0, x) &&
                  values[pos * HeadDim + x] == KvValue(tokens[pos], pos, 1, x)) continue;
              Bad++;
              break;
            }
          }
        }
        float[] rowsK = new float[e.Tokens.Length * HeadDim], rowsV = new float[e.Tokens.Length * HeadDim];
        for (int j = 0; j < e.Tokens.Length; j++) {
          for (int x = 0; x < HeadDim; x++) {
            rowsK[j * HeadDim + x] = KvValue(e.Tokens[j], e.Positions[j], 0, x);
            rowsV[j * HeadDim + x] = KvValue(e.Tokens[j], e.Positions[j], 1, x);
          }
        }
        layout.Write(0, k, v, rowsK, rowsV, e.Slots);
        if (!e.Samples) continue;
        sampled[i] = FakeToken(e.Positions[e.Positions.Length - 1]);
        tokens.Add(sampled[i]);
      }
      s.Commit(plan, sampled);
      foreach (ulong id in plan.Finished()) {
        SchedOutput output = s.TakeOutput(id);
        List<int> tokens = Tokens[id];
        True(output.Tokens.SequenceEqual(tokens.Skip(tokens.Count - output.Tokens.Length)), "request " + id + "'s output");
      }
      return plan.Preempted();
    }

    public void Drain() {
      for (int steps = 0; steps < 200; steps++) {
        if (s.NumWaiting() + s.NumRunning() == 0) return;
        Step();
      }
      throw new Exception("requests still running after 200 steps");
    }

    // Request id generated n tokens after its prompt of promptLength, each the sampler's.
    public void CheckGenerated(ulong id, int promptLength, int n) {
      List<int> tokens = Tokens[id];
      Equal(promptLength + n, tokens.Count, "request " + id + "'s tokens");
      for (int p = promptLength; p < tokens.Count; p++) Equal(FakeToken(p - 1), tokens[p], "request " + id + "'s token " + p);
    }

    // Turn 1 of session "chat" (10 tokens, 4 new), other traffic that takes every block of the 8-block pool, then
    // turn 2 (the conversation and 5 new tokens, 3 new); returns turn 2's first NumComputed: the tokens restored.
    public ulong ChatTurns(ulong first) {
      Submit(first, Range(100, 10), 4, 0, "chat");
      Drain();
      CheckGenerated(first, 10, 4);
      Submit(first + 1, Range(500, 28), 2);
      Drain();
      Submit(first + 2, Tokens[first].Concat(Range(900, 5)).ToArray(), 3, 0, "chat");
      Drain();
      CheckGenerated(first + 2, 19, 3);
      Equal(0, Bad, "positions that held wrong K/V");
      return First[first + 2];
    }
  }

  static Pool HostPool() {
    using (var options = new PoolOptions()) {
      options.SetNumBlocks(9);  // 8 usable
      options.SetBlockSize(KvBlock);
      options.SetModelShape(1, 1, HeadDim, DType.F32);
      options.SetMemory(Memory.HOST);
      return new Pool(options);
    }
  }

  // The store sizes its block pool from its byte bound: a small one.
  static Store SmallStore() {
    using (var options = new StoreOptions()) {
      options.SetMaxBytesTotal(1 << 20);
      return new Store(options);
    }
  }

  static Scheduler ManualScheduler(Pool pool, PreemptionMode mode) {
    using (var options = new SchedOptions()) {
      options.SetManualClock(true);
      options.SetPreemption(mode);
      return new Scheduler(options, pool);
    }
  }

  static void SessionStoreAndSwap() {
    using (var pool = HostPool())
    using (var store = SmallStore())
    using (var s = ManualScheduler(pool, PreemptionMode.SWAP))
    using (var e = new KvEngine(pool, s)) {
      s.SetSessionStore(store);
      // Turn 2 finds turn 1's 13 computed tokens (10 prompt, 3 of the 4 sampled) in the store, not in the pool.
      Equal(13UL, e.ChatTurns(1), "tokens turn 2 restored");
      using (Stats st = s.Snapshot()) {
        Equal(13.0, st.Metric("sched_store_restored_tokens_total"), "restored");
        Equal(21.0, st.Metric("sched_store_saved_tokens_total"), "saved (13, then the 8 turn 2 added)");
        Equal(0.0, st.Metric("sched_store_save_failures_total"), "save failures");
      }

      // Swap: three requests of 3 tokens growing to 15 need 12 blocks of 8; the least important is swapped out.
      for (uint i = 0; i < 3; i++) e.Submit(10 + i, Range(10 * ((int)i + 1), 3), 12, i == 0 ? 5u : 1u);
      ulong[] preempted = new ulong[0];
      for (int steps = 0; steps < 100 && preempted.Length == 0; steps++) preempted = e.Step();
      Equal(1, preempted.Length, "preempted");
      True(preempted[0] != 10, "the priority-5 request runs on");
      Equal(2UL, store.NumSessions(), "the chat and the swap");
      Throws(() => s.SetSessionStore(null), Status.INVALID_STATE);  // requests wait and run
      e.Drain();
      for (uint i = 0; i < 3; i++) e.CheckGenerated(10 + i, 3, 12);
      Equal(0, e.Bad, "positions that held wrong K/V after the swap");
      using (Stats st = s.Snapshot()) {
        True(st.Metric("sched_swapped_out_tokens_total") > 0, "swapped out");
        Equal(0.0, st.Metric("sched_swap_failures_total"), "swap failures");
      }
      Equal(1UL, store.NumSessions(), "the chat only");
      s.SetSessionStore(null);
    }
  }

  static void SessionStoreErrors() {
    using (var pool = HostPool())
    using (var store = SmallStore()) {
      using (var swap = ManualScheduler(pool, PreemptionMode.SWAP))
        Throws(() => swap.Submit(1, Range(1, 5), 2), Status.INVALID_STATE);  // swap without a store
      using (var s = new Scheduler(pool)) {
        s.Submit(1, Range(1, 5), 2);
        Throws(() => s.SetSessionStore(store), Status.INVALID_STATE);  // a request waits
        s.Cancel(1);
        s.SetSessionStore(store);
        s.SetSessionStore(null);
        Store closed = SmallStore();
        closed.Dispose();
        Throws(() => s.SetSessionStore(closed), Status.INVALID_STATE);
      }
      using (var meta = SmallPool(9))
      using (var m = new Scheduler(meta))
        Throws(() => m.SetSessionStore(store), Status.INVALID_ARGUMENT);  // no K/V in host memory
    }
  }

  [MethodImpl(MethodImplOptions.NoInlining)]
  static WeakReference AttachDroppedStore(Scheduler s) {
    Store store = SmallStore();
    s.SetSessionStore(store);
    return new WeakReference(store);
  }

  [MethodImpl(MethodImplOptions.NoInlining)]
  static void DropEverything() {
    Pool pool = HostPool();
    Scheduler s = ManualScheduler(pool, PreemptionMode.SWAP);
    s.SetSessionStore(SmallStore());
    s.Submit(1, Range(1, 6), 2, 0, "chat");
  }

  // A store disposed while attached, or dropped and finalized, lives on under its scheduler; objects that become
  // unreachable together are finalized in any order.
  static void KeepsItsStore() {
    using (var pool = HostPool())
    using (var s = ManualScheduler(pool, PreemptionMode.RECOMPUTE))
    using (var e = new KvEngine(pool, s)) {
      Store store = SmallStore();
      s.SetSessionStore(store);
      store.Dispose();
      Equal(13UL, e.ChatTurns(1), "tokens a disposed store restored");
      s.SetSessionStore(null);  // the disposed store is freed here

      WeakReference dropped = AttachDroppedStore(s);
      for (int tries = 0; tries < 20 && dropped.IsAlive; tries++) {
        GC.Collect();
        GC.WaitForPendingFinalizers();
      }
      True(!dropped.IsAlive, "the dropped store was finalized");
      Equal(13UL, e.ChatTurns(10), "tokens a finalized store restored");
      using (Stats st = s.Snapshot()) Equal(26.0, st.Metric("sched_store_restored_tokens_total"), "restored");
    }
    for (int round = 0; round < 10; round++) {
      DropEverything();
      GC.Collect();
      GC.WaitForPendingFinalizers();
    }
  }

  static int Main() {
    EngineLoop();
    QueueCancelAndErrors();
    OutlivesAClosedPool();
    SessionStoreAndSwap();
    SessionStoreErrors();
    KeepsItsStore();
    Console.WriteLine("sched tests passed");
    return 0;
  }
}
