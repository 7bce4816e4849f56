// SPDX-License-Identifier: Apache-2.0

// kvcore from Go: a recorder, a pool that reuses a cached prefix, one Prometheus scrape of both.
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

	pool, err := kvcore.NewPool(nil) // default options: 1024 blocks of 16 tokens
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

	text, err := kvcore.PrometheusText(recorder, pool) // each # HELP / # TYPE once for both
	check(err)
	fmt.Print(text)
}
