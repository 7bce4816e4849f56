import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.kvcore.KvcoreException;
import org.kvcore.Library;
import org.kvcore.Recorder;
import org.kvcore.RecorderOptions;
import org.kvcore.Stats;
import org.kvcore.Status;

/** The Java binding's test suite: every Recorder, RecorderOptions and Stats member, errors included. */
public class KvcoreTest {
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

  static KvcoreException throwsStatus(Runnable action, Status expected) {
    try {
      action.run();
    } catch (KvcoreException e) {
      equal(expected, e.getStatus(), "status of " + e.getMessage());
      return e;
    }
    throw new AssertionError("expected KvcoreException(" + expected + ")");
  }

  static void version() {
    equal(Library.KVC_VERSION_NUMBER, Library.versionNumber(), "version number");
    check(Library.versionString().startsWith(Library.KVC_VERSION_MAJOR + "."), "version string");
    equal("KVC_ERR_CAPACITY", Library.statusString(Status.CAPACITY), "status string");
    check(Library.lastErrorMessage() != null, "last error message");
  }

  static void recordsAndSnapshots() {
    try (Recorder recorder = new Recorder()) {
      for (int i = 0; i < 1000; i++) {
        recorder.recordAccess(false);
      }
      byte[] hits = new byte[500];
      for (int i = 0; i < hits.length; i++) {
        hits[i] = (byte) (1 + i % 2); // any non-zero byte is a hit
      }
      recorder.recordAccesses(hits);
      recorder.recordAccesses(new byte[0]);
      recorder.recordInsertions(3);
      recorder.recordEvictions(2);
      recorder.recordMemoryPressure();
      recorder.recordTokens(64, 48);
      recorder.recordReusedTokens(47);
      recorder.addBytes(4096);
      recorder.addBytes(-1024);
      try (Stats s = recorder.snapshot()) {
        equal("cache", s.component(), "component");
        equal(500L, s.hits(), "hits");
        equal(1000L, s.misses(), "misses");
        equal(1500L, s.lookups(), "lookups");
        check(Math.abs(s.hitRate() - 1.0 / 3) < 1e-12, "hit rate");
        equal(1000, s.windowSize(), "window size");
        equal(1000L, s.windowLookups(), "window lookups");
        equal(500L, s.windowHits(), "window hits");
        equal(0.5, s.windowHitRate(), "window hit rate");
        equal(60, s.windowSeconds(), "window seconds");
        equal(1500L, s.timeWindowLookups(), "time window lookups");
        equal(500L, s.timeWindowHits(), "time window hits");
        check(Math.abs(s.timeWindowHitRate() - 1.0 / 3) < 1e-12, "time window rate");
        equal(3L, s.insertions(), "insertions");
        equal(2L, s.evictions(), "evictions");
        equal(1L, s.memoryPressureEvents(), "pressure");
        equal(64L, s.tokensQueried(), "tokens queried");
        equal(48L, s.tokensHit(), "tokens hit");
        equal(47L, s.tokensReused(), "tokens reused");
        equal(0.75, s.tokenHitRate(), "token hit rate");
        equal(3072L, s.bytesInUse(), "bytes");
        equal(4096L, s.peakBytes(), "peak");
        check(s.toPrometheus().contains("kvcore_hits_total{component=\"cache\"} 500\n"), "prometheus");
        check(s.toJson().contains("\"misses\":1000"), "json");
      }
      recorder.setBytes(10);
      try (Stats s = recorder.snapshot()) {
        equal(10L, s.bytesInUse(), "set bytes");
      }
    }
  }

  static void optionsAndLayers() {
    try (RecorderOptions options = new RecorderOptions()) {
      options.setComponent("prefix_cache");
      options.setWindowAccesses(4);
      options.setWindowSeconds(30);
      options.setLayers(2);
      try (Recorder recorder = new Recorder(options)) {
        recorder.recordLayerAccess(1, true);
        recorder.recordLayerAccess(1, false);
        recorder.recordLayerAccess(0, true);
        try (Stats s = recorder.snapshot()) {
          equal("prefix_cache", s.component(), "component");
          equal(2, s.layers(), "layers");
          equal(1L, s.layerHits(1), "layer hits");
          equal(1L, s.layerMisses(1), "layer misses");
          equal(0.5, s.layerHitRate(1), "layer rate");
          equal(1.0, s.layerHitRate(0), "layer 0 rate");
          equal(30, s.windowSeconds(), "window seconds");
          throwsStatus(() -> s.layerHitRate(2), Status.OUT_OF_RANGE);
        }
        KvcoreException e = throwsStatus(() -> recorder.recordLayerAccess(7, true), Status.OUT_OF_RANGE);
        check(e.getMessage().contains("layer 7 is out of range"), "message: " + e.getMessage());
      }
    }
  }

  static void badInput() {
    try (RecorderOptions options = new RecorderOptions()) {
      throwsStatus(() -> options.setWindowAccesses(0), Status.INVALID_ARGUMENT);
      throwsStatus(() -> options.setWindowSeconds(0), Status.INVALID_ARGUMENT);
      throwsStatus(() -> options.setComponent("not valid"), Status.INVALID_ARGUMENT);
      throwsStatus(() -> options.setLayers(100000), Status.INVALID_ARGUMENT);
    }
    try (Recorder recorder = new Recorder()) {
      throwsStatus(() -> recorder.recordTokens(1, 2), Status.INVALID_ARGUMENT);
      throwsStatus(() -> recorder.addBytes(-1), Status.INVALID_ARGUMENT);
    }
  }

  static void closedObjectsThrow() {
    Recorder recorder = new Recorder();
    recorder.close();
    recorder.close();
    throwsStatus(() -> recorder.recordAccess(true), Status.INVALID_STATE);
    throwsStatus(() -> recorder.recordAccesses(new byte[] {1, 0}), Status.INVALID_STATE);
  }

  static void threadsRecordConcurrently() throws InterruptedException {
    try (Recorder recorder = new Recorder()) {
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        Thread thread = new Thread(() -> {
          for (int i = 0; i < 10000; i++) {
            recorder.recordAccess(i % 2 == 0);
          }
        });
        threads.add(thread);
        thread.start();
      }
      for (Thread thread : threads) {
        thread.join();
      }
      try (Stats s = recorder.snapshot()) {
        equal(40000L, s.lookups(), "lookups from 4 threads");
        equal(20000L, s.hits(), "hits from 4 threads");
      }
    }
  }

  interface Test {
    void run() throws Exception;
  }

  public static void main(String[] args) {
    Map<String, Test> tests = new LinkedHashMap<>();
    tests.put("version", KvcoreTest::version);
    tests.put("recordsAndSnapshots", KvcoreTest::recordsAndSnapshots);
    tests.put("optionsAndLayers", KvcoreTest::optionsAndLayers);
    tests.put("badInput", KvcoreTest::badInput);
    tests.put("closedObjectsThrow", KvcoreTest::closedObjectsThrow);
    tests.put("threadsRecordConcurrently", KvcoreTest::threadsRecordConcurrently);
    int passed = 0;
    int failed = 0;
    for (Map.Entry<String, Test> test : tests.entrySet()) {
      try {
        test.getValue().run();
        passed++;
        System.out.println("PASS " + test.getKey());
      } catch (Throwable e) {
        failed++;
        System.out.println("FAIL " + test.getKey() + ": " + e);
        e.printStackTrace(System.out);
      }
    }
    System.out.printf("java: %d passed, %d failed%n", passed, failed);
    System.exit(failed == 0 ? 0 : 1);
  }
}
