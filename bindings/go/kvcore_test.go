// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func mustRecorder(t *testing.T, opts *RecorderOptions) *Recorder {
	t.Helper()
	r, err := NewRecorder(opts)
	if err != nil {
		t.Fatalf("NewRecorder: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestVersion(t *testing.T) {
	if !strings.HasPrefix(Version(), "0.") || VersionNumber() == 0 {
		t.Fatalf("version %q / %d", Version(), VersionNumber())
	}
	if Capacity.String() != "KVC_ERR_CAPACITY" {
		t.Fatalf("status string %q", Capacity.String())
	}
	_ = LastErrorMessage()
}

func TestRecordsAndSnapshots(t *testing.T) {
	r := mustRecorder(t, nil)
	for i := 0; i < 1000; i++ {
		must(t, r.RecordAccess(false))
	}
	hits := make([]bool, 500)
	for i := range hits {
		hits[i] = true
	}
	must(t, r.RecordAccesses(hits))
	must(t, r.RecordAccesses(nil))
	must(t, r.RecordInsertions(3))
	must(t, r.RecordEvictions(2))
	must(t, r.RecordMemoryPressure())
	must(t, r.RecordTokens(64, 48))
	must(t, r.RecordReusedTokens(47))
	must(t, r.AddBytes(4096))
	must(t, r.AddBytes(-1024))
	s, err := r.Snapshot()
	must(t, err)
	want := Stats{Component: "cache", Hits: 500, Misses: 1000, Lookups: 1500, Insertions: 3, Evictions: 2,
		MemoryPressureEvents: 1, BytesInUse: 3072, PeakBytes: 4096, TokensQueried: 64, TokensHit: 48,
		TokensReused: 47, TokenHitRate: 0.75, WindowSize: 1000, WindowLookups: 1000, WindowHits: 500,
		WindowHitRate: 0.5, WindowSeconds: 60, TimeWindowLookups: 1500, TimeWindowHits: 500}
	got := *s
	got.HitRate, got.TimeWindowHitRate, got.Prometheus, got.JSON, got.Layers = 0, 0, "", "", nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot\n got %+v\nwant %+v", got, want)
	}
	if math.Abs(s.HitRate-1.0/3) > 1e-12 || math.Abs(s.TimeWindowHitRate-1.0/3) > 1e-12 {
		t.Fatalf("rates %v %v", s.HitRate, s.TimeWindowHitRate)
	}
	if !strings.Contains(s.Prometheus, "kvcore_hits_total{component=\"cache\"} 500\n") {
		t.Fatalf("prometheus text:\n%s", s.Prometheus)
	}
	var parsed map[string]any
	must(t, json.Unmarshal([]byte(s.JSON), &parsed))
	if parsed["misses"].(float64) != 1000 {
		t.Fatalf("json %s", s.JSON)
	}
	must(t, r.SetBytes(10))
	s, err = r.Snapshot()
	must(t, err)
	if s.BytesInUse != 10 || s.PeakBytes != 4096 {
		t.Fatalf("bytes %d peak %d", s.BytesInUse, s.PeakBytes)
	}
}

func TestOptionsAndLayers(t *testing.T) {
	r := mustRecorder(t, &RecorderOptions{Component: "prefix_cache", WindowAccesses: 4, WindowSeconds: 30, Layers: 2})
	must(t, r.RecordLayerAccess(1, true))
	must(t, r.RecordLayerAccess(1, false))
	must(t, r.RecordLayerAccess(0, true))
	s, err := r.Snapshot()
	must(t, err)
	if s.Component != "prefix_cache" || s.WindowSize != 4 || s.WindowSeconds != 30 || len(s.Layers) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	if (s.Layers[1] != LayerStats{Hits: 1, Misses: 1, HitRate: 0.5}) || s.Layers[0].HitRate != 1 {
		t.Fatalf("layers %+v", s.Layers)
	}
	err = r.RecordLayerAccess(7, true)
	if !IsStatus(err, OutOfRange) || !strings.Contains(err.Error(), "layer 7 is out of range") {
		t.Fatalf("want OutOfRange, got %v", err)
	}
}

