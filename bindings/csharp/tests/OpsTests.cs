// SPDX-License-Identifier: Apache-2.0
// The C# binding's tests of the CPU KV kernels: an F32 layout over float[] caches (write, gather, copy,
// paged-attention decode against a reference computed here, a bad slot refused with nothing written), and
// the same kernels on a host pool's storage through IntPtr.
using System;
using System.Collections.Generic;
using Kvcore;
using static Expect;

static class OpsTests {
  const uint Blocks = 8, BlockSize = 4, KvHeads = 2, HeadDim = 8, QHeads = 4;
  const int Row = (int)(KvHeads * HeadDim);

  static float[] Rows(int tokens, double step, double phase) {
    var rows = new float[tokens * Row];
    for (int i = 0; i < rows.Length; i++) rows[i] = (float)Math.Sin(step * i + phase);
    return rows;
  }

  static void SameRange(float[] a, int aFrom, float[] b, int bFrom, int n, string what) {
    for (int i = 0; i < n; i++) Equal(a[aFrom + i], b[bFrom + i], what + " at " + i);
  }

  // softmax(scale * q . k) v per query head, head h reading KV head h / (QHeads / KvHeads).
  static float[] ReferenceAttention(float[] query, float[] keys, float[] values, int tokens, float scale) {
    var output = new float[QHeads * HeadDim];
    for (int h = 0; h < QHeads; h++) {
      int kv = h / (int)(QHeads / KvHeads);
      var scores = new double[tokens];
      double max = double.NegativeInfinity, sum = 0;
      for (int t = 0; t < tokens; t++) {
        double dot = 0;
        for (int d = 0; d < HeadDim; d++) dot += query[h * HeadDim + d] * keys[t * Row + kv * HeadDim + d];
        scores[t] = scale * dot;
        max = Math.Max(max, scores[t]);
      }
      for (int t = 0; t < tokens; t++) sum += scores[t] = Math.Exp(scores[t] - max);
      for (int d = 0; d < HeadDim; d++) {
        double acc = 0;
        for (int t = 0; t < tokens; t++) acc += scores[t] / sum * values[t * Row + kv * HeadDim + d];
        output[h * HeadDim + d] = (float)acc;
      }
    }
    return output;
  }

