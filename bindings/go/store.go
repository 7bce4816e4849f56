// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"runtime"
	"unsafe"

	"github.com/kvcore/kvcore/bindings/go/internal/capi"
)

// StoreOptions configure a Store (SmallMind's KvCacheOptions); zero fields keep the defaults: enabled,
// 4096 tokens per session, 1000 sessions, 1 GiB, LRU, persistent sessions, prefix sharing, host memory.
type StoreOptions struct {
	Disabled            bool   // nothing is kept between leases
	MaxTokensPerSession uint32 // default 4096
	MaxSessions         uint32 // default 1000
	MaxBytesTotal       uint64 // default 1 GiB
	MaxBytesPerSession  uint64 // default 0: only MaxBytesTotal bounds a session
	Policy              EvictionPolicy
	NoPersist           bool   // a session is removed when its last lease ends (one request)
	NoPrefixSharing     bool   // sessions never share the blocks of a common prefix
	BlockSize           uint32 // tokens per block; default 16
	DeviceMemory        bool   // CUDA memory (needs a CUDA build and device)
	Component           string // stats label; default "store"
}

// Store keeps sessions' KV between requests, so a chat's next turn computes only its new tokens. Safe
// for concurrent use; Close must not race with other calls.
type Store struct {
	native[capi.Store]
}

// NewStore makes a store; opts may be nil for the defaults.
func NewStore(opts *StoreOptions) (s *Store, err error) {
	defer catch(&err)
	var raw capi.Store
	if opts == nil {
		raw = capi.NewStore(nil)
	} else {
		o := capi.NewStoreOptions()
		defer capi.DeleteStoreOptions(o)
		o.SetEnabled(!opts.Disabled)
		if opts.MaxTokensPerSession != 0 {
			o.SetMaxTokensPerSession(uint(opts.MaxTokensPerSession))
		}
		if opts.MaxSessions != 0 {
			o.SetMaxSessions(uint(opts.MaxSessions))
		}
		if opts.MaxBytesTotal != 0 {
			o.SetMaxBytesTotal(opts.MaxBytesTotal)
		}
		o.SetMaxBytesPerSession(opts.MaxBytesPerSession)
		o.SetEvictionPolicy(capi.Enum_SS_kvc_eviction_policy(opts.Policy))
		o.SetPersistAcrossRequests(!opts.NoPersist)
		o.SetPrefixSharing(!opts.NoPrefixSharing)
		if opts.BlockSize != 0 {
			o.SetBlockSize(uint(opts.BlockSize))
		}
		if opts.DeviceMemory {
			o.SetMemory(capi.Enum_SS_kvc_memory(DeviceMemory))
		}
		if opts.Component != "" {
			o.SetComponent(opts.Component)
		}
		raw = capi.NewStore(o)
	}
	s = &Store{native[capi.Store]{raw: raw, free: capi.DeleteStore}}
	runtime.SetFinalizer(s, (*Store).Close)
	return s, nil
}

// Close frees the store; sessions still leased live until their Close, and a store attached to a
// Scheduler until that scheduler is closed or detaches it.
func (s *Store) Close() error {
	s.close()
	runtime.SetFinalizer(s, nil)
	return nil
}

func (s *Store) do(fn func(capi.Store)) error { return s.call(s, fn) }

func newSession(raw capi.Session) *Session {
	session := &Session{native[capi.Session]{raw: raw, free: capi.DeleteSession}}
	runtime.SetFinalizer(session, (*Session).Close)
	return session
}

// GetOrCreate returns a lease on session id, created empty if absent. maxTokens 0 = MaxTokensPerSession.
func (s *Store) GetOrCreate(id string, shape ModelShape, maxTokens uint32) (session *Session, err error) {
	err = s.do(func(c capi.Store) {
		session = newSession(c.GetOrCreateRaw(id, uint(shape.Layers), uint(shape.KVHeads), uint(shape.HeadDim),
			capi.Enum_SS_kvc_dtype(shape.DType), uint(maxTokens)))
	})
	return session, err
}

// TryGet returns a lease on an existing session, or nil (a miss, counted in the stats).
func (s *Store) TryGet(id string) (session *Session, err error) {
	err = s.do(func(c capi.Store) {
		if raw := c.TryGet(id); raw.Swigcptr() != 0 {
			session = newSession(raw)
		}
	})
	return session, err
}

// Remove removes a session; removed is false when there was none. A leased session is detached.
func (s *Store) Remove(id string) (removed bool, err error) {
	err = s.do(func(c capi.Store) { removed = c.Remove(id) })
	return removed, err
}

