// SPDX-License-Identifier: Apache-2.0
using System;
using System.Text;

namespace Kvcore {

/// <summary>One cached entry, copied out of the cache: later writes do not change it.</summary>
public sealed class TtlEntry {
  public string Namespace { get; }
  public string Key { get; }
  public byte[] Value { get; }
  /// <summary>False for a cached failure (a failed load, or Set with valid false).</summary>
  public bool Valid { get; }
  /// <summary>Time since the entry was written, when it was copied (zero for the value that a GetOrLoad
  /// caller loaded itself).</summary>
  public TimeSpan Age { get; }
  /// <summary>Time left until it expires, when it was copied (zero for the value that a GetOrLoad caller
  /// loaded itself).</summary>
  public TimeSpan ExpiresIn { get; }

  internal TtlEntry(string ns, string key, byte[] value, bool valid) {
    Namespace = ns;
    Key = key;
    Value = value;
    Valid = valid;
  }

  internal TtlEntry(TtlEntries entries, uint index) {
    Namespace = entries.NamespaceAt(index);
    Key = entries.KeyAt(index);
    Value = new byte[entries.ValueSize(index)];
    entries.ValueInto(index, Value, (uint)Value.Length);
    Valid = entries.ValidAt(index);
    Age = TimeSpan.FromMilliseconds(entries.AgeMs(index));
    ExpiresIn = TimeSpan.FromMilliseconds(entries.ExpiresInMs(index));
  }

  /// <summary>The value as UTF-8 text.</summary>
  public string Text => Encoding.UTF8.GetString(Value);
}

public partial class TtlCache {
  /// <summary>A cache with the defaults: TTL 30 s, negative TTL 5 s, 10,000 entries, LRU.</summary>
  public TtlCache() : this(null) {}

  /// <summary>Stores value under (ns, key); valid false stores a cached failure (negative TTL).</summary>
  public void Set(string ns, string key, byte[] value, bool valid = true) {
    if (value == null) throw new ArgumentNullException("value");
    SetRaw(ns, key, value, (uint)value.Length, valid);
  }

  public void Set(string ns, string key, string value, bool valid = true) {
    if (value == null) throw new ArgumentNullException("value");
    Set(ns, key, Encoding.UTF8.GetBytes(value), valid);
  }

  /// <summary>The live entry (Valid false: a cached failure), or null on a miss.</summary>
  public TtlEntry Get(string ns, string key) {
    using (TtlEntries entry = GetEntry(ns, key)) {
      return entry == null ? null : new TtlEntry(entry, 0);
    }
  }

  /// <summary>
  /// The live entry, or the loader's value stored under (ns, key). Concurrent misses of one key run the
  /// loader once; the others wait and get its result. A loader that throws is a failed load: the failure
  /// (its message) is cached for the negative TTL and returned to the waiters with Valid false, and the
  /// exception goes on to this caller.
  /// </summary>
  public TtlEntry GetOrLoad(string ns, string key, Func<byte[]> loader) {
    if (loader == null) throw new ArgumentNullException("loader");
      using (var load = new TtlLoad(this, ns, key)) {
        if (!load.MustLoad()) return new TtlEntry(load.Result(), 0);
        byte[] value;
        try {
          value = loader();
        } catch (Exception e) {
          byte[] failure = Encoding.UTF8.GetBytes(e.Message);
          try {
            load.FinishRaw(failure, (uint)failure.Length, false);
          } catch (KvcoreException) {
            // The loader's exception is the one to report; disposing the load fails it all the same.
          }
          throw;
        }
        if (value == null) value = new byte[0];
        load.FinishRaw(value, (uint)value.Length, true);
        return new TtlEntry(ns, key, (byte[])value.Clone(), true);
      }
  }

  /// <summary>Copies of every live entry, sorted by (namespace, key).</summary>
  public TtlEntry[] GetAll() {
    using (TtlEntries entries = GetAllEntries()) {
      var all = new TtlEntry[entries.Count()];
      for (uint i = 0; i < all.Length; i++) all[i] = new TtlEntry(entries, i);
      return all;
    }
  }
}

}
