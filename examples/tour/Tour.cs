// SPDX-License-Identifier: Apache-2.0
// kvcore from C#: a recorder, a pool that reuses a cached prefix, one Prometheus scrape of both.
using System;
using System.Linq;
using Kvcore;

class Tour {
  static void Main() {
    using (var options = new RecorderOptions())
    using (var pool = new Pool()) {                      // default options: 1024 blocks of 16 tokens
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

        using (Stats recorded = recorder.Snapshot())
        using (Stats pooled = pool.Snapshot())
        using (var scrape = new Exposition()) {          // each # HELP / # TYPE once for both
          scrape.Add(recorded);
          scrape.Add(pooled);
          Console.Write(scrape.ToPrometheus());
        }
      }
    }
  }   // failures throw KvcoreException { Status, Message }
}
