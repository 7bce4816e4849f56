// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"runtime"

	"github.com/kvcore/kvcore/bindings/go/internal/capi"
)

// Memory says where a pool's KV blocks live.
type Memory int

const (
	MetadataOnly Memory = 0 // the embedder owns the tensors; kvcore manages block ids
	HostMemory   Memory = 1
	DeviceMemory Memory = 2 // needs a CUDA build
)

// DType is the element type of the KV cache.
type DType int

const (
	F16  DType = 0
	BF16 DType = 1
	F32  DType = 2
	FP8  DType = 3
	Int8 DType = 4
)

// HashAlgo selects the block hash.
type HashAlgo int

const (
	Xxh3       HashAlgo = 0 // fast, the default
	Sha256Cbor HashAlgo = 1 // byte-exact with vLLM's sha256_cbor
)

// EventEncoding selects vLLM's KV event encoding.
type EventEncoding int

const (
	EventsArray EventEncoding = 0 // tagged arrays, vLLM until mid-2026
	EventsMap   EventEncoding = 1 // maps with "type", vLLM after PR #42892
)

// ModelShape sizes a block's memory: K and V for every layer.
type ModelShape struct {
	Layers, KVHeads, HeadDim uint32
	DType                    DType
}

// PoolOptions configure a Pool; zero fields keep kvcore's defaults.
type PoolOptions struct {
	NumBlocks      uint32 // including the null block
	BlockSize      uint32 // tokens per block
	Shape          *ModelShape
	Memory         Memory
	Hash           HashAlgo
	HashSeed       string // default "42"
	NoPrefixCache  bool
	SlidingWindow  uint32 // tokens; 0 = full attention
	Events         bool
	EventMedium    string // default "GPU"
	MaxEvents      uint32 // pending events kept; default 100000
	WindowRequests uint32 // requests in the windowed token hit rate; default 1000
	NoStatistics   bool   // keep no statistics (Snapshot then fails with InvalidState)
	Eviction       EvictionPolicy // which free cached block goes first within a priority; default LRU
}

// MultimodalItem is a multimodal input occupying tokens [Offset, Offset+Length).
type MultimodalItem struct {
	Hash           string
	Offset, Length uint64
}

// SequenceOptions carry a request's extra keys and retention priority.
type SequenceOptions struct {
	LoraName           string
	LoraID             int64 // the engine's LoRA int id, published in events only; 0 = none
	CacheSalt          string
	Multimodal         []MultimodalItem
	Priority           *uint32 // retention priority 0..100 (0 is evicted first); nil = kvcore's default, 35
	PriorityDurationMs uint64  // after this many ms the freed blocks fall back to the default; 0 = forever
}

// Priority returns a pointer to p, for SequenceOptions.Priority: &SequenceOptions{Priority: Priority(0)}.
func Priority(p uint32) *uint32 { return &p }

// defaultPriority is kvc_sequence_options' default retention priority.
const defaultPriority = 35

// Sequence names a request in a Pool.
type Sequence uint64

// Pool is the paged KV block pool with prefix caching. It is not safe for concurrent use.
type Pool struct {
	native[capi.Pool]
}

// NewPool makes a pool; opts may be nil for the defaults.
func NewPool(opts *PoolOptions) (p *Pool, err error) {
	defer catch(&err)
	var raw capi.Pool
	if opts == nil {
		raw = capi.NewPool(nil)
	} else {
		o := capi.NewPoolOptions()
		defer capi.DeletePoolOptions(o)
		if opts.NumBlocks != 0 {
			o.SetNumBlocks(uint(opts.NumBlocks))
		}
		if opts.BlockSize != 0 {
			o.SetBlockSize(uint(opts.BlockSize))
		}
		if opts.Shape != nil {
			o.SetModelShape(uint(opts.Shape.Layers), uint(opts.Shape.KVHeads), uint(opts.Shape.HeadDim),
				capi.Enum_SS_kvc_dtype(opts.Shape.DType))
		}
		o.SetMemory(capi.Enum_SS_kvc_memory(opts.Memory))
		seed := opts.HashSeed
		if seed == "" {
			seed = "42"
		}
		o.SetHash(capi.Enum_SS_kvc_hash_algo(opts.Hash), seed)
		o.SetPrefixCaching(!opts.NoPrefixCache)
		o.SetSlidingWindow(uint(opts.SlidingWindow))
		if opts.Events {
			medium, max := opts.EventMedium, opts.MaxEvents
			if medium == "" {
				medium = "GPU"
			}
			if max == 0 {
				max = 100000
			}
			o.SetEvents(true, medium, uint(max))
		}
		if opts.WindowRequests != 0 {
			o.SetWindowRequests(uint(opts.WindowRequests))
		}
		o.SetStatistics(!opts.NoStatistics)
		o.SetEvictionPolicy(capi.Enum_SS_kvc_eviction_policy(opts.Eviction))
		raw = capi.NewPool(o)
	}
	p = &Pool{native[capi.Pool]{raw: raw, free: capi.DeletePool}}
	runtime.SetFinalizer(p, (*Pool).Close)
	return p, nil
}

