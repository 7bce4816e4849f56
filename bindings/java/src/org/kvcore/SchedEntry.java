// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

/**
 * One sequence of a step's batch: compute tokens() at positions() (their K/V go to slots()), attending over
 * numComputed() + tokens().length tokens through blockTable(); sample a token for it when samples().
 */
public final class SchedEntry {
  private final long requestId;
  private final long numComputed;
  private final boolean samples;
  private final int[] tokens;
  private final long[] positions;
  private final long[] slots;
  private final int[] blockTable;

  SchedEntry(long requestId, long numComputed, boolean samples, int[] tokens, long[] positions, long[] slots,
             int[] blockTable) {
    this.requestId = requestId;
    this.numComputed = numComputed;
    this.samples = samples;
    this.tokens = tokens;
    this.positions = positions;
    this.slots = slots;
    this.blockTable = blockTable;
  }

  /** The request (an unsigned 64-bit value in a long). */
  public long requestId() {
    return requestId;
  }

  /** Tokens computed before this step: the first position. */
  public long numComputed() {
    return numComputed;
  }

  /** Whether the step samples a token for it (its last prefill chunk, or a decode). */
  public boolean samples() {
    return samples;
  }

  public int[] tokens() {
    return tokens.clone();
  }

  public long[] positions() {
    return positions.clone();
  }

  /** Slot of each token: block * block size + offset. */
  public long[] slots() {
    return slots.clone();
  }

  public int[] blockTable() {
    return blockTable.clone();
  }
}
