// SPDX-License-Identifier: Apache-2.0
using System.Collections.Generic;

namespace Kvcore {

/// <summary>Feeds a KvIndex from engines' KV events over ZeroMQ on its own thread (a router's side):
/// Start opens the sockets, Stop (or Dispose) closes them. It keeps its index alive, so the two may be
/// disposed or finalized in any order.</summary>
public partial class KvIndexSubscriber {
  /// <summary>The subscriber's counters by name ("messages", "gaps", "batches_applied", ...).</summary>
  public Dictionary<string, ulong> Counters() => CounterMap.Read(CounterCount(), CountersInto, CounterName);
}

}
