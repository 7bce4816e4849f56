// SPDX-License-Identifier: Apache-2.0
// The continuous-batching scheduler in C#: Scheduler, SchedPlan and SchedOptions (the C API's objects), a plan's
// entries and a finished request's output as plain objects, so the engine loop never sizes an array.
using System;

namespace Kvcore {

/// <summary>Why a request finished (kvc_sched_finish_reason).</summary>
public enum FinishReason {
  /// <summary>Commit's finished flag (a stop token).</summary>
  STOP = 0,
  /// <summary>maxNewTokens reached.</summary>
  LENGTH = 1,
  /// <summary>The pool cannot hold one more token of it.</summary>
  CAPACITY = 2,
}

/// <summary>One sequence of a step's batch: compute Tokens at Positions (their K/V go to Slots), attending
/// over NumComputed + Tokens.Length tokens through BlockTable; sample a token for it when Samples.</summary>
public sealed class SchedEntry {
  public ulong RequestId { get; }
  /// <summary>Tokens computed before this step: the first position.</summary>
  public ulong NumComputed { get; }
  /// <summary>Whether the step samples a token for it (its last prefill chunk, or a decode).</summary>
  public bool Samples { get; }
  public int[] Tokens { get; }
  public long[] Positions { get; }
  /// <summary>Slot of each token: block * block size + offset.</summary>
  public long[] Slots { get; }
  public int[] BlockTable { get; }

  internal SchedEntry(ulong requestId, ulong numComputed, bool samples, int[] tokens, long[] positions, long[] slots,
                      int[] blockTable) {
    RequestId = requestId;
    NumComputed = numComputed;
    Samples = samples;
    Tokens = tokens;
    Positions = positions;
    Slots = slots;
    BlockTable = blockTable;
  }
}

/// <summary>A finished request: its generated tokens, why it finished, and the session id it was submitted
/// with ("" for none).</summary>
public sealed class SchedOutput {
  public int[] Tokens { get; }
  public FinishReason Reason { get; }
  public string Session { get; }

  internal SchedOutput(int[] tokens, FinishReason reason, string session) {
    Tokens = tokens;
    Reason = reason;
    Session = session;
  }
}

public partial class Scheduler {
  /// <summary>A scheduler with the default options over pool.</summary>
  public Scheduler(Pool pool) : this(null, pool) {}

  /// <summary>Attaches the session store under the pool (see kvcore/sched.h): a finished request with a session id
  /// saves its conversation's K/V there, admission restores a longer stored prefix from it, and
  /// PreemptionMode.SWAP swaps preempted requests' K/V into it; null detaches. Only while no request waits or
  /// runs (INVALID_STATE); the pool must hold its K/V in host memory with a model shape. The native store stays
  /// alive while attached, even once the Store is disposed or finalized.</summary>
  public void SetSessionStore(Store store) {
    SetSessionStoreRaw(store, store == null);
  }

  /// <summary>Queues request requestId (unique among the requests held) with its prompt. priority: higher first
  /// under SchedPolicy.PRIORITY, preempted last under every policy; sessionId is kept with the output; keys: LoRA,
  /// cache salt, multimodal items. Throws QUEUE_FULL when the queue is at its bound.</summary>
  public void Submit(ulong requestId, int[] prompt, uint maxNewTokens, uint priority = 0, string sessionId = null,
                     SequenceOptions keys = null) {
    if (prompt == null) throw new ArgumentNullException("prompt");
    SubmitRaw(requestId, prompt, (uint)prompt.Length, maxNewTokens, priority, sessionId, keys);
  }

  /// <summary>The next batch into plan, as its entries (none: nothing to run, no commit needed).</summary>
  public SchedEntry[] Step(SchedPlan plan) {
    if (plan == null) throw new ArgumentNullException("plan");
    StepRaw(plan);
    return plan.Entries();
  }

  /// <summary>Commits the step: sampled[i] is entry i's token (read where the entry samples; null when none
  /// does), finished[i] ends entry i's request after its token (a stop token; null: none). Then
  /// plan.Finished() lists the requests done.</summary>
  public void Commit(SchedPlan plan, int[] sampled, bool[] finished = null) {
    if (plan == null) throw new ArgumentNullException("plan");
    byte[] flags = null;
    if (finished != null) {
      flags = new byte[finished.Length];
      for (int i = 0; i < flags.Length; i++) flags[i] = finished[i] ? (byte)1 : (byte)0;
    }
    CommitRaw(plan, sampled, sampled == null ? 0u : (uint)sampled.Length, flags, flags == null ? 0u : (uint)flags.Length);
  }

  /// <summary>A finished request's output; the scheduler then forgets it (its id is free again).</summary>
  public SchedOutput TakeOutput(ulong requestId) {
    var reason = (FinishReason)OutputReason(requestId);
    string session = OutputSession(requestId);
    var tokens = new int[OutputSize(requestId)];
    TakeOutputInto(requestId, tokens, (uint)tokens.Length);
    return new SchedOutput(tokens, reason, session);
  }
}

public partial class SchedPlan {
  /// <summary>Entry i (i &lt; Count()) with its arrays.</summary>
  public SchedEntry Entry(uint i) {
    uint n = EntryTokens(i);
    var tokens = new int[n];
    var positions = new long[n];
    var slots = new long[n];
    TokensInto(i, tokens, n);
    PositionsInto(i, positions, n);
    SlotsInto(i, slots, n);
    var blocks = new int[BlockTableSize(i)];
    BlockTableInto(i, blocks, (uint)blocks.Length);
    return new SchedEntry(RequestId(i), NumComputed(i), Samples(i), tokens, positions, slots, blocks);
  }

  /// <summary>Every entry, in the plan's order.</summary>
  public SchedEntry[] Entries() {
    var entries = new SchedEntry[Count()];
    for (uint i = 0; i < entries.Length; i++) entries[i] = Entry(i);
    return entries;
  }

  /// <summary>Requests the step preempted (requeued; their K/V recomputed, or kept in the session store when
  /// swapped).</summary>
  public ulong[] Preempted() {
    var ids = new ulong[PreemptedSize()];
    PreemptedInto(ids, (uint)ids.Length);
    return ids;
  }

  /// <summary>Requests the commit finished: take their outputs.</summary>
  public ulong[] Finished() {
    var ids = new ulong[FinishedSize()];
    FinishedInto(ids, (uint)ids.Length);
    return ids;
  }
}

}  // namespace Kvcore
