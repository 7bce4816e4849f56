// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

import java.util.Objects;

/**
 * A holder of a KV block in the cluster index (llm-d's PodEntry): a pod, its tier and data-parallel rank,
 * and whether it is a routing decision awaiting the engine's event.
 */
public final class PodEntry {
  private final String pod;
  private final IndexTier tier;
  private final int rank;
  private final boolean speculative;

  public PodEntry(String pod, IndexTier tier, int rank, boolean speculative) {
    this.pod = KvcoreException.requireNonNull(pod, "pod");
    this.tier = KvcoreException.requireNonNull(tier, "tier");
    this.rank = rank;
    this.speculative = speculative;
  }

  /** A confirmed holder on the GPU, rank 0. */
  public PodEntry(String pod) {
    this(pod, IndexTier.GPU, 0, false);
  }

  public PodEntry(String pod, IndexTier tier) {
    this(pod, tier, 0, false);
  }

  /** A routing decision for pod (rank 0, GPU). */
  public static PodEntry speculative(String pod) {
    return new PodEntry(pod, IndexTier.GPU, 0, true);
  }

  public String pod() {
    return pod;
  }

  public IndexTier tier() {
    return tier;
  }

  public int rank() {
    return rank;
  }

  public boolean speculative() {
    return speculative;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof PodEntry)) {
      return false;
    }
    PodEntry e = (PodEntry) other;
    return pod.equals(e.pod) && tier == e.tier && rank == e.rank && speculative == e.speculative;
  }

  @Override
  public int hashCode() {
    return Objects.hash(pod, tier, rank, speculative);
  }

  @Override
  public String toString() {
    return pod + "@" + KvIndex.tierName(tier) + (rank != 0 ? "/rank" + rank : "") + (speculative ? "[speculative]" : "");
  }
}
