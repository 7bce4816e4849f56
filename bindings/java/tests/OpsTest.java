// SPDX-License-Identifier: Apache-2.0
import java.util.Arrays;
import org.kvcore.DType;
import org.kvcore.KvLayout;
import org.kvcore.KvcoreException;
import org.kvcore.Memory;
import org.kvcore.Pool;
import org.kvcore.PoolOptions;
import org.kvcore.Status;

/**
 * The Java binding's tests of the CPU KV kernels: an F32 layout over float[] caches (write, gather, copy,
 * paged-attention decode against a reference computed here, a bad slot refused with nothing written), and
 * the same kernels on a host pool's storage through its address.
 */
public class OpsTest extends Expect {
  static final int BLOCKS = 8, BLOCK_SIZE = 4, KV_HEADS = 2, HEAD_DIM = 8, Q_HEADS = 4;
  static final int ROW = KV_HEADS * HEAD_DIM;

  static float[] rows(int tokens, double step, double phase) {
    float[] rows = new float[tokens * ROW];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = (float) Math.sin(step * i + phase);
    }
    return rows;
  }

  static void sameRange(float[] a, int aFrom, float[] b, int bFrom, int n, String what) {
    check(Arrays.equals(a, aFrom, aFrom + n, b, bFrom, bFrom + n), what);
  }

  /** softmax(scale * q . k) v per query head, head h reading KV head h / (Q_HEADS / KV_HEADS). */
  static float[] referenceAttention(float[] query, float[] keys, float[] values, int tokens, float scale) {
    float[] output = new float[Q_HEADS * HEAD_DIM];
    for (int h = 0; h < Q_HEADS; h++) {
      int kv = h / (Q_HEADS / KV_HEADS);
      double[] scores = new double[tokens];
      double max = Double.NEGATIVE_INFINITY;
      double sum = 0;
      for (int t = 0; t < tokens; t++) {
        double dot = 0;
        for (int d = 0; d < HEAD_DIM; d++) {
          dot += query[h * HEAD_DIM + d] * keys[t * ROW + kv * HEAD_DIM + d];
        }
        scores[t] = scale * dot;
        max = Math.max(max, scores[t]);
      }
      for (int t = 0; t < tokens; t++) {
        scores[t] = Math.exp(scores[t] - max);
        sum += scores[t];
      }
      for (int d = 0; d < HEAD_DIM; d++) {
        double acc = 0;
        for (int t = 0; t < tokens; t++) {
          acc += scores[t] / sum * values[t * ROW + kv * HEAD_DIM + d];
        }
        output[h * HEAD_DIM + d] = (float) acc;
      }
    }
    return output;
  }

  static void managedArrays() {
    try (KvLayout layout = new KvLayout(1, BLOCKS, BLOCK_SIZE, KV_HEADS, HEAD_DIM, DType.F32)) {
      check(layout.blockBytes() == (long) BLOCK_SIZE * ROW * 4, "block bytes");
      float[] kCache = new float[(int) (layout.cacheBytes() / 4)];
      float[] vCache = new float[(int) (layout.cacheBytes() / 4)];
      check(kCache.length == BLOCKS * BLOCK_SIZE * ROW, "cache floats");
      final int tokens = 6; // block 1 whole, block 2 half
      float[] keys = rows(tokens, 0.37, 0.1);
      float[] values = rows(tokens, 0.23, 1.3);
      long[] slots = new long[tokens];
      for (int i = 0; i < tokens; i++) {
        slots[i] = BLOCK_SIZE + i;
      }
      layout.write(0, kCache, vCache, keys, values, slots);

      int[] table = {1, 2};
      int[] lengths = {tokens};
      float[] outK = new float[tokens * ROW];
      float[] outV = new float[tokens * ROW];
      layout.gather(0, kCache, vCache, table, 2, lengths, outK, outV);
      check(Arrays.equals(keys, outK), "gathered keys");
      check(Arrays.equals(values, outV), "gathered values");

      int blockFloats = BLOCK_SIZE * ROW;
      layout.copyBlocks(kCache, vCache, new int[] {1, 5});
      sameRange(kCache, blockFloats, kCache, 5 * blockFloats, blockFloats, "copied K block");
      sameRange(vCache, blockFloats, vCache, 5 * blockFloats, blockFloats, "copied V block");

      // Swap into another memory of fewer blocks; then the same F32 layout over byte[] caches.
      try (KvLayout host = new KvLayout(1, 4, BLOCK_SIZE, KV_HEADS, HEAD_DIM, DType.F32)) {
        float[] hostK = new float[(int) (host.cacheBytes() / 4)];
        float[] hostV = new float[hostK.length];
        layout.swapBlocks(kCache, vCache, host, hostK, hostV, new int[] {1, 3, 2, 0});
        sameRange(kCache, blockFloats, hostK, 3 * blockFloats, blockFloats, "swapped K block 1");
        sameRange(vCache, 2 * blockFloats, hostV, 0, blockFloats, "swapped V block 2");
      }
      byte[] kBytes = new byte[(int) layout.cacheBytes()];
      byte[] vBytes = new byte[(int) layout.cacheBytes()];
      layout.write(0, kBytes, vBytes, keys, values, slots);
      float[] byteK = new float[outK.length];
      float[] byteV = new float[outV.length];
      layout.gather(0, kBytes, vBytes, table, 2, lengths, byteK, byteV);
      check(Arrays.equals(keys, byteK) && Arrays.equals(values, byteV), "rows through byte[] caches");

      float[] query = new float[Q_HEADS * HEAD_DIM];
      for (int i = 0; i < query.length; i++) {
        query[i] = (float) Math.cos(0.71 * i);
      }
      float scale = (float) (1.0 / Math.sqrt(HEAD_DIM));
      float[] output = new float[query.length];
      layout.attentionDecode(0, kCache, vCache, query, Q_HEADS, table, 2, lengths, scale, output);
      float[] expected = referenceAttention(query, keys, values, tokens, scale);
      for (int i = 0; i < output.length; i++) {
        check(Math.abs(expected[i] - output[i]) <= 1e-4, "attention " + i + ": " + expected[i] + " vs " + output[i]);
      }

      // A slot past the cache: OUT_OF_RANGE, and the valid slot before it is not written either.
      float[] kBefore = kCache.clone();
      float[] vBefore = vCache.clone();
      throwsStatus(() -> layout.write(0, kCache, vCache, rows(2, 0.5, 0), rows(2, 0.5, 1),
                                      new long[] {12, BLOCKS * BLOCK_SIZE}), Status.OUT_OF_RANGE);
      check(Arrays.equals(kBefore, kCache) && Arrays.equals(vBefore, vCache), "caches after a refused write");
      // A cache array shorter than the layout never reaches the kernel.
      throwsStatus(() -> layout.write(0, new float[16], vCache, keys, values, slots), Status.INVALID_ARGUMENT);
      throwsStatus(() -> layout.copyBlocks(kCache, vCache, new int[] {1}), Status.INVALID_ARGUMENT);
    }
  }

  /** A host pool's storage: all layers of a block together, K then V. */
  static void poolStorage() {
    try (PoolOptions options = new PoolOptions()) {
      options.setNumBlocks(BLOCKS);
      options.setBlockSize(BLOCK_SIZE);
      options.setModelShape(1, KV_HEADS, HEAD_DIM, DType.F32);
      options.setMemory(Memory.HOST);
      try (Pool pool = new Pool(options);
           KvLayout layout = new KvLayout(1, BLOCKS, BLOCK_SIZE, KV_HEADS, HEAD_DIM, DType.F32)) {
        layout.setStrides(pool.bytesPerBlock(), 2 * layout.blockBytes());
        long k = pool.storageAddress();
        long v = k + layout.blockBytes();
        float[] keys = rows(3, 0.11, 0.2);
        float[] values = rows(3, 0.13, 0.4);
        layout.writeAt(0, k, v, keys, values, new long[] {8, 9, 10});
        layout.copyBlocksAt(k, v, new int[] {2, 3});
        float[] outK = new float[3 * ROW];
        float[] outV = new float[3 * ROW];
        layout.gatherAt(0, k, v, new int[] {3}, 1, new int[] {3}, outK, outV);
        check(Arrays.equals(keys, outK) && Arrays.equals(values, outV), "pool keys and values");
      }
    }
  }

  static void threads() {
    check(Arrays.asList("avx512", "avx2", "generic").contains(KvLayout.isa()), "isa " + KvLayout.isa());
    KvLayout.setThreads(1);
    check(KvLayout.threads() == 1, "one thread");
    KvLayout.setThreads(0);
    check(KvLayout.threads() >= 1, "threads per core");
  }

  // The CUDA forms. Without CUDA or a device every call raises UNSUPPORTED, the probe saying why; with one,
  // a block copy runs on a device pool's memory and a swap copies it into a second device pool.
  static void cuda() {
    try (KvLayout layout = new KvLayout(1, BLOCKS, BLOCK_SIZE, KV_HEADS, HEAD_DIM, DType.F32)) {
      if (!KvLayout.cudaAvailable()) {
        try {
          KvLayout.cudaProbe();
          throw new AssertionError("cudaProbe passed where cudaAvailable is false");
        } catch (KvcoreException e) {
          check(e.getStatus() == Status.UNSUPPORTED, "probe status " + e.getStatus());
          check(e.getMessage().contains("CUDA"), "the probe names CUDA: " + e.getMessage());
          System.out.println("CUDA kernels unusable here: " + e.getMessage());
        }
        throwsStatus(() -> layout.cudaWrite(0, 0, 0, 0, 0, DType.F32, new long[] {0}, 0), Status.UNSUPPORTED);
        throwsStatus(() -> layout.cudaCopyBlocks(0, 0, new int[] {1, 2}, 0), Status.UNSUPPORTED);
        throwsStatus(() -> layout.cudaSwapBlocks(0, 0, layout, 0, 0, new int[] {1, 2}, 0), Status.UNSUPPORTED);
        throwsStatus(() -> layout.cudaGather(0, 0, 0, new int[] {1}, 1, new int[] {1}, 0, 0, DType.F32, 1, 0),
                     Status.UNSUPPORTED);
        throwsStatus(() -> layout.cudaAttentionDecode(0, 0, 0, 0, KV_HEADS, new int[] {1}, 1, new int[] {1}, 1f, 0, 0),
                     Status.UNSUPPORTED);
      }
      // The binding's own checks come first either way.
      throwsStatus(() -> layout.cudaCopyBlocks(0, 0, new int[] {1}, 0), Status.INVALID_ARGUMENT);
      throwsStatus(() -> layout.cudaGather(0, 0, 0, new int[] {1, 2}, 1, new int[] {1}, 0, 0, DType.F32, 1, 0),
                   Status.INVALID_ARGUMENT);
      if (!KvLayout.cudaAvailable()) {
        return;
      }
      try (PoolOptions options = new PoolOptions()) {
        options.setNumBlocks(BLOCKS);
        options.setBlockSize(BLOCK_SIZE);
        options.setModelShape(1, KV_HEADS, HEAD_DIM, DType.F32);
        options.setMemory(Memory.DEVICE);
        try (Pool pool = new Pool(options);
             Pool other = new Pool(options)) {
          layout.setStrides(pool.bytesPerBlock(), 2 * layout.blockBytes());
          long k = pool.storageAddress();
          long v = k + layout.blockBytes();
          long k2 = other.storageAddress();
          long v2 = k2 + layout.blockBytes();
          layout.cudaCopyBlocks(k, v, new int[] {2, 3}, 0);
          layout.cudaSwapBlocks(k, v, layout, k2, v2, new int[] {3, 1}, 0);
        }
      }
    }
  }

  public static void main(String[] args) {
    managedArrays();
    poolStorage();
    threads();
    cuda();
    System.out.println("ops tests passed (" + KvLayout.isa() + ")");
  }
}
