// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

/**
 * A candidate pod's score: its run of cached blocks from the prompt's block 0 ({@link #blocks()}), each
 * weighted by the best tier the pod holds it in ({@link #score()}).
 */
public final class PodScore {
  private final String pod;
  private final double score;
  private final int blocks;

  PodScore(String pod, double score, int blocks) {
    this.pod = pod;
    this.score = score;
    this.blocks = blocks;
  }

  public String pod() {
    return pod;
  }

  public double score() {
    return score;
  }

  public int blocks() {
    return blocks;
  }

  @Override
  public String toString() {
    return pod + "=" + score + " (" + blocks + " blocks)";
  }
}
