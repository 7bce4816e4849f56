// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"runtime"
	"time"

	"github.com/kvcore/kvcore/bindings/go/internal/capi"
)

// EvictionPolicy selects which entry (or idle session) a full cache evicts.
type EvictionPolicy int

const (
	LRU    EvictionPolicy = 0 // least recently used, the default
	S3FIFO EvictionPolicy = 1 // scan-resistant: a probation queue, a main queue and a ghost history
	ARC    EvictionPolicy = 2 // adaptive replacement cache: recency against frequency, tuned by ghost hits
)

// String returns kvcore's name of the policy ("lru", "s3fifo", "arc"; "unknown" for other values).
func (p EvictionPolicy) String() string {
	return capi.EvictionPolicyName(capi.Enum_SS_kvc_eviction_policy(p))
}

// TTLOptions configure a TTLCache; zero fields keep kvcore's defaults.
type TTLOptions struct {
	TTL             time.Duration // how long a valid entry lives; default 30 s (millisecond resolution)
	NegativeTTL     time.Duration // how long a cached failure lives; default 5 s
	MaxEntries      uint64        // default 10000
	Unbounded       bool          // no size bound (MaxEntries is then ignored)
	Policy          EvictionPolicy
	CleanupInterval time.Duration // a native thread removes expired entries this often; 0 = none
	Component       string        // stats label; default "ttl"
}

// TTLEntry is one cache entry, copied out of the cache: later writes do not change it.
type TTLEntry struct {
	Namespace, Key string
	Value          []byte
	Valid          bool          // false for a cached failure
	Age            time.Duration // since it was written, when copied (0 for a value GetOrLoad just loaded)
	ExpiresIn      time.Duration // left until it expires, when copied (0 for a value GetOrLoad just loaded)
}

// TTLCache caches byte strings under (namespace, key) for a TTL, with negative caching, single-flight
// loads and a size bound. Its methods follow WVA's ModelMetricsCache (Get, Set, Invalidate, Clear, Size,
// GetAll, Cleanup) and are safe for concurrent use; Close must not race with them.
type TTLCache struct {
	native[capi.TtlCache]
}

// NewTTLCache makes a cache; opts may be nil for the defaults.
func NewTTLCache(opts *TTLOptions) (c *TTLCache, err error) {
	defer catch(&err)
	var raw capi.TtlCache
	if opts == nil {
		raw = capi.NewTtlCache(nil)
	} else {
		o := capi.NewTtlOptions()
		defer capi.DeleteTtlOptions(o)
		if opts.TTL != 0 {
			o.SetTtlMs(uint64(opts.TTL.Milliseconds()))
		}
		if opts.NegativeTTL != 0 {
			o.SetNegativeTtlMs(uint64(opts.NegativeTTL.Milliseconds()))
		}
		if opts.Unbounded {
			o.SetMaxEntries(0)
		} else if opts.MaxEntries != 0 {
			o.SetMaxEntries(opts.MaxEntries)
		}
		o.SetEvictionPolicy(capi.Enum_SS_kvc_eviction_policy(opts.Policy))
		if opts.CleanupInterval != 0 {
			o.SetCleanupIntervalMs(uint64(opts.CleanupInterval.Milliseconds()))
		}
		if opts.Component != "" {
			o.SetComponent(opts.Component)
		}
		raw = capi.NewTtlCache(o)
	}
	c = &TTLCache{native[capi.TtlCache]{raw: raw, free: capi.DeleteTtlCache}}
	runtime.SetFinalizer(c, (*TTLCache).Close)
	return c, nil
}

// Close frees the cache (and stops its cleanup thread). It is safe to call more than once.
func (c *TTLCache) Close() error {
	c.close()
	runtime.SetFinalizer(c, nil)
	return nil
}

func (c *TTLCache) do(fn func(capi.TtlCache)) error { return c.call(c, fn) }

// entryAt copies entry i of a native copy.
func entryAt(entries capi.TtlEntries, i int64) TTLEntry {
	e := TTLEntry{
		Namespace: entries.NamespaceAt(i), Key: entries.KeyAt(i), Valid: entries.ValidAt(i),
		Value:     make([]byte, entries.ValueSize(i)),
		Age:       time.Duration(entries.AgeMs(i)) * time.Millisecond,
		ExpiresIn: time.Duration(entries.ExpiresInMs(i)) * time.Millisecond,
	}
	if len(e.Value) > 0 {
		entries.ValueInto(i, e.Value, int64(len(e.Value)))
	}
	return e
}

