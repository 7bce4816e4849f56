// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
)

// engineEvents runs a prompt through a vLLM-like engine (a kvcore pool hashing with sha256_cbor and
// publishing KV events) and returns its msgpack EventBatch.
func engineEvents(t *testing.T, prompt []int32) []byte {
	t.Helper()
	p, err := NewPool(&PoolOptions{NumBlocks: 64, BlockSize: 16, Hash: Sha256Cbor, HashSeed: "42", Events: true})
	must(t, err)
	defer p.Close()
	seq, err := p.CreateSequence(prompt, nil)
	must(t, err)
	_, err = p.Allocate(seq, len(prompt))
	must(t, err)
	must(t, p.Free(seq))
	batch, err := p.DrainEvents(EventsArray)
	must(t, err)
	return batch
}

func newIndex(t *testing.T, opts *IndexOptions) *Index {
	t.Helper()
	ix, err := NewIndex(opts)
	must(t, err)
	t.Cleanup(func() { ix.Close() })
	return ix
}

// sameEntries is llm-d's assert.ElementsMatch for entries.
func sameEntries(t *testing.T, what string, got, want []PodEntry) {
	t.Helper()
	key := func(es []PodEntry) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.String()
		}
		sort.Strings(out)
		return out
	}
	if fmt.Sprint(key(got)) != fmt.Sprint(key(want)) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestIndexEventsScoreAndLookup(t *testing.T) {
	ix := newIndex(t, nil)
	prompt := tokenRange(70, 1000) // 4 full blocks of 16
	must(t, ix.ApplyBatch("pod-a", "llama", engineEvents(t, prompt)))
	llama := ix.Model("llama")
	scores, err := llama.Score(prompt, []string{"pod-a", "pod-b"}, nil)
	must(t, err)
	if scores["pod-a"] != 4 || scores["pod-b"] != 0 {
		t.Fatalf("scores: %v", scores)
	}
	other := append([]int32(nil), prompt...)
	other[40] = 5
	detailed, err := llama.Scores(other, []string{"pod-a"}, nil)
	must(t, err)
	if detailed[0].Blocks != 2 || detailed[0].Pod != "pod-a" {
		t.Fatalf("a prompt parting in block 2: %+v", detailed)
	}
	if s, _ := ix.Model("mistral").Score(prompt, []string{"pod-a"}, nil); s["pod-a"] != 0 {
		t.Fatalf("another model shares nothing: %v", s)
	}
	keys, err := ix.RequestKeys(prompt, nil)
	must(t, err)
	if len(keys) != 4 {
		t.Fatalf("request keys: %v", keys)
	}
	byKeys, err := llama.ScoreKeys(keys, []string{"pod-a"})
	must(t, err)
	if byKeys["pod-a"] != 4 {
		t.Fatalf("score by keys: %v", byKeys)
	}
	found, err := llama.Lookup(keys, nil)
	must(t, err)
	if len(found) != 4 {
		t.Fatalf("lookup: %v", found)
	}
	sameEntries(t, "holders of the last key", found[keys[3]], []PodEntry{{PodIdentifier: "pod-a", DeviceTier: "gpu"}})
	counters, err := ix.Counters()
	must(t, err)
	if counters["batches_applied"] != 1 || counters["keys"] != 4 || counters["engine_blocks"] != 4 {
		t.Fatalf("counters: %v", counters)
	}
	salted, err := ix.RequestKeys(prompt, &SequenceOptions{CacheSalt: "tenant"})
	must(t, err)
	if salted[0] == keys[0] {
		t.Fatalf("a cache salt changes the keys")
	}
	known, err := ix.ClearRank("pod-a", "llama", 0)
	must(t, err)
	if !known {
		t.Fatalf("pod-a is known")
	}
	if s, _ := llama.ScoreKeys(keys, []string{"pod-a"}); s["pod-a"] != 0 {
		t.Fatalf("cleared: %v", s)
	}
	must(t, ix.Clear("pod-a"))
	must(t, ix.Clear("pod-a")) // gone already: nothing to do
}

