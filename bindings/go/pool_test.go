// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"math"
	"strings"
	"testing"
)

func tokenRange(n int, first int32) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = first + int32(i)
	}
	return t
}

func TestPoolPrefixCaching(t *testing.T) {
	p, err := NewPool(&PoolOptions{NumBlocks: 16, BlockSize: 4})
	must(t, err)
	defer p.Close()
	a, err := p.CreateSequence(tokenRange(10, 100), nil)
	must(t, err)
	cached, err := p.Allocate(a, 10)
	must(t, err)
	table, err := p.BlockTable(a)
	must(t, err)
	slots, err := p.SlotMapping(a, 0, 10)
	must(t, err)
	if cached != 0 || len(table) != 3 || slots[5] != int64(table[1])*4+1 {
		t.Fatalf("cached %d table %v slots %v", cached, table, slots)
	}
	b, err := p.CreateSequence(tokenRange(10, 100), nil)
	must(t, err)
	if n, err := p.CachedPrefix(b); err != nil || n != 8 {
		t.Fatalf("cached prefix %d %v", n, err)
	}
	if _, err := p.CreateSequence(tokenRange(10, 100), &SequenceOptions{LoraID: -1}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("negative LoRA id: %v", err)
	}
	salted, err := p.CreateSequence(tokenRange(10, 100), &SequenceOptions{CacheSalt: "tenant", LoraID: 7})
	must(t, err)
	if n, _ := p.CachedPrefix(salted); n != 0 {
		t.Fatalf("another salt shares %d tokens", n)
	}
	if n, err := p.Allocate(b, 10); err != nil || n != 8 {
		t.Fatalf("reused %d %v", n, err)
	}
	s, err := p.Snapshot()
	must(t, err)
	if s.Component != "pool" || s.TokensQueried != 20 || s.TokensHit != 8 {
		t.Fatalf("snapshot %+v", s)
	}
	must(t, p.Free(a))
	must(t, p.Free(b))
	must(t, p.Free(salted))
	g, err := p.Gauges()
	must(t, err)
	if g.FreeBlocks != 15 || g.Sequences != 0 || g.WindowTokenHitRate < 0.39 || g.WindowTokenHitRate > 0.41 {
		t.Fatalf("gauges %+v", g)
	}
}

func TestPoolWithoutStatistics(t *testing.T) {
	p, err := NewPool(&PoolOptions{NumBlocks: 16, BlockSize: 4, NoStatistics: true})
	must(t, err)
	defer p.Close()
	a, err := p.CreateSequence(tokenRange(10, 100), nil)
	must(t, err)
	if n, err := p.Allocate(a, 10); err != nil || n != 0 {
		t.Fatalf("allocate: %d %v", n, err)
	}
	if _, err := p.Snapshot(); !IsStatus(err, InvalidState) {
		t.Fatalf("snapshot without statistics: got %v, want InvalidState", err)
	}
	g, err := p.Gauges()
	must(t, err)
	if !math.IsNaN(g.WindowTokenHitRate) {
		t.Fatalf("window token hit rate without statistics: %v", g.WindowTokenHitRate)
	}
}

func TestPoolForkEventsAndErrors(t *testing.T) {
	p, err := NewPool(&PoolOptions{NumBlocks: 8, BlockSize: 4, Events: true})
	must(t, err)
	a, err := p.CreateSequence(tokenRange(6, 0), nil)
	must(t, err)
	_, err = p.Allocate(a, 6)
	must(t, err)
	child, err := p.Fork(a)
	must(t, err)
	must(t, p.Append(child, 42))
	copies, err := p.DrainCopies()
	must(t, err)
	parentTable, _ := p.BlockTable(a)
	childTable, _ := p.BlockTable(child)
	if len(copies) != 1 || copies[0] != (BlockCopy{parentTable[1], childTable[1]}) {
		t.Fatalf("copies %v", copies)
	}
	batch, err := p.DrainEvents(EventsArray)
	must(t, err)
	if batch[0] != 0x93 {
		t.Fatalf("EventBatch starts with %#x", batch[0])
	}
	raw, err := p.AllocateBlocks(2)
	must(t, err)
	must(t, p.FreeBlocks(raw...))
	if err := p.FreeBlocks(raw[0]); !IsStatus(err, InvalidState) {
		t.Errorf("double free: %v", err)
	}
	if _, err := p.AllocateBlocks(100); !IsStatus(err, Capacity) {
		t.Errorf("too many blocks: %v", err)
	}
	if err := p.Append(child, -1); !IsStatus(err, InvalidArgument) {
		t.Errorf("negative token: %v", err)
	}
	must(t, p.Free(child))
	if err := p.Free(child); !IsStatus(err, InvalidState) {
		t.Errorf("freed twice: %v", err)
	}
	must(t, p.Close())
	if _, err := p.CreateSequence([]int32{1}, nil); err != ErrClosed {
		t.Errorf("closed pool: %v", err)
	}
	if _, err := NewPool(&PoolOptions{NumBlocks: 1}); !IsStatus(err, InvalidArgument) {
		t.Errorf("one block: %v", err)
	}
}

