// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

/** Why a request finished (kvc_sched_finish_reason). */
public enum FinishReason {
  /** Commit's finished flag (a stop token). */
  STOP,
  /** maxNewTokens reached. */
  LENGTH,
  /** The pool cannot hold one more token of it. */
  CAPACITY;

  /** The reason of a kvc_sched_finish_reason value. */
  static FinishReason of(int value) {
    FinishReason[] all = values();
    if (value < 0 || value >= all.length) {
      throw new KvcoreException(Status.INTERNAL.swigValue(), "unknown finish reason " + value);
    }
    return all[value];
  }
}
