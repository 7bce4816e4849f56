// SPDX-License-Identifier: Apache-2.0
// The session store in C#: Store and Session (the C API's names), and on top of them SmallMind's surface
// (LruKvCacheStore, KvCacheOptions, ...), so SmallMind code runs against kvcore with its `using` lines
// changed. Unlike SmallMind's, every option here is read and does what it says.
using System;

namespace Kvcore {

public partial class Store {
  /// <summary>A store with the defaults (SmallMind's: 4096 tokens per session, 1000 sessions, 1 GiB, LRU).</summary>
  public Store() : this(null) {}

  /// <summary>A lease on session id, created empty if absent; dispose it to end the lease.</summary>
  public Session GetOrCreate(string id, uint layers, uint kvHeads, uint headDim, DType dtype, uint maxTokens = 0) {
    return GetOrCreateRaw(id, layers, kvHeads, headDim, dtype, maxTokens);
  }
}

public partial class Session {
  /// <summary>Starts a turn with the whole conversation; returns the tokens whose K/V are already there.</summary>
  public ulong BeginTurn(int[] conversation) {
    if (conversation == null) throw new ArgumentNullException("conversation");
    return BeginTurnRaw(conversation, (uint)conversation.Length);
  }

  /// <summary>Adds generated tokens (decode).</summary>
  public void Append(params int[] tokens) {
    if (tokens == null) throw new ArgumentNullException("tokens");
    AppendRaw(tokens, (uint)tokens.Length);
  }

  /// <summary>Writes one layer's K and V rows ([token][kv head][head dim], fp32) for tokens [first, first + n).</summary>
  public void WriteKv(uint layer, ulong first, ulong n, float[] keys, float[] values) {
    if (keys == null) throw new ArgumentNullException("keys");
    if (values == null) throw new ArgumentNullException("values");
    WriteKvRaw(layer, checked((uint)first), checked((uint)n), keys, (uint)keys.Length, values, (uint)values.Length);
  }

  /// <summary>Reads one layer's K and V rows (fp32) for tokens [first, first + n).</summary>
  public void ReadKv(uint layer, ulong first, ulong n, out float[] keys, out float[] values) {
    ulong bytes = KvBytes(layer, checked((uint)first), checked((uint)n));
    keys = new float[bytes / sizeof(float)];
    values = new float[bytes / sizeof(float)];
    ReadKvRaw(layer, checked((uint)first), checked((uint)n), keys, values, (uint)keys.Length);
  }

  /// <summary>Writes K and V rows of any dtype as raw bytes.</summary>
  public void WriteKvBytes(uint layer, ulong first, ulong n, byte[] keys, byte[] values) {
    if (keys == null) throw new ArgumentNullException("keys");
    if (values == null) throw new ArgumentNullException("values");
    WriteKvBytesRaw(layer, checked((uint)first), checked((uint)n), keys, (uint)keys.Length, values, (uint)values.Length);
  }

  /// <summary>The block table (block ids in the storage).</summary>
  public int[] BlockTable() {
    var blocks = new int[BlockTableSize()];
    BlockTableInto(blocks, (uint)blocks.Length);
    return blocks;
  }
}

// ---- SmallMind's names -------------------------------------------------------------------------------

/// <summary>Which idle session a full store evicts (SmallMind's enum; kvcore's policies).</summary>
public enum KvEvictionPolicy {
  LRU = EvictionPolicy.LRU,
  S3FIFO = EvictionPolicy.S3FIFO,
  ARC = EvictionPolicy.ARC,
}

/// <summary>SmallMind's KvCacheOptions; every property is read by LruKvCacheStore.</summary>
public sealed class KvCacheOptions {
  public bool Enabled { get; set; } = true;
  public int MaxTokensPerSession { get; set; } = 4096;
  public int MaxSessions { get; set; } = 1000;
  public long MaxBytesTotal { get; set; } = 1L * 1024 * 1024 * 1024;
  /// <summary>Bytes one session may use; 0 = only MaxBytesTotal bounds it.</summary>
  public long MaxBytesPerSession { get; set; } = 0;
  public KvEvictionPolicy Policy { get; set; } = KvEvictionPolicy.LRU;
  public bool PersistAcrossRequests { get; set; } = true;
  /// <summary>Sessions share the blocks of a common prefix (a system prompt), counted once.</summary>
  public bool EnablePrefixSharing { get; set; } = true;