func TestPoolHostStorage(t *testing.T) {
	p, err := NewPool(&PoolOptions{NumBlocks: 8, BlockSize: 4, Memory: HostMemory,
		Shape: &ModelShape{Layers: 2, KVHeads: 1, HeadDim: 8, DType: F16}})
	must(t, err)
	defer p.Close()
	address, bytes, err := p.Storage()
	must(t, err)
	if address == 0 || bytes != 2*2*1*8*4*2 {
		t.Fatalf("address %#x, %d bytes per block", address, bytes)
	}
	meta, err := NewPool(nil)
	must(t, err)
	defer meta.Close()
	if address, _, _ := meta.Storage(); address != 0 {
		t.Fatalf("metadata-only pool has memory at %#x", address)
	}
}

func TestHashBlocksMatchesVllm(t *testing.T) {
	// The first 32 tokens of vLLM's own event (tests/data/vllm_kv_event_base.json) and its first 2 hashes.
	tokens := []int32{2082, 1113, 2142, 374, 264, 4948, 19128, 323, 7203, 429, 374, 66351, 938, 315, 11198, 323,
		59415, 678, 90505, 11, 54263, 533, 7586, 315, 28922, 13, 1527, 1113, 2142, 6738, 369, 279}
	hashes, err := HashBlocks(Sha256Cbor, "42", 16, tokens, nil)
	must(t, err)
	if len(hashes) != 2 || hashes[0] != 17705339885301241772 || hashes[1] != 13360521540053240825 {
		t.Fatalf("hashes %v", hashes)
	}
	if _, err := HashBlocks(Xxh3, "42", 0, tokens, nil); !IsStatus(err, InvalidArgument) {
		t.Fatalf("block size 0: %v", err)
	}
}

func TestPoolRetentionPriorityZero(t *testing.T) {
	// 4 usable blocks of 4 tokens. The default-priority prompt is freed first, the priority-0 one last:
	// by recency alone the default one would go first, so only priority 0 (not "unset") evicts the other.
	p, err := NewPool(&PoolOptions{NumBlocks: 5, BlockSize: 4})
	must(t, err)
	defer p.Close()
	admitAndFree := func(prompt []int32, opts *SequenceOptions) {
		seq, err := p.CreateSequence(prompt, opts)
		must(t, err)
		_, err = p.Allocate(seq, len(prompt))
		must(t, err)
		must(t, p.Free(seq))
	}
	admitAndFree(tokenRange(8, 200), nil)
	admitAndFree(tokenRange(8, 100), &SequenceOptions{Priority: Priority(0)})
	newcomer, err := p.CreateSequence(tokenRange(8, 300), nil)
	must(t, err)
	_, err = p.Allocate(newcomer, 8) // takes 2 of the 4 cached blocks
	must(t, err)
	cachedOf := func(first int32) int {
		probe, err := p.CreateSequence(tokenRange(9, first), nil)
		must(t, err)
		n, err := p.CachedPrefix(probe)
		must(t, err)
		return n
	}
	if low, def := cachedOf(100), cachedOf(200); low != 0 || def != 8 {
		t.Fatalf("after eviction: priority-0 prompt keeps %d cached tokens, default-priority prompt %d; want 0 and 8", low, def)
	}
}

func TestPrometheusTextOfAPoolAndARecorder(t *testing.T) {
	p, err := NewPool(nil)
	must(t, err)
	store := mustRecorder(t, &RecorderOptions{Component: "store"})
	seq, err := p.CreateSequence(tokenRange(40, 1), nil)
	must(t, err)
	_, err = p.Allocate(seq, 40)
	must(t, err)
	must(t, store.RecordAccess(true))
	text, err := PrometheusText(p, store)
	must(t, err)
	if n := strings.Count(text, "# TYPE kvcore_hits_total "); n != 1 {
		t.Fatalf("%d TYPE lines for kvcore_hits_total:\n%s", n, text)
	}
	if !strings.Contains(text, "kvcore_misses_total{component=\"pool\"} 2\n") ||
		!strings.Contains(text, "kvcore_hits_total{component=\"store\"} 1\n") {
		t.Fatalf("pool and store samples missing:\n%s", text)
	}
	must(t, p.Close())
	if _, err := PrometheusText(store, p); err != ErrClosed {
		t.Fatalf("a closed pool: got %v, want ErrClosed", err)
	}
}
