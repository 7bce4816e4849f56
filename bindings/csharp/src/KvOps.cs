// SPDX-License-Identifier: Apache-2.0
using System;

namespace Kvcore {

/// <summary>The layout of a KV cache and the CPU kernels over it (kvcore/ops.h): per layer, K and V as
/// [num_blocks, block_size, kv_heads, head_dim]. Caches come as float[] (an F32 layout, CacheBytes()/4
/// floats each), byte[] (any dtype, CacheBytes() bytes each; their lengths are checked) or IntPtr (native
/// memory the layout describes, such as a host pool's storage; trusted). Keys, values, queries and
/// outputs are float32.</summary>
public partial class KvLayout {
  /// <summary>A layout of the given shape (packed strides, FP8 scales 1.0).</summary>
  public KvLayout(uint layers, uint numBlocks, uint blockSize, uint kvHeads, uint headDim, DType dtype) : this() {
    SetShape(layers, numBlocks, blockSize, kvHeads, headDim, dtype);
  }

  /// <summary>One K and one V scale per layer (FP8 layouts read them).</summary>
  public void SetFp8Scales(float[] kScales, float[] vScales) {
    SetFp8ScalesRaw(Need(kScales, "kScales"), (uint)kScales.Length, Need(vScales, "vScales"), (uint)vScales.Length);
  }

  static T Need<T>(T value, string name) where T : class {
    if (value == null) throw new ArgumentNullException(name);
    return value;
  }

  static ulong Address(IntPtr pointer) => (ulong)pointer.ToInt64();

  // ---- write: keys and values [slots.Length, kvHeads, headDim]; slot -1 skips a token ----

  public void Write(uint layer, float[] kCache, float[] vCache, float[] keys, float[] values, long[] slots) {
    WriteF32(layer, Need(kCache, "kCache"), (uint)kCache.Length, Need(vCache, "vCache"), (uint)vCache.Length,
             Need(keys, "keys"), (uint)keys.Length, Need(values, "values"), (uint)values.Length,
             Need(slots, "slots"), (uint)slots.Length);
  }

  public void Write(uint layer, byte[] kCache, byte[] vCache, float[] keys, float[] values, long[] slots) {
    WriteBytes(layer, Need(kCache, "kCache"), (uint)kCache.Length, Need(vCache, "vCache"), (uint)vCache.Length,
               Need(keys, "keys"), (uint)keys.Length, Need(values, "values"), (uint)values.Length,
               Need(slots, "slots"), (uint)slots.Length);
  }

  public void Write(uint layer, IntPtr kCache, IntPtr vCache, float[] keys, float[] values, long[] slots) {
    WriteAt(layer, Address(kCache), Address(vCache), Need(keys, "keys"), (uint)keys.Length, Need(values, "values"),
            (uint)values.Length, Need(slots, "slots"), (uint)slots.Length);
  }

  // ---- copy blocks: pairs[2i] -> pairs[2i+1] in every layer, K and V ----

  public void CopyBlocks(float[] kCache, float[] vCache, int[] pairs) {
    CopyBlocksF32(Need(kCache, "kCache"), (uint)kCache.Length, Need(vCache, "vCache"), (uint)vCache.Length,
                  Need(pairs, "pairs"), (uint)pairs.Length);
  }

  public void CopyBlocks(byte[] kCache, byte[] vCache, int[] pairs) {
    CopyBlocksBytes(Need(kCache, "kCache"), (uint)kCache.Length, Need(vCache, "vCache"), (uint)vCache.Length,
                    Need(pairs, "pairs"), (uint)pairs.Length);
  }

  public void CopyBlocks(IntPtr kCache, IntPtr vCache, int[] pairs) {
    CopyBlocksAt(Address(kCache), Address(vCache), Need(pairs, "pairs"), (uint)pairs.Length);
  }

  // ---- swap: block pairs[2i] of these caches (this layout) -> block pairs[2i+1] of dst's (dstLayout) ----

