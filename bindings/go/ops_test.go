// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"math"
	"strings"
	"testing"
)

const (
	opsBlocks, opsBlockSize, opsKVHeads, opsHeadDim, opsQHeads = 8, 4, 2, 8, 4
	opsRow                                                     = opsKVHeads * opsHeadDim
)

var opsShape = KvShape{Layers: 1, NumBlocks: opsBlocks, BlockSize: opsBlockSize, KVHeads: opsKVHeads,
	HeadDim: opsHeadDim, DType: F32}

func opsRows(tokens int, step, phase float64) []float32 {
	rows := make([]float32, tokens*opsRow)
	for i := range rows {
		rows[i] = float32(math.Sin(step*float64(i) + phase))
	}
	return rows
}

// sameElements: the same length and the same values in the same order (the tests' slices.Equal, Go 1.19).
func sameElements[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// referenceAttention is softmax(scale * q . k) v per query head, head h reading KV head h / (Q / KV).
func referenceAttention(query, keys, values []float32, tokens int, scale float64) []float32 {
	out := make([]float32, opsQHeads*opsHeadDim)
	for h := 0; h < opsQHeads; h++ {
		kv := h / (opsQHeads / opsKVHeads)
		scores := make([]float64, tokens)
		maxScore, sum := math.Inf(-1), 0.0
		for t := range scores {
			dot := 0.0
			for d := 0; d < opsHeadDim; d++ {
				dot += float64(query[h*opsHeadDim+d]) * float64(keys[t*opsRow+kv*opsHeadDim+d])
			}
			scores[t] = scale * dot
			maxScore = math.Max(maxScore, scores[t])
		}
		for t := range scores {
			scores[t] = math.Exp(scores[t] - maxScore)
			sum += scores[t]
		}
		for d := 0; d < opsHeadDim; d++ {
			acc := 0.0
			for t := range scores {
				acc += scores[t] / sum * float64(values[t*opsRow+kv*opsHeadDim+d])
			}
			out[h*opsHeadDim+d] = float32(acc)
		}
	}
	return out
}

func TestOpsManagedSlices(t *testing.T) {
	layout, err := NewKvLayout(opsShape)
	if err != nil {
		t.Fatal(err)
	}
	defer layout.Close()
	if got := layout.BlockBytes(); got != opsBlockSize*opsRow*4 {
		t.Fatalf("block bytes %d", got)
	}
	kCache := make([]float32, layout.CacheBytes()/4)
	vCache := make([]float32, layout.CacheBytes()/4)
	if len(kCache) != opsBlocks*opsBlockSize*opsRow {
		t.Fatalf("cache floats %d", len(kCache))
	}
	const tokens = 6 // block 1 whole, block 2 half
	keys, values := opsRows(tokens, 0.37, 0.1), opsRows(tokens, 0.23, 1.3)
	slots := make([]int64, tokens)
	for i := range slots {
		slots[i] = int64(opsBlockSize + i)
	}
	if err := layout.Write(0, kCache, vCache, keys, values, slots); err != nil {
		t.Fatal(err)
	}

	table, lengths := []int32{1, 2}, []int32{tokens}
	outK, outV := make([]float32, tokens*opsRow), make([]float32, tokens*opsRow)
	if err := layout.Gather(0, kCache, vCache, table, 2, lengths, outK, outV); err != nil {
		t.Fatal(err)
	}
	if !sameElements(keys, outK) || !sameElements(values, outV) {
		t.Fatal("gathered rows differ from the written ones")
	}

	const blockFloats = opsBlockSize * opsRow
	if err := layout.CopyBlocks(kCache, vCache, []int32{1, 5}); err != nil {
		t.Fatal(err)
	}
	if !sameElements(kCache[blockFloats:2*blockFloats], kCache[5*blockFloats:6*blockFloats]) ||
		!sameElements(vCache[blockFloats:2*blockFloats], vCache[5*blockFloats:6*blockFloats]) {
		t.Fatal("copied block differs from its source")
	}

	// Swap into another memory of fewer blocks; then the same F32 layout over byte caches.
	hostShape := opsShape
	hostShape.NumBlocks = 4
	host, err := NewKvLayout(hostShape)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	hostK, hostV := make([]float32, host.CacheBytes()/4), make([]float32, host.CacheBytes()/4)
	if err := layout.SwapBlocks(kCache, vCache, host, hostK, hostV, []int32{1, 3, 2, 0}); err != nil {
		t.Fatal(err)
	}
	if !sameElements(kCache[blockFloats:2*blockFloats], hostK[3*blockFloats:]) ||
		!sameElements(vCache[2*blockFloats:3*blockFloats], hostV[:blockFloats]) {
		t.Fatal("swapped blocks differ")
	}
	kBytes, vBytes := make([]byte, layout.CacheBytes()), make([]byte, layout.CacheBytes())
	if err := layout.WriteBytes(0, kBytes, vBytes, keys, values, slots); err != nil {
		t.Fatal(err)
	}
	byteK, byteV := make([]float32, len(outK)), make([]float32, len(outV))
	if err := layout.GatherBytes(0, kBytes, vBytes, table, 2, lengths, byteK, byteV); err != nil {
		t.Fatal(err)
	}
	if !sameElements(keys, byteK) || !sameElements(values, byteV) {
		t.Fatal("rows through byte caches differ")
	}

	query := make([]float32, opsQHeads*opsHeadDim)
	for i := range query {
		query[i] = float32(math.Cos(0.71 * float64(i)))
	}
	scale := float32(1 / math.Sqrt(opsHeadDim))
	out := make([]float32, len(query))
	if err := layout.AttentionDecode(0, kCache, vCache, query, opsQHeads, table, 2, lengths, scale, out); err != nil {
		t.Fatal(err)
	}
	want := referenceAttention(query, keys, values, tokens, float64(scale))
	for i := range out {
		if math.Abs(float64(want[i]-out[i])) > 1e-4 {
			t.Fatalf("attention %d: want %g, got %g", i, want[i], out[i])
		}
	}

	// A slot past the cache: OutOfRange, and the valid slot before it is not written either.
	kBefore, vBefore := append([]float32(nil), kCache...), append([]float32(nil), vCache...)
	err = layout.Write(0, kCache, vCache, opsRows(2, 0.5, 0), opsRows(2, 0.5, 1), []int64{12, opsBlocks * opsBlockSize})
	if !IsStatus(err, OutOfRange) {
		t.Fatalf("bad slot: %v", err)
	}
	if !sameElements(kBefore, kCache) || !sameElements(vBefore, vCache) {
		t.Fatal("a refused write changed the caches")
	}
	// A cache slice shorter than the layout never reaches the kernel.
	if err := layout.Write(0, make([]float32, 16), vCache, keys, values, slots); !IsStatus(err, InvalidArgument) {
		t.Fatalf("short cache: %v", err)
	}
	if err := layout.CopyBlocks(kCache, vCache, []int32{1}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("odd pairs: %v", err)
	}
	layout.Close()
	if err := layout.CopyBlocks(kCache, vCache, []int32{1, 5}); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// A host pool's storage: all layers of a block together, K then V.
func TestOpsPoolStorage(t *testing.T) {
	pool, err := NewPool(&PoolOptions{NumBlocks: opsBlocks, BlockSize: opsBlockSize,
		Shape: &ModelShape{Layers: 1, KVHeads: opsKVHeads, HeadDim: opsHeadDim, DType: F32}, Memory: HostMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	layout, err := NewKvLayout(opsShape)
	if err != nil {
		t.Fatal(err)
	}
	defer layout.Close()
	base, bytesPerBlock, err := pool.Storage()
	if err != nil {
		t.Fatal(err)
	}
	if err := layout.SetStrides(bytesPerBlock, 2*layout.BlockBytes()); err != nil {
		t.Fatal(err)
	}
	k, v := base, base+uintptr(layout.BlockBytes())
	keys, values := opsRows(3, 0.11, 0.2), opsRows(3, 0.13, 0.4)
	if err := layout.WriteAt(0, k, v, keys, values, []int64{8, 9, 10}); err != nil {
		t.Fatal(err)
	}
	if err := layout.CopyBlocksAt(k, v, []int32{2, 3}); err != nil {
		t.Fatal(err)
	}
	outK, outV := make([]float32, 3*opsRow), make([]float32, 3*opsRow)
	if err := layout.GatherAt(0, k, v, []int32{3}, 1, []int32{3}, outK, outV); err != nil {
		t.Fatal(err)
	}
	if !sameElements(keys, outK) || !sameElements(values, outV) {
		t.Fatal("pool rows differ")
	}
}

func TestOpsThreads(t *testing.T) {
	if isa := KVISA(); isa != "avx512" && isa != "avx2" && isa != "generic" {
		t.Fatalf("isa %q", isa)
	}
	if err := SetKVThreads(1); err != nil {
		t.Fatal(err)
	}
	if KVThreads() != 1 {
		t.Fatalf("threads %d", KVThreads())
	}
	if err := SetKVThreads(0); err != nil || KVThreads() < 1 {
		t.Fatalf("threads per core: %v %d", err, KVThreads())
	}
	if err := SetKVThreads(5000); !IsStatus(err, InvalidArgument) && !IsStatus(err, OutOfRange) {
		t.Fatalf("5000 threads: %v", err)
	}
}

// The CUDA forms. Without CUDA or a device every call returns Unsupported, the probe saying why; with one,
// a block copy runs on a device pool's memory and a swap copies it into a second device pool.
func TestOpsCUDA(t *testing.T) {
	layout, err := NewKvLayout(opsShape)
	if err != nil {
		t.Fatal(err)
	}
	defer layout.Close()
	if !CUDAAvailable() {
		err := CUDAProbe()
		if !IsStatus(err, Unsupported) || !strings.Contains(err.Error(), "CUDA") {
			t.Fatalf("probe: %v", err)
		}
		t.Logf("CUDA kernels unusable here: %v", err)
		calls := map[string]error{
			"write":     layout.CUDAWrite(0, 0, 0, 0, 0, F32, []int64{0}, 0),
			"copy":      layout.CUDACopyBlocks(0, 0, []int32{1, 2}, 0),
			"swap":      layout.CUDASwapBlocks(0, 0, layout, 0, 0, []int32{1, 2}, 0),
			"gather":    layout.CUDAGather(0, 0, 0, []int32{1}, 1, []int32{1}, 0, 0, F32, 1, 0),
			"attention": layout.CUDAAttentionDecode(0, 0, 0, 0, opsKVHeads, []int32{1}, 1, []int32{1}, 1, 0, 0),
		}
		for name, err := range calls {
			if !IsStatus(err, Unsupported) {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	// The binding's own checks come first either way.
	if err := layout.CUDACopyBlocks(0, 0, []int32{1}, 0); !IsStatus(err, InvalidArgument) {
		t.Fatalf("odd pairs: %v", err)
	}
	if err := layout.CUDAGather(0, 0, 0, []int32{1, 2}, 1, []int32{1}, 0, 0, F32, 1, 0); !IsStatus(err, InvalidArgument) {
		t.Fatalf("block tables of the wrong length: %v", err)
	}
	if !CUDAAvailable() {
		return
	}
	options := &PoolOptions{NumBlocks: opsBlocks, BlockSize: opsBlockSize,
		Shape: &ModelShape{Layers: 1, KVHeads: opsKVHeads, HeadDim: opsHeadDim, DType: F32}, Memory: DeviceMemory}
	pool, err := NewPool(options)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	other, err := NewPool(options)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	base, bytesPerBlock, err := pool.Storage()
	if err != nil {
		t.Fatal(err)
	}
	base2, _, err := other.Storage()
	if err != nil {
		t.Fatal(err)
	}
	if err := layout.SetStrides(bytesPerBlock, 2*layout.BlockBytes()); err != nil {
		t.Fatal(err)
	}
	half := uintptr(layout.BlockBytes())
	if err := layout.CUDACopyBlocks(base, base+half, []int32{2, 3}, 0); err != nil {
		t.Fatal(err)
	}
	if err := layout.CUDASwapBlocks(base, base+half, layout, base2, base2+half, []int32{3, 1}, 0); err != nil {
		t.Fatal(err)
	}
}
