// SPDX-License-Identifier: Apache-2.0
// kvcore from Java: a recorder, a pool that reuses a cached prefix, a router's index scoring pods by the
// pool's KV events, a chat session kept between turns, a TTL cache that loads once, one Prometheus scrape, a
// continuous-batching scheduler.
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.kvcore.DType;
import org.kvcore.EventEncoding;
import org.kvcore.Exposition;
import org.kvcore.KvIndex;
import org.kvcore.KvLayout;
import org.kvcore.Pool;
import org.kvcore.PoolOptions;
import org.kvcore.Recorder;
import org.kvcore.RecorderOptions;
import org.kvcore.SchedEntry;
import org.kvcore.SchedPlan;
import org.kvcore.Scheduler;
import org.kvcore.Session;
import org.kvcore.Stats;
import org.kvcore.Store;
import org.kvcore.TtlCache;
import org.kvcore.TtlEntry;
import org.kvcore.TtlOptions;

public class Tour {
  public static void main(String[] args) {
    try (RecorderOptions options = new RecorderOptions();
         PoolOptions poolOptions = engineOptions();
         Pool pool = new Pool(poolOptions)) {            // 1024 blocks of 16 tokens, KV events on
      options.setComponent("prefix_cache");
      try (Recorder recorder = new Recorder(options)) {
        recorder.recordAccess(true);
        recorder.recordAccessBits(0b101L, 3);            // 3 lookups in one call: hit, miss, hit

        int[] prompt = IntStream.range(1000, 1040).toArray();
        long first = pool.createSequence(prompt);
        pool.allocate(first, prompt.length);
        long second = pool.createSequence(prompt);
        long cached = pool.allocate(second, prompt.length);  // shares the first's 2 full blocks
        pool.append(second, 42);                         // decode: a slot for the new token
        int[] table = pool.blockTable(second);
        System.out.printf("reused %d of 40 prompt tokens; block table %s%n", cached, Arrays.toString(table));

        try (KvIndex index = new KvIndex()) {            // a router's index; keys from the events' tokens
          index.applyBatch("pod-a", "llama", pool.drainEvents(EventEncoding.MAP));  // over ZeroMQ: KvIndexSubscriber
          Map<String, Double> scores = index.score("llama", prompt, List.of("pod-a", "pod-b"));
          System.out.printf("router: pod-a scores %.0f, pod-b %.0f%n", scores.get("pod-a"), scores.get("pod-b"));
        }

        // The engine's kernels over a K/V cache laid out as the pool's blocks (1 layer, 1 KV head of 4 dims):
        // each token's K/V into its slot, then decode attention over the block table.
        try (KvLayout layout = new KvLayout(1, 1024, 16, 1, 4, DType.F32)) {
          float[] kCache = new float[(int) (layout.cacheBytes() / 4)];
          float[] vCache = new float[kCache.length];
          float[] keys = new float[41 * 4];              // equal keys: every token weighs the same
          float[] values = new float[41 * 4];
          for (int i = 0; i < values.length; i++) {
            values[i] = i / 4;                           // token t's value is t
          }
          layout.write(0, kCache, vCache, keys, values, pool.slotMapping(second, 0, 41));
          float[] attended = new float[4];
          layout.attentionDecode(0, kCache, vCache, new float[] {1, 1, 1, 1}, 1, table, table.length,
                                 new int[] {41}, 0.5f, attended);
          System.out.printf("attention over 41 cached tokens: %.2f%n", attended[0]);
        }

        try (Store store = new Store();                  // SmallMind's defaults
             TtlOptions ttlOptions = new TtlOptions()) {
          float[] rows = new float[40 * 2 * 4];          // the model's K/V for the new tokens
          long reused = 0;
          for (int length : new int[] {30, 40}) {        // turn 2 carries the whole conversation
            try (Session chat = store.getOrCreate("chat-1", 2, 2, 4, DType.F32, 0)) {  // a lease
              reused = chat.beginTurn(Arrays.copyOf(prompt, length));
              for (int layer = 0; layer < 2; layer++) {
                chat.writeKv(layer, reused, length - reused, rows, rows);
              }
              chat.commit();
            }
          }
          System.out.printf("turn 2 reused %d of 40 tokens%n", reused);

          ttlOptions.setComponent("metrics");
          try (TtlCache cache = new TtlCache(ttlOptions)) {
            int[] loads = {0};
            TtlEntry entry = null;
            for (int i = 0; i < 2; i++) {                // concurrent misses of a key also load once
              entry = cache.getOrLoad("prod", "llama-7b", () -> {
                loads[0]++;
                return "load=0.7".getBytes(StandardCharsets.UTF_8);
              });
            }
            System.out.printf("%s after %d load for 2 calls%n", entry.text(), loads[0]);

            try (Stats recorded = recorder.snapshot();
                 Stats pooled = pool.snapshot();
                 Stats stored = store.snapshot();
                 Stats metrics = cache.snapshot();
                 Exposition scrape = new Exposition()) { // each # HELP / # TYPE once for all four
              scrape.add(recorded);
              scrape.add(pooled);
              scrape.add(stored);
              scrape.add(metrics);
              System.out.print(scrape.toPrometheus());
            }

            // Continuous batching over the pool: two requests served to completion, a fake model sampling each token.
            try (Scheduler sched = new Scheduler(pool);  // default options: FIFO, up to 256 sequences a step
                 SchedPlan plan = new SchedPlan()) {
              sched.submit(1, prompt, 6, 0, "chat-1", null);
              sched.submit(2, Arrays.copyOf(prompt, 20), 6);
              int generated = 0, steps = 0;
              for (; sched.numWaiting() + sched.numRunning() > 0; steps++) {
                List<SchedEntry> batch = sched.step(plan);  // the model runs over each entry's tokens() here
                sched.commit(plan, batch.stream().mapToInt(e -> e.samples()
                    ? (int) (e.positions()[e.positions().length - 1] * 7 % 50) : 0).toArray());
                for (long id : plan.finished()) {
                  generated += sched.takeOutput(id).tokens().length;
                }
              }
              System.out.printf("scheduler: 2 requests, %d tokens, %d steps%n", generated, steps);
            }
          }
        }
      }
    }   // failures throw KvcoreException (getStatus())
  }

  static PoolOptions engineOptions() {
    PoolOptions options = new PoolOptions();
    options.setEvents(true, "GPU", 1024);                // publish KV events, as vLLM does
    return options;
  }
}
