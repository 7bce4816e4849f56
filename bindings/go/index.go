// SPDX-License-Identifier: Apache-2.0

package kvcore

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/kvcore/kvcore/bindings/go/internal/capi"
)

// BlockHash is a KV block's 64-bit key, as llm-d's kvblock.BlockHash: either a request key, which the
// index computes from a prompt's tokens (Index.RequestKeys; by default xxh3 seeded "42" over 16-token
// blocks), or an engine key, the block hash an engine publishes in its KV events. The index maps each
// pod's engine keys to request keys (from the tokens in its events, or as Add is told), so the engines'
// hash seeds need not be known.
type BlockHash uint64

// KeyType says which kind of key a call names: llm-d's kvblock.KeyType, with its names and values.
type KeyType int

const (
	EngineKey  KeyType = iota // an engine's block hash, resolved through the pod's mapping
	RequestKey                // the index's own key, used as is
)

func (k KeyType) native() capi.Enum_SS_kvc_index_key_kind {
	if k == EngineKey {
		return capi.ENGINE
	}
	if k == RequestKey {
		return capi.REQUEST
	}
	return capi.Enum_SS_kvc_index_key_kind(-1) // refused by the C API with its message
}

// PodEntry is one holder of a block: llm-d's kvblock.PodEntry (same field names) plus the data-parallel
// rank, which llm-d does not track. Entries from Lookup compare equal to llm-d-style literals such as
// PodEntry{PodIdentifier: "pod1", DeviceTier: "gpu"}.
type PodEntry struct {
	PodIdentifier string
	// DeviceTier is "gpu", "cpu", "fs", "obj" or "other" (vLLM's medium, lower case; input is read in any
	// case and "" means "gpu"). Lookup reports the lower-case name.
	DeviceTier string
	// Speculative marks a routing decision awaiting the engine's event (Add with it calls AddSpeculative
	// with the index's default TTL; it is rank 0 on the GPU).
	Speculative      bool
	DataParallelRank uint32
}

// String formats the entry as llm-d does: pod@tier, then "[speculative]" for a routing decision.
func (e PodEntry) String() string {
	s := e.PodIdentifier + "@" + e.DeviceTier
	if e.DataParallelRank != 0 {
		s += fmt.Sprintf("/rank%d", e.DataParallelRank)
	}
	if e.Speculative {
		s += "[speculative]"
	}
	return s
}

// PodScore is one candidate's score: its run of cached blocks from the prompt's block 0 (Blocks), each
// weighted by the best tier the pod holds it in (Score; by default gpu 1.0, cpu 0.8, fs 0.6, obj 0.4).
type PodScore struct {
	Pod    string
	Score  float64
	Blocks uint32
}

// IndexOptions configure an Index; zero fields keep kvcore's defaults.
type IndexOptions struct {
	Hash             HashAlgo // of request keys; default Xxh3
	HashSeed         string   // default "42"
	BlockSize        uint32   // tokens per request key; default 16
	EngineKeysDirect bool     // engines hash with Sha256Cbor, HashSeed and BlockSize: their keys are request keys
	Shards           uint32   // power of two; default 32
	ByteBudget       uint64   // 0: unbounded; past it the least recently used keys go
	MaxOrphanBlocks  uint32   // blocks with an unknown parent kept per (pod, rank, model); default 65536
	// TierWeights by tier name ("gpu", "cpu", "fs", "obj", "other"); tiers not named keep their defaults.
	TierWeights    map[string]float64
	SpeculativeTTL time.Duration // default lifetime of speculative entries; default 2 s
	IngestThreads  uint32        // workers for SubmitBatch; 0 (default): none
	QueueCapacity  uint32        // batches queued per worker; default 1024
	// ScoreCache answers repeated prompts (same tokens, extra keys and candidate list) without hashing
	// or looking up their blocks, never stale; nil: off. Not with Redis.
	ScoreCache *ScoreCacheOptions
	// Redis shares the entries with other routers through a Redis/Valkey server (redis://HOST:PORT[/DB],
	// valkey://..., unix:///PATH); "": entries in this process. The server's maxmemory is the byte budget.
	Redis          string
	RedisKeyTTL    time.Duration // a holder expires this long after its last write; 0: never by time
	RedisKeyPrefix string        // what every key of the index in the server starts with; default "kvc:"
}

