// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"os"
	"strings"
	"testing"
	"time"
)

// withoutZmq: in a build without ZeroMQ (KVCORE_TEST_ZMQ=OFF, set by CMake) the publisher must say
// Unsupported, and the test ends there.
func withoutZmq(t *testing.T) bool {
	t.Helper()
	if os.Getenv("KVCORE_TEST_ZMQ") != "OFF" {
		return false
	}
	if _, err := NewEventPublisher(&EventPublisherOptions{Endpoint: "tcp://127.0.0.1:0"}); !IsStatus(err, Unsupported) {
		t.Fatalf("without ZeroMQ: %v", err)
	}
	return true
}

// waitForScore waits (10 s at most) until ix scores engine-0 with blocks blocks of prompt. A PUB drops
// what it sends before a subscriber's connection is up, so meanwhile the engine publishes empty batches
// (idle steps): the first the router sees shows it the seqs it missed, and it asks the replay ROUTER.
func waitForScore(t *testing.T, pub *EventPublisher, pool *Pool, ix *Index, prompt []int32, blocks uint32) []PodScore {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	beat := time.Now().Add(100 * time.Millisecond)
	for {
		scores, err := ix.Model("model").Scores(prompt, []string{"engine-0", "engine-1"}, nil)
		must(t, err)
		if scores[0].Blocks == blocks || time.Now().After(deadline) {
			return scores
		}
		time.Sleep(2 * time.Millisecond)
		if time.Now().After(beat) {
			empty, err := pool.DrainEvents(EventsMap)
			must(t, err)
			_, err = pub.Publish(empty)
			must(t, err)
			beat = time.Now().Add(100 * time.Millisecond)
		}
	}
}

// A kvcore engine (Pool + EventPublisher) and a kvcore router (IndexSubscriber + Index) on loopback.
func TestEngineToRouter(t *testing.T) {
	if withoutZmq(t) {
		return
	}
	prompt := tokenRange(80, 500) // 5 full blocks of 16
	pool, err := NewPool(&PoolOptions{NumBlocks: 32, BlockSize: 16, Hash: Sha256Cbor, HashSeed: "42", Events: true})
	must(t, err)
	defer pool.Close()
	topic, err := Topic("engine-0", "model")
	must(t, err)
	pub, err := NewEventPublisher(&EventPublisherOptions{Endpoint: "tcp://127.0.0.1:0",
		ReplayEndpoint: "tcp://127.0.0.1:0", Topic: topic})
	must(t, err)
	defer pub.Close()
	endpoint, err := pub.Endpoint()
	must(t, err)
	replay, err := pub.ReplayEndpoint()
	must(t, err)
	if !strings.HasPrefix(endpoint, "tcp://127.0.0.1:") || endpoint == "tcp://127.0.0.1:0" || replay == endpoint {
		t.Fatalf("endpoints %q, %q", endpoint, replay)
	}
	if _, sent, err := pub.PublishPool(pool, EventsMap); err != nil || sent {
		t.Fatalf("nothing pending: sent %v, %v", sent, err)
	}

	ix, err := NewIndex(&IndexOptions{Hash: Sha256Cbor, HashSeed: "42", EngineKeysDirect: true})
	must(t, err)
	sub, err := NewIndexSubscriber(ix, &IndexSubscriberOptions{Engines: []Engine{{endpoint, replay}}})
	must(t, err)
	defer sub.Close()
	must(t, sub.Start())
	if bound, err := sub.BoundEndpoint(); err != nil || bound != "" {
		t.Fatalf("connect mode binds nothing: %q, %v", bound, err)
	}
	seq, err := pool.CreateSequence(prompt, nil)
	must(t, err)
	_, err = pool.Allocate(seq, len(prompt))
	must(t, err)
	if first, sent, err := pub.PublishPool(pool, EventsMap); err != nil || !sent || first != 0 {
		t.Fatalf("the first batch: seq %d, sent %v, %v", first, sent, err)
	}
	scores := waitForScore(t, pub, pool, ix, prompt, 5)
	if scores[0].Blocks != 5 || scores[0].Score != 5 || scores[1].Score != 0 {
		t.Fatalf("scores %v", scores)
	}
	counters, err := sub.Counters()
	must(t, err)
	if counters["decode_failures"] != 0 || counters["lost_batches"] != 0 || counters["batches_applied"] < 1 {
		t.Fatalf("subscriber counters %v", counters)
	}
	published, err := pub.Counters()
	must(t, err)
	if _, ok := published["replay_requests"]; !ok || published["published"] < 1 {
		t.Fatalf("publisher counters %v", published)
	}

	// The index closed before its subscriber (as finalizers may run): the subscriber keeps it alive.
	must(t, ix.Close())
	empty, err := pool.DrainEvents(EventsMap)
	must(t, err)
	_, err = pub.Publish(empty)
	must(t, err)
	must(t, sub.Stop())
	must(t, sub.Close())
	if err := sub.Start(); !IsStatus(err, InvalidState) {
		t.Fatalf("a closed subscriber: %v", err)
	}
	if _, err := NewIndexSubscriber(ix, &IndexSubscriberOptions{Engines: []Engine{{endpoint, ""}}}); !IsStatus(err, InvalidState) {
		t.Fatalf("a closed index: %v", err)
	}
	must(t, pool.Free(seq))
}

