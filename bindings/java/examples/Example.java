// SPDX-License-Identifier: Apache-2.0
import org.kvcore.Recorder;
import org.kvcore.RecorderOptions;
import org.kvcore.Stats;

/** Records cache accesses through kvcore from Java and prints the Prometheus text. */
public class Example {
  public static void main(String[] args) {
    try (RecorderOptions options = new RecorderOptions()) {
      options.setComponent("java_example");
      try (Recorder recorder = new Recorder(options)) {
        recorder.recordAccess(true);
        recorder.recordAccess(true);
        recorder.recordAccess(false);
        try (Stats stats = recorder.snapshot()) {
          System.out.printf("hit rate %.3f over %d lookups%n", stats.hitRate(), stats.lookups());
          System.out.print(stats.toPrometheus());
        }
      }
    }
  }
}
