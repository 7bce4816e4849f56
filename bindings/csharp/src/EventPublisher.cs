// SPDX-License-Identifier: Apache-2.0
using System;
using System.Collections.Generic;

namespace Kvcore {

/// <summary>An engine's KV event publisher, byte-compatible with vLLM's: a ZeroMQ PUB sending
/// [topic, seq, EventBatch] and a replay ROUTER (see kvcore/event_publisher.h). Dispose closes it.</summary>
public partial class EventPublisher {
  /// <summary>Sends one msgpack EventBatch as the next seq, which it returns (0, 1, 2, ...).</summary>
  public ulong Publish(byte[] payload) {
    if (payload == null) throw new ArgumentNullException("payload");
    return PublishRaw(payload, (uint)payload.Length);
  }

  /// <summary>Drains the pool's pending events and publishes them as one batch: its seq, or -1 when none
  /// were pending (nothing sent). Call it on the pool's thread.</summary>
  public long PublishPool(Pool pool, EventEncoding encoding = EventEncoding.MAP) {
    if (pool == null) throw new ArgumentNullException("pool");
    return PublishPoolRaw(pool, encoding);
  }

  /// <summary>The publisher's counters by name ("published", "replay_requests", ...).</summary>
  public Dictionary<string, ulong> Counters() => CounterMap.Read(CounterCount(), CountersInto, CounterName);
}

}