// ScoreCacheOptions bound the score cache: prompts kept (LRU), their results' lifetime, and candidate
// lists kept per prompt.
type ScoreCacheOptions struct {
	MaxEntries          uint32
	TTL                 time.Duration // default 30 s
	MaxPodSetsPerPrompt uint32        // default 5
}

// Index is the cluster KV-block index: which pod holds which KV blocks of which model, fed by the KV
// event batches engines publish (ApplyBatch) or by explicit writes (ModelIndex.Add / Evict), and the
// scoring of pods by their cached prefix of a prompt. Its methods are safe for concurrent use; Close
// must not race with them. Model returns the llm-d-shaped view of one model.
type Index struct {
	native[capi.KvIndex]
}

var tierNames = []string{"gpu", "cpu", "fs", "obj", "other"}

// tierOf reads a tier name; "" is the GPU.
func tierOf(name string) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	for i, n := range tierNames {
		if strings.EqualFold(name, n) {
			return uint32(i), nil
		}
	}
	return 0, &Error{Status: InvalidArgument, Message: "unknown device tier " + fmt.Sprintf("%q", name)}
}

// NewIndex makes an index; opts may be nil for the defaults.
func NewIndex(opts *IndexOptions) (ix *Index, err error) {
	defer catch(&err)
	var raw capi.KvIndex
	if opts == nil {
		raw = capi.NewKvIndex(nil)
	} else {
		o := capi.NewKvIndexOptions()
		defer capi.DeleteKvIndexOptions(o)
		seed := opts.HashSeed
		if seed == "" {
			seed = "42"
		}
		o.SetHash(capi.Enum_SS_kvc_hash_algo(opts.Hash), seed)
		if opts.BlockSize != 0 {
			o.SetBlockSize(uint(opts.BlockSize))
		}
		o.SetEngineKeysDirect(opts.EngineKeysDirect)
		if opts.Shards != 0 {
			o.SetShards(uint(opts.Shards))
		}
		o.SetByteBudget(opts.ByteBudget)
		if opts.MaxOrphanBlocks != 0 {
			o.SetMaxOrphanBlocks(uint(opts.MaxOrphanBlocks))
		}
		for name, weight := range opts.TierWeights {
			tier, err := tierOf(name)
			if err != nil || name == "" {
				return nil, &Error{Status: InvalidArgument, Message: "unknown device tier " + fmt.Sprintf("%q", name)}
			}
			o.SetTierWeight(capi.Enum_SS_kvc_index_tier(tier), weight)
		}
		if opts.SpeculativeTTL != 0 {
			o.SetSpeculativeTtlMs(uint64(opts.SpeculativeTTL.Milliseconds()))
		}
		if opts.IngestThreads != 0 || opts.QueueCapacity != 0 {
			queue := opts.QueueCapacity
			if queue == 0 {
				queue = 1024
			}
			o.SetIngestThreads(uint(opts.IngestThreads), uint(queue))
		}
		if c := opts.ScoreCache; c != nil {
			ttl, sets := c.TTL, c.MaxPodSetsPerPrompt
			if ttl == 0 {
				ttl = 30 * time.Second
			}
			if sets == 0 {
				sets = 5
			}
			o.SetScoreCache(uint(c.MaxEntries), uint64(ttl.Milliseconds()), uint(sets))
		}
		if opts.Redis != "" {
			o.SetRedis(opts.Redis)
			o.SetRedisKeyTtlMs(uint64(opts.RedisKeyTTL.Milliseconds()))
			if opts.RedisKeyPrefix != "" {
				o.SetRedisKeyPrefix(opts.RedisKeyPrefix)
			}
		}
		raw = capi.NewKvIndex(o)
	}
	ix = &Index{native[capi.KvIndex]{raw: raw, free: capi.DeleteKvIndex}}
	runtime.SetFinalizer(ix, (*Index).Close)
	return ix, nil
}

// Close applies the batches still queued, stops the ingest threads and frees the index. It is safe to
// call more than once.
func (ix *Index) Close() error {
	ix.close()
	runtime.SetFinalizer(ix, nil)
	return nil
}

func (ix *Index) do(fn func(capi.KvIndex)) error { return ix.call(ix, fn) }

// ApplyBatch decodes one vLLM EventBatch (msgpack, any encoding vLLM uses) that pod published for model
// and applies it whole, or not at all (a malformed payload is an InvalidArgument error with the
// decoder's message). Batches of one pod must be applied in the order the engine published them.
func (ix *Index) ApplyBatch(pod, model string, payload []byte) error {
	return ix.do(func(n capi.KvIndex) { n.ApplyBatchRaw(pod, model, payload, int64(len(payload))) })
}

