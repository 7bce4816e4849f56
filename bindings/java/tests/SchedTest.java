// SPDX-License-Identifier: Apache-2.0
import java.lang.ref.PhantomReference;
import java.lang.ref.ReferenceQueue;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.kvcore.DType;
import org.kvcore.FinishReason;
import org.kvcore.KvcoreException;
import org.kvcore.KvLayout;
import org.kvcore.Library;
import org.kvcore.Memory;
import org.kvcore.Pool;
import org.kvcore.PoolOptions;
import org.kvcore.PreemptionMode;
import org.kvcore.SchedEntry;
import org.kvcore.SchedOptions;
import org.kvcore.SchedOutput;
import org.kvcore.SchedPlan;
import org.kvcore.SchedPolicy;
import org.kvcore.Scheduler;
import org.kvcore.SequenceOptions;
import org.kvcore.Stats;
import org.kvcore.Status;
import org.kvcore.Store;
import org.kvcore.StoreOptions;

/**
 * The Java binding's scheduler tests: an engine loop over a small pool with a deterministic fake sampler (three
 * requests, one reusing another's cached prefix, one stopped by its finished flag), the queue bound, cancel, bad
 * arguments, the named metrics, a scheduler that outlives its closed pool; then a session store under a host pool (a
 * conversation restored after eviction, swap preemption, the errors) and one closed or finalized while attached.
 */
public class SchedTest extends Expect {
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

  // ---- the session store: an engine over a host pool with a model shape. Each step checks that every position
  // before an entry's first holds the K/V written for its token there (what attention would read), then writes
  // the entry's K/V at its slots, so a restore or swap that copies wrong K/V is caught. ----
  static final int KV_BLOCK = 4;
  static final int HEAD_DIM = 4;

  /** The fake forward's element e of the K (kv 0) or V (kv 1) row of token at pos. */
  static float kvValue(int token, long pos, int kv, int e) {
    return (float) ((token * 31 + pos * 7 + kv * 11 + e * 3) % 101) + 0.5f * kv;
  }

  static final class KvEngine implements AutoCloseable {
    final Scheduler s;
    final SchedPlan plan = new SchedPlan();
    final KvLayout layout;
    final long k;
    final long v;
    final Map<Long, List<Integer>> tokens = new HashMap<>();  // prompt, then samples
    final Map<Long, Long> first = new HashMap<>();  // each request's first entry's numComputed
    int bad;  // positions that held wrong K/V

    KvEngine(Pool pool, Scheduler s) {
      this.s = s;
      layout = new KvLayout(1, pool.numBlocks(), KV_BLOCK, 1, HEAD_DIM, DType.F32);
      layout.setStrides(pool.bytesPerBlock(), 2 * layout.blockBytes());
      k = pool.storageAddress();
      v = k + layout.blockBytes();
    }

    @Override
    public void close() {
      plan.close();
      layout.close();
    }

    void submit(long id, int[] prompt, int maxNewTokens, int priority, String session) {
      s.submit(id, prompt, maxNewTokens, priority, session, null);
      List<Integer> list = new ArrayList<>();
      for (int token : prompt) {
        list.add(token);
      }
      tokens.put(id, list);
    }

    /** One step, committed; returns the requests it preempted. */
    long[] step() {
      List<SchedEntry> entries = s.step(plan);
      int[] sampled = new int[entries.size()];
      for (int i = 0; i < entries.size(); i++) {
        SchedEntry e = entries.get(i);
        List<Integer> list = tokens.get(e.requestId());
        first.putIfAbsent(e.requestId(), e.numComputed());
        int n = (int) e.numComputed();
        if (n > 0) {
          float[] keys = new float[n * HEAD_DIM];
          float[] values = new float[n * HEAD_DIM];
          layout.gatherAt(0, k, v, e.blockTable(), e.blockTable().length, new int[] {n}, keys, values);
          for (int pos = 0; pos < n; pos++) {
            for (int x = 0; x < HEAD_DIM; x++) {
              if (keys[pos * HEAD_DIM + x] != kvValue(list.get(pos), pos, 0, x)
                  || values[pos * HEAD_DIM + x] != kvValue(list.get(pos), pos, 1, x)) {
                bad++;
                break;
              }
            }
          }
        }
        int m = e.tokens().length;
        float[] rowsK = new float[m * HEAD_DIM];
        float[] rowsV = new float[m * HEAD_DIM];
        for (int j = 0; j < m; j++) {
          for (int x = 0; x < HEAD_DIM; x++) {
            rowsK[j * HEAD_DIM + x] = kvValue(e.tokens()[j], e.positions()[j], 0, x);
            rowsV[j * HEAD_DIM + x] = kvValue(e.tokens()[j], e.positions()[j], 1, x);
          }
        }
        layout.writeAt(0, k, v, rowsK, rowsV, e.slots());
        if (e.samples()) {
          sampled[i] = fakeToken(e.positions()[m - 1]);
          list.add(sampled[i]);
        }
      }
      s.commit(plan, sampled);
      for (long id : plan.finished()) {
        int[] output = s.takeOutput(id).tokens();
        List<Integer> list = tokens.get(id);
        for (int j = 0; j < output.length; j++) {
          equal(list.get(list.size() - output.length + j), output[j], "request " + id + "'s output " + j);
        }
      }
      return plan.preempted();
    }

