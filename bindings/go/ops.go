// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"runtime"

	"github.com/kvcore/kvcore/bindings/go/internal/capi"
)

// KvShape is a KV cache's shape: per layer, K and V are each [NumBlocks, BlockSize, KVHeads, HeadDim]
// in DType.
type KvShape struct {
	Layers, NumBlocks, BlockSize, KVHeads, HeadDim uint32
	DType                                          DType
}

// KvLayout describes a KV cache for the CPU kernels (kvcore/ops.h): shape, element type, strides and
// FP8 scales. Its methods take the caches in three forms: []float32 (an F32 layout, CacheBytes()/4
// elements each), []byte (any dtype, CacheBytes() bytes each), both checked against the layout, or
// uintptr addresses of native memory the layout describes (a host Pool's Storage; trusted). Keys,
// values, queries and outputs are float32. A layout may be shared by goroutines once set up.
type KvLayout struct {
	native[capi.KvLayout]
}

// NewKvLayout makes a layout of the given shape with packed strides and FP8 scales 1.0.
func NewKvLayout(shape KvShape) (l *KvLayout, err error) {
	defer catch(&err)
	raw := capi.NewKvLayout()
	l = &KvLayout{native[capi.KvLayout]{raw: raw, free: capi.DeleteKvLayout}}
	runtime.SetFinalizer(l, (*KvLayout).Close)
	if err := l.do(func(c capi.KvLayout) {
		c.SetShape(uint(shape.Layers), uint(shape.NumBlocks), uint(shape.BlockSize), uint(shape.KVHeads),
			uint(shape.HeadDim), capi.Enum_SS_kvc_dtype(shape.DType))
	}); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Close frees the layout. It is safe to call more than once.
func (l *KvLayout) Close() error {
	l.close()
	runtime.SetFinalizer(l, nil)
	return nil
}

func (l *KvLayout) do(fn func(capi.KvLayout)) error { return l.call(l, fn) }

// withDst runs fn with both layouts, dst kept alive and checked open.
func (l *KvLayout) withDst(dst *KvLayout, fn func(c, d capi.KvLayout)) error {
	if dst == nil || dst.closed {
		return ErrClosed
	}
	err := l.do(func(c capi.KvLayout) { fn(c, dst.raw) })
	runtime.KeepAlive(dst)
	return err
}

// SetStrides sets the bytes between blocks and between layers; 0 picks the packed value. A host Pool's
// storage is SetStrides(bytesPerBlock, 2*BlockBytes()) with V at K + BlockBytes().
func (l *KvLayout) SetStrides(blockStride, layerStride uint64) error {
	return l.do(func(c capi.KvLayout) { c.SetStrides(blockStride, layerStride) })
}

// SetFP8Scales sets one K and one V scale per layer (FP8 layouts read them).
func (l *KvLayout) SetFP8Scales(k, v []float32) error {
	return l.do(func(c capi.KvLayout) { c.SetFp8ScalesRaw(k, int64(len(k)), v, int64(len(v))) })
}

// BlockBytes is the size of one block of K (or V) of one layer, INT8 scales included; 0 after Close.
func (l *KvLayout) BlockBytes() (n uint64) {
	l.do(func(c capi.KvLayout) { n = c.BlockBytes() })
	return n
}

// CacheBytes is the bytes a K (or V) cache must span; 0 after Close.
func (l *KvLayout) CacheBytes() (n uint64) {
	l.do(func(c capi.KvLayout) { n = c.CacheBytes() })
	return n
}

func n64[T any](s []T) int64 { return int64(len(s)) }

// Write stores one layer's new tokens, keys and values [len(slots), KVHeads, HeadDim], into their slots
// (block*BlockSize + offset; -1 skips a token), converting or quantizing to the cache's type.
func (l *KvLayout) Write(layer uint32, kCache, vCache, keys, values []float32, slots []int64) error {
	return l.do(func(c capi.KvLayout) {
		c.WriteF32(uint(layer), kCache, n64(kCache), vCache, n64(vCache), keys, n64(keys), values, n64(values),
			slots, n64(slots))
	})
}

// WriteBytes is Write on byte caches of any dtype.
func (l *KvLayout) WriteBytes(layer uint32, kCache, vCache []byte, keys, values []float32, slots []int64) error {
	return l.do(func(c capi.KvLayout) {
		c.WriteBytes(uint(layer), kCache, n64(kCache), vCache, n64(vCache), keys, n64(keys), values, n64(values),
			slots, n64(slots))
	})
}

// WriteAt is Write on native caches at kCache and vCache.
func (l *KvLayout) WriteAt(layer uint32, kCache, vCache uintptr, keys, values []float32, slots []int64) error {
	return l.do(func(c capi.KvLayout) {
		c.WriteAt(uint(layer), uint64(kCache), uint64(vCache), keys, n64(keys), values, n64(values), slots, n64(slots))
	})
}

// CopyBlocks copies block pairs[2i] to pairs[2i+1] in every layer, K and V (a Pool's DrainCopies).
func (l *KvLayout) CopyBlocks(kCache, vCache []float32, pairs []int32) error {
	return l.do(func(c capi.KvLayout) {
		c.CopyBlocksF32(kCache, n64(kCache), vCache, n64(vCache), pairs, n64(pairs))
	})
}

// CopyBlocksBytes is CopyBlocks on byte caches of any dtype.
func (l *KvLayout) CopyBlocksBytes(kCache, vCache []byte, pairs []int32) error {
	return l.do(func(c capi.KvLayout) {
		c.CopyBlocksBytes(kCache, n64(kCache), vCache, n64(vCache), pairs, n64(pairs))
	})
}

// CopyBlocksAt is CopyBlocks on native caches.
func (l *KvLayout) CopyBlocksAt(kCache, vCache uintptr, pairs []int32) error {
	return l.do(func(c capi.KvLayout) { c.CopyBlocksAt(uint64(kCache), uint64(vCache), pairs, n64(pairs)) })
}

// SwapBlocks copies block pairs[2i] of these caches (this layout) to block pairs[2i+1] of dst's
// caches (dstLayout), every layer, K and V; contiguous runs move as one copy.
func (l *KvLayout) SwapBlocks(srcK, srcV []float32, dstLayout *KvLayout, dstK, dstV []float32, pairs []int32) error {
	return l.withDst(dstLayout, func(c, d capi.KvLayout) {
		c.SwapBlocksF32(srcK, n64(srcK), srcV, n64(srcV), d, dstK, n64(dstK), dstV, n64(dstV), pairs, n64(pairs))
	})
}

// SwapBlocksBytes is SwapBlocks on byte caches of any dtype.
func (l *KvLayout) SwapBlocksBytes(srcK, srcV []byte, dstLayout *KvLayout, dstK, dstV []byte, pairs []int32) error {
	return l.withDst(dstLayout, func(c, d capi.KvLayout) {
		c.SwapBlocksBytes(srcK, n64(srcK), srcV, n64(srcV), d, dstK, n64(dstK), dstV, n64(dstV), pairs, n64(pairs))
	})
}

// SwapBlocksAt is SwapBlocks between native memories.
func (l *KvLayout) SwapBlocksAt(srcK, srcV uintptr, dstLayout *KvLayout, dstK, dstV uintptr, pairs []int32) error {
	return l.withDst(dstLayout, func(c, d capi.KvLayout) {
		c.SwapBlocksAt(uint64(srcK), uint64(srcV), d, uint64(dstK), uint64(dstV), pairs, n64(pairs))
	})
}

// Gather copies sequence s's first seqLens[s] tokens of one layer, read through its block table
// blockTables[s*maxBlocksPerSeq:], to outK and outV as [tokens, KVHeads, HeadDim], sequences in order.
func (l *KvLayout) Gather(layer uint32, kCache, vCache []float32, blockTables []int32, maxBlocksPerSeq int,
	seqLens []int32, outK, outV []float32) error {
	return l.do(func(c capi.KvLayout) {
		c.GatherF32(uint(layer), kCache, n64(kCache), vCache, n64(vCache), blockTables, n64(blockTables),
			int64(maxBlocksPerSeq), seqLens, n64(seqLens), outK, n64(outK), outV, n64(outV))
	})
}

// GatherBytes is Gather from byte caches of any dtype.
func (l *KvLayout) GatherBytes(layer uint32, kCache, vCache []byte, blockTables []int32, maxBlocksPerSeq int,
	seqLens []int32, outK, outV []float32) error {
	return l.do(func(c capi.KvLayout) {
		c.GatherBytes(uint(layer), kCache, n64(kCache), vCache, n64(vCache), blockTables, n64(blockTables),
			int64(maxBlocksPerSeq), seqLens, n64(seqLens), outK, n64(outK), outV, n64(outV))
	})
}

// GatherAt is Gather from native caches.
func (l *KvLayout) GatherAt(layer uint32, kCache, vCache uintptr, blockTables []int32, maxBlocksPerSeq int,
	seqLens []int32, outK, outV []float32) error {
	return l.do(func(c capi.KvLayout) {
		c.GatherAt(uint(layer), uint64(kCache), uint64(vCache), blockTables, n64(blockTables), int64(maxBlocksPerSeq),
			seqLens, n64(seqLens), outK, n64(outK), outV, n64(outV))
	})
}

// AttentionDecode computes out[s, h] = softmax(scale * q[s, h] . K) V over sequence s's seqLens[s]
// cached tokens for each query head h (reading KV head h / (numQHeads / KVHeads)); query and out are
// [len(seqLens), numQHeads, HeadDim].
func (l *KvLayout) AttentionDecode(layer uint32, kCache, vCache, query []float32, numQHeads uint32,
	blockTables []int32, maxBlocksPerSeq int, seqLens []int32, scale float32, out []float32) error {
	return l.do(func(c capi.KvLayout) {
		c.AttentionDecodeF32(uint(layer), kCache, n64(kCache), vCache, n64(vCache), query, n64(query),
			uint(numQHeads), blockTables, n64(blockTables), int64(maxBlocksPerSeq), seqLens, n64(seqLens), scale,
			out, n64(out))
	})
}

// AttentionDecodeBytes is AttentionDecode over byte caches of any dtype (FP8 and INT8 dequantized).
func (l *KvLayout) AttentionDecodeBytes(layer uint32, kCache, vCache []byte, query []float32, numQHeads uint32,
	blockTables []int32, maxBlocksPerSeq int, seqLens []int32, scale float32, out []float32) error {
	return l.do(func(c capi.KvLayout) {
		c.AttentionDecodeBytes(uint(layer), kCache, n64(kCache), vCache, n64(vCache), query, n64(query),
			uint(numQHeads), blockTables, n64(blockTables), int64(maxBlocksPerSeq), seqLens, n64(seqLens), scale,
			out, n64(out))
	})
}

// AttentionDecodeAt is AttentionDecode over native caches.
func (l *KvLayout) AttentionDecodeAt(layer uint32, kCache, vCache uintptr, query []float32, numQHeads uint32,
	blockTables []int32, maxBlocksPerSeq int, seqLens []int32, scale float32, out []float32) error {
	return l.do(func(c capi.KvLayout) {
		c.AttentionDecodeAt(uint(layer), uint64(kCache), uint64(vCache), query, n64(query), uint(numQHeads),
			blockTables, n64(blockTables), int64(maxBlocksPerSeq), seqLens, n64(seqLens), scale, out, n64(out))
	})
}

// The CUDA twins (kvcore/ops_cuda.h) take device (or pinned host) memory by address, the index arrays
// from Go memory, and a cudaStream_t's address (0: the default stream); each call is queued on the stream
// and returns. Without CUDA or a usable device they return a *kvcore.Error with status Unsupported.

// CUDAAvailable reports whether this build and machine can run the CUDA kernels; CUDAProbe says why not.
func CUDAAvailable() bool { return capi.KvLayoutCudaAvailableRaw() != 0 }

// CUDAProbe returns nil when the CUDA kernels can run, else the reason.
func CUDAProbe() (err error) {
	defer catch(&err)
	capi.KvLayoutCudaProbe()
	return nil
}

// CUDAWrite is Write on the device: keys and values [len(slots), KVHeads, HeadDim] in keysType (F32,
// F16 or BF16) at device addresses.
func (l *KvLayout) CUDAWrite(layer uint32, kCache, vCache, keys, values uintptr, keysType DType, slots []int64,
	stream uintptr) error {
	return l.do(func(c capi.KvLayout) {
		c.CudaWriteAt(uint(layer), uint64(kCache), uint64(vCache), uint64(keys), uint64(values),
			capi.Enum_SS_kvc_dtype(keysType), slots, n64(slots), uint64(stream))
	})
}

// CUDACopyBlocks is CopyBlocks on the device, every pair and layer in one launch.
func (l *KvLayout) CUDACopyBlocks(kCache, vCache uintptr, pairs []int32, stream uintptr) error {
	return l.do(func(c capi.KvLayout) {
		c.CudaCopyBlocksAt(uint64(kCache), uint64(vCache), pairs, n64(pairs), uint64(stream))
	})
}

// CUDASwapBlocks is SwapBlocks between device and pinned host memory (either way) or two device buffers.
func (l *KvLayout) CUDASwapBlocks(srcK, srcV uintptr, dstLayout *KvLayout, dstK, dstV uintptr, pairs []int32,
	stream uintptr) error {
	return l.withDst(dstLayout, func(c, d capi.KvLayout) {
		c.CudaSwapBlocksAt(uint64(srcK), uint64(srcV), d, uint64(dstK), uint64(dstV), pairs, n64(pairs), uint64(stream))
	})
}

// CUDAGather is Gather on the device into outK and outV (device memory, outCapacityTokens rows of outType).
func (l *KvLayout) CUDAGather(layer uint32, kCache, vCache uintptr, blockTables []int32, maxBlocksPerSeq int,
	seqLens []int32, outK, outV uintptr, outType DType, outCapacityTokens uint64, stream uintptr) error {
	return l.do(func(c capi.KvLayout) {
		c.CudaGatherAt(uint(layer), uint64(kCache), uint64(vCache), blockTables, n64(blockTables),
			int64(maxBlocksPerSeq), seqLens, n64(seqLens), uint64(outK), uint64(outV),
			capi.Enum_SS_kvc_dtype(outType), outCapacityTokens, uint64(stream))
	})
}

// CUDAAttentionDecode is AttentionDecode on the device: query and out float32 device memory.
func (l *KvLayout) CUDAAttentionDecode(layer uint32, kCache, vCache, query uintptr, numQHeads uint32,
	blockTables []int32, maxBlocksPerSeq int, seqLens []int32, scale float32, out, stream uintptr) error {
	return l.do(func(c capi.KvLayout) {
		c.CudaAttentionDecodeAt(uint(layer), uint64(kCache), uint64(vCache), uint64(query), uint(numQHeads),
			blockTables, n64(blockTables), int64(maxBlocksPerSeq), seqLens, n64(seqLens), scale, uint64(out),
			uint64(stream))
	})
}

// SetKVThreads sets the kernels' worker threads: 0 = one per core (the default), 1 = the calling thread.
func SetKVThreads(threads uint32) (err error) {
	defer catch(&err)
	capi.KvLayoutSetThreads(uint(threads))
	return nil
}

// KVThreads is the number of threads the kernels use now.
func KVThreads() uint32 { return uint32(capi.KvLayoutThreads()) }

// KVISA is the vector instruction set the kernels chose at run time: "avx512", "avx2" or "generic".
func KVISA() string { return capi.KvLayoutIsa() }
