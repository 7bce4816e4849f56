// SPDX-License-Identifier: Apache-2.0
import org.kvcore.KvcoreException;
import org.kvcore.Status;

/** The checks every Java test program uses (each program's class extends it). */
class Expect {
  static void equal(Object expected, Object actual, String what) {
    if (!expected.equals(actual)) {
      throw new AssertionError(what + ": expected " + expected + ", got " + actual);
    }
  }

  static void check(boolean condition, String what) {
    if (!condition) {
      throw new AssertionError(what);
    }
  }

  /** Runs action, which must throw KvcoreException with status expected; returns it. */
  static KvcoreException throwsStatus(Runnable action, Status expected) {
    try {
      action.run();
    } catch (KvcoreException e) {
      equal(expected, e.getStatus(), "status of " + e.getMessage());
      return e;
    }
    throw new AssertionError("expected KvcoreException(" + expected + ")");
  }
}
