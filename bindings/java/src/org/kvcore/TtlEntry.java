// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

import java.nio.charset.StandardCharsets;

/** One entry of a {@link TtlCache}, copied out of it: later writes do not change it. */
public final class TtlEntry {
  private final String namespace;
  private final String key;
  private final byte[] value;
  private final boolean valid;
  private final long ageMs;
  private final long expiresInMs;

  TtlEntry(TtlEntries entries, long index) {
    namespace = entries.namespaceAt(index);
    key = entries.keyAt(index);
    value = new byte[(int) entries.valueSize(index)];
    entries.valueInto(index, value, value.length);
    valid = entries.validAt(index);
    ageMs = entries.ageMs(index);
    expiresInMs = entries.expiresInMs(index);
  }

  TtlEntry(String namespace, String key, byte[] value, boolean valid) {
    this.namespace = namespace;
    this.key = key;
    this.value = value.clone();
    this.valid = valid;
    this.ageMs = 0;
    this.expiresInMs = 0;
  }

  public String namespace() {
    return namespace;
  }

  public String key() {
    return key;
  }

  /** A copy of the value's bytes. */
  public byte[] value() {
    return value.clone();
  }

  /** The value as UTF-8 text. */
  public String text() {
    return new String(value, StandardCharsets.UTF_8);
  }

  /** False for a cached failure (a failed load, or set with valid false). */
  public boolean valid() {
    return valid;
  }

  /** Milliseconds since it was written, when copied (0 for the value a getOrLoad caller loaded itself). */
  public long ageMs() {
    return ageMs;
  }

  /** Milliseconds left until it expires, when copied (0 for the value a getOrLoad caller loaded itself). */
  public long expiresInMs() {
    return expiresInMs;
  }
}