  static void ManagedArrays() {
    using (var layout = new KvLayout(1, Blocks, BlockSize, KvHeads, HeadDim, DType.F32)) {
      Equal(BlockSize * (ulong)Row * 4, layout.BlockBytes(), "block bytes");
      var kCache = new float[layout.CacheBytes() / 4];
      var vCache = new float[layout.CacheBytes() / 4];
      Equal((int)(Blocks * BlockSize) * Row, kCache.Length, "cache floats");
      const int tokens = 6;  // block 1 whole, block 2 half
      float[] keys = Rows(tokens, 0.37, 0.1), values = Rows(tokens, 0.23, 1.3);
      var slots = new long[tokens];
      for (int i = 0; i < tokens; i++) slots[i] = BlockSize + i;
      layout.Write(0, kCache, vCache, keys, values, slots);

      int[] table = { 1, 2 }, lengths = { tokens };
      float[] outK = new float[tokens * Row], outV = new float[tokens * Row];
      layout.Gather(0, kCache, vCache, table, 2, lengths, outK, outV);
      SameRange(keys, 0, outK, 0, keys.Length, "gathered keys");
      SameRange(values, 0, outV, 0, values.Length, "gathered values");

      int blockFloats = (int)BlockSize * Row;
      layout.CopyBlocks(kCache, vCache, new[] { 1, 5 });
      SameRange(kCache, blockFloats, kCache, 5 * blockFloats, blockFloats, "copied K block");
      SameRange(vCache, blockFloats, vCache, 5 * blockFloats, blockFloats, "copied V block");

      // Swap into another memory of fewer blocks; then the same F32 layout over byte[] caches.
      using (var host = new KvLayout(1, 4, BlockSize, KvHeads, HeadDim, DType.F32)) {
        float[] hostK = new float[host.CacheBytes() / 4], hostV = new float[hostK.Length];
        layout.SwapBlocks(kCache, vCache, host, hostK, hostV, new[] { 1, 3, 2, 0 });
        SameRange(kCache, blockFloats, hostK, 3 * blockFloats, blockFloats, "swapped K block 1");
        SameRange(vCache, 2 * blockFloats, hostV, 0, blockFloats, "swapped V block 2");
      }
      byte[] kBytes = new byte[layout.CacheBytes()], vBytes = new byte[layout.CacheBytes()];
      layout.Write(0, kBytes, vBytes, keys, values, slots);
      float[] byteK = new float[outK.Length], byteV = new float[outV.Length];
      layout.Gather(0, kBytes, vBytes, table, 2, lengths, byteK, byteV);
      SameRange(keys, 0, byteK, 0, keys.Length, "keys through byte[] caches");
      SameRange(values, 0, byteV, 0, values.Length, "values through byte[] caches");

      var query = new float[QHeads * HeadDim];
      for (int i = 0; i < query.Length; i++) query[i] = (float)Math.Cos(0.71 * i);
      float scale = 1.0f / (float)Math.Sqrt(HeadDim);
      var output = new float[query.Length];
      layout.AttentionDecode(0, kCache, vCache, query, QHeads, table, 2, lengths, scale, output);
      float[] expected = ReferenceAttention(query, keys, values, tokens, scale);
      for (int i = 0; i < output.Length; i++)
        True(Math.Abs(expected[i] - output[i]) <= 1e-4, "attention " + i + ": " + expected[i] + " vs " + output[i]);

      // A slot past the cache: OUT_OF_RANGE, and the valid slot before it is not written either.
      float[] kBefore = (float[])kCache.Clone(), vBefore = (float[])vCache.Clone();
      var badSlots = new long[] { 12, Blocks * BlockSize };
      Throws(() => layout.Write(0, kCache, vCache, Rows(2, 0.5, 0), Rows(2, 0.5, 1), badSlots), Status.OUT_OF_RANGE);
      SameRange(kBefore, 0, kCache, 0, kCache.Length, "K after a refused write");
      SameRange(vBefore, 0, vCache, 0, vCache.Length, "V after a refused write");
      // A cache array shorter than the layout never reaches the kernel.
      Throws(() => layout.Write(0, new float[16], vCache, keys, values, slots), Status.INVALID_ARGUMENT);
      Throws(() => layout.CopyBlocks(kCache, vCache, new[] { 1 }), Status.INVALID_ARGUMENT);
    }
  }

  // A host pool's storage: all layers of a block together, K then V.
  static void PoolStorage() {
    using (var options = new PoolOptions()) {
      options.SetNumBlocks(Blocks);
      options.SetBlockSize(BlockSize);
      options.SetModelShape(1, KvHeads, HeadDim, DType.F32);
      options.SetMemory(Memory.HOST);
      using (var pool = new Pool(options))
      using (var layout = new KvLayout(1, Blocks, BlockSize, KvHeads, HeadDim, DType.F32)) {
        layout.SetStrides(pool.BytesPerBlock(), 2 * layout.BlockBytes());
        var k = new IntPtr((long)pool.StorageAddress());
        var v = new IntPtr((long)(pool.StorageAddress() + layout.BlockBytes()));
        float[] keys = Rows(3, 0.11, 0.2), values = Rows(3, 0.13, 0.4);
        layout.Write(0, k, v, keys, values, new long[] { 8, 9, 10 });
        layout.CopyBlocks(k, v, new[] { 2, 3 });
        float[] outK = new float[3 * Row], outV = new float[3 * Row];
        layout.Gather(0, k, v, new[] { 3 }, 1, new[] { 3 }, outK, outV);
        SameRange(keys, 0, outK, 0, keys.Length, "pool keys");
        SameRange(values, 0, outV, 0, values.Length, "pool values");
      }
    }
  }

