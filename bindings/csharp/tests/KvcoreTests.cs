// The C# binding's test suite: every Recorder, RecorderOptions and Stats member, errors included.
using System;
using System.Collections.Generic;
using System.Threading;
using Kvcore;

static class KvcoreTests {
  static void Equal<T>(T expected, T actual, string what) {
    if (!EqualityComparer<T>.Default.Equals(expected, actual))
      throw new Exception(what + ": expected " + expected + ", got " + actual);
  }

  static void True(bool condition, string what) {
    if (!condition) throw new Exception(what);
  }

  static KvcoreException Throws(Action action, Status expected) {
    try {
      action();
    } catch (KvcoreException e) {
      Equal(expected, e.Status, "status of " + e.Message);
      return e;
    }
    throw new Exception("expected KvcoreException(" + expected + ")");
  }

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

  static int Main() {
    var tests = new Dictionary<string, Action> {
      {"Version", Version},
      {"RecordsAndSnapshots", RecordsAndSnapshots},
      {"OptionsAndLayers", OptionsAndLayers},
      {"BadInput", BadInput},
      {"DisposedObjectsThrow", DisposedObjectsThrow},
      {"ThreadsRecordConcurrently", ThreadsRecordConcurrently},
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