// Set stores value under (ns, key); valid false stores a cached failure (it lives NegativeTTL).
func (c *TTLCache) Set(ns, key string, value []byte, valid bool) error {
	return c.do(func(n capi.TtlCache) { n.SetRaw(ns, key, value, int64(len(value)), valid) })
}

// Get returns the live entry (Valid false: a cached failure), or nil on a miss.
func (c *TTLCache) Get(ns, key string) (entry *TTLEntry, err error) {
	err = c.do(func(n capi.TtlCache) {
		raw := n.GetEntry(ns, key)
		if raw.Swigcptr() == 0 {
			return
		}
		defer capi.DeleteTtlEntries(raw)
		e := entryAt(raw, 0)
		entry = &e
	})
	return entry, err
}

// GetOrLoad returns the live entry, or runs load and stores its result. Concurrent misses of one key run
// load once; the others wait and get its result. A load that returns an error (or panics) is a failed
// load: the failure (the error's text) is cached for NegativeTTL and returned to the waiters with Valid
// false; the goroutine that ran load gets that entry and load's error.
func (c *TTLCache) GetOrLoad(ns, key string, load func() ([]byte, error)) (entry *TTLEntry, err error) {
	var loadErr error
	// The C side tells a thread that waits for its own load (a deadlock) by its OS thread; while this
	// goroutine holds a ticket no other goroutine may run on that thread and look like it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = c.do(func(n capi.TtlCache) {
		l := capi.NewTtlLoad(n, ns, key)
		defer capi.DeleteTtlLoad(l) // unfinished (load panicked): a failed load, so waiters never hang
		if !l.MustLoad() {
			e := entryAt(l.Result(), 0)
			entry = &e
			return
		}
		var value []byte
		value, loadErr = load()
		valid := loadErr == nil
		if !valid {
			value = []byte(loadErr.Error())
		}
		l.FinishRaw(value, int64(len(value)), valid)
		entry = &TTLEntry{Namespace: ns, Key: key, Value: append([]byte(nil), value...), Valid: valid}
	})
	if err == nil {
		err = loadErr
	}
	return entry, err
}

// Invalidate removes (ns, key); removed is false when no live entry was there.
func (c *TTLCache) Invalidate(ns, key string) (removed bool, err error) {
	err = c.do(func(n capi.TtlCache) { removed = n.Invalidate(ns, key) })
	return removed, err
}

// Clear removes every entry.
func (c *TTLCache) Clear() error { return c.do(func(n capi.TtlCache) { n.Clear() }) }

// Size is the number of live (unexpired) entries; 0 after Close.
func (c *TTLCache) Size() int {
	var size uint64
	_ = c.do(func(n capi.TtlCache) { size = n.Size() })
	return int(size)
}

// GetAll returns copies of every live entry, sorted by (namespace, key).
func (c *TTLCache) GetAll() (all []TTLEntry, err error) {
	err = c.do(func(n capi.TtlCache) {
		raw := n.GetAllEntries()
		defer capi.DeleteTtlEntries(raw)
		count := raw.Count()
		all = make([]TTLEntry, 0, count)
		for i := int64(0); i < count; i++ {
			all = append(all, entryAt(raw, i))
		}
	})
	return all, err
}

// Cleanup removes expired entries and returns how many it removed.
func (c *TTLCache) Cleanup() (removed int, err error) {
	err = c.do(func(n capi.TtlCache) { removed = int(n.Cleanup()) })
	return removed, err
}

// Snapshot returns the cache's statistics (hits, misses, negative hits, loads, evictions, ...).
func (c *TTLCache) Snapshot() (s *Stats, err error) {
	err = c.do(func(n capi.TtlCache) { s = statsFrom(n.Snapshot()) })
	return s, err
}

func (c *TTLCache) addTo(exposition capi.Exposition) error {
	return c.do(func(n capi.TtlCache) {
		raw := n.Snapshot()
		defer capi.DeleteStats(raw)
		exposition.Add(raw)
	})
}