// Close frees the pool and every sequence in it (its memory once the last Scheduler over it is closed too).
// It is safe to call more than once.
func (p *Pool) Close() error {
	p.close()
	runtime.SetFinalizer(p, nil)
	return nil
}

func (p *Pool) do(fn func(capi.Pool)) error { return p.call(p, fn) }

// withSequenceOptions runs call with native options built from opts (nil when opts is nil).
func withSequenceOptions(opts *SequenceOptions, call func(capi.SequenceOptions)) {
	if opts == nil {
		call(nil)
		return
	}
	o := capi.NewSequenceOptions()
	defer capi.DeleteSequenceOptions(o)
	if opts.LoraName != "" {
		o.SetLoraName(opts.LoraName)
	}
	if opts.LoraID != 0 {
		o.SetLoraId(opts.LoraID)
	}
	if opts.CacheSalt != "" {
		o.SetCacheSalt(opts.CacheSalt)
	}
	for _, m := range opts.Multimodal {
		o.AddMultimodal(m.Hash, m.Offset, m.Length)
	}
	if opts.Priority != nil || opts.PriorityDurationMs != 0 {
		priority := uint32(defaultPriority)
		if opts.Priority != nil {
			priority = *opts.Priority
		}
		o.SetPriority(uint(priority), opts.PriorityDurationMs)
	}
	call(o)
}

// CreateSequence registers a request by its prompt tokens; opts may be nil.
func (p *Pool) CreateSequence(prompt []int32, opts *SequenceOptions) (seq Sequence, err error) {
	err = p.do(func(c capi.Pool) {
		withSequenceOptions(opts, func(o capi.SequenceOptions) {
			seq = Sequence(c.CreateSequenceRaw(prompt, int64(len(prompt)), o))
		})
	})
	return seq, err
}

// CachedPrefix is the longest cached prefix in tokens (at most len(prompt)-1). It changes nothing.
func (p *Pool) CachedPrefix(seq Sequence) (tokens int, err error) {
	err = p.do(func(c capi.Pool) { tokens = int(c.CachedPrefix(uint64(seq))) })
	return tokens, err
}

// Allocate makes slots for the sequence's first numTokens tokens and returns how many came from the
// prefix cache. A Capacity error changes nothing.
func (p *Pool) Allocate(seq Sequence, numTokens int) (cached int, err error) {
	err = p.do(func(c capi.Pool) { cached = int(c.Allocate(uint64(seq), int64(numTokens))) })
	return cached, err
}

// Append adds generated tokens with their slots.
func (p *Pool) Append(seq Sequence, tokens ...int32) error {
	return p.do(func(c capi.Pool) { c.AppendRaw(uint64(seq), tokens, int64(len(tokens))) })
}

// Fork makes a child sharing every block, copy-on-write.
func (p *Pool) Fork(seq Sequence) (child Sequence, err error) {
	err = p.do(func(c capi.Pool) { child = Sequence(c.Fork(uint64(seq))) })
	return child, err
}

// PinPrefix keeps the sequence's full cached blocks from eviction until the returned pin is freed.
func (p *Pool) PinPrefix(seq Sequence) (pin Sequence, err error) {
	err = p.do(func(c capi.Pool) { pin = Sequence(c.PinPrefix(uint64(seq))) })
	return pin, err
}

// Free returns the sequence's blocks (tail first).
func (p *Pool) Free(seq Sequence) error {
	return p.do(func(c capi.Pool) { c.FreeSequence(uint64(seq)) })
}

// Tokens is the number of tokens with slots.
func (p *Pool) Tokens(seq Sequence) (n int, err error) {
	err = p.do(func(c capi.Pool) { n = int(c.SequenceTokens(uint64(seq))) })
	return n, err
}

// BlockTable returns the sequence's blocks (0 = the null block).
func (p *Pool) BlockTable(seq Sequence) (blocks []int32, err error) {
	err = p.do(func(c capi.Pool) {
		blocks = make([]int32, c.BlockTableSize(uint64(seq)))
		c.BlockTableInto(uint64(seq), blocks, int64(len(blocks)))
	})
	return blocks, err
}

