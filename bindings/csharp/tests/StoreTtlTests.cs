// SPDX-License-Identifier: Apache-2.0
// The C# binding's tests of the session store and the TTL cache: leases, turns, K/V rows, options, stats,
// negative caching, single-flight loads with a delegate, errors.
using System;
using System.Collections.Generic;
using System.Text;
using System.Threading;
using Kvcore;
using static Expect;

static class StoreTtlTests {
  static int[] Tokens(int n, int start = 1) {
    var tokens = new int[n];
    for (int i = 0; i < n; i++) tokens[i] = start + i;
    return tokens;
  }

  static void TurnsAndKv() {
    using (var store = new Store()) {
      using (Session s = store.GetOrCreate("chat", 2, 2, 4, DType.F32, 256)) {
        Equal("chat", s.Id(), "id");
        Equal(0UL, s.BeginTurn(Tokens(40)), "first turn reuses nothing");
        var keys = new float[40 * 2 * 4];
        var values = new float[keys.Length];
        for (int i = 0; i < keys.Length; i++) {
          keys[i] = i;
          values[i] = -i;
        }
        s.WriteKv(0, 0, 40, keys, values);
        s.WriteKv(1, 0, 40, values, keys);
        s.Commit();
        float[] k, v;
        s.ReadKv(0, 10, 5, out k, out v);
        Equal(5 * 8, k.Length, "rows read");
        Equal(80f, k[0], "first key of token 10");
        Equal(-80f, v[0], "first value of token 10");
        Throws(() => s.WriteKv(0, 0, 40, new float[3], values), Status.BUFFER_TOO_SMALL);
        Equal(3, s.BlockTable().Length, "40 tokens in blocks of 16");
      }
      using (Session s = store.TryGet("chat")) {
        True(s != null, "the session persists");
        var next = Tokens(50);
        for (int i = 30; i < 50; i++) next[i] = 1000 + i;  // the conversation diverges at token 30
        Equal(30UL, s.BeginTurn(next), "reused = the longest common prefix");
        Equal(50UL, (ulong)s.Tokens(), "tokens");
        s.Append(7);
        Equal(51UL, (ulong)s.Tokens(), "after append");
      }
      True(store.TryGet("nobody") == null, "try-get of a missing session");
      using (Stats st = store.Snapshot()) {
        Equal(1UL, st.Hits(), "hits");
        Equal(2UL, st.Misses(), "misses (the creation and the missing session)");
        Equal(30UL, st.TokensReused(), "reused tokens");
        True(st.BytesInUse() > 0, "bytes in use");
      }
      Throws(() => store.GetOrCreate("chat", 3, 2, 4, DType.F32), Status.INVALID_STATE);
      True(store.Remove("chat"), "remove");
      True(!store.Remove("chat"), "remove again");
      Equal(0UL, store.NumSessions(), "no sessions");
    }
  }

  static void HeldSessionsAreNotEvicted() {
    using (var options = new StoreOptions()) {
      options.SetMaxSessions(1);
      using (var store = new Store(options))
      using (Session held = store.GetOrCreate("a", 1, 1, 8, DType.F32)) {
        Throws(() => store.GetOrCreate("b", 1, 1, 8, DType.F32), Status.CAPACITY);
        held.Dispose();
        using (Session b = store.GetOrCreate("b", 1, 1, 8, DType.F32)) {
          True(store.TryGet("a") == null, "a was evicted once released");
        }
        using (Stats st = store.Snapshot()) {
          Equal(1UL, st.Evictions(), "evictions");
          Equal(1UL, st.MemoryPressureEvents(), "pressure events");
        }
      }
    }
  }

  static void SmallMindNames() {
    var options = new KvCacheOptions { MaxSessions = 2, Policy = KvEvictionPolicy.LRU };
    Equal(4096, options.MaxTokensPerSession, "default tokens per session");
    Equal(1L << 30, options.MaxBytesTotal, "default bytes");
    using (var cache = new LruKvCacheStore(options)) {
      var shape = new ModelShape(layers: 4, heads: 8, headDim: 16);
      var ids = new[] { SessionId.NewId(), SessionId.NewId(), SessionId.NewId() };
      True(!ids[0].Equals(ids[1]), "new ids differ");
      foreach (var id in ids) {
        using (KvCacheEntry e = cache.GetOrCreate(id, shape, maxTokens: 2048)) e.Session.BeginTurn(Tokens(10));
      }
      KvCacheEntry found;
      True(!cache.TryGet(ids[0], out found), "the oldest session was evicted (MaxSessions 2)");
      True(cache.TryGet(ids[2], out found), "the newest is there");
      found.Dispose();
      KvCacheStats stats = cache.GetStats();
      Equal(2, stats.CurrentSessions, "current sessions");
      Equal(1L, stats.Evictions, "evictions");
      Equal(2L * 4 * 2 * 16 * 8 * 16 * 4, stats.CurrentBytes, "two sessions of one block each");
      True(stats.HitRate > 0 && stats.HitRate < 1, "hit rate");
    }
  }