// Clear removes every session.
func (s *Store) Clear() error { return s.do(func(c capi.Store) { c.Clear() }) }

// StoreGauges are the store's current figures.
type StoreGauges struct {
	Sessions, BytesInUse, PeakBytes uint64
}

// Gauges reads the number of sessions and the bytes of blocks in use.
func (s *Store) Gauges() (g StoreGauges, err error) {
	err = s.do(func(c capi.Store) {
		g = StoreGauges{Sessions: c.NumSessions(), BytesInUse: c.BytesInUse(), PeakBytes: c.PeakBytes()}
	})
	return g, err
}

// Snapshot returns the store's statistics (session hits and misses, evictions, bytes, reused tokens).
func (s *Store) Snapshot() (st *Stats, err error) {
	err = s.do(func(c capi.Store) { st = statsFrom(c.Snapshot()) })
	return st, err
}

func (s *Store) addTo(exposition capi.Exposition) error {
	return s.do(func(c capi.Store) {
		raw := c.Snapshot()
		defer capi.DeleteStats(raw)
		exposition.Add(raw)
	})
}

// Session is a lease on one session: it is never evicted while held. Close ends the lease. One goroutine
// at a time.
type Session struct {
	native[capi.Session]
}

// Close ends the lease. It is safe to call more than once.
func (x *Session) Close() error {
	x.close()
	runtime.SetFinalizer(x, nil)
	return nil
}

func (x *Session) do(fn func(capi.Session)) error { return x.call(x, fn) }

// BeginTurn starts a turn with the whole conversation and returns the tokens whose K/V are already
// there: the longest common prefix with what the session holds (the rest is dropped).
func (x *Session) BeginTurn(conversation []int32) (reused int, err error) {
	err = x.do(func(c capi.Session) { reused = int(c.BeginTurnRaw(conversation, int64(len(conversation)))) })
	return reused, err
}

// Append adds generated tokens (decode).
func (x *Session) Append(tokens ...int32) error {
	return x.do(func(c capi.Session) { c.AppendRaw(tokens, int64(len(tokens))) })
}

// WriteKV writes one layer's K and V rows ([token][kv head][head dim], float32) for tokens
// [first, first+n).
func (x *Session) WriteKV(layer uint32, first, n int, keys, values []float32) error {
	return x.do(func(c capi.Session) {
		c.WriteKvRaw(uint(layer), int64(first), int64(n), keys, int64(len(keys)), values, int64(len(values)))
	})
}

// ReadKV reads one layer's K and V rows (float32) for tokens [first, first+n).
func (x *Session) ReadKV(layer uint32, first, n int) (keys, values []float32, err error) {
	err = x.do(func(c capi.Session) {
		floats := c.KvBytes(uint(layer), int64(first), int64(n)) / int64(unsafe.Sizeof(float32(0)))
		keys, values = make([]float32, floats), make([]float32, floats)
		if floats > 0 {
			c.ReadKvRaw(uint(layer), int64(first), int64(n), keys, values, floats)
		}
	})
	return keys, values, err
}

// Commit marks every token's K/V written: later turns (and, with prefix sharing, other sessions) reuse them.
func (x *Session) Commit() error { return x.do(func(c capi.Session) { c.Commit() }) }

// Tokens returns the tokens with slots and, of them, the committed ones.
func (x *Session) Tokens() (tokens, committed int, err error) {
	err = x.do(func(c capi.Session) { tokens, committed = int(c.Tokens()), int(c.CommittedTokens()) })
	return tokens, committed, err
}

// ID returns the session's id.
func (x *Session) ID() (id string, err error) {
	err = x.do(func(c capi.Session) { id = c.Id() })
	return id, err
}

// BlockTable returns the session's blocks in its pool's storage.
func (x *Session) BlockTable() (blocks []int32, err error) {
	err = x.do(func(c capi.Session) {
		blocks = make([]int32, c.BlockTableSize())
		c.BlockTableInto(blocks, int64(len(blocks)))
	})
	return blocks, err
}

// Storage returns the address of the session's pool memory, the bytes of one block and tokens per block,
// for zero-copy kernels (layout in kvcore/store.h). Valid while the lease is held.
func (x *Session) Storage() (address uintptr, bytesPerBlock uint64, blockSize uint32, err error) {
	err = x.do(func(c capi.Session) {
		address, bytesPerBlock, blockSize = uintptr(c.StorageAddress()), c.BytesPerBlock(), uint32(c.BlockSize())
	})
	return address, bytesPerBlock, blockSize, err
}
