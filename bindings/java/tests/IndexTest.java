// SPDX-License-Identifier: Apache-2.0
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.kvcore.EventEncoding;
import org.kvcore.EventPublisher;
import org.kvcore.EventPublisherOptions;
import org.kvcore.HashAlgo;
import org.kvcore.IndexKeyKind;
import org.kvcore.IndexTier;
import org.kvcore.KvIndex;
import org.kvcore.KvIndexOptions;
import org.kvcore.KvIndexSubscriber;
import org.kvcore.KvIndexSubscriberOptions;
import org.kvcore.KvcoreException;
import org.kvcore.PodEntry;
import org.kvcore.PodScore;
import org.kvcore.Pool;
import org.kvcore.PoolOptions;
import org.kvcore.Status;

/**
 * The Java binding's tests of the cluster index: a kvcore pool's real KV events ingested and scored,
 * lookups, llm-d's explicit add/evict, speculative entries, pod removal, counters, errors; a kvcore
 * engine's EventPublisher feeding a KvIndexSubscriber over ZeroMQ on loopback.
 */
public class IndexTest extends Expect {
  static int[] prompt(int n, int first) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = first + 7 * i;
    }
    return t;
  }

  /** A vLLM-like engine: a kvcore pool hashing with sha256_cbor, publishing KV events. */
  static byte[] engineEvents(int[] prompt) {
    try (PoolOptions options = new PoolOptions()) {
      options.setNumBlocks(64);
      options.setBlockSize(16);
      options.setHash(HashAlgo.SHA256_CBOR, "42");
      options.setEvents(true, "GPU", 1024);
      try (Pool pool = new Pool(options)) {
        long seq = pool.createSequence(prompt);
        pool.allocate(seq, prompt.length);
        pool.freeSequence(seq);
        return pool.drainEvents(EventEncoding.ARRAY);
      }
    }
  }

  static void eventsScoreAndLookup() {
    int[] prompt = prompt(70, 1000);  // 4 full blocks of 16
    try (KvIndex index = new KvIndex()) {
      index.applyBatch("pod-a", "llama", engineEvents(prompt));
      PodScore[] scores = index.scoreTokens("llama", prompt, Arrays.asList("pod-a", "pod-b"));
      equal(4, scores[0].blocks(), "pod-a holds the prompt's 4 blocks");
      equal(4.0, scores[0].score(), "gpu blocks weigh 1");
      equal("pod-b", scores[1].pod(), "scores come in the candidates' order");
      equal(0.0, scores[1].score(), "an unknown pod scores 0");
      equal(4.0, index.score("llama", prompt, Arrays.asList("pod-a")).get("pod-a"), "score by pod");
      long[] keys = index.requestKeys(prompt);
      equal(4, keys.length, "request keys");
      equal(4, index.scoreKeys("llama", keys, IndexKeyKind.REQUEST, Arrays.asList("pod-a"))[0].blocks(), "by keys");
      int[] other = prompt.clone();
      other[40] = 5;
      equal(2, index.scoreTokens("llama", other, Arrays.asList("pod-a"))[0].blocks(), "shared prefix");
      List<List<PodEntry>> found = index.lookup("llama", keys);
      equal(4, found.size(), "every key found");
      equal(new PodEntry("pod-a"), found.get(3).get(0), "holder");
      equal(0, index.lookup("llama", keys, IndexKeyKind.REQUEST, Arrays.asList("pod-b")).size(), "filtered out");
      Map<String, Long> counters = index.counters();
      equal(1L, counters.get("batches_applied"), "batches applied");
      equal(4L, counters.get("keys"), "keys");
      check(index.clear("pod-a", "llama", 0), "clear a known pod");
      equal(0L, index.counters().get("keys"), "cleared");
      check(index.removePod("pod-a"), "remove a known pod");
      check(!index.removePod("pod-a"), "removing it again finds nothing");
    }
  }

  static void ingestThreads() {
    int[] prompt = prompt(40, 3);
    try (KvIndexOptions options = new KvIndexOptions()) {
      options.setIngestThreads(2, 8);
      options.setTierWeight(IndexTier.GPU, 2.0);
      try (KvIndex index = new KvIndex(options)) {
        byte[] events = engineEvents(prompt);
        for (String pod : new String[] {"a", "b", "c"}) {
          index.submitBatch(pod, "m", events);
        }
        index.flush();
        for (PodScore s : index.scoreTokens("m", prompt, Arrays.asList("a", "b", "c"))) {
          equal(4.0, s.score(), "two gpu blocks weigh 2 each, " + s.pod());
        }
      }
    }
  }

  static void explicitAddAndEvict() {
    try (KvIndex index = new KvIndex()) {
      long[] engine = {55269488L, 55269489L};
      long[] request = {10633516L, 0x8000000000000001L};  // unsigned keys travel in longs
      index.add("m", engine, request, new PodEntry("pod1"), new PodEntry("pod2", IndexTier.CPU, 1, false));
      List<List<PodEntry>> found = index.lookup("m", request);
      equal(2, found.size(), "both keys");
      check(found.get(1).contains(new PodEntry("pod2", IndexTier.CPU, 1, false)), "pod2 on the cpu, rank 1");
      PodScore[] scores = index.scoreKeys("m", request, IndexKeyKind.REQUEST, Arrays.asList("pod1", "pod2"));
      check(Math.abs(scores[1].score() - 1.6) < 1e-6, "cpu blocks weigh 0.8");
      index.evict("m", engine[1], IndexKeyKind.ENGINE, new PodEntry("pod1"), new PodEntry("pod2"));
      equal(1, index.scoreKeys("m", request, IndexKeyKind.REQUEST, Arrays.asList("pod1"))[0].blocks(), "pod1");
      equal(2, index.scoreKeys("m", request, IndexKeyKind.REQUEST, Arrays.asList("pod2"))[0].blocks(), "pod2");
      index.evict("m", request[0], IndexKeyKind.REQUEST, new PodEntry("pod2", IndexTier.CPU, 1, false));
      equal(0, index.scoreKeys("m", request, IndexKeyKind.REQUEST, Arrays.asList("pod2"))[0].blocks(), "pod2 gone");
      // 1:many: one engine block of two request blocks.
      index.add("m2", new long[] {9}, request, new PodEntry("pod3"));
      index.evict("m2", 9, IndexKeyKind.ENGINE, new PodEntry("pod3"));
      equal(0, index.lookup("m2", request).size(), "both request keys went with the engine key");
      // Speculative entries.
      index.add("m3", null, request, PodEntry.speculative("pod4"));
      check(index.lookup("m3", request).get(0).get(0).speculative(), "speculative holder");
      index.evict("m3", request[0], IndexKeyKind.REQUEST, PodEntry.speculative("pod4"));
      equal(0, index.lookup("m3", request).size(), "withdrawn");
      equal(1L, index.counters().get("speculative"), "the second key's decision stays");
      index.removeSpeculative("m3", request, "pod4");
      equal(0L, index.counters().get("speculative"), "none left");
    }
  }

  static void errors() {
    try (KvIndex index = new KvIndex()) {
      byte[] events = engineEvents(prompt(40, 3));
      byte[] cut = Arrays.copyOf(events, events.length - 3);
      throwsStatus(() -> index.applyBatch("p", "m", cut), Status.INVALID_ARGUMENT);
      equal(1L, index.counters().get("batches_failed"), "counted");
      throwsStatus(() -> index.submitBatch("p", "m", events), Status.INVALID_STATE);
      throwsStatus(() -> index.add("m", new long[] {1, 2, 3}, new long[] {4, 5}, new PodEntry("p")),
                   Status.INVALID_ARGUMENT);
      throwsStatus(() -> index.add("m", null, new long[] {4}), Status.INVALID_ARGUMENT);
      throwsStatus(() -> index.add("m", null, new long[] {4}, new PodEntry("p", IndexTier.GPU, 4096, false)),
                   Status.INVALID_ARGUMENT);
      throwsStatus(() -> index.scoreTokens("m", new int[] {1}, Arrays.asList("bad\0name")), Status.INVALID_ARGUMENT);
      throwsStatus(() -> index.scoreKeys("m", new long[] {1}, null, Arrays.asList("p")), Status.INVALID_ARGUMENT);
      throwsStatus(() -> index.applyBatch("p", "m", null), Status.INVALID_ARGUMENT);
    }
    try (KvIndexOptions options = new KvIndexOptions()) {
      throwsStatus(() -> options.setShards(3), Status.INVALID_ARGUMENT);
      throwsStatus(() -> options.setEngineKeysDirect(true), Status.INVALID_ARGUMENT);
    }
    KvIndex closed = new KvIndex();
    closed.close();
    throwsStatus(closed::flush, Status.INVALID_STATE);
    equal("cpu", KvIndex.tierName(IndexTier.CPU), "tier name");
  }

  /**
   * Waits until the router scores engine-0 with the prompt's blocks. A PUB drops what it sends before the
   * subscriber's connection is up, so meanwhile the engine publishes empty batches (idle steps): the first
   * the router sees shows it the seqs it missed, and it asks the replay ROUTER for them.
   */
  static PodScore[] waitForScore(EventPublisher publisher, Pool pool, KvIndex index, int[] prompt, int blocks)
      throws InterruptedException {
    List<String> pods = Arrays.asList("engine-0", "engine-1");
    long deadline = System.nanoTime() + 10_000_000_000L;
    long beat = System.nanoTime() + 100_000_000L;
    PodScore[] scores = index.scoreTokens("model", prompt, pods);
    while (scores[0].blocks() != blocks && System.nanoTime() < deadline) {
      Thread.sleep(2);
      if (System.nanoTime() > beat) {
        publisher.publish(pool.drainEvents(EventEncoding.MAP));
        beat = System.nanoTime() + 100_000_000L;
      }
      scores = index.scoreTokens("model", prompt, pods);
    }
    return scores;
  }

  /** A build without ZeroMQ (KVCORE_TEST_ZMQ=OFF, set by CMake): the publisher must say UNSUPPORTED. */
  static boolean withoutZmq() {
    if (!"OFF".equals(System.getenv("KVCORE_TEST_ZMQ"))) {
      return false;
    }
    try (EventPublisherOptions options = new EventPublisherOptions()) {
      options.setEndpoint("tcp://127.0.0.1:0", false);
      throwsStatus(() -> new EventPublisher(options), Status.UNSUPPORTED);
    }
    return true;
  }

  /** A kvcore engine (pool + EventPublisher) and a kvcore router (KvIndexSubscriber + KvIndex) on loopback. */
  static void engineToRouter() throws InterruptedException {
    if (withoutZmq()) {
      return;
    }
    int[] prompt = prompt(80, 500);  // 5 full blocks of 16
    try (PoolOptions poolOptions = new PoolOptions();
         EventPublisherOptions publisherOptions = new EventPublisherOptions();
         KvIndexOptions indexOptions = new KvIndexOptions();
         KvIndexSubscriberOptions subscriberOptions = new KvIndexSubscriberOptions()) {
      poolOptions.setNumBlocks(32);
      poolOptions.setBlockSize(16);
      poolOptions.setHash(HashAlgo.SHA256_CBOR, "42");
      poolOptions.setEvents(true, "GPU", 1024);
      publisherOptions.setEndpoint("tcp://127.0.0.1:0", false);
      publisherOptions.setReplayEndpoint("tcp://127.0.0.1:0");
      publisherOptions.setTopic(EventPublisher.topic("engine-0", "model"));
      indexOptions.setHash(HashAlgo.SHA256_CBOR, "42");
      indexOptions.setEngineKeysDirect(true);
      try (Pool pool = new Pool(poolOptions); EventPublisher publisher = new EventPublisher(publisherOptions)) {
        String endpoint = publisher.endpoint();
        check(endpoint.startsWith("tcp://127.0.0.1:") && !endpoint.equals("tcp://127.0.0.1:0"), "bound port: " + endpoint);
        check(!publisher.replayEndpoint().equals(endpoint), "a replay endpoint of its own");
        equal(-1L, publisher.publishPool(pool, EventEncoding.MAP), "nothing pending: nothing sent");
        KvIndex index = new KvIndex(indexOptions);
        subscriberOptions.addEngine(endpoint, publisher.replayEndpoint());
        KvIndexSubscriber subscriber = new KvIndexSubscriber(index, subscriberOptions);
        subscriber.start();
        equal("", subscriber.boundEndpoint(), "connect mode binds nothing");
        long seq = pool.createSequence(prompt);
        pool.allocate(seq, prompt.length);
        equal(0L, publisher.publishPool(pool, EventEncoding.MAP), "the first batch is seq 0");
        PodScore[] scores = waitForScore(publisher, pool, index, prompt, 5);
        equal(5, scores[0].blocks(), "engine-0 holds the prompt's 5 blocks");
        equal(5.0, scores[0].score(), "gpu blocks weigh 1");
        equal(0.0, scores[1].score(), "another pod scores 0");
        equal(0L, subscriber.counters().get("decode_failures"), "decode_failures");
        equal(0L, subscriber.counters().get("lost_batches"), "lost_batches");
        check(subscriber.counters().get("batches_applied") >= 1, "batches_applied");
        check(publisher.counters().get("published") >= 1, "published");
        check(publisher.counters().containsKey("replay_requests"), "replay_requests by name");
        // The index closed before its subscriber (as finalizers may run): the subscriber keeps it alive.
        index.close();
        publisher.publish(pool.drainEvents(EventEncoding.MAP));
        subscriber.stop();
        subscriber.close();
        throwsStatus(subscriber::start, Status.INVALID_STATE);
        throwsStatus(() -> new KvIndexSubscriber(index, subscriberOptions), Status.INVALID_STATE);
        pool.freeSequence(seq);
      }
    }
  }

  static void publisherErrors() {
    if (withoutZmq()) {
      return;
    }
    try (EventPublisherOptions options = new EventPublisherOptions()) {
      throwsStatus(() -> options.setEndpoint("", false), Status.INVALID_ARGUMENT);
      throwsStatus(() -> options.setBufferSteps(0), Status.INVALID_ARGUMENT);
      options.setEndpoint("nonsense://x", false);
      KvcoreException e = throwsStatus(() -> new EventPublisher(options), Status.INVALID_ARGUMENT);
      check(e.getMessage().contains("nonsense://x"), "the message names the endpoint: " + e.getMessage());
      options.setEndpoint("tcp://127.0.0.1:0", false);
      try (EventPublisher publisher = new EventPublisher(options)) {
        equal("", publisher.replayEndpoint(), "no replay by default");
        equal(0L, publisher.publish(new byte[] {(byte) 0x93}), "seq 0");
        equal(1L, publisher.counters().get("published"), "published");
        try (Pool noEvents = new Pool()) {
          throwsStatus(() -> publisher.publishPool(noEvents, EventEncoding.MAP), Status.INVALID_STATE);
        }
        Pool closed = new Pool();
        closed.close();
        throwsStatus(() -> publisher.publishPool(closed, EventEncoding.MAP), Status.INVALID_STATE);
      }
    }
    throwsStatus(() -> EventPublisher.topic("a@b", "model"), Status.INVALID_ARGUMENT);
    equal("kv@pod@org/model", EventPublisher.topic("pod", "org/model"), "llm-d's topic");
    try (KvIndex index = new KvIndex(); KvIndexSubscriberOptions options = new KvIndexSubscriberOptions()) {
      throwsStatus(() -> new KvIndexSubscriber(index, options), Status.INVALID_ARGUMENT);  // no endpoint
      options.setBind("nonsense://x");
      try (KvIndexSubscriber subscriber = new KvIndexSubscriber(index, options)) {
        throwsStatus(subscriber::start, Status.INVALID_ARGUMENT);
      }
    }
  }

  // The score cache answers a repeated prompt, and a write touching it makes the next score a miss.
  // Redis mode: a server that is not there fails with IO; the two together are refused.
  static void scoreCacheAndRedisOptions() {
    int[] prompt = prompt(70, 500);
    try (KvIndexOptions options = new KvIndexOptions()) {
      options.setScoreCache(100, 60000, 4);
      try (KvIndex index = new KvIndex(options)) {
        index.applyBatch("pod-a", "m", engineEvents(prompt));
        List<String> pods = Arrays.asList("pod-a", "pod-b");
        for (int i = 0; i < 3; i++) {
          equal(4.0, index.score("m", prompt, pods).get("pod-a"), "score " + i);
        }
        equal(2L, index.counters().get("score_cache_hits"), "two of three answered by the cache");
        check(index.clear("pod-a", "m", 0), "clear");
        equal(0.0, index.score("m", prompt, pods).get("pod-a"), "never stale");
        equal(1L, index.counters().get("score_cache_invalidations"), "the clear invalidated it");
      }
    }
    try (KvIndexOptions options = new KvIndexOptions()) {
      if ("OFF".equals(System.getenv("KVCORE_TEST_REDIS"))) {  // a build without Redis
        throwsStatus(() -> options.setRedis("redis://127.0.0.1:1"), Status.UNSUPPORTED);
        return;
      }
      options.setRedis("redis://127.0.0.1:1");  // nothing listens on port 1
      throwsStatus(() -> new KvIndex(options).close(), Status.IO);
      throwsStatus(() -> options.setRedis("ftp://x"), Status.INVALID_ARGUMENT);
      throwsStatus(() -> options.setScoreCache(100, 60000, 4), Status.INVALID_ARGUMENT);
    }
  }

  interface Test {
    void run() throws Exception;
  }

  public static void main(String[] args) {
    Map<String, Test> tests = new LinkedHashMap<>();
    tests.put("eventsScoreAndLookup", IndexTest::eventsScoreAndLookup);
    tests.put("ingestThreads", IndexTest::ingestThreads);
    tests.put("explicitAddAndEvict", IndexTest::explicitAddAndEvict);
    tests.put("errors", IndexTest::errors);
    tests.put("scoreCacheAndRedisOptions", IndexTest::scoreCacheAndRedisOptions);
    tests.put("engineToRouter", IndexTest::engineToRouter);
    tests.put("publisherErrors", IndexTest::publisherErrors);
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
    System.out.println("java_index_tests: " + (tests.size() - failed) + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
