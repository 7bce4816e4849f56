// SPDX-License-Identifier: Apache-2.0
// The C# binding's test suite: every Recorder, RecorderOptions and Stats member, errors included.
using System;
using System.Collections.Generic;
using System.Threading;
using Kvcore;
using static Expect;

static class KvcoreTests {
  static void Version() {
    Equal((uint)Library.KVC_VERSION_NUMBER, Library.VersionNumber(), "version number");
    True(Library.VersionString().StartsWith(Library.KVC_VERSION_MAJOR + "."), "version string");
    Equal("KVC_ERR_CAPACITY", Library.StatusString(Status.CAPACITY), "status string");
    True(Library.LastErrorMessage() != null, "last error message");
  }

  static void RecordsAndSnapshots() {
    using (var recorder = new Recorder()) {
      for (int i = 0; i < 1000; i++) recorder.RecordAccess(false);
      var hits = new byte[500];
      for (int i = 0; i < hits.Length; i++) hits[i] = (byte)(1 + i % 2);  // any non-zero byte is a hit
      recorder.RecordAccesses(hits);
      recorder.RecordAccesses(new byte[0]);
      recorder.RecordInsertions(3);
      recorder.RecordEvictions(2);
      recorder.RecordMemoryPressure();
      recorder.RecordTokens(64, 48);
      recorder.RecordReusedTokens(47);
      recorder.AddBytes(4096);
      recorder.AddBytes(-1024);
      using (Stats s = recorder.Snapshot()) {
        Equal("cache", s.Component(), "component");
        Equal(500UL, s.Hits(), "hits");
        Equal(1000UL, s.Misses(), "misses");
        Equal(1500UL, s.Lookups(), "lookups");
        True(Math.Abs(s.HitRate() - 1.0 / 3) < 1e-12, "hit rate");
        Equal(1000u, s.WindowSize(), "window size");
        Equal(1000UL, s.WindowLookups(), "window lookups");
        Equal(500UL, s.WindowHits(), "window hits");
        Equal(0.5, s.WindowHitRate(), "window hit rate");
        Equal(60u, s.WindowSeconds(), "window seconds");
        Equal(1500UL, s.TimeWindowLookups(), "time window lookups");
        Equal(500UL, s.TimeWindowHits(), "time window hits");
        True(Math.Abs(s.TimeWindowHitRate() - 1.0 / 3) < 1e-12, "time window rate");
        Equal(3UL, s.Insertions(), "insertions");
        Equal(2UL, s.Evictions(), "evictions");
        Equal(1UL, s.MemoryPressureEvents(), "pressure");
        Equal(64UL, s.TokensQueried(), "tokens queried");
        Equal(48UL, s.TokensHit(), "tokens hit");
        Equal(47UL, s.TokensReused(), "tokens reused");
        Equal(0.75, s.TokenHitRate(), "token hit rate");
        Equal(3072UL, s.BytesInUse(), "bytes");
        Equal(4096UL, s.PeakBytes(), "peak");
        True(s.ToPrometheus().Contains("kvcore_hits_total{component=\"cache\"} 500\n"), "prometheus");
        True(s.ToJson().Contains("\"misses\":1000"), "json");
      }
      recorder.SetBytes(10);
      using (Stats s = recorder.Snapshot()) Equal(10UL, s.BytesInUse(), "set bytes");
    }
  }

  static void OptionsAndLayers() {
    using (var options = new RecorderOptions()) {
      options.SetComponent("prefix_cache");
      options.SetWindowAccesses(4);
      options.SetWindowSeconds(30);
      options.SetLayers(2);
      using (var recorder = new Recorder(options)) {
        recorder.RecordLayerAccess(1, true);
        recorder.RecordLayerAccess(1, false);
        recorder.RecordLayerAccess(0, true);
        using (Stats s = recorder.Snapshot()) {
          Equal("prefix_cache", s.Component(), "component");
          Equal(2u, s.Layers(), "layers");
          Equal(1UL, s.LayerHits(1), "layer hits");
          Equal(1UL, s.LayerMisses(1), "layer misses");
          Equal(0.5, s.LayerHitRate(1), "layer rate");
          Equal(1.0, s.LayerHitRate(0), "layer 0 rate");
          Equal(30u, s.WindowSeconds(), "window seconds");
          Throws(() => s.LayerHitRate(2), Status.OUT_OF_RANGE);
        }
        var e = Throws(() => recorder.RecordLayerAccess(7, true), Status.OUT_OF_RANGE);
        True(e.Message.Contains("layer 7 is out of range"), "message: " + e.Message);
      }
    }
  }

