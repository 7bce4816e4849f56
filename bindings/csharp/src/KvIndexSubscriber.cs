// SPDX-License-Identifier: Apache-2.0
using System.Collections.Generic;

namespace Kvcore {

/// <summary>Feeds a KvIndex from engines' KV events over ZeroMQ on its own thread (a router's side):
/// Start opens the sockets, Stop (or Dispose) closes them. It keeps its index alive, so the two may be
/// disposed or finalized in any order.</summary>
public partial class KvIndexSubscriber {
  /// <summary>The subscriber's counters by name ("messages", "gaps", "batches_applied", ...).</summary>
  public Dictionary<string, ulong> Counters() {
    var values = new ulong[CounterCount()];
    CountersInto(values, (uint)values.Length);
    var byName = new Dictionary<string, ulong>();
    for (uint i = 0; i < values.Length; i++) byName[CounterName(i)] = values[i];
    return byName;
  }
}

}
