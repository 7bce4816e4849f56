// SPDX-License-Identifier: Apache-2.0
// SmallMind's documented usage, written to the shapes of its "Configuration", "Using KV Cache" and
// "Monitoring" sections (our own program, run in every build; smallmind_snippets.sh compiles the
// documented snippets themselves when the seed document is at hand).
using System;
using Kvcore;

static class SmallMindCompat {
  static int Main() {
    var configured = new KvCacheOptions {
      Enabled = true,
      MaxTokensPerSession = 4096,
      MaxSessions = 1000,
      MaxBytesTotal = 1L * 1024 * 1024 * 1024,
      Policy = KvEvictionPolicy.LRU,
      PersistAcrossRequests = true,
    };
    using (var configuredStore = new LruKvCacheStore(configured)) {}

    var cacheStore = new LruKvCacheStore(new KvCacheOptions());
    var sessionId = SessionId.NewId();
    int numLayers = 4, numHeads = 8, embedDim = 128;
    var modelShape = new ModelShape(layers: numLayers, heads: numHeads, headDim: embedDim / numHeads);
    var cacheEntry = cacheStore.GetOrCreate(sessionId, modelShape, maxTokens: 2048);
    cacheEntry.Session.BeginTurn(new[] { 1, 2, 3 });

    var stats = cacheStore.GetStats();
    Console.WriteLine($"Sessions: {stats.CurrentSessions}");
    Console.WriteLine($"Memory: {stats.CurrentBytes / 1024 / 1024} MB");
    Console.WriteLine($"Hit Rate: {stats.HitRate:P2}");
    Console.WriteLine($"Evictions: {stats.Evictions}");
    Console.WriteLine($"Reused Tokens: {stats.ReusedTokens}");
    cacheEntry.Dispose();
    cacheStore.Dispose();
    return stats.CurrentSessions == 1 && stats.CurrentBytes == 2 * 4 * 16 * 8 * 16 * 4 ? 0 : 1;
  }
}
