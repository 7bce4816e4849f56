// SPDX-License-Identifier: Apache-2.0
// Records cache accesses through kvcore from C# and prints the Prometheus text.
using System;
using Kvcore;

class Example {
  static void Main() {
    using (var options = new RecorderOptions()) {
      options.SetComponent("csharp_example");
      using (var recorder = new Recorder(options))
      {
        recorder.RecordAccess(true);
        recorder.RecordAccess(true);
        recorder.RecordAccess(false);
        using (Stats stats = recorder.Snapshot()) {
          Console.WriteLine("hit rate {0:F3} over {1} lookups", stats.HitRate(), stats.Lookups());
          Console.Write(stats.ToPrometheus());
        }
      }
    }
  }
}
