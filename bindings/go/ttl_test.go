// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestTTLCacheLikeWVA(t *testing.T) {
	c, err := NewTTLCache(&TTLOptions{MaxEntries: 100, Component: "wva"})
	must(t, err)
	defer c.Close()
	must(t, c.Set("llama:7b", "prod", []byte("one"), true))
	must(t, c.Set("llama", "7b:prod", []byte("two"), true))
	if c.Size() != 2 {
		t.Fatalf("keys that WVA's joined string collides: size %d", c.Size())
	}
	e, err := c.Get("llama:7b", "prod")
	must(t, err)
	if e == nil || string(e.Value) != "one" || !e.Valid || e.ExpiresIn <= 0 {
		t.Fatalf("get: %+v", e)
	}
	if e, err := c.Get("nobody", "x"); err != nil || e != nil {
		t.Fatalf("miss: %+v %v", e, err)
	}
	must(t, c.Set("m", "failed", nil, false))
	if e, _ := c.Get("m", "failed"); e == nil || e.Valid {
		t.Fatalf("cached failure: %+v", e)
	}
	all, err := c.GetAll()
	must(t, err)
	if len(all) != 3 || all[0].Namespace != "llama" {
		t.Fatalf("get all: %+v", all)
	}
	if removed, err := c.Invalidate("m", "failed"); err != nil || !removed {
		t.Fatalf("invalidate: %v %v", removed, err)
	}
	if n, err := c.Cleanup(); err != nil || n != 0 {
		t.Fatalf("cleanup: %d %v", n, err)
	}
	must(t, c.Clear())
	for i := 0; i < 1000; i++ {
		must(t, c.Set("n", fmt.Sprint(i), []byte("v"), true))
	}
	if c.Size() != 100 {
		t.Fatalf("bounded: %d", c.Size())
	}
	s, err := c.Snapshot()
	must(t, err)
	if s.Evictions != 900 || s.NegativeHits != 1 || s.Component != "wva" {
		t.Fatalf("stats: %+v", s)
	}
	text, err := PrometheusText(c)
	must(t, err)
	if !strings.Contains(text, `kvcore_negative_hits_total{component="wva"} 1`) {
		t.Fatalf("exposition:\n%s", text)
	}
}

func TestTTLCacheSingleFlightAndNegativeCaching(t *testing.T) {
	c, err := NewTTLCache(nil)
	must(t, err)
	defer c.Close()
	var loads atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	load := func() ([]byte, error) {
		if loads.Add(1) == 1 {
			close(started)
		}
		<-release
		return []byte("metrics"), nil
	}
	var wg sync.WaitGroup
	results := make([]string, 100)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e, err := c.GetOrLoad("ns", "model", load)
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = string(e.Value)
		}(i)
		if i == 0 {
			<-started
		}
	}
	close(release)
	wg.Wait()
	if loads.Load() != 1 {
		t.Fatalf("%d loads for one key", loads.Load())
	}
	for _, r := range results {
		if r != "metrics" {
			t.Fatalf("result %q", r)
		}
	}

	backendDown := errors.New("prometheus unreachable")
	var failing atomic.Int32
	fail := func() ([]byte, error) { failing.Add(1); return nil, backendDown }
	if e, err := c.GetOrLoad("ns", "down", fail); !errors.Is(err, backendDown) || e.Valid {
		t.Fatalf("failed load: %+v %v", e, err)
	}
	for i := 0; i < 50; i++ {
		e, err := c.GetOrLoad("ns", "down", fail)
		if err != nil || e.Valid || string(e.Value) != backendDown.Error() {
			t.Fatalf("cached failure: %+v %v", e, err)
		}
	}
	if failing.Load() != 1 {
		t.Fatalf("a failing backend was asked %d times", failing.Load())
	}
	s, err := c.Snapshot()
	must(t, err)
	if s.Loads != 2 || s.LoadFailures != 1 || s.NegativeHits != 50 {
		t.Fatalf("stats: loads %d failures %d negative hits %d", s.Loads, s.LoadFailures, s.NegativeHits)
	}
}

func TestTTLCacheErrors(t *testing.T) {
	if _, err := NewTTLCache(&TTLOptions{Policy: EvictionPolicy(99)}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("unknown policy: %v", err)
	}
	c, err := NewTTLCache(nil)
	must(t, err)
	c.Close()
	if err := c.Set("a", "b", nil, true); err != ErrClosed {
		t.Fatalf("closed: %v", err)
	}
	if c.Size() != 0 {
		t.Fatal("size of a closed cache")
	}
}
