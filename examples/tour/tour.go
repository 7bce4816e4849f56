// SPDX-License-Identifier: Apache-2.0

// kvcore from Go: a recorder, a pool that reuses a cached prefix, a router's index scoring pods by the pool's
// KV events, a chat session kept between turns, a TTL cache that loads once, one Prometheus scrape, a
// continuous-batching scheduler.
package main

import (
	"fmt"
	"log"

	kvcore "github.com/kvcore/kvcore/bindings/go"
)

// check stops at the first failure: errors are *kvcore.Error{Status, Message}.
func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func main() {
	recorder, err := kvcore.NewRecorder(&kvcore.RecorderOptions{Component: "prefix_cache"})
	check(err)
	defer recorder.Close()
	check(recorder.RecordAccess(true))
	check(recorder.RecordAccessBits(0b101, 3)) // 3 lookups in one call: hit, miss, hit

	pool, err := kvcore.NewPool(&kvcore.PoolOptions{Events: true}) // 1024 blocks of 16 tokens, KV events on
	check(err)
	defer pool.Close()
	prompt := make([]int32, 40)
	for i := range prompt {
		prompt[i] = int32(1000 + i)
	}
	first, err := pool.CreateSequence(prompt, nil)
	check(err)
	_, err = pool.Allocate(first, len(prompt))
	check(err)
	second, err := pool.CreateSequence(prompt, &kvcore.SequenceOptions{Priority: kvcore.Priority(50)})
	check(err)
	cached, err := pool.Allocate(second, len(prompt)) // shares the first's 2 full blocks
	check(err)                                        // kvcore.IsStatus(err, kvcore.Capacity) when full
	check(pool.Append(second, 42))                    // decode: a slot for the new token
	table, err := pool.BlockTable(second)
	check(err)
	fmt.Printf("reused %d of 40 prompt tokens; block table %v\n", cached, table)

	// A router's index fed by the engine's events (in process here; over ZeroMQ: an index subscriber).
	batch, err := pool.DrainEvents(kvcore.EventsMap)
	check(err)
	index, err := kvcore.NewIndex(nil) // default options: keys from the events' tokens
	check(err)
	defer index.Close()
	check(index.ApplyBatch("pod-a", "llama", batch))
	scores, err := index.Model("llama").Score(prompt, []string{"pod-a", "pod-b"}, nil) // llm-d's view of one model
	check(err)
	fmt.Printf("router: pod-a scores %.0f, pod-b %.0f\n", scores["pod-a"], scores["pod-b"])

	// The engine's kernels over a K/V cache laid out as the pool's blocks (1 layer, 1 KV head of 4 dims):
	// each token's K/V into its slot, then decode attention over the block table.
	layout, err := kvcore.NewKvLayout(kvcore.KvShape{Layers: 1, NumBlocks: 1024, BlockSize: 16, KVHeads: 1, HeadDim: 4, DType: kvcore.F32})
	check(err)
	defer layout.Close()
	kCache, vCache := make([]float32, layout.CacheBytes()/4), make([]float32, layout.CacheBytes()/4)
	keys, values := make([]float32, 41*4), make([]float32, 41*4) // equal keys: every token weighs the same
	for i := range values {
		values[i] = float32(i / 4) // token t's value is t
	}
	slots, err := pool.SlotMapping(second, 0, 41)
	check(err)
	check(layout.Write(0, kCache, vCache, keys, values, slots))
	attended := make([]float32, 4)
	check(layout.AttentionDecode(0, kCache, vCache, []float32{1, 1, 1, 1}, 1, table, len(table), []int32{41}, 0.5, attended))
	fmt.Printf("attention over 41 cached tokens: %.2f\n", attended[0])

	store, err := kvcore.NewStore(nil) // SmallMind's defaults
	check(err)
	defer store.Close()
	shape := kvcore.ModelShape{Layers: 2, KVHeads: 2, HeadDim: 4, DType: kvcore.F32}
	rows := make([]float32, 40*2*4) // the model's K/V for the new tokens
	reused := 0
	for _, length := range []int{30, 40} { // turn 2 carries the whole conversation
		chat, err := store.GetOrCreate("chat-1", shape, 0) // a lease: never evicted while held
		check(err)
		reused, err = chat.BeginTurn(prompt[:length])
		check(err)
		for layer := uint32(0); layer < 2; layer++ {
			check(chat.WriteKV(layer, reused, length-reused, rows, rows))
		}
		check(chat.Commit())
		check(chat.Close())
	}
	fmt.Printf("turn 2 reused %d of 40 tokens\n", reused)

	cache, err := kvcore.NewTTLCache(&kvcore.TTLOptions{Component: "metrics"})
	check(err)
	defer cache.Close()
	loads := 0
	var entry *kvcore.TTLEntry
	for i := 0; i < 2; i++ { // concurrent misses of a key would also load once
		entry, err = cache.GetOrLoad("prod", "llama-7b", func() ([]byte, error) { loads++; return []byte("load=0.7"), nil })
		check(err)
	}
	fmt.Printf("%s after %d load for 2 calls\n", entry.Value, loads)

	text, err := kvcore.PrometheusText(recorder, pool, store, cache) // each # HELP / # TYPE once
	check(err)
	fmt.Print(text)

	// Continuous batching over the pool: two requests served to completion, a fake model sampling each token.
	sched, err := kvcore.NewScheduler(pool, nil) // default options: FIFO, up to 256 sequences a step
	check(err)
	defer sched.Close()
	plan, err := kvcore.NewSchedPlan()
	check(err)
	defer plan.Close()
	check(sched.Submit(kvcore.Request{ID: 1, Prompt: prompt, MaxNewTokens: 6, Session: "chat-1"}))
	check(sched.Submit(kvcore.Request{ID: 2, Prompt: prompt[:20], MaxNewTokens: 6}))
	generated, steps := 0, 0
	for ; ; steps++ {
		if g, err := sched.Gauges(); err != nil || g.Waiting+g.Running == 0 {
			check(err)
			break
		}
		batch, err := sched.Step(plan) // the model runs over each entry's Tokens here
		check(err)
		sampled := make([]int32, len(batch))
		for i, e := range batch {
			if e.Samples { // a fake sampler
				sampled[i] = int32(e.Positions[len(e.Positions)-1] * 7 % 50)
			}
		}
		check(sched.Commit(plan, sampled, nil))
		done, err := plan.Finished()
		check(err)
		for _, id := range done {
			out, err := sched.TakeOutput(id)
			check(err)
			generated += len(out.Tokens)
		}
	}
	fmt.Printf("scheduler: 2 requests, %d tokens, %d steps\n", generated, steps)
}
