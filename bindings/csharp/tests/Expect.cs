// SPDX-License-Identifier: Apache-2.0
// The checks every C# test program uses (compiled into each; `using static Expect;`).
using System;
using System.Collections.Generic;
using Kvcore;

static class Expect {
  internal static void Equal<T>(T expected, T actual, string what) {
    if (!EqualityComparer<T>.Default.Equals(expected, actual))
      throw new Exception(what + ": expected " + expected + ", got " + actual);
  }

  internal static void True(bool condition, string what) {
    if (!condition) throw new Exception(what);
  }

  // Runs action, which must throw KvcoreException with status expected; returns it.
  internal static KvcoreException Throws(Action action, Status expected) {
    try {
      action();
    } catch (KvcoreException e) {
      Equal(expected, e.Status, "status of " + e.Message);
      return e;
    }
    throw new Exception("expected KvcoreException(" + expected + ")");
  }
}