// SubmitBatch decodes the batch here and applies it on the pod's ingest thread (IndexOptions.IngestThreads).
func (ix *Index) SubmitBatch(pod, model string, payload []byte) error {
	return ix.do(func(n capi.KvIndex) { n.SubmitBatchRaw(pod, model, payload, int64(len(payload))) })
}

// Flush waits until every batch submitted before it is applied.
func (ix *Index) Flush() error { return ix.do(func(n capi.KvIndex) { n.Flush() }) }

// RequestKeys are the prompt's request keys: one per full block, chained, with the extra keys of opts
// (LoRA name, cache salt, multimodal items; nil for none).
func (ix *Index) RequestKeys(tokens []int32, opts *SequenceOptions) (keys []BlockHash, err error) {
	err = ix.do(func(n capi.KvIndex) {
		withSequenceOptions(opts, func(o capi.SequenceOptions) {
			raw := make([]uint64, n.RequestKeysSize(tokens, int64(len(tokens)), o))
			n.RequestKeysInto(tokens, int64(len(tokens)), o, raw, int64(len(raw)))
			keys = make([]BlockHash, len(raw))
			for i, k := range raw {
				keys[i] = BlockHash(k)
			}
		})
	})
	return keys, err
}

// Clear is llm-d's Clear for a pod that is gone: its entries of every model, rank and tier go, with its
// engine-key mappings, and its name is forgotten. An unknown pod holds nothing: nil.
func (ix *Index) Clear(pod string) error {
	return ix.do(func(n capi.KvIndex) { n.RemovePod(pod) })
}

// ClearRank does what the engine's AllBlocksCleared does: removes the entries of (pod, model, rank),
// ordered with that pod's batches. It reports whether the pod was known.
func (ix *Index) ClearRank(pod, model string, rank uint32) (known bool, err error) {
	err = ix.do(func(n capi.KvIndex) { known = n.Clear(pod, model, uint(rank)) })
	return known, err
}

// ExpireSpeculative removes expired speculative entries now (scoring ignores them from their expiry anyway).
func (ix *Index) ExpireSpeculative() error {
	return ix.do(func(n capi.KvIndex) { n.ExpireSpeculative() })
}

// Counters are the index's counters by name: "keys", "holders", "speculative", "engine_blocks",
// "batches_applied", "batches_failed", ... (kvcore/index.h lists them).
func (ix *Index) Counters() (counters map[string]uint64, err error) {
	err = ix.do(func(n capi.KvIndex) {
		values := make([]uint64, capi.KvIndexCounterCount())
		n.CountersInto(values, int64(len(values)))
		counters = make(map[string]uint64, len(values))
		for i, v := range values {
			counters[capi.KvIndexCounterName(uint(i))] = v
		}
	})
	return counters, err
}

// Model is the index seen as llm-d sees it: the entries of one model, with llm-d's Add, Lookup and
// Evict. It holds no native resource; the Index must stay open while it is used.
func (ix *Index) Model(name string) *ModelIndex { return &ModelIndex{ix: ix, model: name} }

// ModelIndex is one model's part of an Index, with llm-d's kvblock.Index methods (without the context).
type ModelIndex struct {
	ix    *Index
	model string
}

// Name is the model's name.
func (m *ModelIndex) Name() string { return m.model }

// names packs pod names as the native layer takes them: UTF-8, each ended by a NUL.
func names(pods []string) ([]byte, error) {
	size := 0
	for _, p := range pods {
		size += len(p) + 1
	}
	out := make([]byte, 0, size)
	for _, p := range pods {
		if strings.IndexByte(p, 0) >= 0 {
			return nil, &Error{Status: InvalidArgument, Message: fmt.Sprintf("pod name %q contains NUL", p)}
		}
		out = append(out, p...)
		out = append(out, 0)
	}
	return out, nil
}

func rawKeys(keys []BlockHash) []uint64 {
	out := make([]uint64, len(keys))
	for i, k := range keys {
		out[i] = uint64(k)
	}
	return out
}

// heldBy is entries as the C API takes them: the confirmed holders as packed pod names with parallel
// ranks and tiers, and the pods of the speculative ones.
type heldBy struct {
	names        []byte // packed names of the count confirmed holders
	count        int
	ranks, tiers []uint32
	speculative  []string
}

