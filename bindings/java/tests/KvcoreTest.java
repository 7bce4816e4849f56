// SPDX-License-Identifier: Apache-2.0
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.kvcore.KvcoreException;
import org.kvcore.EventEncoding;
import org.kvcore.Exposition;
import org.kvcore.HashAlgo;
import org.kvcore.Library;
import org.kvcore.Pool;
import org.kvcore.PoolOptions;
import org.kvcore.Recorder;
import org.kvcore.RecorderOptions;
import org.kvcore.SequenceOptions;
import org.kvcore.Stats;
import org.kvcore.Status;

/** The Java binding's test suite: every Recorder, RecorderOptions and Stats member, errors included. */
public class KvcoreTest extends Expect {
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

  static int[] range(int n, int first) {
    int[] tokens = new int[n];
    for (int i = 0; i < n; i++) {
      tokens[i] = first + i;
    }
    return tokens;
  }

  static PoolOptions smallPool(int blocks) {
    PoolOptions options = new PoolOptions();
    options.setNumBlocks(blocks);
    options.setBlockSize(4);
    return options;
  }

  static void poolPrefixCaching() {
    try (PoolOptions options = smallPool(16);
        Pool pool = new Pool(options)) {
      long a = pool.createSequence(range(10, 100));
      equal(0L, pool.allocate(a, 10), "nothing cached yet");
      int[] table = pool.blockTable(a);
      equal(3, table.length, "blocks for 10 tokens");
      long[] slots = pool.slotMapping(a, 0, 10);
      equal((long) table[1] * 4 + 1, slots[5], "slot of token 5");
      long b = pool.createSequence(range(10, 100));
      equal(8L, pool.cachedPrefix(b), "cached prefix");
      equal(8L, pool.allocate(b, 10), "reused tokens");
      try (SequenceOptions salted = new SequenceOptions()) {
        salted.setCacheSalt("tenant");
        salted.setLoraId(7);  // published in events only
        throwsStatus(() -> salted.setLoraId(-1), Status.INVALID_ARGUMENT);
        long c = pool.createSequence(range(10, 100), salted);
        equal(0L, pool.cachedPrefix(c), "another salt shares nothing");
        pool.freeSequence(c);
      }
      try (Stats s = pool.snapshot()) {
        equal("pool", s.component(), "component");
        equal(20L, s.tokensQueried(), "tokens queried");
        equal(8L, s.tokensHit(), "tokens hit");
      }
      check(Math.abs(pool.windowTokenHitRate() - 0.4) < 1e-9, "window token hit rate");
      pool.freeSequence(a);
      pool.freeSequence(b);
      equal(15, pool.numFreeBlocks(), "all free again");
    }
  }

  static void poolForkEventsAndErrors() {
    try (PoolOptions options = smallPool(8)) {
      options.setEvents(true, "GPU", 100);
      try (Pool pool = new Pool(options)) {
        long a = pool.createSequence(range(6, 0));
        pool.allocate(a, 6);
        long child = pool.fork(a);
        pool.append(child, 42);
        int[] copies = pool.drainCopies();
        equal(2, copies.length, "one copy pair");
        equal(pool.blockTable(a)[1], copies[0], "copy source");
        equal(pool.blockTable(child)[1], copies[1], "copy destination");
        byte[] events = pool.drainEvents(EventEncoding.ARRAY);
        equal((byte) 0x93, events[0], "EventBatch is a 3-array");
        // [ts float64, events [], rank] in either encoding: the events array header follows 1 + 9 bytes
        equal((byte) 0x90, pool.drainEvents(EventEncoding.MAP)[10], "drained: no events left");
        int[] raw = pool.allocateBlocks(2);
        pool.freeBlocks(raw);
        throwsStatus(() -> pool.freeBlocks(raw[0]), Status.INVALID_STATE);
        throwsStatus(() -> pool.allocateBlocks(100), Status.CAPACITY);
        throwsStatus(() -> pool.append(child, -1), Status.INVALID_ARGUMENT);
        pool.freeSequence(child);
        throwsStatus(() -> pool.freeSequence(child), Status.INVALID_STATE);
        throwsStatus(pool::resetPrefixCache, Status.INVALID_STATE);
        pool.freeSequence(a);
        pool.resetPrefixCache();
      }
    }
    try (PoolOptions options = smallPool(8)) {
      options.setMemory(org.kvcore.Memory.HOST);
      options.setModelShape(2, 1, 8, org.kvcore.DType.F16);
      try (Pool pool = new Pool(options)) {
        equal(2L * 2 * 1 * 8 * 4 * 2, pool.bytesPerBlock(), "bytes per block");
        check(pool.storageAddress() != 0, "host memory");
      }
    }
    try (Pool meta = new Pool()) {
      equal(0L, meta.storageAddress(), "metadata only: no memory");
    }
    Pool closed = new Pool();
    closed.close();
    throwsStatus(() -> closed.createSequence(new int[] {1, 2}), Status.INVALID_STATE);
    try (PoolOptions bad = new PoolOptions()) {
      throwsStatus(() -> bad.setNumBlocks(1), Status.INVALID_ARGUMENT);
    }
  }

