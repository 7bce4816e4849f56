// SPDX-License-Identifier: Apache-2.0

// Package kvcore is the Go binding of kvcore, the KV-cache core for LLM inference.
//
// Import it as kvcore "github.com/kvcore/kvcore/bindings/go"; cgo finds libkvcore through pkg-config,
// so PKG_CONFIG_PATH=<prefix>/lib/pkgconfig is all a build needs. It wraps the SWIG-generated package
// internal/capi: handles become types with Close() error, and every failure is returned as an *Error
// carrying the kvc_status and the library's message (never a panic). Types are safe for concurrent use as the C API documents; Close must not race with
// other calls on the same value.
package kvcore

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/kvcore/kvcore/bindings/go/internal/capi"
)

// Status is a kvc_status value; the numbers never change once released.
type Status int

const (
	OK              Status = 0
	InvalidArgument Status = 1
	OutOfRange      Status = 2
	Capacity        Status = 3
	NoMemory        Status = 4
	BufferTooSmall  Status = 5
	NotFound        Status = 6
	InvalidState    Status = 7
	Unsupported     Status = 8
	IO              Status = 9
	Internal        Status = 10
	QueueFull       Status = 11 // a scheduler's queue is at its bound
)

// String returns the C name of the status, e.g. "KVC_ERR_CAPACITY".
func (s Status) String() string { return capi.StatusString(capi.Enum_SS_kvc_status(s)) }

// Error is a failed kvcore call.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string { return "kvcore: " + e.Status.String() + ": " + e.Message }

// IsStatus reports whether err is a kvcore *Error with the given status.
func IsStatus(err error, status Status) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// ErrClosed is returned by methods called after Close.
var ErrClosed = &Error{Status: InvalidState, Message: "the object has been closed"}

// Version is the version of the loaded library, "major.minor.patch".
func Version() string { return capi.VersionString() }

// VersionNumber is major*10000 + minor*100 + patch of the loaded library.
func VersionNumber() uint { return capi.VersionNumber() }

// LastErrorMessage is the C library's thread-local message; errors already carry it, so Go code
// rarely needs this (a goroutine may move between OS threads between two calls).
func LastErrorMessage() string { return capi.LastErrorMessage() }

// catch turns the panic that the SWIG layer raises for a failed C call ("kvcore:<status>:<message>")
// into an *Error; any other panic goes on.
func catch(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if text, ok := r.(string); ok && strings.HasPrefix(text, "kvcore:") {
		parts := strings.SplitN(text, ":", 3)
		if code, convErr := strconv.Atoi(parts[1]); convErr == nil && len(parts) == 3 {
			*err = &Error{Status: Status(code), Message: parts[2]}
			return
		}
	}
	panic(r)
}

// RecorderOptions configure a Recorder; zero values take the library defaults.
type RecorderOptions struct {
	Component      string // the `component` label in exports; default "cache"
	WindowAccesses uint32 // accesses in the count window; default 1000
	WindowSeconds  uint32 // seconds in the time window; default 60
	Layers         uint32 // per-layer counters for layers 0..Layers-1; default 0 (off)
}

// Recorder records cache accesses from any goroutine; Snapshot returns what it has seen so far.
type Recorder struct {
	native[capi.Recorder]
}

// NewRecorder creates a recorder; opts may be nil for the defaults.
func NewRecorder(opts *RecorderOptions) (r *Recorder, err error) {
	defer catch(&err)
	var raw capi.Recorder
	if opts == nil {
		raw = capi.NewRecorder(nil)
	} else {
		o := capi.NewRecorderOptions()
		defer capi.DeleteRecorderOptions(o)
		if opts.Component != "" {
			o.SetComponent(opts.Component)
		}
		if opts.WindowAccesses != 0 {
			o.SetWindowAccesses(uint(opts.WindowAccesses))
		}
		if opts.WindowSeconds != 0 {
			o.SetWindowSeconds(uint(opts.WindowSeconds))
		}
		if opts.Layers != 0 {
			o.SetLayers(uint(opts.Layers))
		}
		raw = capi.NewRecorder(o)
	}
	r = &Recorder{native[capi.Recorder]{raw: raw, free: capi.DeleteRecorder}}
	runtime.SetFinalizer(r, (*Recorder).Close)
	return r, nil
}

// Close frees the recorder. It is safe to call more than once.
func (r *Recorder) Close() error {
	r.close()
	runtime.SetFinalizer(r, nil)
	return nil
}

