// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"runtime"
	"time"

	"github.com/kvcore/kvcore/bindings/go/internal/capi"
)

// Topic is llm-d's ZeroMQ topic for an engine's KV events, "kv@<pod>@<model>": a kvcore router and
// llm-d read the pod (which must not contain '@') and the model from it.
func Topic(pod, model string) (topic string, err error) {
	defer catch(&err)
	return capi.EventPublisherTopic(pod, model), nil
}

// EventPublisherOptions configure an EventPublisher; zero fields keep vLLM's defaults.
type EventPublisherOptions struct {
	// Endpoint of the PUB socket; default "tcp://*:5557". Bound, unless Connect (then it connects to a
	// router that binds, such as an IndexSubscriber with Bind). "tcp://127.0.0.1:0" binds a free port.
	Endpoint string
	Connect  bool
	// ReplayEndpoint is where the replay ROUTER binds; "" for no replay.
	ReplayEndpoint string
	// Topic is the first frame of every message: Topic(pod, model) for llm-d and kvcore routers.
	Topic string
	// BufferSteps is how many batches are kept for replay; default 10000.
	BufferSteps uint32
}

// EventPublisher publishes a kvcore engine's KV events over ZeroMQ exactly as a vLLM engine does:
// [topic, seq, msgpack EventBatch] on a PUB socket, and a ROUTER answering replay requests. Its methods
// are safe for concurrent use (publishes are serialized); Close must not race with them.
type EventPublisher struct {
	native[capi.EventPublisher]
}

// NewEventPublisher binds (or connects) its sockets before it returns; opts may be nil for vLLM's defaults.
func NewEventPublisher(opts *EventPublisherOptions) (p *EventPublisher, err error) {
	defer catch(&err)
	o := capi.NewEventPublisherOptions()
	defer capi.DeleteEventPublisherOptions(o)
	if opts != nil {
		if opts.Endpoint != "" {
			o.SetEndpoint(opts.Endpoint, opts.Connect)
		}
		o.SetReplayEndpoint(opts.ReplayEndpoint)
		o.SetTopic(opts.Topic)
		if opts.BufferSteps != 0 {
			o.SetBufferSteps(uint(opts.BufferSteps))
		}
	}
	p = &EventPublisher{native[capi.EventPublisher]{raw: capi.NewEventPublisher(o), free: capi.DeleteEventPublisher}}
	runtime.SetFinalizer(p, (*EventPublisher).Close)
	return p, nil
}

// Close closes the sockets (waiting up to 250 ms for queued batches to leave). It is safe to call more
// than once.
func (p *EventPublisher) Close() error {
	p.close()
	runtime.SetFinalizer(p, nil)
	return nil
}

func (p *EventPublisher) do(fn func(capi.EventPublisher)) error { return p.call(p, fn) }

// Publish sends one msgpack EventBatch as the next seq (0, 1, 2, ...), which it returns.
func (p *EventPublisher) Publish(payload []byte) (seq uint64, err error) {
	err = p.do(func(n capi.EventPublisher) { seq = n.PublishRaw(payload, int64(len(payload))) })
	return seq, err
}

// PublishPool drains the pool's pending KV events and publishes them as one batch, returning its seq;
// sent is false when no events were pending (nothing is sent then). Call it where the pool is used.
func (p *EventPublisher) PublishPool(pool *Pool, encoding EventEncoding) (seq uint64, sent bool, err error) {
	if pool == nil {
		return 0, false, &Error{Status: InvalidArgument, Message: "pool is nil"}
	}
	var poolErr error
	err = p.do(func(n capi.EventPublisher) {
		poolErr = pool.do(func(c capi.Pool) {
			if s := n.PublishPoolRaw(c, capi.Enum_SS_kvc_event_encoding(encoding)); s >= 0 {
				seq, sent = uint64(s), true
			}
		})
	})
	if err == nil {
		err = poolErr
	}
	return seq, sent, err
}

// Endpoint is the PUB endpoint as bound (a port 0 resolved, e.g. "tcp://127.0.0.1:40123").
func (p *EventPublisher) Endpoint() (endpoint string, err error) {
	err = p.do(func(n capi.EventPublisher) { endpoint = n.Endpoint() })
	return endpoint, err
}

// ReplayEndpoint is the replay ROUTER's endpoint as bound; "" without replay.
func (p *EventPublisher) ReplayEndpoint() (endpoint string, err error) {
	err = p.do(func(n capi.EventPublisher) { endpoint = n.ReplayEndpoint() })
	return endpoint, err
}