func TestIndexIngestThreads(t *testing.T) {
	ix := newIndex(t, &IndexOptions{IngestThreads: 2, TierWeights: map[string]float64{"gpu": 2}})
	prompt := tokenRange(40, 3)
	events := engineEvents(t, prompt)
	pods := []string{"a", "b", "c"}
	for _, pod := range pods {
		must(t, ix.SubmitBatch(pod, "m", events))
	}
	must(t, ix.Flush())
	scores, err := ix.Model("m").Score(prompt, pods, nil)
	must(t, err)
	for _, pod := range pods {
		if scores[pod] != 4 {
			t.Fatalf("two gpu blocks weigh 2 each: %v", scores)
		}
	}
}

// ---- llm-d's own index tests (kvblock/index_test.go, in_memory_test.go), their logic on kvcore ----------

func TestLlmdBasicAddAndLookup(t *testing.T) {
	index := newIndex(t, nil).Model("m")
	engineKey, requestKey := BlockHash(55269488), BlockHash(10633516)
	entries := []PodEntry{{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod2", DeviceTier: "gpu"}}
	must(t, index.Add([]BlockHash{engineKey}, []BlockHash{requestKey}, entries))
	podsPerKey, err := index.Lookup([]BlockHash{requestKey}, map[string]struct{}{})
	must(t, err)
	if len(podsPerKey) != 1 {
		t.Fatalf("keys: %v", podsPerKey)
	}
	sameEntries(t, "holders", podsPerKey[requestKey], entries)
}

// A pod may hold a block in several tiers: each is an entry; the same entry added twice is one.
func TestLlmdDuplicatePodHandling(t *testing.T) {
	index := newIndex(t, nil).Model("m")
	engineKey, requestKey := BlockHash(91642125), BlockHash(61519471)
	must(t, index.Add([]BlockHash{engineKey}, []BlockHash{requestKey}, []PodEntry{
		{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod2", DeviceTier: "gpu"}}))
	must(t, index.Add([]BlockHash{engineKey}, []BlockHash{requestKey}, []PodEntry{
		{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod2", DeviceTier: "cpu"},
		{PodIdentifier: "pod3", DeviceTier: "gpu"}}))
	podsPerKey, err := index.Lookup([]BlockHash{requestKey}, nil)
	must(t, err)
	sameEntries(t, "holders", podsPerKey[requestKey], []PodEntry{
		{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod2", DeviceTier: "gpu"},
		{PodIdentifier: "pod2", DeviceTier: "cpu"}, {PodIdentifier: "pod3", DeviceTier: "gpu"}})
}

func TestLlmdFilteredLookup(t *testing.T) {
	index := newIndex(t, nil).Model("m")
	engineKey, requestKey := BlockHash(93788608), BlockHash(55204205)
	must(t, index.Add([]BlockHash{engineKey}, []BlockHash{requestKey}, []PodEntry{
		{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod2", DeviceTier: "gpu"},
		{PodIdentifier: "pod3", DeviceTier: "gpu"}}))
	podsPerKey, err := index.Lookup([]BlockHash{requestKey}, map[string]struct{}{"pod1": {}})
	must(t, err)
	sameEntries(t, "pod1 only", podsPerKey[requestKey], []PodEntry{{PodIdentifier: "pod1", DeviceTier: "gpu"}})
	podsPerKey, err = index.Lookup([]BlockHash{requestKey}, map[string]struct{}{"pod1": {}, "pod3": {}})
	must(t, err)
	sameEntries(t, "pod1 and pod3", podsPerKey[requestKey], []PodEntry{
		{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod3", DeviceTier: "gpu"}})
	podsPerKey, err = index.Lookup([]BlockHash{requestKey}, map[string]struct{}{"pod999": {}})
	must(t, err)
	if len(podsPerKey) != 0 {
		t.Fatalf("an unknown pod holds nothing: %v", podsPerKey)
	}
}

// Eviction by engine key matches pod and tier: pod3 in the cpu tier holds nothing, so pod3 stays.
func TestLlmdEvictBasic(t *testing.T) {
	index := newIndex(t, nil).Model("m")
	engineKey, requestKey := BlockHash(17434655), BlockHash(59244875)
	must(t, index.Add([]BlockHash{engineKey}, []BlockHash{requestKey}, []PodEntry{
		{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod2", DeviceTier: "gpu"},
		{PodIdentifier: "pod3", DeviceTier: "gpu"}}))
	must(t, index.Evict(engineKey, EngineKey, []PodEntry{
		{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod3", DeviceTier: "cpu"}}))
	podsPerKey, err := index.Lookup([]BlockHash{requestKey}, nil)
	must(t, err)
	sameEntries(t, "after evict", podsPerKey[requestKey], []PodEntry{
		{PodIdentifier: "pod2", DeviceTier: "gpu"}, {PodIdentifier: "pod3", DeviceTier: "gpu"}})
}

// llm-d's Clear() empties the index; kvcore's Clear(pod) removes one pod, so clearing each pod does it.
func TestLlmdClear(t *testing.T) {
	ix := newIndex(t, nil)
	index := ix.Model("m")
	engineKey, requestKey := BlockHash(17434655), BlockHash(59244875)
	must(t, index.Add([]BlockHash{engineKey}, []BlockHash{requestKey}, []PodEntry{
		{PodIdentifier: "pod1", DeviceTier: "gpu"}, {PodIdentifier: "pod2", DeviceTier: "gpu"},
		{PodIdentifier: "pod3", DeviceTier: "cpu"}}))
	for _, pod := range []string{"pod1", "pod2", "pod3"} {
		must(t, ix.Clear(pod))
	}
	podsPerKey, err := index.Lookup([]BlockHash{requestKey}, nil)
	must(t, err)
	if len(podsPerKey) != 0 {
		t.Fatalf("cleared: %v", podsPerKey)
	}
	counters, err := ix.Counters()
	must(t, err)
	if counters["keys"] != 0 || counters["engine_blocks"] != 0 {
		t.Fatalf("nothing left: %v", counters)
	}
}

// Speculative entries come with nil engine keys and leave by request key; kvcore reports their tier as
// gpu, where llm-d leaves it empty.
func TestLlmdSpeculativeAddWithNilEngineKeysThenEvict(t *testing.T) {
	index := newIndex(t, nil).Model("m")
	requestKey := BlockHash(44444444)
	pod := PodEntry{PodIdentifier: "10.0.0.2:8080", Speculative: true}
	must(t, index.Add(nil, []BlockHash{requestKey}, []PodEntry{pod}))
	podsPerKey, err := index.Lookup([]BlockHash{requestKey}, nil)
	must(t, err)
	sameEntries(t, "speculative", podsPerKey[requestKey], []PodEntry{
		{PodIdentifier: "10.0.0.2:8080", DeviceTier: "gpu", Speculative: true}})
	must(t, index.Evict(requestKey, RequestKey, []PodEntry{pod}))
	podsPerKey, err = index.Lookup([]BlockHash{requestKey}, nil)
	must(t, err)
	if len(podsPerKey[requestKey]) != 0 {
		t.Fatalf("evicted: %v", podsPerKey)
	}
	// kvcore's rule: a confirmed Add replaces the pod's routing decision instead of standing beside it.
	must(t, index.Add(nil, []BlockHash{requestKey}, []PodEntry{pod}))
	must(t, index.Add([]BlockHash{33333333}, []BlockHash{requestKey}, []PodEntry{{PodIdentifier: "10.0.0.2:8080"}}))
	podsPerKey, err = index.Lookup([]BlockHash{requestKey}, nil)
	must(t, err)
	sameEntries(t, "confirmed", podsPerKey[requestKey], []PodEntry{{PodIdentifier: "10.0.0.2:8080", DeviceTier: "gpu"}})
}

func TestLlmdConcurrentOperations(t *testing.T) {
	index := newIndex(t, nil).Model("m")
	engineKey, requestKey := BlockHash(38894120), BlockHash(72568158)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := 0; g < 100; g++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			for op := 0; op < 10; op++ {
				var err error
				switch op % 3 {
				case 0:
					err = index.Add([]BlockHash{engineKey}, []BlockHash{requestKey},
						[]PodEntry{{PodIdentifier: fmt.Sprintf("pod-%d-%d", id, op), DeviceTier: "gpu"}})
				case 1:
					_, err = index.Lookup([]BlockHash{requestKey}, nil)
				case 2:
					err = index.Evict(engineKey, EngineKey,
						[]PodEntry{{PodIdentifier: fmt.Sprintf("pod-%d-%d", id, op-2), DeviceTier: "gpu"}})
				}
				if err != nil {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Each goroutine added four pods (ops 0, 3, 6, 9) and evicted the first three: 100 remain.
	podsPerKey, err := index.Lookup([]BlockHash{requestKey}, nil)
	must(t, err)
	if len(podsPerKey[requestKey]) != 100 {
		t.Fatalf("holders left: %d", len(podsPerKey[requestKey]))
	}
}

// ---- kvcore's key mappings and errors ---------------------------------------------------------------------

func TestIndexManyToOneAndOneToMany(t *testing.T) {
	index := newIndex(t, nil).Model("m")
	request := []BlockHash{10, 11}
	pod := []PodEntry{{PodIdentifier: "p", DeviceTier: "cpu", DataParallelRank: 2}}
	// Engine blocks half the size: engine keys 1, 2 make request key 10; 3, 4 make 11.
	must(t, index.Add([]BlockHash{1, 2, 3, 4}, request, pod))
	must(t, index.Evict(3, EngineKey, pod))
	found, err := index.Lookup(request, nil)
	must(t, err)
	if len(found) != 1 || found[10][0] != pod[0] {
		t.Fatalf("many:1: %v", found)
	}
	// One engine block of both request keys.
	must(t, index.Add([]BlockHash{7}, request, pod))
	must(t, index.Evict(7, EngineKey, pod))
	if found, _ = index.Lookup(request, nil); len(found) != 0 {
		t.Fatalf("1:many: %v", found)
	}
	scores, err := index.ScoresByKeys(request, []string{"p"})
	must(t, err)
	if scores[0].Blocks != 0 {
		t.Fatalf("scores: %+v", scores)
	}
}

func TestIndexErrors(t *testing.T) {
	ix := newIndex(t, nil)
	m := ix.Model("m")
	events := engineEvents(t, tokenRange(40, 3))
	if err := ix.ApplyBatch("p", "m", events[:len(events)-3]); !IsStatus(err, InvalidArgument) {
		t.Fatalf("malformed batch: %v", err)
	}
	if counters, _ := ix.Counters(); counters["batches_failed"] != 1 {
		t.Fatalf("counted: %v", counters)
	}
	if err := ix.SubmitBatch("p", "m", events); !IsStatus(err, InvalidState) {
		t.Fatalf("no ingest threads: %v", err)
	}
	one := []PodEntry{{PodIdentifier: "p"}}
	if err := m.Add([]BlockHash{1, 2, 3}, []BlockHash{4, 5}, one); !IsStatus(err, InvalidArgument) {
		t.Fatalf("3 engine keys onto 2 request keys: %v", err)
	}
	if err := m.Add(nil, []BlockHash{4}, nil); !IsStatus(err, InvalidArgument) {
		t.Fatalf("no entries: %v", err)
	}
	if err := m.Add(nil, nil, one); !IsStatus(err, InvalidArgument) {
		t.Fatalf("no keys: %v", err)
	}
	if err := m.Add(nil, []BlockHash{4}, []PodEntry{{PodIdentifier: "p", DeviceTier: "tape"}}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("unknown tier: %v", err)
	}
	if err := m.Add(nil, []BlockHash{4}, []PodEntry{{PodIdentifier: "p", DataParallelRank: 4096}}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("rank: %v", err)
	}
	if err := m.Evict(4, KeyType(5), one); !IsStatus(err, InvalidArgument) {
		t.Fatalf("key type: %v", err)
	}
	if err := m.Evict(4, RequestKey, nil); !IsStatus(err, InvalidArgument) {
		t.Fatalf("no entries to evict: %v", err)
	}
	if _, err := m.Score([]int32{1}, []string{"bad\x00name"}, nil); !IsStatus(err, InvalidArgument) {
		t.Fatalf("NUL in a pod name: %v", err)
	}
	if _, err := m.Lookup(nil, nil); !IsStatus(err, InvalidArgument) {
		t.Fatalf("no keys to look up: %v", err)
	}
	if _, err := NewIndex(&IndexOptions{Shards: 3}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("shards: %v", err)
	}
	if _, err := NewIndex(&IndexOptions{TierWeights: map[string]float64{"cpu": -1}}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("weight: %v", err)
	}
	closed, err := NewIndex(nil)
	must(t, err)
	must(t, closed.Close())
	if err := closed.Model("m").Add(nil, []BlockHash{1}, one); err != ErrClosed {
		t.Fatalf("closed: %v", err)
	}
}

// The score cache answers a repeated prompt, and a write touching it makes the next score a miss. Redis
// mode: a server that is not there fails with IO; the two together are refused.
func TestIndexScoreCacheAndRedisOptions(t *testing.T) {
	ix := newIndex(t, &IndexOptions{ScoreCache: &ScoreCacheOptions{MaxEntries: 100}})
	prompt := tokenRange(70, 500)
	must(t, ix.ApplyBatch("pod-a", "m", engineEvents(t, prompt)))
	m := ix.Model("m")
	for i := 0; i < 3; i++ {
		if s, err := m.Score(prompt, []string{"pod-a", "pod-b"}, nil); err != nil || s["pod-a"] != 4 {
			t.Fatalf("score %d: %v %v", i, s, err)
		}
	}
	if c, _ := ix.Counters(); c["score_cache_hits"] != 2 {
		t.Fatalf("two of three answered by the cache: %v", c)
	}
	if known, err := ix.ClearRank("pod-a", "m", 0); err != nil || !known {
		t.Fatalf("clear: %v %v", known, err)
	}
	if s, _ := m.Score(prompt, []string{"pod-a", "pod-b"}, nil); s["pod-a"] != 0 {
		t.Fatalf("stale: %v", s)
	}
	if c, _ := ix.Counters(); c["score_cache_invalidations"] != 1 {
		t.Fatalf("the clear invalidated it: %v", c)
	}

	if os.Getenv("KVCORE_TEST_REDIS") == "OFF" { // a build without Redis
		if _, err := NewIndex(&IndexOptions{Redis: "redis://127.0.0.1:1"}); !IsStatus(err, Unsupported) {
			t.Fatalf("Redis in a build without it: %v", err)
		}
		return
	}
	if _, err := NewIndex(&IndexOptions{Redis: "redis://127.0.0.1:1"}); !IsStatus(err, IO) { // nothing on port 1
		t.Fatalf("unreachable server: %v", err)
	}
	if _, err := NewIndex(&IndexOptions{Redis: "ftp://x"}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("bad url: %v", err)
	}
	both := &IndexOptions{Redis: "redis://127.0.0.1:1", ScoreCache: &ScoreCacheOptions{MaxEntries: 100}}
	if _, err := NewIndex(both); !IsStatus(err, InvalidArgument) {
		t.Fatalf("score cache with Redis: %v", err)
	}
}