// holders splits entries into confirmed ones and speculative pods.
func holders(entries []PodEntry) (h heldBy, err error) {
	var pods []string
	for _, e := range entries {
		tier, err := tierOf(e.DeviceTier)
		if err != nil {
			return heldBy{}, err
		}
		if e.Speculative {
			if tier != 0 || e.DataParallelRank != 0 {
				return heldBy{}, &Error{Status: InvalidArgument, Message: "a speculative entry is rank 0 on the GPU"}
			}
			h.speculative = append(h.speculative, e.PodIdentifier)
			continue
		}
		pods = append(pods, e.PodIdentifier)
		h.ranks = append(h.ranks, e.DataParallelRank)
		h.tiers = append(h.tiers, tier)
	}
	h.count = len(pods)
	h.names, err = names(pods)
	return h, err
}

// Add is llm-d's Add: every entry holds each request key, and each entry's pod maps the engine keys to
// the request keys, so that Evict can name a block by its engine key. By their lengths: engineKeys nil
// or empty, no mapping (request keys only); equal, engineKeys[i] -> requestKeys[i]; k times as many
// engine keys (engine blocks k times smaller), engineKeys[i] -> requestKeys[i/k]; k times as many
// request keys (engine blocks k times larger), engineKeys[i] -> requestKeys[i*k : i*k+k]; anything else
// is an InvalidArgument error. Speculative entries are routing decisions (AddSpeculative with the
// index's default TTL); the engine's event or a confirmed Add for the pod replaces them. No request keys
// or no entries is an error, as in llm-d.
func (m *ModelIndex) Add(engineKeys, requestKeys []BlockHash, entries []PodEntry) error {
	h, err := holders(entries)
	if err != nil {
		return err
	}
	if len(requestKeys) == 0 {
		return &Error{Status: InvalidArgument, Message: "index: add needs at least one request key"}
	}
	engine, request := rawKeys(engineKeys), rawKeys(requestKeys)
	return m.ix.do(func(n capi.KvIndex) {
		if h.count != 0 || len(h.speculative) == 0 {
			n.AddRaw(m.model, engine, int64(len(engine)), request, int64(len(request)), h.names, int64(len(h.names)),
				h.ranks, h.tiers, int64(h.count))
		}
		for _, pod := range h.speculative {
			n.AddSpeculativeRaw(m.model, request, int64(len(request)), pod, 0)
		}
	})
}

// Lookup is llm-d's Lookup: for requestKeys in order, the entries holding each among podSet (nil or
// empty: every pod), up to the first key that none of them holds (the prefix chain breaks there).
func (m *ModelIndex) Lookup(requestKeys []BlockHash, podSet map[string]struct{}) (map[BlockHash][]PodEntry, error) {
	if len(requestKeys) == 0 {
		return nil, &Error{Status: InvalidArgument, Message: "no request keys to look up"}
	}
	filter := make([]string, 0, len(podSet))
	for pod := range podSet {
		filter = append(filter, pod)
	}
	packed, err := names(filter)
	if err != nil {
		return nil, err
	}
	keys := rawKeys(requestKeys)
	found := map[BlockHash][]PodEntry{}
	err = m.ix.do(func(n capi.KvIndex) {
		r := n.LookupRaw(m.model, keys, int64(len(keys)), capi.REQUEST, packed, int64(len(packed)), int64(len(filter)))
		defer capi.DeleteKvIndexLookup(r)
		for k := int64(0); k < r.KeysFound(); k++ {
			count := r.Holders(k)
			entries := make([]PodEntry, 0, count)
			for h := int64(0); h < count; h++ {
				entries = append(entries, PodEntry{
					PodIdentifier: r.Pod(k, h), DeviceTier: capi.KvIndexTierName(r.Tier(k, h)),
					Speculative: r.Speculative(k, h), DataParallelRank: uint32(r.Rank(k, h)),
				})
			}
			found[requestKeys[k]] = append(found[requestKeys[k]], entries...)
		}
	})
	return found, err
}