    void drain() {
      for (int steps = 0; steps < 200; steps++) {
        if (s.numWaiting() + s.numRunning() == 0) {
          return;
        }
        step();
      }
      throw new AssertionError("requests still running after 200 steps");
    }

    /** Request id generated n tokens after its prompt of promptLength, each the sampler's. */
    void checkGenerated(long id, int promptLength, int n) {
      List<Integer> list = tokens.get(id);
      equal(promptLength + n, list.size(), "request " + id + "'s tokens");
      for (int p = promptLength; p < list.size(); p++) {
        equal(fakeToken(p - 1), list.get(p), "request " + id + "'s token " + p);
      }
    }

    /**
     * Turn 1 of session "chat" (10 tokens, 4 new), other traffic that takes every block of the 8-block pool, then
     * turn 2 (the conversation and 5 new tokens, 3 new); returns turn 2's first numComputed: the tokens restored.
     */
    long chatTurns(long id) {
      submit(id, range(100, 10), 4, 0, "chat");
      drain();
      checkGenerated(id, 10, 4);
      submit(id + 1, range(500, 28), 2, 0, null);
      drain();
      List<Integer> conversation = tokens.get(id);
      int[] turn2 = new int[conversation.size() + 5];
      for (int i = 0; i < turn2.length; i++) {
        turn2[i] = i < conversation.size() ? conversation.get(i) : 900 + i;
      }
      submit(id + 2, turn2, 3, 0, "chat");
      drain();
      checkGenerated(id + 2, 19, 3);
      equal(0, bad, "positions that held wrong K/V");
      return first.get(id + 2);
    }
  }

  static Pool hostPool() {
    try (PoolOptions options = new PoolOptions()) {
      options.setNumBlocks(9);  // 8 usable
      options.setBlockSize(KV_BLOCK);
      options.setModelShape(1, 1, HEAD_DIM, DType.F32);
      options.setMemory(Memory.HOST);
      return new Pool(options);
    }
  }

  /** The store sizes its block pool from its byte bound: a small one. */
  static Store smallStore() {
    try (StoreOptions options = new StoreOptions()) {
      options.setMaxBytesTotal(1 << 20);
      return new Store(options);
    }
  }

  static Scheduler manualScheduler(Pool pool, PreemptionMode mode) {
    try (SchedOptions options = new SchedOptions()) {
      options.setManualClock(true);
      options.setPreemption(mode);
      return new Scheduler(options, pool);
    }
  }

  static void sessionStoreAndSwap() {
    try (Pool pool = hostPool();
         Store store = smallStore();
         Scheduler s = manualScheduler(pool, PreemptionMode.SWAP);
         KvEngine e = new KvEngine(pool, s)) {
      s.setSessionStore(store);
      // Turn 2 finds turn 1's 13 computed tokens (10 prompt, 3 of the 4 sampled) in the store, not in the pool.
      equal(13L, e.chatTurns(1), "tokens turn 2 restored");
      try (Stats st = s.snapshot()) {
        equal(13.0, st.metric("sched_store_restored_tokens_total"), "restored");
        equal(21.0, st.metric("sched_store_saved_tokens_total"), "saved (13, then the 8 turn 2 added)");
        equal(0.0, st.metric("sched_store_save_failures_total"), "save failures");
      }

      // Swap: three requests of 3 tokens growing to 15 need 12 blocks of 8; the least important is swapped out.
      for (int i = 0; i < 3; i++) {
        e.submit(10 + i, range(10 * (i + 1), 3), 12, i == 0 ? 5 : 1, null);
      }
      long[] preempted = new long[0];
      for (int steps = 0; steps < 100 && preempted.length == 0; steps++) {
        preempted = e.step();
      }
      equal(1, preempted.length, "preempted");
      check(preempted[0] != 10, "the priority-5 request runs on");
      equal(2L, store.numSessions(), "the chat and the swap");
      throwsStatus(() -> s.setSessionStore(null), Status.INVALID_STATE);  // requests wait and run
      e.drain();
      for (int i = 0; i < 3; i++) {
        e.checkGenerated(10 + i, 3, 12);
      }
      equal(0, e.bad, "positions that held wrong K/V after the swap");
      try (Stats st = s.snapshot()) {
        check(st.metric("sched_swapped_out_tokens_total") > 0, "swapped out");
        equal(0.0, st.metric("sched_swap_failures_total"), "swap failures");
      }
      equal(1L, store.numSessions(), "the chat only");
      s.setSessionStore(null);
    }
  }