  static void TtlBasics() {
    using (var options = new TtlOptions()) {
      options.SetMaxEntries(100);
      options.SetComponent("metrics");
      using (var cache = new TtlCache(options)) {
        cache.Set("model:a", "ns", "load=1");
        cache.Set("model", "a:ns", "load=2");
        Equal(2UL, cache.Size(), "two keys that a joined string would collide");
        Equal("load=1", cache.Get("model:a", "ns").Text, "first");
        Equal("load=2", cache.Get("model", "a:ns").Text, "second");
        True(cache.Get("model", "other") == null, "miss");
        cache.Set("model", "failed", new byte[0], false);
        TtlEntry failed = cache.Get("model", "failed");
        True(failed != null && !failed.Valid, "a cached failure is found, not valid");
        TtlEntry[] all = cache.GetAll();
        Equal(3, all.Length, "get all");
        cache.Clear();
        Equal("load=1", all[2].Text, "copies survive a clear, sorted by (namespace, key)");
        True(cache.Invalidate("model:a", "ns") == false, "invalidate after clear");
        for (int i = 0; i < 1000; i++) cache.Set("n", "k" + i, "v");
        Equal(100UL, cache.Size(), "bounded");
        using (Stats st = cache.Snapshot()) {
          Equal("metrics", st.Component(), "component");
          Equal(900UL, st.Evictions(), "evictions");
          Equal(1UL, st.NegativeHits(), "negative hits");
        }
      }
    }
  }

  static void TtlSingleFlight() {
    using (var cache = new TtlCache()) {
      int loads = 0;
      var started = new ManualResetEvent(false);
      var release = new ManualResetEvent(false);
      Func<byte[]> loader = () => {
        Interlocked.Increment(ref loads);
        started.Set();
        release.WaitOne();
        return Encoding.UTF8.GetBytes("loaded");
      };
      var results = new string[8];
      var threads = new Thread[results.Length];
      for (int i = 0; i < threads.Length; i++) {
        int slot = i;
        threads[i] = new Thread(() => results[slot] = cache.GetOrLoad("m", "k", loader).Text);
        threads[i].Start();
        if (i == 0) started.WaitOne();
      }
      Thread.Sleep(50);  // let the others queue behind the load (correct without it too)
      release.Set();
      foreach (var t in threads) t.Join();
      Equal(1, loads, "one load for concurrent misses");
      foreach (var r in results) Equal("loaded", r, "every caller gets the loaded value");

      int failing = 0;
      Func<byte[]> broken = () => {
        failing++;
        throw new InvalidOperationException("backend down");
      };
      try {
        cache.GetOrLoad("m", "bad", broken);
        throw new Exception("the loader's exception goes on to its caller");
      } catch (InvalidOperationException) {
      }
      for (int i = 0; i < 5; i++) {
        TtlEntry e = cache.GetOrLoad("m", "bad", broken);
        True(!e.Valid && e.Text == "backend down", "a cached failure within the negative TTL");
      }
      Equal(1, failing, "a failing backend is asked once");
      using (Stats st = cache.Snapshot()) {
        Equal(2UL, st.Loads(), "loads");
        Equal(1UL, st.LoadFailures(), "load failures");
        Equal(5UL, st.NegativeHits(), "negative hits");
      }
    }
  }

  static void PoliciesPerComponent() {
    foreach (EvictionPolicy policy in new[] { EvictionPolicy.LRU, EvictionPolicy.S3FIFO, EvictionPolicy.ARC }) {
      using (var options = new PoolOptions()) {
        options.SetNumBlocks(9);
        options.SetBlockSize(4);
        options.SetEvictionPolicy(policy);
        using (var pool = new Pool(options)) {
          for (int i = 0; i < 20; i++) {  // more prompts than blocks: evictions under every policy
            ulong seq = pool.CreateSequence(Tokens(8, 100 * i));
            pool.Allocate(seq, 8);
            pool.FreeSequence(seq);
          }
        }
      }
      using (var store = new LruKvCacheStore(new KvCacheOptions { MaxSessions = 1, Policy = (KvEvictionPolicy)policy })) {}
    }
    using (var options = new PoolOptions()) Throws(() => options.SetEvictionPolicy((EvictionPolicy)3), Status.INVALID_ARGUMENT);
    Equal("s3fifo", Library.EvictionPolicyName(EvictionPolicy.S3FIFO), "policy name");
  }

  static void Errors() {
    using (var options = new TtlOptions()) {
      Throws(() => options.SetTtlMs(0), Status.INVALID_ARGUMENT);
    }
    var cache = new TtlCache();
    cache.Dispose();
    Throws(() => cache.Set("a", "b", "c"), Status.INVALID_STATE);
    Throws(() => new LruKvCacheStore(new KvCacheOptions { MaxSessions = 0 }), Status.INVALID_ARGUMENT);
  }

  static int Main() {
    var tests = new Dictionary<string, Action> {
      {"TurnsAndKv", TurnsAndKv}, {"HeldSessionsAreNotEvicted", HeldSessionsAreNotEvicted},
      {"SmallMindNames", SmallMindNames}, {"TtlBasics", TtlBasics}, {"TtlSingleFlight", TtlSingleFlight},
      {"PoliciesPerComponent", PoliciesPerComponent}, {"Errors", Errors},
    };
    int failed = 0;
    foreach (var test in tests) {
      try {
        test.Value();
        Console.WriteLine("ok   " + test.Key);
      } catch (Exception e) {
        failed++;
        Console.WriteLine("FAIL " + test.Key + ": " + e);
      }
    }
    Console.WriteLine("csharp_store_ttl_tests: " + (tests.Count - failed) + " passed, " + failed + " failed");
    return failed == 0 ? 0 : 1;
  }
}
