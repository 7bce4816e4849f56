// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"strings"
	"testing"
)

func TestStoreTurns(t *testing.T) {
	s, err := NewStore(&StoreOptions{MaxSessions: 2, Component: "chats"})
	must(t, err)
	defer s.Close()
	shape := ModelShape{Layers: 2, KVHeads: 2, HeadDim: 4, DType: F32}
	x, err := s.GetOrCreate("chat-1", shape, 128)
	must(t, err)
	conversation := tokenRange(20, 1)
	if reused, err := x.BeginTurn(conversation); err != nil || reused != 0 {
		t.Fatalf("first turn: %d %v", reused, err)
	}
	keys := make([]float32, 20*2*4)
	for i := range keys {
		keys[i] = float32(i)
	}
	for layer := uint32(0); layer < 2; layer++ {
		must(t, x.WriteKV(layer, 0, 20, keys, keys))
	}
	must(t, x.Commit())
	k, v, err := x.ReadKV(1, 3, 2)
	must(t, err)
	if len(k) != 16 || k[0] != 24 || v[15] != 39 {
		t.Fatalf("read: %v %v", k, v)
	}
	if err := x.WriteKV(0, 0, 20, keys[:3], keys); !IsStatus(err, BufferTooSmall) {
		t.Fatalf("short keys: %v", err)
	}
	must(t, x.Close())

	y, err := s.TryGet("chat-1")
	must(t, err)
	next := append(tokenRange(15, 1), 500, 501, 502)
	if reused, err := y.BeginTurn(next); err != nil || reused != 15 {
		t.Fatalf("second turn: reused %d %v", reused, err)
	}
	must(t, y.Append(7))
	if n, committed, err := y.Tokens(); err != nil || n != 19 || committed != 15 {
		t.Fatalf("tokens %d committed %d %v", n, committed, err)
	}
	if id, _ := y.ID(); id != "chat-1" {
		t.Fatalf("id %q", id)
	}
	if table, err := y.BlockTable(); err != nil || len(table) != 2 {
		t.Fatalf("table %v %v", table, err)
	}
	if _, bytesPerBlock, blockSize, err := y.Storage(); err != nil || blockSize != 16 || bytesPerBlock != 2*2*2*4*16*4 {
		t.Fatalf("storage: %d %d %v", bytesPerBlock, blockSize, err)
	}

	// y is held: with MaxSessions 2, a third session evicts the idle second one, never y.
	z, err := s.GetOrCreate("chat-2", shape, 0)
	must(t, err)
	must(t, z.Close())
	w, err := s.GetOrCreate("chat-3", shape, 0)
	must(t, err)
	if gone, _ := s.TryGet("chat-2"); gone != nil {
		t.Fatal("the idle session should have been evicted")
	}
	if _, err := s.GetOrCreate("chat-4", shape, 0); !IsStatus(err, Capacity) {
		t.Fatalf("every session held: %v", err)
	}
	must(t, w.Close())
	must(t, y.Close())

	st, err := s.Snapshot()
	must(t, err)
	if st.Evictions != 1 || st.TokensReused != 15 || st.MemoryPressureEvents != 1 {
		t.Fatalf("stats %+v", st)
	}
	text, err := PrometheusText(s)
	must(t, err)
	if !strings.Contains(text, `kvcore_evictions_total{component="chats"} 1`) {
		t.Fatalf("exposition:\n%s", text)
	}
	if removed, err := s.Remove("chat-1"); err != nil || !removed {
		t.Fatalf("remove: %v %v", removed, err)
	}
	g, err := s.Gauges()
	must(t, err)
	if g.Sessions != 1 || g.PeakBytes == 0 {
		t.Fatalf("gauges %+v", g)
	}
}

func TestStoreOptionsDoWhatTheySay(t *testing.T) {
	s, err := NewStore(&StoreOptions{NoPersist: true})
	must(t, err)
	defer s.Close()
	x, err := s.GetOrCreate("once", ModelShape{Layers: 1, KVHeads: 1, HeadDim: 8, DType: F32}, 0)
	must(t, err)
	must(t, x.Close())
	if again, err := s.TryGet("once"); err != nil || again != nil {
		t.Fatalf("not persisted across requests: %v %v", again, err)
	}
	if _, err := NewStore(&StoreOptions{BlockSize: 5000}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("block size: %v", err)
	}
}

func TestPoliciesPerComponent(t *testing.T) {
	for _, policy := range []EvictionPolicy{LRU, S3FIFO, ARC} {
		p, err := NewPool(&PoolOptions{NumBlocks: 9, BlockSize: 4, Eviction: policy})
		must(t, err)
		for i := int32(0); i < 20; i++ { // more prompts than blocks: evictions under every policy
			seq, err := p.CreateSequence(tokenRange(8, 100*i), nil)
			must(t, err)
			_, err = p.Allocate(seq, 8)
			must(t, err)
			must(t, p.Free(seq))
		}
		must(t, p.Close())
		s, err := NewStore(&StoreOptions{MaxSessions: 1, Policy: policy})
		must(t, err)
		must(t, s.Close())
		c, err := NewTTLCache(&TTLOptions{MaxEntries: 1, Policy: policy})
		must(t, err)
		must(t, c.Close())
	}
	if ARC.String() != "arc" || EvictionPolicy(3).String() != "unknown" {
		t.Fatalf("policy names: %s %s", ARC, EvictionPolicy(3))
	}
	if _, err := NewPool(&PoolOptions{Eviction: EvictionPolicy(3)}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("unknown policy: %v", err)
	}
}
