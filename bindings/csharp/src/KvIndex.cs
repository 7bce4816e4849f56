// SPDX-License-Identifier: Apache-2.0
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Kvcore {

/// <summary>A holder of a KV block in the cluster index: a pod, its data-parallel rank and tier, and
/// whether it is a routing decision awaiting the engine's event (llm-d's PodEntry).</summary>
public sealed class PodEntry : IEquatable<PodEntry> {
  public string Pod { get; }
  public IndexTier Tier { get; }
  public uint Rank { get; }
  public bool Speculative { get; }

  public PodEntry(string pod, IndexTier tier = IndexTier.GPU, uint rank = 0, bool speculative = false) {
    if (pod == null) throw new ArgumentNullException("pod");
    Pod = pod;
    Tier = tier;
    Rank = rank;
    Speculative = speculative;
  }

  public bool Equals(PodEntry other) =>
      other != null && Pod == other.Pod && Tier == other.Tier && Rank == other.Rank && Speculative == other.Speculative;
  public override bool Equals(object other) => Equals(other as PodEntry);
  public override int GetHashCode() => Pod.GetHashCode() ^ ((int)Tier << 24) ^ (int)Rank ^ (Speculative ? 1 << 30 : 0);
  public override string ToString() =>
      Pod + "@" + KvIndex.TierName(Tier) + (Rank != 0 ? "/rank" + Rank : "") + (Speculative ? "[speculative]" : "");
}

/// <summary>A candidate pod's score: its run of cached blocks from the prompt's block 0 (Blocks), each
/// weighted by the best tier the pod holds it in (Score).</summary>
public struct PodScore {
  public string Pod;
  public double Score;
  public uint Blocks;
}

public partial class KvIndex {
  /// <summary>An index with the defaults (xxh3 request keys seeded "42", 16-token blocks, mapped engine keys).</summary>
  public KvIndex() : this(null) {}

  /// <summary>Applies one vLLM EventBatch (msgpack) published by pod for model, whole or not at all.</summary>
  public void ApplyBatch(string pod, string model, byte[] payload) {
    if (payload == null) throw new ArgumentNullException("payload");
    ApplyBatchRaw(pod, model, payload, (uint)payload.Length);
  }

  /// <summary>Queues the batch on the pod's ingest thread (options with ingest threads only).</summary>
  public void SubmitBatch(string pod, string model, byte[] payload) {
    if (payload == null) throw new ArgumentNullException("payload");
    SubmitBatchRaw(pod, model, payload, (uint)payload.Length);
  }

  /// <summary>The prompt's request keys: one per full block, with the options' extra keys (may be null).</summary>
  public ulong[] RequestKeys(int[] tokens, SequenceOptions options = null) {
    if (tokens == null) throw new ArgumentNullException("tokens");
    var keys = new ulong[RequestKeysSize(tokens, (uint)tokens.Length, options)];
    RequestKeysInto(tokens, (uint)tokens.Length, options, keys, (uint)keys.Length);
    return keys;
  }

  /// <summary>Scores each candidate pod (in order; unknown pods score 0) for a prompt of model.</summary>
  public PodScore[] ScoreTokens(string model, int[] tokens, IList<string> pods, SequenceOptions options = null) {
    if (tokens == null) throw new ArgumentNullException("tokens");
    byte[] names = Names(pods);
    var scores = new double[pods.Count];
    var blocks = new uint[pods.Count];
    ScoreTokensRaw(model, tokens, (uint)tokens.Length, options, names, (uint)names.Length, (uint)pods.Count, scores, blocks);
    return Scores(pods, scores, blocks);
  }

  /// <summary>The same for keys already computed (request keys; or engine keys of orphan blocks).</summary>
  public PodScore[] ScoreKeys(string model, ulong[] keys, IList<string> pods, IndexKeyKind kind = IndexKeyKind.REQUEST) {
    if (keys == null) throw new ArgumentNullException("keys");
    byte[] names = Names(pods);
    var scores = new double[pods.Count];
    var blocks = new uint[pods.Count];
    ScoreKeysRaw(model, keys, (uint)keys.Length, kind, names, (uint)names.Length, (uint)pods.Count, scores, blocks);
    return Scores(pods, scores, blocks);
  }

  /// <summary>Pod -> score for a prompt of model (the scorer llm-d's router calls).</summary>
  public Dictionary<string, double> Score(string model, int[] tokens, IList<string> pods, SequenceOptions options = null) {
    var byPod = new Dictionary<string, double>();
    foreach (PodScore s in ScoreTokens(model, tokens, pods, options)) byPod[s.Pod] = s.Score;
    return byPod;
  }

  /// <summary>llm-d's Lookup: for keys in order, the holders of each among pods (null or empty: every pod),
  /// up to the first key that none holds.</summary>
  public List<PodEntry[]> Lookup(string model, ulong[] keys, IList<string> pods = null,
                                 IndexKeyKind kind = IndexKeyKind.REQUEST) {
    if (keys == null) throw new ArgumentNullException("keys");
    byte[] names = Names(pods);
    uint count = pods == null ? 0u : (uint)pods.Count;
    using (KvIndexLookup found = LookupRaw(model, keys, (uint)keys.Length, kind, names, (uint)names.Length, count)) {
      var perKey = new List<PodEntry[]>();
      for (uint k = 0; k < found.KeysFound(); k++) {
        var holders = new PodEntry[found.Holders(k)];
        for (uint h = 0; h < holders.Length; h++)
          holders[h] = new PodEntry(found.Pod(k, h), found.Tier(k, h), found.Rank(k, h), found.Speculative(k, h));
        perKey.Add(holders);
      }
      return perKey;
    }
  }

  /// <summary>llm-d's Add: every entry holds each request key, and each entry's pod maps engineKeys to them
  /// (null or empty: none; same count 1:1; a multiple of it many:1; a divisor of it 1:many). Speculative
  /// entries are routing decisions (AddSpeculative, default TTL; rank 0 and GPU only).</summary>
  public void Add(string model, ulong[] engineKeys, ulong[] requestKeys, params PodEntry[] entries) {
    if (requestKeys == null) throw new ArgumentNullException("requestKeys");
    if (entries == null) throw new ArgumentNullException("entries");
    engineKeys = engineKeys ?? new ulong[0];
    var confirmed = new List<PodEntry>();
    foreach (PodEntry e in entries) {
      if (e == null) throw new ArgumentNullException("entries");
      if (!e.Speculative) {
        confirmed.Add(e);
      } else if (e.Rank != 0 || e.Tier != IndexTier.GPU) {
        throw new KvcoreException(Status.INVALID_ARGUMENT, "a speculative entry is rank 0 on the GPU");
      }
    }
    if (confirmed.Count != 0 || entries.Length == 0) {
      byte[] names = Names(Pods(confirmed));
      AddRaw(model, engineKeys, (uint)engineKeys.Length, requestKeys, (uint)requestKeys.Length, names,
             (uint)names.Length, Ranks(confirmed), Tiers(confirmed), (uint)confirmed.Count);
    }
    foreach (PodEntry e in entries)
      if (e.Speculative) AddSpeculative(model, requestKeys, e.Pod);
  }

  /// <summary>llm-d's Evict: removes the entries from one key (kind REQUEST: the key; ENGINE: resolved
  /// through each pod's mapping). A speculative entry withdraws that pod's routing decision (REQUEST only).</summary>
  public void Evict(string model, ulong key, IndexKeyKind kind, params PodEntry[] entries) {
    if (entries == null) throw new ArgumentNullException("entries");
    var confirmed = new List<PodEntry>();
    foreach (PodEntry e in entries) {
      if (e == null) throw new ArgumentNullException("entries");
      if (!e.Speculative) confirmed.Add(e);
    }
    if (confirmed.Count != 0 || entries.Length == 0) {
      byte[] names = Names(Pods(confirmed));
      EvictRaw(model, key, kind, names, (uint)names.Length, Ranks(confirmed), Tiers(confirmed), (uint)confirmed.Count);
    }
    if (kind != IndexKeyKind.REQUEST) return;  // routing decisions hold request keys only
    foreach (PodEntry e in entries)
      if (e.Speculative) RemoveSpeculative(model, new[] { key }, e.Pod);
  }

  /// <summary>A routing decision: pod holds model's request keys for ttlMs (0: the options' TTL) or until
  /// its engine's event for a key arrives.</summary>
  public void AddSpeculative(string model, ulong[] keys, string pod, ulong ttlMs = 0) {
    if (keys == null) throw new ArgumentNullException("keys");
    AddSpeculativeRaw(model, keys, (uint)keys.Length, pod, ttlMs);
  }

  /// <summary>Withdraws a routing decision: pod's speculative holders of the keys go.</summary>
  public void RemoveSpeculative(string model, ulong[] keys, string pod) {
    if (keys == null) throw new ArgumentNullException("keys");
    RemoveSpeculativeRaw(model, keys, (uint)keys.Length, pod);
  }

  /// <summary>The index's counters by name ("keys", "holders", "batches_applied", ...).</summary>
  public Dictionary<string, ulong> Counters() => CounterMap.Read(CounterCount(), CountersInto, CounterName);

  // Pod names as the native layer takes them: UTF-8, each ended by a NUL.
  static byte[] Names(IList<string> pods) {
    var bytes = new MemoryStream();
    if (pods == null) return bytes.ToArray();
    foreach (string pod in pods) {
      if (pod == null) throw new ArgumentNullException("pods");
      if (pod.IndexOf('\0') >= 0) throw new KvcoreException(Status.INVALID_ARGUMENT, "a pod name contains NUL");
      byte[] name = Encoding.UTF8.GetBytes(pod);
      bytes.Write(name, 0, name.Length);
      bytes.WriteByte(0);
    }
    return bytes.ToArray();
  }

  static PodScore[] Scores(IList<string> pods, double[] scores, uint[] blocks) {
    var all = new PodScore[pods.Count];
    for (int i = 0; i < all.Length; i++) all[i] = new PodScore { Pod = pods[i], Score = scores[i], Blocks = blocks[i] };
    return all;
  }

  static List<string> Pods(List<PodEntry> entries) => entries.ConvertAll(e => e.Pod);
  static uint[] Ranks(List<PodEntry> entries) => entries.ConvertAll(e => e.Rank).ToArray();
  static uint[] Tiers(List<PodEntry> entries) => entries.ConvertAll(e => (uint)e.Tier).ToArray();
}

}
