// SPDX-License-Identifier: Apache-2.0
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.kvcore.DType;
import org.kvcore.EvictionPolicy;
import org.kvcore.Pool;
import org.kvcore.PoolOptions;
import org.kvcore.KvcoreException;
import org.kvcore.Session;
import org.kvcore.Stats;
import org.kvcore.Status;
import org.kvcore.Store;
import org.kvcore.StoreOptions;
import org.kvcore.TtlCache;
import org.kvcore.TtlEntry;
import org.kvcore.TtlOptions;

/** The Java binding's tests of the session store and the TTL cache (loaders as lambdas). */
public class StoreTtlTest extends Expect {
  static int[] tokens(int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = i + 1;
    }
    return t;
  }

  static void turnsAndKv() {
    try (Store store = new Store()) {
      try (Session s = store.getOrCreate("chat", 1, 2, 4, DType.F32, 256)) {
        equal("chat", s.id(), "id");
        equal(0L, s.beginTurn(tokens(20)), "first turn");
        float[] k = new float[20 * 8];
        float[] v = new float[20 * 8];
        for (int i = 0; i < k.length; i++) {
          k[i] = i;
          v[i] = 2 * i;
        }
        s.writeKv(0, 0, 20, k, v);
        s.commit();
        float[] rk = new float[s.kvFloats(0, 5, 2)];
        float[] rv = new float[rk.length];
        s.readKv(0, 5, 2, rk, rv);
        equal(16, rk.length, "rows");
        equal(40f, rk[0], "key of token 5");
        equal(80f, rv[0], "value of token 5");
        throwsStatus(() -> s.writeKv(0, 0, 20, new float[1], v), Status.BUFFER_TOO_SMALL);
      }
      try (Session s = store.tryGet("chat")) {
        int[] next = tokens(24);
        next[12] = 999;
        equal(12L, s.beginTurn(next), "reused = longest common prefix");
        s.append(5, 6);
        equal(26L, s.tokens(), "tokens");
        equal(2, s.blockTable().length, "blocks of 16");
      }
      check(store.tryGet("none") == null, "miss");
      try (Stats st = store.snapshot()) {
        equal(1L, st.hits(), "hits");
        equal(2L, st.misses(), "misses");
        equal(12L, st.tokensReused(), "reused");
      }
      check(store.remove("chat"), "removed");
      equal(0L, store.numSessions(), "sessions");
    }
  }

  static void options() {
    try (StoreOptions o = new StoreOptions()) {
      o.setMaxSessions(1);
      o.setPersistAcrossRequests(false);
      try (Store store = new Store(o)) {
        Session a = store.getOrCreate("a", 1, 1, 8, DType.F32, 0);
        throwsStatus(() -> store.getOrCreate("b", 1, 1, 8, DType.F32, 0), Status.CAPACITY);
        a.close();
        check(store.tryGet("a") == null, "not persisted across requests");
      }
      throwsStatus(() -> o.setMaxSessions(0), Status.INVALID_ARGUMENT);
    }
  }

  static void ttl() throws Exception {
    try (TtlOptions o = new TtlOptions()) {
      o.setMaxEntries(100);
      try (TtlCache cache = new TtlCache(o)) {
        cache.set("a:b", "c", "one");
        cache.set("a", "b:c", "two");
        equal(2L, cache.size(), "no collision");
        equal("one", cache.get("a:b", "c").text(), "get");
        check(cache.get("x", "y") == null, "miss");
        for (int i = 0; i < 1000; i++) {
          cache.set("n", "k" + i, "v");
        }
        equal(100L, cache.size(), "bounded");
        List<TtlEntry> all = cache.getAll();
        equal(100, all.size(), "get all");
        check(cache.invalidate("n", "k999"), "invalidate");
        check(!cache.invalidate("n", "k999"), "invalidate again");
        equal(99L, cache.cleanup() + cache.size(), "cleanup of nothing expired");
      }
    }
    try (TtlCache cache = new TtlCache()) {
      AtomicInteger loads = new AtomicInteger();
      CountDownLatch started = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      String[] results = new String[8];
      Thread[] threads = new Thread[results.length];
      for (int i = 0; i < threads.length; i++) {
        int slot = i;
        threads[i] = new Thread(() -> results[slot] = cache.getOrLoad("m", "k", () -> {
          loads.incrementAndGet();
          started.countDown();
          release.await();
          return "loaded".getBytes(StandardCharsets.UTF_8);
        }).text());
        threads[i].start();
        if (i == 0) {
          started.await();
        }
      }
      Thread.sleep(50);
      release.countDown();
      for (Thread t : threads) {
        t.join();
      }
      equal(1, loads.get(), "single flight");
      for (String r : results) {
        equal("loaded", r, "result");
      }
      AtomicInteger failing = new AtomicInteger();
      try {
        cache.getOrLoad("m", "bad", () -> {
          failing.incrementAndGet();
          throw new java.io.IOException("backend down");
        });
        throw new AssertionError("the loader's exception goes on");
      } catch (RuntimeException e) {
        check(e.getCause() instanceof java.io.IOException, "wrapped checked exception");
      }
      for (int i = 0; i < 5; i++) {
        TtlEntry e = cache.getOrLoad("m", "bad", () -> {
          failing.incrementAndGet();
          return new byte[0];
        });
        check(!e.valid() && e.text().equals("backend down"), "cached failure");
      }
      equal(1, failing.get(), "a failing backend is asked once");
      try (Stats st = cache.snapshot()) {
        equal(2L, st.loads(), "loads");
        equal(1L, st.loadFailures(), "load failures");
        equal(5L, st.negativeHits(), "negative hits");
      }
    }
  }

  static void policies() {
    for (EvictionPolicy policy : EvictionPolicy.values()) {
      try (PoolOptions o = new PoolOptions()) {
        o.setNumBlocks(9);
        o.setBlockSize(4);
        o.setEvictionPolicy(policy);
        try (Pool pool = new Pool(o)) {
          for (int i = 0; i < 20; i++) { // more prompts than blocks: evictions under every policy
            int[] prompt = new int[8];
            for (int j = 0; j < 8; j++) {
              prompt[j] = 100 * i + j;
            }
            long seq = pool.createSequence(prompt);
            pool.allocate(seq, 8);
            pool.freeSequence(seq);
          }
        }
      }
      try (StoreOptions o = new StoreOptions()) {
        o.setEvictionPolicy(policy);
        try (Store store = new Store(o)) {
          check(store.numSessions() == 0, "store with " + policy);
        }
      }
    }
    throwsStatus(() -> new TtlOptions().setEvictionPolicy(null), Status.INVALID_ARGUMENT);
    equal("arc", org.kvcore.Library.evictionPolicyName(EvictionPolicy.ARC), "policy name");
  }

  interface Test {
    void run() throws Exception;
  }

  public static void main(String[] args) {
    Map<String, Test> tests = new LinkedHashMap<>();
    tests.put("turnsAndKv", StoreTtlTest::turnsAndKv);
    tests.put("options", StoreTtlTest::options);
    tests.put("ttl", StoreTtlTest::ttl);
    tests.put("policies", StoreTtlTest::policies);
    int failed = 0;
    for (Map.Entry<String, Test> t : tests.entrySet()) {
      try {
        t.getValue().run();
        System.out.println("ok   " + t.getKey());
      } catch (Throwable e) {
        failed++;
        System.out.println("FAIL " + t.getKey() + ": " + e);
        e.printStackTrace(System.out);
      }
    }
    System.out.println("java_store_ttl_tests: " + (tests.size() - failed) + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
