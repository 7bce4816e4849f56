// SPDX-License-Identifier: Apache-2.0
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.kvcore.FinishReason;
import org.kvcore.KvcoreException;
import org.kvcore.Library;
import org.kvcore.Pool;
import org.kvcore.PoolOptions;
import org.kvcore.SchedEntry;
import org.kvcore.SchedOptions;
import org.kvcore.SchedOutput;
import org.kvcore.SchedPlan;
import org.kvcore.SchedPolicy;
import org.kvcore.Scheduler;
import org.kvcore.SequenceOptions;
import org.kvcore.Stats;
import org.kvcore.Status;

/**
 * The Java binding's scheduler tests: an engine loop over a small pool with a deterministic fake sampler (three
 * requests, one reusing another's cached prefix, one stopped by its finished flag), the queue bound, cancel, bad
 * arguments, the named metrics, and a scheduler that outlives its closed pool.
 */
public class SchedTest {
  static void equal(Object expected, Object actual, String what) {
    if (!expected.equals(actual)) {
      throw new AssertionError(what + ": expected " + expected + ", got " + actual);
    }
  }

  static void check(boolean condition, String what) {
    if (!condition) {
      throw new AssertionError(what);
    }
  }

  static void throwsStatus(Runnable action, Status expected) {
    try {
      action.run();
    } catch (KvcoreException e) {
      equal(expected, e.getStatus(), "status of " + e.getMessage());
      return;
    }
    throw new AssertionError("expected KvcoreException(" + expected + ")");
  }

  static int[] range(int first, int n) {
    int[] tokens = new int[n];
    for (int i = 0; i < n; i++) {
      tokens[i] = first + i;
    }
    return tokens;
  }

  /** The fake sampler: the token after position p. */
  static int fakeToken(long p) {
    return (int) (p * 7 % 50);
  }

  static Pool smallPool(int blocks) {
    try (PoolOptions options = new PoolOptions()) {
      options.setNumBlocks(blocks);
      options.setBlockSize(4);
      return new Pool(options);
    }
  }

  /**
   * Steps and commits until nothing waits or runs, setting the finished flag of stopAfter's requests at that many
   * generated tokens; returns the steps, fills the outputs taken and every entry seen by request.
   */
  static int run(Scheduler s, SchedPlan plan, Map<Long, Integer> stopAfter, Map<Long, SchedOutput> outputs,
                 Map<Long, List<SchedEntry>> seen) {
    Map<Long, Integer> generated = new HashMap<>();
    for (int steps = 0; steps < 100; steps++) {
      if (s.numWaiting() + s.numRunning() == 0) {
        return steps;
      }
      List<SchedEntry> entries = s.step(plan);
      int[] sampled = new int[entries.size()];
      boolean[] finished = new boolean[entries.size()];
      for (int i = 0; i < entries.size(); i++) {
        SchedEntry e = entries.get(i);
        seen.computeIfAbsent(e.requestId(), id -> new ArrayList<>()).add(e);
        long[] positions = e.positions();
        long[] slots = e.slots();
        int[] table = e.blockTable();
        for (int j = 0; j < positions.length; j++) {
          equal(e.numComputed() + j, positions[j], "position");
          equal((long) table[(int) (positions[j] / 4)], slots[j] / 4, "slot's block");
        }
        if (!e.samples()) {
          continue;
        }
        sampled[i] = fakeToken(positions[positions.length - 1]);
        int n = generated.merge(e.requestId(), 1, Integer::sum);
        finished[i] = stopAfter.getOrDefault(e.requestId(), -1) == n;
      }
      s.commit(plan, sampled, finished);
      for (long id : plan.finished()) {
        outputs.put(id, s.takeOutput(id));
      }
    }
    throw new AssertionError("requests still running after 100 steps");
  }

  static void engineLoop() {
    try (Pool pool = smallPool(17);
         SchedOptions options = new SchedOptions();
         SchedPlan plan = new SchedPlan()) {
      options.setMaxBatchSequences(4);
      options.setMaxBatchTokens(32);
      options.setManualClock(true);
      try (Scheduler s = new Scheduler(options, pool);
           SequenceOptions keys = new SequenceOptions()) {
        int[] a = range(1, 12);
        int[] b = new int[] {1, 2, 3, 4, 5, 6, 7, 8, 500, 501, 502};  // shares a's first 2 blocks
        int[] c = range(100, 7);
        s.submit(1, a, 5, 0, "chat-a", null);
        // a's prefill is committed before b arrives: its blocks are in the prefix cache by then.
        List<SchedEntry> first = s.step(plan);
        equal(1, first.size(), "first step's entries");
        equal(12, first.get(0).tokens().length, "a's prefill");
        s.commit(plan, new int[] {fakeToken(11)});
        s.submit(2, b, 4, 1, null, null);
        keys.setCacheSalt("tenant");
        s.submit(3, c, 6, 0, null, keys);
        Map<Long, SchedOutput> outputs = new HashMap<>();
        Map<Long, List<SchedEntry>> seen = new HashMap<>();
        int steps = 1 + run(s, plan, Map.of(3L, 3), outputs, seen);

        long[][] want = {{1, 12, 5}, {2, 11, 4}, {3, 7, 3}};
        FinishReason[] reasons = {FinishReason.LENGTH, FinishReason.LENGTH, FinishReason.STOP};
        for (int r = 0; r < want.length; r++) {
          SchedOutput output = outputs.get(want[r][0]);
          int[] tokens = output.tokens();
          equal((int) want[r][2], tokens.length, "request " + want[r][0] + "'s tokens");
          equal(reasons[r], output.reason(), "request " + want[r][0] + "'s reason");
          for (int k = 0; k < tokens.length; k++) {  // token k was sampled after position prompt - 1 + k
            equal(fakeToken(want[r][1] - 1 + k), tokens[k], "request " + want[r][0] + "'s token " + k);
          }
        }
        equal("chat-a", outputs.get(1L).session(), "a's session");
        equal("", outputs.get(2L).session(), "b's session");
        equal(8L, seen.get(2L).get(0).numComputed(), "b's reused prefix");
        equal(3, seen.get(2L).get(0).tokens().length, "b's computed tokens");
        equal(0L, s.numWaiting() + s.numRunning() + s.numOutputs(), "gauges after the loop");
        equal(0, pool.numBlocksInUse(), "blocks in use after the loop");
        try (Stats st = s.snapshot()) {
          equal("sched", st.component(), "component");
          equal(30L, st.tokensQueried(), "tokens queried");
          equal(8L, st.tokensHit(), "tokens hit");
          Map<String, Double> metrics = st.metrics();
          equal(3.0, metrics.get("sched_requests_finished_total"), "finished");
          equal((double) steps, st.metric("sched_steps_total"), "steps");
          check(metrics.get("sched_batch_size_avg") > 1, "requests ran together");
          equal(0.0, metrics.get("sched_queue_depth"), "queue depth");
          throwsStatus(() -> st.metric("no_such_metric"), Status.NOT_FOUND);
          check(st.toPrometheus().contains("kvcore_sched_steps_total{component=\"sched\"}"), "prometheus");
        }
        try (Stats pooled = pool.snapshot()) {
          check(pooled.metrics().isEmpty(), "a pool has no named metrics");
        }
      }
    }
  }

