// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

/** Loads a value for {@link TtlCache#getOrLoad}; throwing is a failed load (cached for the negative TTL). */
@FunctionalInterface
public interface TtlLoader {
  byte[] load() throws Exception;
}
