// SPDX-License-Identifier: Apache-2.0
// The C# binding's tests of the cluster index: a kvcore pool's real KV events ingested and scored, lookups,
// llm-d's explicit Add/Evict, speculative entries, pod removal, counters, errors as KvcoreException; a
// kvcore engine's EventPublisher feeding a KvIndexSubscriber over ZeroMQ on loopback.
using System;
using System.Collections.Generic;
using Kvcore;
using static Expect;

static class IndexTests {
  static int[] Prompt(int n, int first) {
    var tokens = new int[n];
    for (int i = 0; i < n; i++) tokens[i] = first + 7 * i;
    return tokens;
  }

  // A vLLM-like engine: a kvcore pool hashing with sha256_cbor, publishing KV events.
  static byte[] EngineEvents(int[] prompt) {
    using (var options = new PoolOptions()) {
      options.SetNumBlocks(64);
      options.SetBlockSize(16);
      options.SetHash(HashAlgo.SHA256_CBOR, "42");
      options.SetEvents(true, "GPU", 1024);
      using (var pool = new Pool(options)) {
        ulong seq = pool.CreateSequence(prompt);
        pool.Allocate(seq, (uint)prompt.Length);
        pool.FreeSequence(seq);
        return pool.DrainEvents(EventEncoding.ARRAY);
      }
    }
  }

  static void EventsScoreAndLookup() {
    int[] prompt = Prompt(70, 1000);  // 4 full blocks of 16
    using (var index = new KvIndex()) {
      index.ApplyBatch("pod-a", "llama", EngineEvents(prompt));
      PodScore[] scores = index.ScoreTokens("llama", prompt, new[] { "pod-a", "pod-b" });
      Equal(4u, scores[0].Blocks, "pod-a holds the prompt's 4 blocks");
      Equal(4.0, scores[0].Score, "gpu blocks weigh 1");
      Equal("pod-b", scores[1].Pod, "scores come in the candidates' order");
      Equal(0.0, scores[1].Score, "an unknown pod scores 0");
      Equal(4.0, index.Score("llama", prompt, new[] { "pod-a" })["pod-a"], "Score by pod");
      Equal(0.0, index.Score("mistral", prompt, new[] { "pod-a" })["pod-a"], "another model shares nothing");
      ulong[] keys = index.RequestKeys(prompt);
      Equal(4, keys.Length, "request keys");
      Equal(4u, index.ScoreKeys("llama", keys, new[] { "pod-a" })[0].Blocks, "score by keys");
      // A prompt that parts after two blocks keeps those.
      int[] other = (int[])prompt.Clone();
      other[40] = 5;
      Equal(2u, index.ScoreTokens("llama", other, new[] { "pod-a" })[0].Blocks, "shared prefix");
      List<PodEntry[]> found = index.Lookup("llama", keys);
      Equal(4, found.Count, "every key found");
      Equal(new PodEntry("pod-a"), found[3][0], "holder");
      Equal(0, index.Lookup("llama", keys, new[] { "pod-b" }).Count, "filtered out");
      Dictionary<string, ulong> counters = index.Counters();
      Equal(1UL, counters["batches_applied"], "batches applied");
      Equal(4UL, counters["keys"], "keys");
      Equal(4UL, counters["engine_blocks"], "engine blocks mapped");
      // The engine's AllBlocksCleared, then the pod's removal.
      True(index.Clear("pod-a", "llama", 0), "clear a known pod");
      Equal(0UL, index.Counters()["keys"], "cleared");
      True(index.RemovePod("pod-a"), "remove a known pod");
      True(!index.RemovePod("pod-a"), "removing it again finds nothing");
      True(!index.Clear("pod-a", "llama", 0), "clearing it finds nothing");
    }
  }

  static void IngestThreads() {
    int[] prompt = Prompt(40, 3);
    using (var options = new KvIndexOptions()) {
      options.SetIngestThreads(2, 8);
      options.SetTierWeight(IndexTier.GPU, 2.0);
      using (var index = new KvIndex(options)) {
        byte[] events = EngineEvents(prompt);
        foreach (string pod in new[] { "a", "b", "c" }) index.SubmitBatch(pod, "m", events);
        index.Flush();
        foreach (PodScore s in index.ScoreTokens("m", prompt, new[] { "a", "b", "c" }))
          Equal(4.0, s.Score, "two gpu blocks weigh 2 each, " + s.Pod);
      }
    }
  }