  static void queueCancelAndErrors() {
    try (Pool pool = smallPool(17);
         SchedPlan plan = new SchedPlan();
         SchedOptions options = new SchedOptions()) {
      throwsStatus(() -> options.setMaxBatchTokens(1 << 25), Status.INVALID_ARGUMENT);
      throwsStatus(() -> options.setMaxBatchSequences(0), Status.INVALID_ARGUMENT);
      throwsStatus(() -> options.setPolicy(null, 0), Status.INVALID_ARGUMENT);
      options.setPolicy(SchedPolicy.PRIORITY, 0);
      options.setMaxQueue(1);
      try (Scheduler s = new Scheduler(options, pool)) {
        throwsStatus(() -> s.setTimeUs(5), Status.INVALID_STATE);  // the monotonic clock
        s.submit(7, range(1, 5), 2);
        throwsStatus(() -> s.submit(8, range(1, 5), 2), Status.QUEUE_FULL);
        equal("KVC_ERR_QUEUE_FULL", Library.statusString(Status.QUEUE_FULL), "status string");
        throwsStatus(() -> s.takeOutput(7), Status.INVALID_STATE);
        s.cancel(7);
        throwsStatus(() -> s.cancel(7), Status.NOT_FOUND);
        throwsStatus(() -> s.submit(9, new int[0], 2), Status.INVALID_ARGUMENT);
        throwsStatus(() -> s.submit(9, new int[] {1}, 0), Status.INVALID_ARGUMENT);
        throwsStatus(() -> s.submit(9, new int[] {-1}, 2), Status.INVALID_ARGUMENT);
        throwsStatus(() -> s.submit(9, null, 2), Status.INVALID_ARGUMENT);
        s.submit(9, range(1, 5), 2);
        throwsStatus(() -> s.submit(11, range(1, 5), 2), Status.QUEUE_FULL);
        equal(1, s.step(plan).size(), "entries");
        throwsStatus(() -> s.step(plan), Status.INVALID_STATE);  // before the commit
        throwsStatus(() -> s.submit(9, range(1, 5), 2), Status.INVALID_ARGUMENT);  // running
        s.submit(10, range(1, 5), 2);  // the queue is free again
        throwsStatus(() -> s.commit(plan, null), Status.INVALID_ARGUMENT);  // the entry samples
        s.cancel(9);  // in the pending plan: its commit drops it
        s.cancel(10);
        s.commit(plan, new int[] {3});
        equal(0, plan.finished().length, "finished");
        throwsStatus(() -> s.takeOutput(9), Status.NOT_FOUND);
        try (Stats st = s.snapshot()) {
          equal(3.0, st.metric("sched_requests_cancelled_total"), "cancelled");
          check(st.metric("sched_requests_rejected_total") >= 2, "rejected");
        }
        equal(0, pool.numBlocksInUse(), "blocks of cancelled requests");
        SchedPlan closed = new SchedPlan();
        closed.close();
        throwsStatus(() -> s.step(closed), Status.INVALID_STATE);
        throwsStatus(() -> s.commit(closed, new int[] {1}, new boolean[] {true}), Status.INVALID_STATE);
      }
    }
  }

  static void outlivesAClosedPool() {
    Pool pool = smallPool(9);
    try (Scheduler s = new Scheduler(pool);
         SchedPlan plan = new SchedPlan()) {
      pool.close();  // the native pool stays until its scheduler goes
      throwsStatus(() -> new Scheduler(pool), Status.INVALID_STATE);
      s.submit(1, range(1, 6), 2);
      Map<Long, SchedOutput> outputs = new HashMap<>();
      run(s, plan, Map.of(), outputs, new HashMap<>());
      equal(2, outputs.get(1L).tokens().length, "tokens");
    }
  }

  public static void main(String[] args) {
    engineLoop();
    queueCancelAndErrors();
    outlivesAClosedPool();
    System.out.println("sched tests passed");
  }
}
