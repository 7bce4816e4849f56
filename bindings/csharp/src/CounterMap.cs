// SPDX-License-Identifier: Apache-2.0
using System;
using System.Collections.Generic;

namespace Kvcore {

/// <summary>Counters read together, then named in the C API's order: one shape for the index, its
/// subscriber and the event publisher.</summary>
internal static class CounterMap {
  internal static Dictionary<string, ulong> Read(uint count, Action<ulong[], uint> into, Func<uint, string> name) {
    var values = new ulong[count];
    into(values, count);
    var byName = new Dictionary<string, ulong>();
    for (uint i = 0; i < count; i++) byName[name(i)] = values[i];
    return byName;
  }
}

}  // namespace Kvcore
