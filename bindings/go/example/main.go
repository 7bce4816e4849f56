// SPDX-License-Identifier: Apache-2.0

// Records cache accesses through kvcore from Go and prints the Prometheus text.
package main

import (
	"fmt"
	"log"

	kvcore "github.com/kvcore/kvcore/bindings/go"
)

func main() {
	recorder, err := kvcore.NewRecorder(&kvcore.RecorderOptions{Component: "go_example"})
	if err != nil {
		log.Fatal(err)
	}
	defer recorder.Close()
	for _, hit := range []bool{true, true, false} {
		if err := recorder.RecordAccess(hit); err != nil {
			log.Fatal(err)
		}
	}
	stats, err := recorder.Snapshot()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stats)
	fmt.Print(stats.Prometheus)
}