  internal StoreOptions ToNative() {
    var native = new StoreOptions();
    native.SetEnabled(Enabled);
    native.SetMaxTokensPerSession(checked((uint)MaxTokensPerSession));
    native.SetMaxSessions(checked((uint)MaxSessions));
    native.SetMaxBytesTotal(checked((ulong)MaxBytesTotal));
    native.SetMaxBytesPerSession(checked((ulong)MaxBytesPerSession));
    native.SetEvictionPolicy((EvictionPolicy)Policy);
    native.SetPersistAcrossRequests(PersistAcrossRequests);
    native.SetPrefixSharing(EnablePrefixSharing);
    return native;
  }
}

/// <summary>A session's name (SmallMind's SessionId).</summary>
public struct SessionId : IEquatable<SessionId> {
  public string Value { get; }
  public SessionId(string value) {
    if (string.IsNullOrEmpty(value)) throw new ArgumentException("a session id is not empty", "value");
    Value = value;
  }
  public static SessionId NewId() { return new SessionId(Guid.NewGuid().ToString("N")); }
  public bool Equals(SessionId other) { return Value == other.Value; }
  public override bool Equals(object obj) { return obj is SessionId && Equals((SessionId)obj); }
  public override int GetHashCode() { return Value == null ? 0 : Value.GetHashCode(); }
  public override string ToString() { return Value; }
}

/// <summary>The model's KV shape (SmallMind's ModelShape): layers, KV heads, head dim; fp32 by default.</summary>
public sealed class ModelShape {
  public int Layers { get; }
  public int Heads { get; }
  public int HeadDim { get; }
  public DType DType { get; }
  public ModelShape(int layers, int heads, int headDim, DType dtype = DType.F32) {
    Layers = layers;
    Heads = heads;
    HeadDim = headDim;
    DType = dtype;
  }
}

/// <summary>A lease on a cached session: never evicted while held. Dispose ends the lease.</summary>
public sealed class KvCacheEntry : IDisposable {
  public SessionId SessionId { get; }
  public ModelShape Shape { get; }
  /// <summary>The kvcore session: turns, K/V rows, block table.</summary>
  public Session Session { get; }
  internal KvCacheEntry(SessionId id, ModelShape shape, Session session) {
    SessionId = id;
    Shape = shape;
    Session = session;
  }
  /// <summary>Tokens whose K/V the session holds.</summary>
  public int CurrentTokens => checked((int)Session.Tokens());
  public void Dispose() { Session.Dispose(); }
}

/// <summary>SmallMind's cache statistics.</summary>
public sealed class KvCacheStats {
  public int CurrentSessions { get; internal set; }
  public long CurrentBytes { get; internal set; }
  public long PeakBytes { get; internal set; }
  public long Hits { get; internal set; }
  public long Misses { get; internal set; }
  public double HitRate { get; internal set; }
  public long Evictions { get; internal set; }
  public long ReusedTokens { get; internal set; }
  public long MemoryPressureEvents { get; internal set; }
}

/// <summary>SmallMind's LruKvCacheStore on kvcore's session store (the policy is an option, LRU by default).</summary>
public sealed class LruKvCacheStore : IDisposable {
  readonly Store store;
  public KvCacheOptions Options { get; }

  public LruKvCacheStore(KvCacheOptions options) {
    if (options == null) throw new ArgumentNullException("options");
    Options = options;
    using (StoreOptions native = options.ToNative()) store = new Store(native);
  }

  /// <summary>A lease on the session, created if absent; maxTokens 0 = MaxTokensPerSession.</summary>
  public KvCacheEntry GetOrCreate(SessionId sessionId, ModelShape modelShape, int maxTokens = 0) {
    if (modelShape == null) throw new ArgumentNullException("modelShape");
    Session session = store.GetOrCreate(sessionId.Value, checked((uint)modelShape.Layers), checked((uint)modelShape.Heads),
                                        checked((uint)modelShape.HeadDim), modelShape.DType, checked((uint)maxTokens));
    return new KvCacheEntry(sessionId, modelShape, session);
  }

  /// <summary>A lease on an existing session; false (a miss) when there is none.</summary>
  public bool TryGet(SessionId sessionId, out KvCacheEntry entry) {
    Session session = store.TryGet(sessionId.Value);
    entry = session == null ? null : new KvCacheEntry(sessionId, null, session);
    return entry != null;
  }

  public bool Remove(SessionId sessionId) { return store.Remove(sessionId.Value); }
  public void Clear() { store.Clear(); }

  public KvCacheStats GetStats() {
    using (Stats s = store.Snapshot()) {
      return new KvCacheStats {
        CurrentSessions = checked((int)store.NumSessions()),
        CurrentBytes = checked((long)s.BytesInUse()),
        PeakBytes = checked((long)s.PeakBytes()),
        Hits = checked((long)s.Hits()),
        Misses = checked((long)s.Misses()),
        HitRate = s.HitRate(),
        Evictions = checked((long)s.Evictions()),
        ReusedTokens = checked((long)s.TokensReused()),
        MemoryPressureEvents = checked((long)s.MemoryPressureEvents()),
      };
    }
  }

  /// <summary>kvcore's snapshot of the store, for a Prometheus scrape (Exposition).</summary>
  public Stats Snapshot() { return store.Snapshot(); }

  public void Dispose() { store.Dispose(); }
}

}
