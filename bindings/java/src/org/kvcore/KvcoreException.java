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

  /** value, or INVALID_ARGUMENT naming the null argument: the binding's exception, not an NPE. */
  static <T> T requireNonNull(T value, String name) {
    if (value == null) {
      throw new KvcoreException(Status.INVALID_ARGUMENT.swigValue(), name + " is null");
    }
    return value;
  }
}