  static void hashBlocksMatchesVllm() {
    // The first 32 tokens of vLLM's own event (tests/data/vllm_kv_event_base.json) and its first 2 hashes.
    int[] tokens = {2082, 1113, 2142, 374, 264, 4948, 19128, 323, 7203, 429, 374, 66351, 938, 315, 11198, 323,
      59415, 678, 90505, 11, 54263, 533, 7586, 315, 28922, 13, 1527, 1113, 2142, 6738, 369, 279};
    long[] hashes = Pool.hashBlocks(HashAlgo.SHA256_CBOR, "42", 16, tokens, null);
    equal(2, hashes.length, "hash count");
    equal("17705339885301241772", Long.toUnsignedString(hashes[0]), "block 0");
    equal("13360521540053240825", Long.toUnsignedString(hashes[1]), "block 1");
    throwsStatus(() -> Pool.hashBlocks(HashAlgo.XXH3, "42", 0, tokens, null), Status.INVALID_ARGUMENT);
  }

  /** Null arrays, enums and strings are the caller's error: KvcoreException(INVALID_ARGUMENT), never an NPE. */
  static void nullArguments() {
    try (Pool pool = new Pool(); Recorder recorder = new Recorder(); RecorderOptions recorderOptions = new RecorderOptions();
         PoolOptions poolOptions = new PoolOptions(); Exposition exposition = new Exposition()) {
      KvcoreException e = throwsStatus(() -> pool.createSequence(null), Status.INVALID_ARGUMENT);
      check(e.getMessage().contains("prompt is null"), "names the argument: " + e.getMessage());
      throwsStatus(() -> pool.createSequence(null, null), Status.INVALID_ARGUMENT);
      long seq = pool.createSequence(range(4, 1));
      pool.allocate(seq, 4);
      throwsStatus(() -> pool.append(seq, (int[]) null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> pool.freeBlocks((int[]) null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> pool.drainEvents(null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> Pool.hashBlocks(HashAlgo.XXH3, "42", 16, null, null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> Pool.hashBlocks(null, "42", 16, range(32, 1), null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> recorder.recordAccesses(null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> recorderOptions.setComponent(null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> poolOptions.setMemory(null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> poolOptions.setHash(null, "42"), Status.INVALID_ARGUMENT);
      throwsStatus(() -> poolOptions.setHash(HashAlgo.XXH3, null), Status.INVALID_ARGUMENT);
      try (SequenceOptions sequenceOptions = new SequenceOptions()) {
        throwsStatus(() -> sequenceOptions.setCacheSalt(null), Status.INVALID_ARGUMENT);
      }
      throwsStatus(() -> poolOptions.setModelShape(2, 1, 8, null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> exposition.add(null), Status.INVALID_ARGUMENT);
      throwsStatus(() -> Library.statusString(null), Status.INVALID_ARGUMENT);
      equal(4L, pool.sequenceTokens(seq), "the failed calls changed nothing");
    }
  }

  static void recordPrefixLookup() {
    try (RecorderOptions options = new RecorderOptions()) {
      options.setWindowAccesses(100);
      try (Recorder recorder = new Recorder(options)) {
        recorder.recordPrefixLookup(30, 40);
        recorder.recordPrefixLookup(50, 10); // the window's last 100: these 60, then the 40 misses before
        try (Stats s = recorder.snapshot()) {
          equal(80L, s.hits(), "hits");
          equal(50L, s.misses(), "misses");
          equal(50L, s.windowHits(), "window hits");
          equal(100L, s.windowLookups(), "window lookups");
        }
        // -1L is 2^64 - 1 as the C API's uint64_t.
        throwsStatus(() -> recorder.recordPrefixLookup(-1L, 1), Status.INVALID_ARGUMENT);
      }
    }
  }

  static void poolWithoutStatistics() {
    try (PoolOptions options = smallPool(16)) {
      options.setStatistics(false);
      try (Pool pool = new Pool(options)) {
        long a = pool.createSequence(range(10, 100));
        equal(0L, pool.allocate(a, 10), "nothing cached yet");
        throwsStatus(() -> pool.snapshot(), Status.INVALID_STATE);
        check(Double.isNaN(pool.windowTokenHitRate()), "no window without statistics");
      }
    }
  }

  static void recordAccessBits() {
    try (RecorderOptions options = new RecorderOptions()) {
      options.setWindowAccesses(100);
      try (Recorder recorder = new Recorder(options)) {
        recorder.recordAccessBits(0xAAAAAAAAAAAAAAAAL, 64); // 32 hits, 32 misses
        recorder.recordAccessBits(0xFFFFFFFFFFFFFFF5L, 3); // 0b101: 2 hits, 1 miss; higher bits ignored
        try (Stats s = recorder.snapshot()) {
          equal(34L, s.hits(), "hits");
          equal(33L, s.misses(), "misses");
          equal(34L, s.windowHits(), "window hits");
          equal(67L, s.windowLookups(), "window lookups");
        }
        throwsStatus(() -> recorder.recordAccessBits(1, 0), Status.INVALID_ARGUMENT);
        throwsStatus(() -> recorder.recordAccessBits(1, 65), Status.INVALID_ARGUMENT);
      }
    }
  }

  static void expositionOfSeveralComponents() {
    try (RecorderOptions poolOptions = new RecorderOptions();
        RecorderOptions storeOptions = new RecorderOptions()) {
      poolOptions.setComponent("pool");
      storeOptions.setComponent("store");
      try (Recorder pool = new Recorder(poolOptions);
          Recorder store = new Recorder(storeOptions);
          Exposition exposition = new Exposition()) {
        pool.recordAccess(true);
        store.recordAccess(false);
        try (Stats p = pool.snapshot()) {
          exposition.add(p);
        }
        try (Stats s = store.snapshot()) {
          exposition.add(s);
          throwsStatus(() -> exposition.add(s), Status.INVALID_ARGUMENT); // the same component again
        }
        String text = exposition.toPrometheus();
        equal(2, text.split("# HELP kvcore_hits_total ", -1).length, "one HELP line per family");
        check(text.contains("kvcore_hits_total{component=\"pool\"} 1\nkvcore_hits_total{component=\"store\"} 0\n"),
            "samples grouped by family");
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
    tests.put("recordAccessBits", KvcoreTest::recordAccessBits);
    tests.put("recordPrefixLookup", KvcoreTest::recordPrefixLookup);
    tests.put("poolWithoutStatistics", KvcoreTest::poolWithoutStatistics);
    tests.put("expositionOfSeveralComponents", KvcoreTest::expositionOfSeveralComponents);
    tests.put("optionsAndLayers", KvcoreTest::optionsAndLayers);
    tests.put("badInput", KvcoreTest::badInput);
    tests.put("closedObjectsThrow", KvcoreTest::closedObjectsThrow);
    tests.put("threadsRecordConcurrently", KvcoreTest::threadsRecordConcurrently);
    tests.put("poolPrefixCaching", KvcoreTest::poolPrefixCaching);
    tests.put("poolForkEventsAndErrors", KvcoreTest::poolForkEventsAndErrors);
    tests.put("hashBlocksMatchesVllm", KvcoreTest::hashBlocksMatchesVllm);
    tests.put("nullArguments", KvcoreTest::nullArguments);
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