  static void sessionStoreErrors() {
    try (Pool pool = hostPool();
         Store store = smallStore()) {
      try (Scheduler swap = manualScheduler(pool, PreemptionMode.SWAP)) {
        throwsStatus(() -> swap.submit(1, range(1, 5), 2), Status.INVALID_STATE);  // swap without a store
      }
      try (Scheduler s = new Scheduler(pool)) {
        s.submit(1, range(1, 5), 2);
        throwsStatus(() -> s.setSessionStore(store), Status.INVALID_STATE);  // a request waits
        s.cancel(1);
        s.setSessionStore(store);
        s.setSessionStore(null);
        Store closed = smallStore();
        closed.close();
        throwsStatus(() -> s.setSessionStore(closed), Status.INVALID_STATE);
      }
      try (Pool meta = smallPool(9);
           Scheduler m = new Scheduler(meta)) {
        throwsStatus(() -> m.setSessionStore(store), Status.INVALID_ARGUMENT);  // no K/V in host memory
      }
    }
  }

  /** A phantom reference is enqueued once its object has been finalized (the native store closed) and collected. */
  static PhantomReference<Store> attachDroppedStore(Scheduler s, ReferenceQueue<Store> queue) {
    Store store = smallStore();
    s.setSessionStore(store);
    return new PhantomReference<>(store, queue);
  }

  /** A pool, a store and a scheduler with a waiting request, dropped together: their phantoms go to queue. */
  static List<PhantomReference<Object>> dropEverything(ReferenceQueue<Object> queue) {
    Pool pool = hostPool();
    Store store = smallStore();
    Scheduler s = manualScheduler(pool, PreemptionMode.SWAP);
    s.setSessionStore(store);
    s.submit(1, range(1, 6), 2, 0, "chat", null);
    return List.of(new PhantomReference<>(pool, queue), new PhantomReference<>(store, queue),
                   new PhantomReference<>(s, queue));
  }

  /**
   * A store closed while attached, or dropped and finalized, lives on under its scheduler; objects that become
   * unreachable together are finalized in any order.
   */
  static void keepsItsStore() throws InterruptedException {
    try (Pool pool = hostPool();
         Scheduler s = manualScheduler(pool, PreemptionMode.RECOMPUTE);
         KvEngine e = new KvEngine(pool, s)) {
      Store store = smallStore();
      s.setSessionStore(store);
      store.close();
      equal(13L, e.chatTurns(1), "tokens a closed store restored");
      s.setSessionStore(null);  // the closed store is freed here

      ReferenceQueue<Store> queue = new ReferenceQueue<>();
      PhantomReference<Store> dropped = attachDroppedStore(s, queue);
      Object finalized = null;
      for (int tries = 0; tries < 100 && finalized == null; tries++) {
        System.gc();
        finalized = queue.remove(20);
      }
      check(finalized == dropped, "the dropped store was finalized");
      equal(13L, e.chatTurns(10), "tokens a finalized store restored");
      try (Stats st = s.snapshot()) {
        equal(26.0, st.metric("sched_store_restored_tokens_total"), "restored");
      }
    }
    // The finalizers run in whatever order the collector picks; each round waits for all three.
    for (int round = 0; round < 10; round++) {
      ReferenceQueue<Object> queue = new ReferenceQueue<>();
      List<PhantomReference<Object>> phantoms = dropEverything(queue);
      int finalized = 0;
      for (int tries = 0; tries < 100 && finalized < phantoms.size(); tries++) {
        System.gc();
        while (queue.remove(20) != null) {
          finalized++;
        }
      }
      equal(phantoms.size(), finalized, "objects finalized in round " + round);
    }
  }

  public static void main(String[] args) throws InterruptedException {
    engineLoop();
    queueCancelAndErrors();
    outlivesAClosedPool();
    sessionStoreAndSwap();
    sessionStoreErrors();
    keepsItsStore();
    System.out.println("sched tests passed");
  }
}