  static void ExplicitAddAndEvict() {
    using (var index = new KvIndex()) {
      ulong[] engine = { 55269488, 55269489 }, request = { 10633516, 10633517 };
      index.Add("m", engine, request, new PodEntry("pod1"), new PodEntry("pod2", IndexTier.CPU, 1));
      List<PodEntry[]> found = index.Lookup("m", request);
      Equal(2, found.Count, "both keys");
      Equal(2, found[1].Length, "two holders");
      True(Array.IndexOf(found[1], new PodEntry("pod2", IndexTier.CPU, 1)) >= 0, "pod2 on the cpu, rank 1");
      PodScore[] scores = index.ScoreKeys("m", request, new[] { "pod1", "pod2" });
      True(Math.Abs(scores[1].Score - 1.6) < 1e-6, "cpu blocks weigh 0.8");
      // By engine key: pod1 leaves the second request key only; the wrong tier evicts nothing.
      index.Evict("m", engine[1], IndexKeyKind.ENGINE, new PodEntry("pod1"), new PodEntry("pod2"));
      Equal(1u, index.ScoreKeys("m", request, new[] { "pod1" })[0].Blocks, "pod1 keeps one block");
      Equal(2u, index.ScoreKeys("m", request, new[] { "pod2" })[0].Blocks, "pod2 keeps both");
      // By request key.
      index.Evict("m", request[0], IndexKeyKind.REQUEST, new PodEntry("pod2", IndexTier.CPU, 1));
      Equal(0u, index.ScoreKeys("m", request, new[] { "pod2" })[0].Blocks, "pod2's run is gone");
      // Many:1 and request keys only.
      index.Add("m2", new ulong[] { 1, 2, 3, 4 }, request, new PodEntry("pod3"));
      index.Evict("m2", 3, IndexKeyKind.ENGINE, new PodEntry("pod3"));
      Equal(1u, index.ScoreKeys("m2", request, new[] { "pod3" })[0].Blocks, "engine key 3 is half of request key 1");
      index.Add("m3", null, request, new PodEntry("pod3"));
      Equal(2u, index.ScoreKeys("m3", request, new[] { "pod3" })[0].Blocks, "request keys only");
      // Speculative entries: a routing decision, withdrawn by evicting it.
      index.Add("m4", null, request, new PodEntry("pod4", speculative: true));
      found = index.Lookup("m4", request);
      True(found.Count == 2 && found[0][0].Speculative, "speculative holder");
      Equal(2UL, index.Counters()["speculative"], "speculative counter");
      index.Evict("m4", request[0], IndexKeyKind.REQUEST, new PodEntry("pod4", speculative: true));
      Equal(0, index.Lookup("m4", request).Count, "withdrawn");
      index.AddSpeculative("m4", request, "pod4", 60000);
      index.RemoveSpeculative("m4", request, "pod4");
      Equal(0UL, index.Counters()["speculative"], "none left");
      // llm-d's Clear(pod): the pod is gone everywhere.
      True(index.RemovePod("pod3"), "pod3 removed");
      Equal(0u, index.ScoreKeys("m3", request, new[] { "pod3" })[0].Blocks, "pod3 holds nothing");
    }
  }

  static void Errors() {
    using (var index = new KvIndex()) {
      byte[] events = EngineEvents(Prompt(40, 3));
      Array.Resize(ref events, events.Length - 3);
      KvcoreException e = Throws(() => index.ApplyBatch("p", "m", events), Status.INVALID_ARGUMENT);
      True(e.Message.Length > 0, "the decoder's message");
      Equal(1UL, index.Counters()["batches_failed"], "counted");
      Throws(() => index.SubmitBatch("p", "m", events), Status.INVALID_STATE);  // no ingest threads
      Throws(() => index.Add("m", new ulong[] { 1, 2, 3 }, new ulong[] { 4, 5 }, new PodEntry("p")),
             Status.INVALID_ARGUMENT);
      Throws(() => index.Add("m", null, new ulong[] { 4 }), Status.INVALID_ARGUMENT);  // no entries
      Throws(() => index.Add("m", null, new ulong[] { 4 }, new PodEntry("p", IndexTier.CPU, 0, true)),
             Status.INVALID_ARGUMENT);
      Throws(() => index.Add("m", null, new ulong[] { 4 }, new PodEntry("p", IndexTier.GPU, 4096)),
             Status.INVALID_ARGUMENT);
      Throws(() => index.ScoreTokens("m", new[] { 1 }, new[] { "bad\0name" }), Status.INVALID_ARGUMENT);
      Throws(() => index.ScoreKeys("m", new ulong[] { 1 }, new[] { "p" }, (IndexKeyKind)7), Status.INVALID_ARGUMENT);
      Throws(() => index.AddSpeculative("m", new ulong[] { 1 }, "p", 3600001), Status.INVALID_ARGUMENT);
    }
    using (var options = new KvIndexOptions()) {
      Throws(() => options.SetShards(3), Status.INVALID_ARGUMENT);
      Throws(() => options.SetEngineKeysDirect(true), Status.INVALID_ARGUMENT);  // needs sha256_cbor
      Throws(() => options.SetTierWeight(IndexTier.CPU, -1), Status.INVALID_ARGUMENT);
    }
    var closed = new KvIndex();
    closed.Dispose();
    Throws(() => closed.Flush(), Status.INVALID_STATE);
    Equal("cpu", KvIndex.TierName(IndexTier.CPU), "tier name");
  }