// SlotMapping returns the slots of tokens [first, first+count).
func (p *Pool) SlotMapping(seq Sequence, first, count int) (slots []int64, err error) {
	err = p.do(func(c capi.Pool) {
		slots = make([]int64, count)
		c.SlotMappingInto(uint64(seq), int64(first), slots, int64(count))
	})
	return slots, err
}

// BlockCopy is a copy-on-write copy to perform before the next forward pass.
type BlockCopy struct{ Src, Dst int32 }

// DrainCopies returns and forgets the pending copy-on-write copies.
func (p *Pool) DrainCopies() (copies []BlockCopy, err error) {
	err = p.do(func(c capi.Pool) {
		pairs := make([]int32, 2*c.CopiesPending())
		c.DrainCopiesInto(pairs, int64(len(pairs)/2))
		for i := 0; i < len(pairs); i += 2 {
			copies = append(copies, BlockCopy{pairs[i], pairs[i+1]})
		}
	})
	return copies, err
}

// AllocateBlocks hands out n raw blocks, all or none.
func (p *Pool) AllocateBlocks(n int) (blocks []int32, err error) {
	err = p.do(func(c capi.Pool) {
		blocks = make([]int32, n)
		c.AllocateBlocksInto(blocks, int64(n))
	})
	return blocks, err
}

// FreeBlocks returns raw blocks; a double free frees nothing and returns InvalidState.
func (p *Pool) FreeBlocks(blocks ...int32) error {
	return p.do(func(c capi.Pool) { c.FreeBlocksRaw(blocks, int64(len(blocks))) })
}

// ResetPrefixCache forgets every cached hash; only when no block is in use.
func (p *Pool) ResetPrefixCache() error { return p.do(func(c capi.Pool) { c.ResetPrefixCache() }) }

// DrainEvents returns the pending KV events as one msgpack EventBatch in vLLM's wire format.
func (p *Pool) DrainEvents(encoding EventEncoding) (batch []byte, err error) {
	err = p.do(func(c capi.Pool) {
		e := capi.Enum_SS_kvc_event_encoding(encoding)
		batch = make([]byte, c.EventsSize(e))
		c.DrainEventsInto(e, batch, int64(len(batch)))
	})
	return batch, err
}

// PoolGauges are the pool's current sizes and rates.
type PoolGauges struct {
	NumBlocks, FreeBlocks, BlocksInUse, CachedBlocks uint32
	Sequences, EventsDropped                         uint64
	MemoryEfficiency, WindowTokenHitRate             float64
}

// Gauges reads the pool's current sizes and rates.
func (p *Pool) Gauges() (g PoolGauges, err error) {
	err = p.do(func(c capi.Pool) {
		g = PoolGauges{NumBlocks: uint32(c.NumBlocks()), FreeBlocks: uint32(c.NumFreeBlocks()),
			BlocksInUse: uint32(c.NumBlocksInUse()), CachedBlocks: uint32(c.NumCachedBlocks()),
			Sequences: c.NumSequences(), EventsDropped: c.EventsDropped(),
			MemoryEfficiency: c.MemoryEfficiency(), WindowTokenHitRate: c.WindowTokenHitRate()}
	})
	return g, err
}

// Storage returns the address of the pool's host or device memory (0 for metadata only) and the bytes
// of one block (K and V, all layers), for the embedder's tensor library.
func (p *Pool) Storage() (address uintptr, bytesPerBlock uint64, err error) {
	err = p.do(func(c capi.Pool) {
		address = uintptr(c.StorageAddress())
		bytesPerBlock = c.BytesPerBlock()
	})
	return address, bytesPerBlock, err
}

// Snapshot returns the pool's statistics (component "pool").
func (p *Pool) Snapshot() (s *Stats, err error) {
	err = p.do(func(c capi.Pool) { s = statsFrom(c.Snapshot()) })
	return s, err
}

// HashBlocks returns one hash per full block, as vLLM publishes them in KV events; opts may be nil.
func HashBlocks(algo HashAlgo, seed string, blockSize uint32, tokens []int32, opts *SequenceOptions) (hashes []uint64, err error) {
	defer catch(&err)
	if blockSize > 0 {
		hashes = make([]uint64, len(tokens)/int(blockSize))
	}
	withSequenceOptions(opts, func(o capi.SequenceOptions) {
		capi.PoolHashBlocksInto(capi.Enum_SS_kvc_hash_algo(algo), seed, uint(blockSize), tokens, int64(len(tokens)), o,
			hashes, int64(len(hashes)))
	})
	return hashes, nil
}