  static void BadInput() {
    using (var options = new RecorderOptions()) {
      Throws(() => options.SetWindowAccesses(0), Status.INVALID_ARGUMENT);
      Throws(() => options.SetWindowSeconds(0), Status.INVALID_ARGUMENT);
      Throws(() => options.SetComponent("not valid"), Status.INVALID_ARGUMENT);
      Throws(() => options.SetLayers(100000), Status.INVALID_ARGUMENT);
    }
    using (var recorder = new Recorder()) {
      Throws(() => recorder.RecordTokens(1, 2), Status.INVALID_ARGUMENT);
      Throws(() => recorder.AddBytes(-1), Status.INVALID_ARGUMENT);
    }
  }

  static void DisposedObjectsThrow() {
    var recorder = new Recorder();
    recorder.Dispose();
    recorder.Dispose();  // twice is fine
    Throws(() => recorder.RecordAccess(true), Status.INVALID_STATE);
    Throws(() => recorder.RecordAccesses(new byte[] {1, 0}), Status.INVALID_STATE);
  }

  static void ThreadsRecordConcurrently() {
    using (var recorder = new Recorder()) {
      var threads = new List<Thread>();
      for (int t = 0; t < 4; t++) {
        var thread = new Thread(() => { for (int i = 0; i < 10000; i++) recorder.RecordAccess(i % 2 == 0); });
        threads.Add(thread);
        thread.Start();
      }
      foreach (var thread in threads) thread.Join();
      using (Stats s = recorder.Snapshot()) {
        Equal(40000UL, s.Lookups(), "lookups from 4 threads");
        Equal(20000UL, s.Hits(), "hits from 4 threads");
      }
    }
  }

  static int[] Range(int n, int first) {
    var tokens = new int[n];
    for (int i = 0; i < n; i++) tokens[i] = first + i;
    return tokens;
  }

  static PoolOptions SmallPool(uint blocks) {
    var options = new PoolOptions();
    options.SetNumBlocks(blocks);
    options.SetBlockSize(4);
    return options;
  }

  static void PoolPrefixCaching() {
    using (var options = SmallPool(16))
    using (var pool = new Pool(options)) {
      ulong a = pool.CreateSequence(Range(10, 100));
      Equal(0u, pool.Allocate(a, 10), "nothing cached yet");
      int[] table = pool.BlockTable(a);
      Equal(3, table.Length, "blocks for 10 tokens");
      long[] slots = pool.SlotMapping(a, 0, 10);
      Equal((long)table[1] * 4 + 1, slots[5], "slot of token 5");
      ulong b = pool.CreateSequence(Range(10, 100));
      Equal(8u, pool.CachedPrefix(b), "cached prefix");
      Equal(8u, pool.Allocate(b, 10), "reused tokens");
      using (var salted = new SequenceOptions()) {
        salted.SetCacheSalt("tenant");
        salted.SetLoraId(7);  // published in events only
        Throws(() => salted.SetLoraId(-1), Status.INVALID_ARGUMENT);
        ulong c = pool.CreateSequence(Range(10, 100), salted);
        Equal(0u, pool.CachedPrefix(c), "another salt shares nothing");
        pool.FreeSequence(c);
      }
      using (Stats s = pool.Snapshot()) {
        Equal("pool", s.Component(), "component");
        Equal(20UL, s.TokensQueried(), "tokens queried");
        Equal(8UL, s.TokensHit(), "tokens hit");
      }
      True(pool.WindowTokenHitRate() > 0.39 && pool.WindowTokenHitRate() < 0.41, "window token hit rate");
      pool.FreeSequence(a);
      pool.FreeSequence(b);
      Equal(15u, pool.NumFreeBlocks(), "all free again");
    }
  }

