// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.IntFunction;

/** Counters read together, then named in the C API's order: one shape for the index, its subscriber and
 * the event publisher. */
final class Counters {
  /** Fills values with the first capacity counters. */
  interface Reader {
    void into(long[] values, long capacity);
  }

  private Counters() {}

  static Map<String, Long> byName(long count, Reader reader, IntFunction<String> name) {
    long[] values = new long[(int) count];
    reader.into(values, values.length);
    Map<String, Long> byName = new LinkedHashMap<>();
    for (int i = 0; i < values.length; ++i) {
      byName.put(name.apply(i), values[i]);
    }
    return byName;
  }
}
