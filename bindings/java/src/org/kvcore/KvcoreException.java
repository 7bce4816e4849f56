// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

/** A kvcore call failed: {@link #getStatus()} says how, the message says why. */
public class KvcoreException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final Status status;

  /** Called from the native wrapper with the raw kvc_status value. */
  public KvcoreException(int status, String message) {
    super(Library.statusString(Status.swigToEnum(status)) + ": " + message);
    this.status = Status.swigToEnum(status);
  }

  public Status getStatus() {
    return status;
  }
}