func (r *Recorder) do(fn func(capi.Recorder)) error { return r.call(r, fn) }

// statsFrom copies a native snapshot into a Stats value and frees the native one.
func statsFrom(raw capi.Stats) *Stats {
	defer capi.DeleteStats(raw)
	s := &Stats{
		Component: raw.Component(), Hits: raw.Hits(), Misses: raw.Misses(), Lookups: raw.Lookups(),
		HitRate: raw.HitRate(), Insertions: raw.Insertions(), Evictions: raw.Evictions(),
		MemoryPressureEvents: raw.MemoryPressureEvents(), BytesInUse: raw.BytesInUse(),
		PeakBytes: raw.PeakBytes(), TokensQueried: raw.TokensQueried(), TokensHit: raw.TokensHit(),
		TokensReused: raw.TokensReused(), TokenHitRate: raw.TokenHitRate(),
		NegativeHits: raw.NegativeHits(), Loads: raw.Loads(), LoadFailures: raw.LoadFailures(),
		Expirations: raw.Expirations(),
		WindowSize:  uint32(raw.WindowSize()), WindowLookups: raw.WindowLookups(),
		WindowHits: raw.WindowHits(), WindowHitRate: raw.WindowHitRate(),
		WindowSeconds: uint32(raw.WindowSeconds()), TimeWindowLookups: raw.TimeWindowLookups(),
		TimeWindowHits: raw.TimeWindowHits(), TimeWindowHitRate: raw.TimeWindowHitRate(),
		Prometheus: raw.ToPrometheus(), JSON: raw.ToJson(),
	}
	if count := raw.MetricCount(); count != 0 {
		s.Metrics = make(map[string]float64, count)
		for i := uint(0); i < count; i++ {
			name := raw.MetricName(i)
			s.Metrics[name] = raw.Metric(name)
		}
	}
	for layer := uint(0); layer < raw.Layers(); layer++ {
		s.Layers = append(s.Layers, LayerStats{
			Hits: raw.LayerHits(layer), Misses: raw.LayerMisses(layer), HitRate: raw.LayerHitRate(layer),
		})
	}
	return s
}

// RecordAccess records one lookup.
func (r *Recorder) RecordAccess(hit bool) error {
	return r.do(func(c capi.Recorder) { c.RecordAccess(hit) })
}

// RecordAccesses records len(hits) lookups in one native call, e.g. one per block of a prefix lookup.
func (r *Recorder) RecordAccesses(hits []bool) error {
	if len(hits) == 0 {
		return r.do(func(c capi.Recorder) {})
	}
	// A Go bool is one byte holding 0 or 1, which is exactly the C API's outcome array.
	outcomes := unsafe.Slice((*byte)(unsafe.Pointer(&hits[0])), len(hits))
	return r.do(func(c capi.Recorder) { c.RecordAccesses(outcomes, int64(len(outcomes))) })
}

// RecordAccessBits records count (1..64) lookups packed in a word: bit i of hits is lookup i's outcome
// (1 = hit), oldest at bit 0; higher bits are ignored. The cheapest way to record: set one bit per
// lookup (hits |= 1 << n) and call once per 64.
func (r *Recorder) RecordAccessBits(hits uint64, count uint32) error {
	return r.do(func(c capi.Recorder) { c.RecordAccessBits(hits, uint(count)) })
}

// RecordPrefixLookup records a prefix lookup whose first hits blocks hit and the next misses missed, in
// that order: one call per request, whatever its length.
func (r *Recorder) RecordPrefixLookup(hits, misses uint64) error {
	return r.do(func(c capi.Recorder) { c.RecordPrefixLookup(hits, misses) })
}

// RecordLayerAccess records one lookup in one layer (it counts in the totals too).
func (r *Recorder) RecordLayerAccess(layer uint32, hit bool) error {
	return r.do(func(c capi.Recorder) { c.RecordLayerAccess(uint(layer), hit) })
}

// RecordTokens records a token-level lookup: queried prompt tokens, hit of them found.
func (r *Recorder) RecordTokens(queried, hit uint64) error {
	return r.do(func(c capi.Recorder) { c.RecordTokens(queried, hit) })
}

// RecordReusedTokens records tokens whose KV was reused instead of recomputed.
func (r *Recorder) RecordReusedTokens(tokens uint64) error {
	return r.do(func(c capi.Recorder) { c.RecordReusedTokens(tokens) })
}