func TestBadInput(t *testing.T) {
	for _, opts := range []RecorderOptions{{Component: "not valid"}, {Layers: 100000}, {WindowAccesses: 1 << 30}} {
		if _, err := NewRecorder(&opts); !IsStatus(err, InvalidArgument) {
			t.Errorf("%+v: want InvalidArgument, got %v", opts, err)
		}
	}
	r := mustRecorder(t, nil)
	if err := r.RecordTokens(1, 2); !IsStatus(err, InvalidArgument) {
		t.Errorf("tokens: %v", err)
	}
	if err := r.AddBytes(-1); !IsStatus(err, InvalidArgument) {
		t.Errorf("bytes: %v", err)
	}
}

func TestClosedRecorder(t *testing.T) {
	r, err := NewRecorder(nil)
	must(t, err)
	must(t, r.Close())
	must(t, r.Close())
	if err := r.RecordAccess(true); err != ErrClosed {
		t.Fatalf("want ErrClosed, got %v", err)
	}
	if err := r.RecordAccesses([]bool{true}); err != ErrClosed {
		t.Fatalf("want ErrClosed, got %v", err)
	}
	if _, err := r.Snapshot(); !IsStatus(err, InvalidState) {
		t.Fatalf("want InvalidState, got %v", err)
	}
}

func TestGoroutinesRecordConcurrently(t *testing.T) {
	r := mustRecorder(t, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				if err := r.RecordAccess(i%2 == 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s, err := r.Snapshot()
	must(t, err)
	if s.Lookups != 40000 || s.Hits != 20000 {
		t.Fatalf("lookups %d hits %d", s.Lookups, s.Hits)
	}
}

func TestRecordAccessBits(t *testing.T) {
	r := mustRecorder(t, &RecorderOptions{WindowAccesses: 100})
	defer r.Close()
	must(t, r.RecordAccessBits(0xAAAAAAAAAAAAAAAA, 64)) // 32 hits, 32 misses
	must(t, r.RecordAccessBits(0xFFFFFFFFFFFFFFF5, 3))  // 0b101: 2 hits, 1 miss; higher bits ignored
	s, err := r.Snapshot()
	must(t, err)
	if s.Hits != 34 || s.Misses != 33 || s.WindowHits != 34 || s.WindowLookups != 67 {
		t.Fatalf("after 67 accesses: %+v", s)
	}
	for _, count := range []uint32{0, 65} {
		if err := r.RecordAccessBits(1, count); !IsStatus(err, InvalidArgument) {
			t.Fatalf("count %d: got %v, want InvalidArgument", count, err)
		}
	}
}

func TestRecordPrefixLookup(t *testing.T) {
	r := mustRecorder(t, &RecorderOptions{WindowAccesses: 100})
	defer r.Close()
	must(t, r.RecordPrefixLookup(30, 40))
	must(t, r.RecordPrefixLookup(50, 10)) // the window's last 100: these 60, then the 40 misses before
	s, err := r.Snapshot()
	must(t, err)
	if s.Hits != 80 || s.Misses != 50 || s.WindowHits != 50 || s.WindowLookups != 100 {
		t.Fatalf("after two prefix lookups: %+v", s)
	}
	if err := r.RecordPrefixLookup(math.MaxUint64, 1); !IsStatus(err, InvalidArgument) {
		t.Fatalf("overflow: got %v, want InvalidArgument", err)
	}
}

func TestPrometheusTextOfSeveralComponents(t *testing.T) {
	pool := mustRecorder(t, &RecorderOptions{Component: "pool"})
	defer pool.Close()
	store := mustRecorder(t, &RecorderOptions{Component: "store"})
	defer store.Close()
	must(t, pool.RecordAccess(true))
	must(t, store.RecordAccess(false))
	text, err := PrometheusText(pool, store)
	must(t, err)
	if n := strings.Count(text, "# HELP kvcore_hits_total "); n != 1 {
		t.Fatalf("%d HELP lines for kvcore_hits_total:\n%s", n, text)
	}
	if !strings.Contains(text, "kvcore_hits_total{component=\"pool\"} 1\nkvcore_hits_total{component=\"store\"} 0\n") {
		t.Fatalf("samples not grouped by family:\n%s", text)
	}
	if _, err := PrometheusText(pool, pool); !IsStatus(err, InvalidArgument) {
		t.Fatalf("the same component twice: got %v, want InvalidArgument", err)
	}
	must(t, store.Close())
	if _, err := PrometheusText(pool, store); err != ErrClosed {
		t.Fatalf("a closed recorder: got %v, want ErrClosed", err)
	}
}