  static void PoolForkEventsAndErrors() {
    using (var options = SmallPool(8)) {
      options.SetEvents(true, "GPU", 100);
      using (var pool = new Pool(options)) {
        ulong a = pool.CreateSequence(Range(6, 0));
        pool.Allocate(a, 6);
        ulong child = pool.Fork(a);
        pool.Append(child, 42);
        int[] copies = pool.DrainCopies();
        Equal(2, copies.Length, "one copy pair");
        Equal(pool.BlockTable(a)[1], copies[0], "copy source");
        Equal(pool.BlockTable(child)[1], copies[1], "copy destination");
        byte[] events = pool.DrainEvents(EventEncoding.ARRAY);
        Equal((byte)0x93, events[0], "EventBatch is a 3-array");
        // [ts float64, events [], rank] in either encoding: the events array header follows 1 + 9 bytes
        Equal((byte)0x90, pool.DrainEvents(EventEncoding.MAP)[10], "drained: no events left");
        int[] raw = pool.AllocateBlocks(2);
        pool.FreeBlocks(raw);
        Throws(() => pool.FreeBlocks(raw[0]), Status.INVALID_STATE);
        Throws(() => pool.AllocateBlocks(100), Status.CAPACITY);
        Throws(() => pool.Append(child, -1), Status.INVALID_ARGUMENT);
        pool.FreeSequence(child);
        Throws(() => pool.FreeSequence(child), Status.INVALID_STATE);
        Throws(() => pool.ResetPrefixCache(), Status.INVALID_STATE);
        pool.FreeSequence(a);
        pool.ResetPrefixCache();
      }
    }
    using (var options = SmallPool(8)) {
      options.SetMemory(Memory.HOST);
      options.SetModelShape(2, 1, 8, DType.F16);
      using (var pool = new Pool(options)) {
        Equal(2UL * 2 * 1 * 8 * 4 * 2, pool.BytesPerBlock(), "bytes per block");
        True(pool.StorageAddress() != 0, "host memory");
      }
    }
    using (var meta = new Pool()) Equal(0UL, meta.StorageAddress(), "metadata only: no memory");
    var closed = new Pool();
    closed.Dispose();
    Throws(() => closed.CreateSequence(new int[] {1, 2}), Status.INVALID_STATE);
    using (var bad = new PoolOptions()) Throws(() => bad.SetNumBlocks(1), Status.INVALID_ARGUMENT);
  }

  static void HashBlocksMatchesVllm() {
    // The first 32 tokens of vLLM's own event (tests/data/vllm_kv_event_base.json) and its first 2 hashes.
    int[] tokens = {2082, 1113, 2142, 374, 264, 4948, 19128, 323, 7203, 429, 374, 66351, 938, 315, 11198, 323,
                    59415, 678, 90505, 11, 54263, 533, 7586, 315, 28922, 13, 1527, 1113, 2142, 6738, 369, 279};
    ulong[] hashes = Pool.HashBlocks(HashAlgo.SHA256_CBOR, "42", 16, tokens);
    Equal(2, hashes.Length, "hash count");
    Equal(17705339885301241772UL, hashes[0], "block 0");
    Equal(13360521540053240825UL, hashes[1], "block 1");
    Throws(() => Pool.HashBlocks(HashAlgo.XXH3, "42", 0, tokens), Status.INVALID_ARGUMENT);
  }

  static void RecordPrefixLookup() {
    using (var options = new RecorderOptions()) {
      options.SetWindowAccesses(100);
      using (var recorder = new Recorder(options)) {
        recorder.RecordPrefixLookup(30, 40);
        recorder.RecordPrefixLookup(50, 10);  // the window's last 100: these 60, then the 40 misses before
        using (Stats s = recorder.Snapshot()) {
          Equal(80UL, s.Hits(), "hits");
          Equal(50UL, s.Misses(), "misses");
          Equal(50UL, s.WindowHits(), "window hits");
          Equal(100UL, s.WindowLookups(), "window lookups");
        }
        Throws(() => recorder.RecordPrefixLookup(ulong.MaxValue, 1), Status.INVALID_ARGUMENT);
      }
    }
  }

  static void PoolWithoutStatistics() {
    using (var options = SmallPool(16)) {
      options.SetStatistics(false);
      using (var pool = new Pool(options)) {
        ulong a = pool.CreateSequence(Range(10, 100));
        Equal(0u, pool.Allocate(a, 10), "nothing cached yet");
        Throws(() => pool.Snapshot(), Status.INVALID_STATE);
        True(double.IsNaN(pool.WindowTokenHitRate()), "no window without statistics");
      }
    }
  }