  // Waits until the router scores engine-0 with the prompt's blocks. A PUB drops what it sends before the
  // subscriber's connection is up, so meanwhile the engine publishes empty batches (idle steps): the first
  // the router sees shows it the seqs it missed, and it asks the replay ROUTER for them.
  static PodScore[] WaitForScore(EventPublisher publisher, Pool pool, KvIndex index, int[] prompt, uint blocks) {
    var deadline = DateTime.UtcNow.AddSeconds(10);
    var beat = DateTime.UtcNow.AddMilliseconds(100);
    PodScore[] scores = index.ScoreTokens("model", prompt, new[] { "engine-0", "engine-1" });
    while (scores[0].Blocks != blocks && DateTime.UtcNow < deadline) {
      System.Threading.Thread.Sleep(2);
      if (DateTime.UtcNow > beat) {
        publisher.Publish(pool.DrainEvents(EventEncoding.MAP));
        beat = DateTime.UtcNow.AddMilliseconds(100);
      }
      scores = index.ScoreTokens("model", prompt, new[] { "engine-0", "engine-1" });
    }
    return scores;
  }

  // A build without ZeroMQ (KVCORE_TEST_ZMQ=OFF, set by CMake): the publisher must say UNSUPPORTED.
  static bool WithoutZmq() {
    if (Environment.GetEnvironmentVariable("KVCORE_TEST_ZMQ") != "OFF") return false;
    using (var options = new EventPublisherOptions()) {
      options.SetEndpoint("tcp://127.0.0.1:0", false);
      Throws(() => new EventPublisher(options), Status.UNSUPPORTED);
    }
    return true;
  }

  // A kvcore engine (pool + EventPublisher) and a kvcore router (KvIndexSubscriber + KvIndex) on loopback.
  static void EngineToRouter() {
    if (WithoutZmq()) return;
    int[] prompt = Prompt(80, 500);  // 5 full blocks of 16
    var poolOptions = new PoolOptions();
    poolOptions.SetNumBlocks(32);
    poolOptions.SetBlockSize(16);
    poolOptions.SetHash(HashAlgo.SHA256_CBOR, "42");
    poolOptions.SetEvents(true, "GPU", 1024);
    var publisherOptions = new EventPublisherOptions();
    publisherOptions.SetEndpoint("tcp://127.0.0.1:0", false);
    publisherOptions.SetReplayEndpoint("tcp://127.0.0.1:0");
    publisherOptions.SetTopic(EventPublisher.Topic("engine-0", "model"));
    var indexOptions = new KvIndexOptions();
    indexOptions.SetHash(HashAlgo.SHA256_CBOR, "42");
    indexOptions.SetEngineKeysDirect(true);
    using (var pool = new Pool(poolOptions))
    using (var publisher = new EventPublisher(publisherOptions)) {
      True(publisher.Endpoint().StartsWith("tcp://127.0.0.1:") && publisher.Endpoint() != "tcp://127.0.0.1:0",
           "the bound port: " + publisher.Endpoint());
      True(publisher.ReplayEndpoint() != publisher.Endpoint(), "a replay endpoint of its own");
      Equal(-1L, publisher.PublishPool(pool), "nothing pending: nothing sent");
      var index = new KvIndex(indexOptions);
      var subscriberOptions = new KvIndexSubscriberOptions();
      subscriberOptions.AddEngine(publisher.Endpoint(), publisher.ReplayEndpoint());
      var subscriber = new KvIndexSubscriber(index, subscriberOptions);
      subscriber.Start();
      Equal("", subscriber.BoundEndpoint(), "connect mode binds nothing");
      ulong seq = pool.CreateSequence(prompt);
      pool.Allocate(seq, (uint)prompt.Length);
      Equal(0L, publisher.PublishPool(pool, EventEncoding.MAP), "the first batch is seq 0");
      PodScore[] scores = WaitForScore(publisher, pool, index, prompt, 5);
      Equal(5u, scores[0].Blocks, "engine-0 holds the prompt's 5 blocks");
      Equal(5.0, scores[0].Score, "gpu blocks weigh 1");
      Equal(0.0, scores[1].Score, "another pod scores 0");
      Equal(0ul, subscriber.Counters()["decode_failures"], "decode_failures");
      Equal(0ul, subscriber.Counters()["lost_batches"], "lost_batches");
      True(subscriber.Counters()["batches_applied"] >= 1, "batches_applied");
      True(publisher.Counters()["published"] >= 1, "published");
      True(publisher.Counters().ContainsKey("replay_requests"), "replay_requests by name");
      // The index disposed before its subscriber (as finalizers may run): the subscriber keeps it alive.
      index.Dispose();
      publisher.Publish(pool.DrainEvents(EventEncoding.MAP));
      subscriber.Stop();
      subscriber.Dispose();
      Throws(() => subscriber.Start(), Status.INVALID_STATE);
      Throws(() => new KvIndexSubscriber(index, subscriberOptions), Status.INVALID_STATE);
      pool.FreeSequence(seq);
    }
  }