  public void SwapBlocks(float[] srcK, float[] srcV, KvLayout dstLayout, float[] dstK, float[] dstV, int[] pairs) {
    SwapBlocksF32(Need(srcK, "srcK"), (uint)srcK.Length, Need(srcV, "srcV"), (uint)srcV.Length,
                  Need(dstLayout, "dstLayout"), Need(dstK, "dstK"), (uint)dstK.Length, Need(dstV, "dstV"),
                  (uint)dstV.Length, Need(pairs, "pairs"), (uint)pairs.Length);
  }

  public void SwapBlocks(byte[] srcK, byte[] srcV, KvLayout dstLayout, byte[] dstK, byte[] dstV, int[] pairs) {
    SwapBlocksBytes(Need(srcK, "srcK"), (uint)srcK.Length, Need(srcV, "srcV"), (uint)srcV.Length,
                    Need(dstLayout, "dstLayout"), Need(dstK, "dstK"), (uint)dstK.Length, Need(dstV, "dstV"),
                    (uint)dstV.Length, Need(pairs, "pairs"), (uint)pairs.Length);
  }

  public void SwapBlocks(IntPtr srcK, IntPtr srcV, KvLayout dstLayout, IntPtr dstK, IntPtr dstV, int[] pairs) {
    SwapBlocksAt(Address(srcK), Address(srcV), Need(dstLayout, "dstLayout"), Address(dstK), Address(dstV),
                 Need(pairs, "pairs"), (uint)pairs.Length);
  }

  // ---- gather: sequence s's first seqLens[s] tokens, read through blockTables[s * maxBlocksPerSeq ...],
  //      to outK and outV as [tokens, kvHeads, headDim], sequences one after the other ----

  public void Gather(uint layer, float[] kCache, float[] vCache, int[] blockTables, uint maxBlocksPerSeq,
                     int[] seqLens, float[] outK, float[] outV) {
    GatherF32(layer, Need(kCache, "kCache"), (uint)kCache.Length, Need(vCache, "vCache"), (uint)vCache.Length,
              Need(blockTables, "blockTables"), (uint)blockTables.Length, maxBlocksPerSeq, Need(seqLens, "seqLens"),
              (uint)seqLens.Length, Need(outK, "outK"), (uint)outK.Length, Need(outV, "outV"), (uint)outV.Length);
  }

  public void Gather(uint layer, byte[] kCache, byte[] vCache, int[] blockTables, uint maxBlocksPerSeq,
                     int[] seqLens, float[] outK, float[] outV) {
    GatherBytes(layer, Need(kCache, "kCache"), (uint)kCache.Length, Need(vCache, "vCache"), (uint)vCache.Length,
                Need(blockTables, "blockTables"), (uint)blockTables.Length, maxBlocksPerSeq, Need(seqLens, "seqLens"),
                (uint)seqLens.Length, Need(outK, "outK"), (uint)outK.Length, Need(outV, "outV"), (uint)outV.Length);
  }

  public void Gather(uint layer, IntPtr kCache, IntPtr vCache, int[] blockTables, uint maxBlocksPerSeq,
                     int[] seqLens, float[] outK, float[] outV) {
    GatherAt(layer, Address(kCache), Address(vCache), Need(blockTables, "blockTables"), (uint)blockTables.Length,
             maxBlocksPerSeq, Need(seqLens, "seqLens"), (uint)seqLens.Length, Need(outK, "outK"), (uint)outK.Length,
             Need(outV, "outV"), (uint)outV.Length);
  }

  // ---- paged-attention decode: output[s, h] = softmax(scale * q[s, h] . K) V over seqLens[s] tokens;
  //      query and output are [seqLens.Length, numQHeads, headDim] ----

  public void AttentionDecode(uint layer, float[] kCache, float[] vCache, float[] query, uint numQHeads,
                              int[] blockTables, uint maxBlocksPerSeq, int[] seqLens, float scale, float[] output) {
    AttentionDecodeF32(layer, Need(kCache, "kCache"), (uint)kCache.Length, Need(vCache, "vCache"),
                       (uint)vCache.Length, Need(query, "query"), (uint)query.Length, numQHeads,
                       Need(blockTables, "blockTables"), (uint)blockTables.Length, maxBlocksPerSeq,
                       Need(seqLens, "seqLens"), (uint)seqLens.Length, scale, Need(output, "output"),
                       (uint)output.Length);
  }