// Counters are the publisher's counts by name ("published", "replay_requests", ...).
func (p *EventPublisher) Counters() (counters map[string]uint64, err error) {
	err = p.do(func(n capi.EventPublisher) {
		values := make([]uint64, capi.EventPublisherCounterCount())
		n.CountersInto(values, int64(len(values)))
		counters = make(map[string]uint64, len(values))
		for i, v := range values {
			counters[capi.EventPublisherCounterName(uint(i))] = v
		}
	})
	return counters, err
}

// Engine is one engine's publisher as an IndexSubscriber connects to it.
type Engine struct {
	Endpoint       string // its PUB endpoint
	ReplayEndpoint string // its replay ROUTER; "" for none
}

// IndexSubscriberOptions say where an IndexSubscriber listens; Bind, Engines or both are needed.
type IndexSubscriberOptions struct {
	// Bind is an endpoint the subscriber binds for engines to connect to ("tcp://0.0.0.0:5557").
	Bind string
	// Engines are publishers the subscriber connects to, one socket each.
	Engines []Engine
	// PodReplay gives, in bind mode, each pod's replay endpoint.
	PodReplay map[string]string
	// ReplayTimeout is how long a replay may stay silent before it is abandoned; default 2 s.
	ReplayTimeout time.Duration
}

// IndexSubscriber feeds an Index from engines' KV events over ZeroMQ on its own thread, as a router
// does: gaps are filled by replay, an engine restart clears its old entries. It keeps its index alive
// (at the C level), so the two may be closed or finalized in any order. Start, Stop and Close from one
// goroutine at a time; BoundEndpoint and Counters from any.
type IndexSubscriber struct {
	native[capi.KvIndexSubscriber]
}

// NewIndexSubscriber makes a subscriber feeding ix; it opens nothing until Start.
func NewIndexSubscriber(ix *Index, opts *IndexSubscriberOptions) (s *IndexSubscriber, err error) {
	if ix == nil || opts == nil {
		return nil, &Error{Status: InvalidArgument, Message: "index and options are needed"}
	}
	o := capi.NewKvIndexSubscriberOptions()
	defer capi.DeleteKvIndexSubscriberOptions(o)
	var raw capi.KvIndexSubscriber
	err = ix.do(func(index capi.KvIndex) {
		o.SetBind(opts.Bind)
		for _, e := range opts.Engines {
			o.AddEngine(e.Endpoint, e.ReplayEndpoint)
		}
		for pod, replay := range opts.PodReplay {
			o.SetPodReplay(pod, replay)
		}
		if opts.ReplayTimeout != 0 {
			o.SetReplayTimeoutMs(uint(opts.ReplayTimeout.Milliseconds()))
		}
		raw = capi.NewKvIndexSubscriber(index, o)
	})
	if err != nil {
		return nil, err
	}
	s = &IndexSubscriber{native[capi.KvIndexSubscriber]{raw: raw, free: capi.DeleteKvIndexSubscriber}}
	runtime.SetFinalizer(s, (*IndexSubscriber).Close)
	return s, nil
}

// Close stops the subscriber and frees it. It is safe to call more than once.
func (s *IndexSubscriber) Close() error {
	s.close()
	runtime.SetFinalizer(s, nil)
	return nil
}

func (s *IndexSubscriber) do(fn func(capi.KvIndexSubscriber)) error { return s.call(s, fn) }

// Start opens the sockets (binding before it returns) and starts receiving.
func (s *IndexSubscriber) Start() error { return s.do(func(n capi.KvIndexSubscriber) { n.Start() }) }

// Stop stops receiving and closes the sockets; Start goes on where each stream stopped.
func (s *IndexSubscriber) Stop() error { return s.do(func(n capi.KvIndexSubscriber) { n.Stop() }) }

// BoundEndpoint is the Bind endpoint as bound (a port 0 resolved); "" before Start or without Bind.
func (s *IndexSubscriber) BoundEndpoint() (endpoint string, err error) {
	err = s.do(func(n capi.KvIndexSubscriber) { endpoint = n.BoundEndpoint() })
	return endpoint, err
}

// Counters are the subscriber's counts by name ("messages", "gaps", "batches_applied", ...).
func (s *IndexSubscriber) Counters() (counters map[string]uint64, err error) {
	err = s.do(func(n capi.KvIndexSubscriber) {
		values := make([]uint64, capi.KvIndexSubscriberCounterCount())
		n.CountersInto(values, int64(len(values)))
		counters = make(map[string]uint64, len(values))
		for i, v := range values {
			counters[capi.KvIndexSubscriberCounterName(uint(i))] = v
		}
	})
	return counters, err
}
