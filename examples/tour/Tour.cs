// SPDX-License-Identifier: Apache-2.0
// kvcore from C#: a recorder, a pool that reuses a cached prefix, a router's index scoring pods by the pool's
// KV events, a chat session kept between turns, a TTL cache that loads once, one Prometheus scrape, a
// continuous-batching scheduler.
using System;
using System.Linq;
using System.Text;
using Kvcore;

class Tour {
  static void Main() {
    using (var options = new RecorderOptions())
    using (var pool = new Pool(EngineOptions())) {       // 1024 blocks of 16 tokens, KV events on
      options.SetComponent("prefix_cache");
      using (var recorder = new Recorder(options)) {
        recorder.RecordAccess(true);
        recorder.RecordAccessBits(0b101UL, 3);           // 3 lookups in one call: hit, miss, hit

        int[] prompt = Enumerable.Range(1000, 40).ToArray();
        ulong first = pool.CreateSequence(prompt);
        pool.Allocate(first, (uint)prompt.Length);
        ulong second = pool.CreateSequence(prompt);
        uint cached = pool.Allocate(second, (uint)prompt.Length);  // shares the first's 2 full blocks
        pool.Append(second, 42);                         // decode: a slot for the new token
        int[] table = pool.BlockTable(second);
        Console.WriteLine("reused {0} of 40 prompt tokens; block table [{1}]", cached, string.Join(", ", table));

        using (var index = new KvIndex()) {              // a router's index; keys from the events' tokens
          index.ApplyBatch("pod-a", "llama", pool.DrainEvents(EventEncoding.MAP));  // over ZeroMQ: KvIndexSubscriber
          var scores = index.Score("llama", prompt, new[] { "pod-a", "pod-b" });
          Console.WriteLine("router: pod-a scores {0}, pod-b {1}", scores["pod-a"], scores["pod-b"]);
        }

        // The engine's kernels over a K/V cache laid out as the pool's blocks (1 layer, 1 KV head of 4 dims):
        // each token's K/V into its slot, then decode attention over the block table.
        using (var layout = new KvLayout(1, 1024, 16, 1, 4, DType.F32)) {
          var kCache = new float[layout.CacheBytes() / 4];
          var vCache = new float[kCache.Length];
          var keys = new float[41 * 4];                  // equal keys: every token weighs the same
          float[] values = Enumerable.Range(0, 41 * 4).Select(i => (float)(i / 4)).ToArray();  // token t's is t
          layout.Write(0, kCache, vCache, keys, values, pool.SlotMapping(second, 0, 41));
          var attended = new float[4];
          layout.AttentionDecode(0, kCache, vCache, new float[] { 1, 1, 1, 1 }, 1, table, (uint)table.Length,
                                 new[] { 41 }, 0.5f, attended);
          Console.WriteLine("attention over 41 cached tokens: {0:F2}", attended[0]);
        }

        using (var store = new Store())                  // SmallMind's defaults (LruKvCacheStore also works)
        using (var cache = new TtlCache(MetricsOptions())) {
          var rows = new float[40 * 2 * 4];              // the model's K/V for the new tokens
          ulong reused = 0;
          foreach (int length in new[] { 30, 40 }) {     // turn 2 carries the whole conversation
            using (Session chat = store.GetOrCreate("chat-1", 2, 2, 4, DType.F32)) {  // a lease
              reused = chat.BeginTurn(prompt.Take(length).ToArray());
              for (uint layer = 0; layer < 2; layer++) chat.WriteKv(layer, reused, (ulong)length - reused, rows, rows);
              chat.Commit();
            }
          }
          Console.WriteLine("turn 2 reused {0} of 40 tokens", reused);

          int loads = 0;
          TtlEntry entry = null;
          for (int i = 0; i < 2; i++)                    // concurrent misses of a key also load once
            entry = cache.GetOrLoad("prod", "llama-7b", () => { loads++; return Encoding.UTF8.GetBytes("load=0.7"); });
          Console.WriteLine("{0} after {1} load for 2 calls", entry.Text, loads);

          using (Stats recorded = recorder.Snapshot())
          using (Stats pooled = pool.Snapshot())
          using (Stats stored = store.Snapshot())
          using (Stats metrics = cache.Snapshot())
          using (var scrape = new Exposition()) {        // each # HELP / # TYPE once for all four
            scrape.Add(recorded);
            scrape.Add(pooled);
            scrape.Add(stored);
            scrape.Add(metrics);
            Console.Write(scrape.ToPrometheus());
          }

          // Continuous batching over the pool: two requests served to completion, a fake model sampling each token.
          using (var sched = new Scheduler(pool))        // default options: FIFO, up to 256 sequences a step
          using (var plan = new SchedPlan()) {
            sched.Submit(1, prompt, 6, 0, "chat-1");
            sched.Submit(2, prompt.Take(20).ToArray(), 6);
            int generated = 0, steps = 0;
            for (; sched.NumWaiting() + sched.NumRunning() > 0; steps++) {
              SchedEntry[] batch = sched.Step(plan);     // the model runs over each entry's Tokens here
              sched.Commit(plan, batch.Select(e => e.Samples ? (int)(e.Positions.Last() * 7 % 50) : 0).ToArray());
              foreach (ulong id in plan.Finished()) generated += sched.TakeOutput(id).Tokens.Length;
            }
            Console.WriteLine("scheduler: 2 requests, {0} tokens, {1} steps", generated, steps);
          }
        }
      }
    }
  }   // failures throw KvcoreException { Status, Message }

  static PoolOptions EngineOptions() {
    var options = new PoolOptions();
    options.SetEvents(true, "GPU", 1024);               // publish KV events, as vLLM does
    return options;
  }

  static TtlOptions MetricsOptions() {
    var options = new TtlOptions();
    options.SetComponent("metrics");
    return options;
  }
}