  public void AttentionDecode(uint layer, byte[] kCache, byte[] vCache, float[] query, uint numQHeads,
                              int[] blockTables, uint maxBlocksPerSeq, int[] seqLens, float scale, float[] output) {
    AttentionDecodeBytes(layer, Need(kCache, "kCache"), (uint)kCache.Length, Need(vCache, "vCache"),
                         (uint)vCache.Length, Need(query, "query"), (uint)query.Length, numQHeads,
                         Need(blockTables, "blockTables"), (uint)blockTables.Length, maxBlocksPerSeq,
                         Need(seqLens, "seqLens"), (uint)seqLens.Length, scale, Need(output, "output"),
                         (uint)output.Length);
  }

  public void AttentionDecode(uint layer, IntPtr kCache, IntPtr vCache, float[] query, uint numQHeads,
                              int[] blockTables, uint maxBlocksPerSeq, int[] seqLens, float scale, float[] output) {
    AttentionDecodeAt(layer, Address(kCache), Address(vCache), Need(query, "query"), (uint)query.Length, numQHeads,
                      Need(blockTables, "blockTables"), (uint)blockTables.Length, maxBlocksPerSeq,
                      Need(seqLens, "seqLens"), (uint)seqLens.Length, scale, Need(output, "output"),
                      (uint)output.Length);
  }

  // ---- the CUDA twins (kvcore/ops_cuda.h): device (or pinned host) memory as IntPtr, host index arrays, a
  //      cudaStream_t (IntPtr.Zero: the default stream); each call is queued on the stream and returns ----

  /// <summary>Whether this build and machine can run the CUDA kernels; CudaProbe says why not.</summary>
  public static bool CudaAvailable => CudaAvailableRaw() != 0;

  public void CudaWrite(uint layer, IntPtr kCache, IntPtr vCache, IntPtr keys, IntPtr values, DType keysDtype,
                        long[] slots, IntPtr stream) {
    CudaWriteAt(layer, Address(kCache), Address(vCache), Address(keys), Address(values), keysDtype,
                Need(slots, "slots"), (uint)slots.Length, Address(stream));
  }

  public void CudaCopyBlocks(IntPtr kCache, IntPtr vCache, int[] pairs, IntPtr stream) {
    CudaCopyBlocksAt(Address(kCache), Address(vCache), Need(pairs, "pairs"), (uint)pairs.Length, Address(stream));
  }

  public void CudaSwapBlocks(IntPtr srcK, IntPtr srcV, KvLayout dstLayout, IntPtr dstK, IntPtr dstV, int[] pairs,
                             IntPtr stream) {
    CudaSwapBlocksAt(Address(srcK), Address(srcV), Need(dstLayout, "dstLayout"), Address(dstK), Address(dstV),
                     Need(pairs, "pairs"), (uint)pairs.Length, Address(stream));
  }

  public void CudaGather(uint layer, IntPtr kCache, IntPtr vCache, int[] blockTables, uint maxBlocksPerSeq,
                         int[] seqLens, IntPtr outK, IntPtr outV, DType outDtype, ulong outCapacityTokens,
                         IntPtr stream) {
    CudaGatherAt(layer, Address(kCache), Address(vCache), Need(blockTables, "blockTables"), (uint)blockTables.Length,
                 maxBlocksPerSeq, Need(seqLens, "seqLens"), (uint)seqLens.Length, Address(outK), Address(outV),
                 outDtype, outCapacityTokens, Address(stream));
  }

  public void CudaAttentionDecode(uint layer, IntPtr kCache, IntPtr vCache, IntPtr query, uint numQHeads,
                                  int[] blockTables, uint maxBlocksPerSeq, int[] seqLens, float scale, IntPtr output,
                                  IntPtr stream) {
    CudaAttentionDecodeAt(layer, Address(kCache), Address(vCache), Address(query), numQHeads,
                          Need(blockTables, "blockTables"), (uint)blockTables.Length, maxBlocksPerSeq,
                          Need(seqLens, "seqLens"), (uint)seqLens.Length, scale, Address(output), Address(stream));
  }
}

}