  static void Threads() {
    True(Array.IndexOf(new[] { "avx512", "avx2", "generic" }, KvLayout.Isa()) >= 0, "isa " + KvLayout.Isa());
    KvLayout.SetThreads(1);
    Equal(1u, KvLayout.Threads(), "one thread");
    KvLayout.SetThreads(0);
    True(KvLayout.Threads() >= 1, "threads per core");
  }

  // The CUDA forms. Without CUDA or a device every call raises UNSUPPORTED, the probe saying why; with one,
  // a block copy runs on a device pool's memory and a swap copies it into a second device pool.
  static void Cuda() {
    using (var layout = new KvLayout(1, Blocks, BlockSize, KvHeads, HeadDim, DType.F32)) {
      IntPtr none = IntPtr.Zero;
      if (!KvLayout.CudaAvailable) {
        try {
          KvLayout.CudaProbe();
          throw new Exception("CudaProbe passed where CudaAvailable is false");
        } catch (KvcoreException e) {
          Equal(Status.UNSUPPORTED, e.Status, "probe status");
          True(e.Message.Contains("CUDA"), "the probe names CUDA: " + e.Message);
          Console.WriteLine("CUDA kernels unusable here: " + e.Message);
        }
        Throws(() => layout.CudaWrite(0, none, none, none, none, DType.F32, new long[] { 0 }, none), Status.UNSUPPORTED);
        Throws(() => layout.CudaCopyBlocks(none, none, new[] { 1, 2 }, none), Status.UNSUPPORTED);
        Throws(() => layout.CudaSwapBlocks(none, none, layout, none, none, new[] { 1, 2 }, none), Status.UNSUPPORTED);
        Throws(() => layout.CudaGather(0, none, none, new[] { 1 }, 1, new[] { 1 }, none, none, DType.F32, 1, none),
               Status.UNSUPPORTED);
        Throws(() => layout.CudaAttentionDecode(0, none, none, none, KvHeads, new[] { 1 }, 1, new[] { 1 }, 1f, none, none),
               Status.UNSUPPORTED);
      }
      // The binding's own checks come first either way.
      Throws(() => layout.CudaCopyBlocks(none, none, new[] { 1 }, none), Status.INVALID_ARGUMENT);
      Throws(() => layout.CudaGather(0, none, none, new[] { 1, 2 }, 1, new[] { 1 }, none, none, DType.F32, 1, none),
             Status.INVALID_ARGUMENT);
      if (!KvLayout.CudaAvailable) return;
      using (var options = new PoolOptions()) {
        options.SetNumBlocks(Blocks);
        options.SetBlockSize(BlockSize);
        options.SetModelShape(1, KvHeads, HeadDim, DType.F32);
        options.SetMemory(Memory.DEVICE);
        using (var pool = new Pool(options))
        using (var other = new Pool(options)) {
          layout.SetStrides(pool.BytesPerBlock(), 2 * layout.BlockBytes());
          var k = new IntPtr((long)pool.StorageAddress());
          var v = new IntPtr((long)(pool.StorageAddress() + layout.BlockBytes()));
          var k2 = new IntPtr((long)other.StorageAddress());
          var v2 = new IntPtr((long)(other.StorageAddress() + layout.BlockBytes()));
          layout.CudaCopyBlocks(k, v, new[] { 2, 3 }, none);
          layout.CudaSwapBlocks(k, v, layout, k2, v2, new[] { 3, 1 }, none);
        }
      }
    }
  }

  static int Main() {
    ManagedArrays();
    PoolStorage();
    Threads();
    Cuda();
    Console.WriteLine("ops tests passed (" + KvLayout.Isa() + ")");
    return 0;
  }
}
