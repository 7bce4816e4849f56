// SPDX-License-Identifier: Apache-2.0
// kvcore from Java: a recorder, a pool that reuses a cached prefix, one Prometheus scrape of both.
import java.util.Arrays;
import java.util.stream.IntStream;
import org.kvcore.Exposition;
import org.kvcore.Pool;
import org.kvcore.Recorder;
import org.kvcore.RecorderOptions;
import org.kvcore.Stats;

public class Tour {
  public static void main(String[] args) {
    try (RecorderOptions options = new RecorderOptions();
         Pool pool = new Pool()) {                       // default options: 1024 blocks of 16 tokens
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

        try (Stats recorded = recorder.snapshot();
             Stats pooled = pool.snapshot();
             Exposition scrape = new Exposition()) {     // each # HELP / # TYPE once for both
          scrape.add(recorded);
          scrape.add(pooled);
          System.out.print(scrape.toPrometheus());
        }
      }
    }   // failures throw KvcoreException (getStatus())
  }
}