func TestEventPublisherErrors(t *testing.T) {
	if withoutZmq(t) {
		return
	}
	if _, err := NewEventPublisher(&EventPublisherOptions{Endpoint: "nonsense://x"}); !IsStatus(err, InvalidArgument) ||
		!strings.Contains(err.Error(), "nonsense://x") {
		t.Fatalf("bad endpoint: %v", err)
	}
	if _, err := NewEventPublisher(&EventPublisherOptions{Endpoint: "tcp://127.0.0.1:0", ReplayEndpoint: "bad"}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("bad replay endpoint: %v", err)
	}
	if _, err := Topic("a@b", "model"); !IsStatus(err, InvalidArgument) {
		t.Fatalf("'@' in a pod: %v", err)
	}
	pub, err := NewEventPublisher(&EventPublisherOptions{Endpoint: "tcp://127.0.0.1:0"})
	must(t, err)
	if replay, err := pub.ReplayEndpoint(); err != nil || replay != "" {
		t.Fatalf("no replay by default: %q, %v", replay, err)
	}
	if seq, err := pub.Publish([]byte{0x93}); err != nil || seq != 0 {
		t.Fatalf("seq %d, %v", seq, err)
	}
	noEvents, err := NewPool(nil)
	must(t, err)
	if _, _, err := pub.PublishPool(noEvents, EventsMap); !IsStatus(err, InvalidState) {
		t.Fatalf("a pool without events: %v", err)
	}
	noEvents.Close()
	if _, _, err := pub.PublishPool(noEvents, EventsMap); !IsStatus(err, InvalidState) {
		t.Fatalf("a closed pool: %v", err)
	}
	if _, _, err := pub.PublishPool(nil, EventsMap); !IsStatus(err, InvalidArgument) {
		t.Fatalf("no pool: %v", err)
	}
	must(t, pub.Close())
	if _, err := pub.Publish(nil); !IsStatus(err, InvalidState) {
		t.Fatalf("a closed publisher: %v", err)
	}

	ix := newIndex(t, nil)
	if _, err := NewIndexSubscriber(ix, &IndexSubscriberOptions{}); !IsStatus(err, InvalidArgument) {
		t.Fatalf("no endpoint: %v", err)
	}
	sub, err := NewIndexSubscriber(ix, &IndexSubscriberOptions{Bind: "nonsense://x"})
	must(t, err)
	defer sub.Close()
	if err := sub.Start(); !IsStatus(err, InvalidArgument) {
		t.Fatalf("bad bind endpoint: %v", err)
	}
}