  static void RecordAccessBits() {
    using (var options = new RecorderOptions()) {
      options.SetWindowAccesses(100);
      using (var recorder = new Recorder(options)) {
        recorder.RecordAccessBits(0xAAAAAAAAAAAAAAAAUL, 64);  // 32 hits, 32 misses
        recorder.RecordAccessBits(0xFFFFFFFFFFFFFFF5UL, 3);   // 0b101: 2 hits, 1 miss; higher bits ignored
        using (Stats s = recorder.Snapshot()) {
          Equal(34UL, s.Hits(), "hits");
          Equal(33UL, s.Misses(), "misses");
          Equal(34UL, s.WindowHits(), "window hits");
          Equal(67UL, s.WindowLookups(), "window lookups");
        }
        Throws(() => recorder.RecordAccessBits(1, 0), Status.INVALID_ARGUMENT);
        Throws(() => recorder.RecordAccessBits(1, 65), Status.INVALID_ARGUMENT);
      }
    }
  }

  static void ExpositionOfSeveralComponents() {
    using (var poolOptions = new RecorderOptions())
    using (var storeOptions = new RecorderOptions()) {
      poolOptions.SetComponent("pool");
      storeOptions.SetComponent("store");
      using (var pool = new Recorder(poolOptions))
      using (var store = new Recorder(storeOptions))
      using (var exposition = new Exposition()) {
        pool.RecordAccess(true);
        store.RecordAccess(false);
        using (Stats p = pool.Snapshot()) exposition.Add(p);
        using (Stats s = store.Snapshot()) {
          exposition.Add(s);
          Throws(() => exposition.Add(s), Status.INVALID_ARGUMENT);  // the same component again
        }
        string text = exposition.ToPrometheus();
        Equal(2, text.Split(new[] {"# HELP kvcore_hits_total "}, StringSplitOptions.None).Length, "one HELP line per family");
        True(text.Contains("kvcore_hits_total{component=\"pool\"} 1\nkvcore_hits_total{component=\"store\"} 0\n"),
             "samples grouped by family");
      }
    }
  }

  static void ThrowsArgumentNull(Action action, string parameter) {
    try {
      action();
    } catch (ArgumentNullException e) {
      Equal(parameter, e.ParamName, "the null parameter");
      return;
    }
    throw new Exception("expected ArgumentNullException(" + parameter + ")");
  }

  // Null arrays are the caller's error: ArgumentNullException naming them, not a NullReferenceException.
  static void NullArrays() {
    using (var pool = new Pool()) {
      ThrowsArgumentNull(() => pool.CreateSequence(null), "prompt");
      ulong seq = pool.CreateSequence(new[] {1, 2, 3, 4});
      pool.Allocate(seq, 4);
      ThrowsArgumentNull(() => pool.Append(seq, null), "tokens");
      ThrowsArgumentNull(() => pool.FreeBlocks(null), "blocks");
      ThrowsArgumentNull(() => Pool.HashBlocks(HashAlgo.XXH3, "42", 16, null), "tokens");
      Equal(4UL, (ulong)pool.SequenceTokens(seq), "the failed calls changed nothing");
    }
  }

  static int Main() {
    var tests = new Dictionary<string, Action> {
      {"Version", Version},
      {"RecordsAndSnapshots", RecordsAndSnapshots},
      {"RecordAccessBits", RecordAccessBits},
      {"RecordPrefixLookup", RecordPrefixLookup},
      {"PoolWithoutStatistics", PoolWithoutStatistics},
      {"ExpositionOfSeveralComponents", ExpositionOfSeveralComponents},
      {"OptionsAndLayers", OptionsAndLayers},
      {"BadInput", BadInput},
      {"DisposedObjectsThrow", DisposedObjectsThrow},
      {"ThreadsRecordConcurrently", ThreadsRecordConcurrently},
      {"PoolPrefixCaching", PoolPrefixCaching},
      {"PoolForkEventsAndErrors", PoolForkEventsAndErrors},
      {"HashBlocksMatchesVllm", HashBlocksMatchesVllm},
      {"NullArrays", NullArrays},
    };
    int passed = 0, failed = 0;
    foreach (var test in tests) {
      try {
        test.Value();
        passed++;
        Console.WriteLine("PASS " + test.Key);
      } catch (Exception e) {
        failed++;
        Console.WriteLine("FAIL " + test.Key + ": " + e);
      }
    }
    Console.WriteLine("csharp: {0} passed, {1} failed", passed, failed);
    return failed == 0 ? 0 : 1;
  }
}