// RecordInsertions records entries inserted.
func (r *Recorder) RecordInsertions(count uint64) error {
	return r.do(func(c capi.Recorder) { c.RecordInsertions(count) })
}

// RecordEvictions records entries evicted.
func (r *Recorder) RecordEvictions(count uint64) error {
	return r.do(func(c capi.Recorder) { c.RecordEvictions(count) })
}

// RecordMemoryPressure records that the cache refused a request because memory was short even after
// evicting what it may (evictions themselves are counted by RecordEvictions).
func (r *Recorder) RecordMemoryPressure() error {
	return r.do(func(c capi.Recorder) { c.RecordMemoryPressure() })
}

// AddBytes changes bytes in use by delta; below zero is an InvalidArgument error.
func (r *Recorder) AddBytes(delta int64) error {
	return r.do(func(c capi.Recorder) { c.AddBytes(delta) })
}

// SetBytes sets bytes in use.
func (r *Recorder) SetBytes(bytes uint64) error {
	return r.do(func(c capi.Recorder) { c.SetBytes(bytes) })
}

// LayerStats are one layer's counters.
type LayerStats struct {
	Hits, Misses uint64
	HitRate      float64
}

// Stats is a snapshot of a Recorder, copied into Go values. Rates are 0 when their lookup count is 0.
type Stats struct {
	Component            string
	Hits, Misses         uint64
	Lookups              uint64
	HitRate              float64
	Insertions           uint64
	Evictions            uint64
	MemoryPressureEvents uint64
	BytesInUse           uint64
	PeakBytes            uint64
	TokensQueried        uint64
	TokensHit            uint64
	TokensReused         uint64
	TokenHitRate         float64
	NegativeHits         uint64 // cached failures served (TTL cache)
	Loads                uint64 // backend loads started (TTL cache)
	LoadFailures         uint64
	Expirations          uint64 // entries removed because their time ran out
	WindowSize           uint32 // the count window: the last WindowSize accesses
	WindowLookups        uint64
	WindowHits           uint64
	WindowHitRate        float64
	WindowSeconds        uint32 // the time window
	TimeWindowLookups    uint64
	TimeWindowHits       uint64
	TimeWindowHitRate    float64
	Layers               []LayerStats
	Metrics              map[string]float64 // the component's own (the scheduler's sched_batch_size_avg, ...); nil for the caches
	Prometheus           string             // Prometheus text exposition of this snapshot
	JSON                 string             // the same as one JSON object
}

// Snapshot copies the counters, rates and both exports of this instant.
func (r *Recorder) Snapshot() (*Stats, error) {
	var s *Stats
	err := r.do(func(c capi.Recorder) { s = statsFrom(c.Snapshot()) })
	return s, err
}

// Snapshotter is what PrometheusText scrapes: a *Recorder, *Pool, *Store, *TTLCache or *Scheduler (each has a
// Snapshot).
type Snapshotter interface {
	addTo(exposition capi.Exposition) error
}

func (r *Recorder) addTo(exposition capi.Exposition) error {
	return r.do(func(c capi.Recorder) {
		raw := c.Snapshot()
		defer capi.DeleteStats(raw)
		exposition.Add(raw)
	})
}

func (p *Pool) addTo(exposition capi.Exposition) error {
	return p.do(func(c capi.Pool) {
		raw := c.Snapshot()
		defer capi.DeleteStats(raw)
		exposition.Add(raw)
	})
}

// PrometheusText snapshots recorders and pools and writes them as one Prometheus exposition, each
// metric family's HELP and TYPE once: the text for a scrape endpoint that serves several components
// (joining their Stats.Prometheus texts would repeat those lines, which Prometheus rejects). Their
// components must differ.
func PrometheusText(sources ...Snapshotter) (text string, err error) {
	defer catch(&err)
	exposition := capi.NewExposition()
	defer capi.DeleteExposition(exposition)
	for _, source := range sources {
		if err := source.addTo(exposition); err != nil {
			return "", err
		}
	}
	return exposition.ToPrometheus(), nil
}

// String is a one-line summary.
func (s *Stats) String() string {
	return fmt.Sprintf("%s: %d lookups, hit rate %.4f (last %d: %.4f, last %ds: %.4f)", s.Component, s.Lookups,
		s.HitRate, s.WindowSize, s.WindowHitRate, s.WindowSeconds, s.TimeWindowHitRate)
}
