// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

/** A finished request: its generated tokens, why it finished, the session id it was submitted with ("" for none). */
public final class SchedOutput {
  private final int[] tokens;
  private final FinishReason reason;
  private final String session;

  SchedOutput(int[] tokens, FinishReason reason, String session) {
    this.tokens = tokens;
    this.reason = reason;
    this.session = session;
  }

  public int[] tokens() {
    return tokens.clone();
  }

  public FinishReason reason() {
    return reason;
  }

  public String session() {
    return session;
  }
}