// Evict is llm-d's Evict: removes the entries from one key. RequestKey: the key itself. EngineKey: each
// entry's pod resolves it through Add's mapping (the entry leaves every request key it maps to), or
// else through the mapping the pod's events built, as the engine's own BlockRemoved would. A
// speculative entry withdraws that pod's routing decision (request keys only). Entries that hold
// nothing there are ignored; no entries is an error, as in llm-d.
func (m *ModelIndex) Evict(key BlockHash, keyType KeyType, entries []PodEntry) error {
	h, err := holders(entries)
	if err != nil {
		return err
	}
	return m.ix.do(func(n capi.KvIndex) {
		if h.count != 0 || len(h.speculative) == 0 {
			n.EvictRaw(m.model, uint64(key), keyType.native(), h.names, int64(len(h.names)), h.ranks, h.tiers, int64(h.count))
		}
		if keyType != RequestKey {
			return // routing decisions hold request keys only
		}
		one := []uint64{uint64(key)}
		for _, pod := range h.speculative {
			n.RemoveSpeculativeRaw(m.model, one, 1, pod)
		}
	})
}

// AddSpeculative records a routing decision: pod holds the request keys (rank 0, GPU) for ttl (0: the
// index's default) or until its engine's event for a key arrives.
func (m *ModelIndex) AddSpeculative(requestKeys []BlockHash, pod string, ttl time.Duration) error {
	keys := rawKeys(requestKeys)
	return m.ix.do(func(n capi.KvIndex) {
		n.AddSpeculativeRaw(m.model, keys, int64(len(keys)), pod, uint64(ttl.Milliseconds()))
	})
}

// RemoveSpeculative withdraws a routing decision: pod's speculative entries of the keys go.
func (m *ModelIndex) RemoveSpeculative(requestKeys []BlockHash, pod string) error {
	keys := rawKeys(requestKeys)
	return m.ix.do(func(n capi.KvIndex) { n.RemoveSpeculativeRaw(m.model, keys, int64(len(keys)), pod) })
}

// Scores scores each candidate pod, in order, for a prompt (hashed as RequestKeys does; opts may be
// nil). Unknown pods score 0.
func (m *ModelIndex) Scores(tokens []int32, pods []string, opts *SequenceOptions) ([]PodScore, error) {
	packed, err := names(pods)
	if err != nil {
		return nil, err
	}
	scores, blocks := make([]float64, len(pods)), make([]uint32, len(pods))
	err = m.ix.do(func(n capi.KvIndex) {
		withSequenceOptions(opts, func(o capi.SequenceOptions) {
			n.ScoreTokensRaw(m.model, tokens, int64(len(tokens)), o, packed, int64(len(packed)), int64(len(pods)),
				scores, blocks)
		})
	})
	if err != nil {
		return nil, err
	}
	return podScores(pods, scores, blocks), nil
}

// ScoresByKeys is Scores for request keys already computed.
func (m *ModelIndex) ScoresByKeys(requestKeys []BlockHash, pods []string) ([]PodScore, error) {
	packed, err := names(pods)
	if err != nil {
		return nil, err
	}
	keys := rawKeys(requestKeys)
	scores, blocks := make([]float64, len(pods)), make([]uint32, len(pods))
	err = m.ix.do(func(n capi.KvIndex) {
		n.ScoreKeysRaw(m.model, keys, int64(len(keys)), capi.REQUEST, packed, int64(len(packed)), int64(len(pods)),
			scores, blocks)
	})
	if err != nil {
		return nil, err
	}
	return podScores(pods, scores, blocks), nil
}

// Score is the scorer a router calls: pod -> score for a prompt (see Scores).
func (m *ModelIndex) Score(tokens []int32, pods []string, opts *SequenceOptions) (map[string]float64, error) {
	all, err := m.Scores(tokens, pods, opts)
	return scoreMap(all), err
}

// ScoreKeys is Score for request keys already computed.
func (m *ModelIndex) ScoreKeys(requestKeys []BlockHash, pods []string) (map[string]float64, error) {
	all, err := m.ScoresByKeys(requestKeys, pods)
	return scoreMap(all), err
}

func podScores(pods []string, scores []float64, blocks []uint32) []PodScore {
	out := make([]PodScore, len(pods))
	for i, p := range pods {
		out[i] = PodScore{Pod: p, Score: scores[i], Blocks: blocks[i]}
	}
	return out
}

func scoreMap(all []PodScore) map[string]float64 {
	if all == nil {
		return nil
	}
	out := make(map[string]float64, len(all))
	for _, s := range all {
		out[s.Pod] = s.Score
	}
	return out
}