  static void PublisherErrors() {
    if (WithoutZmq()) return;
    using (var options = new EventPublisherOptions()) {
      Throws(() => options.SetEndpoint("", false), Status.INVALID_ARGUMENT);
      Throws(() => options.SetBufferSteps(0), Status.INVALID_ARGUMENT);
      options.SetEndpoint("nonsense://x", false);
      var e = Throws(() => new EventPublisher(options), Status.INVALID_ARGUMENT);
      True(e.Message.Contains("nonsense://x"), "the message names the endpoint: " + e.Message);
      options.SetEndpoint("tcp://127.0.0.1:0", false);
      using (var publisher = new EventPublisher(options)) {
        Equal("", publisher.ReplayEndpoint(), "no replay by default");
        Equal(0ul, publisher.Publish(new byte[] { 0x93 }), "seq 0");
        Equal(1ul, publisher.Counters()["published"], "published");
        using (var noEvents = new Pool()) Throws(() => publisher.PublishPool(noEvents), Status.INVALID_STATE);
        var closed = new Pool();
        closed.Dispose();
        Throws(() => publisher.PublishPool(closed), Status.INVALID_STATE);
      }
    }
    Throws(() => EventPublisher.Topic("a@b", "model"), Status.INVALID_ARGUMENT);
    Equal("kv@pod@org/model", EventPublisher.Topic("pod", "org/model"), "llm-d's topic");
    using (var index = new KvIndex())
    using (var options = new KvIndexSubscriberOptions()) {
      Throws(() => new KvIndexSubscriber(index, options), Status.INVALID_ARGUMENT);  // no endpoint
      options.SetBind("nonsense://x");
      using (var subscriber = new KvIndexSubscriber(index, options)) {
        Throws(() => subscriber.Start(), Status.INVALID_ARGUMENT);
      }
    }
  }

  // The score cache answers a repeated prompt, and a write touching it makes the next score a miss.
  // Redis mode: a server that is not there fails with IO; the two together are refused.
  static void ScoreCacheAndRedisOptions() {
    int[] prompt = Prompt(70, 500);
    using (var options = new KvIndexOptions()) {
      options.SetScoreCache(100, 60000, 4);
      using (var index = new KvIndex(options)) {
        index.ApplyBatch("pod-a", "m", EngineEvents(prompt));
        var pods = new[] { "pod-a", "pod-b" };
        for (int i = 0; i < 3; i++) Equal(4.0, index.Score("m", prompt, pods)["pod-a"], "score " + i);
        Equal(2UL, index.Counters()["score_cache_hits"], "two of three answered by the cache");
        True(index.Clear("pod-a", "m", 0), "clear");
        Equal(0.0, index.Score("m", prompt, pods)["pod-a"], "never stale");
        Equal(1UL, index.Counters()["score_cache_invalidations"], "the clear invalidated it");
      }
    }
    using (var options = new KvIndexOptions()) {
      if (Environment.GetEnvironmentVariable("KVCORE_TEST_REDIS") == "OFF") {  // a build without Redis
        Throws(() => options.SetRedis("redis://127.0.0.1:1"), Status.UNSUPPORTED);
        return;
      }
      options.SetRedis("redis://127.0.0.1:1");   // nothing listens on port 1
      Throws(() => new KvIndex(options), Status.IO);
      Throws(() => options.SetRedis("ftp://x"), Status.INVALID_ARGUMENT);
      Throws(() => options.SetScoreCache(100, 60000, 4), Status.INVALID_ARGUMENT);
    }
  }

  static int Main() {
    var tests = new Dictionary<string, Action> {
      {"EventsScoreAndLookup", EventsScoreAndLookup}, {"IngestThreads", IngestThreads},
      {"ExplicitAddAndEvict", ExplicitAddAndEvict}, {"Errors", Errors},
      {"ScoreCacheAndRedisOptions", ScoreCacheAndRedisOptions},
      {"EngineToRouter", EngineToRouter}, {"PublisherErrors", PublisherErrors},
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
    Console.WriteLine("csharp_index_tests: " + (tests.Count - failed) + " passed, " + failed + " failed");
    return failed == 0 ? 0 : 1;
  }
}
