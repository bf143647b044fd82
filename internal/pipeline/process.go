package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evproxy/evproxy/internal/batchcodec"
	"github.com/evproxy/evproxy/internal/plugins"
)

// Plugin runs one plugin over a batch of records of one event type,
// returning one verdict per record (internal/plugins.Plugin.ProcessWith).
// The verdicts' memory comes from b and stays valid until b is Reset.
type Plugin interface {
	ProcessWith(ctx context.Context, eventType string, recs []plugins.Record, b *plugins.Buffers) ([]plugins.Verdict, error)
}

// PluginSet gives the loaded plugins by name, or nil; release must be
// called when the call is done (hot reload waits for it).
type PluginSet interface {
	Get(name string) (Plugin, func())
}

// DeadLetter configures dead-letter topics.
type DeadLetter struct {
	Enabled     bool
	TopicSuffix string
}

// Processor runs the plugin chains of records' routes.
type Processor struct {
	Router     *Router
	Plugins    PluginSet
	DeadLetter DeadLetter
	// Now is the clock for evproxy.failed.at; nil means time.Now.
	Now func() time.Time

	scratches sync.Pool // of *scratch, returned by Outcome.Release
}

// scratch is the memory of one Process call: its outcome's records and
// headers, and what the plugins saw and answered. Outcome.Release gives it
// back for the next call.
type scratch struct {
	gidx     []uint32
	groups   []group
	items    []item
	recs     []plugins.Record
	main     []batchcodec.Record
	verdicts plugins.Buffers
}

// reset makes the scratch's memory reusable.
func (s *scratch) reset() {
	s.groups = s.groups[:0]
	s.items, s.recs = s.items[:0], s.recs[:0]
	s.verdicts.Reset()
}

// grow returns n elements from the free room of *a, growing it (to a new
// array: what was handed out before stays valid) when the room is short.
// The elements are not zeroed: callers overwrite them.
func grow[T any](a *[]T, n int) []T {
	if cap(*a)-len(*a) < n {
		*a = make([]T, 0, max(2*cap(*a), n, 16))
	}
	l := len(*a)
	*a = (*a)[:l+n]
	return (*a)[l : l+n : l+n]
}

// Input is one partition batch, decoded.
type Input struct {
	Topic     string
	Partition int32
	Records   []batchcodec.Record
}

// SideRecord is a record that leaves its partition: routed or fanned out to
// another topic by a plugin, or a dead letter. The upstream partitions it
// by key.
type SideRecord struct {
	Topic     string
	Key       []byte
	Value     []byte
	Headers   []batchcodec.Header
	Timestamp int64
}

// RecordError is a rejected record of a route with on_reject = "error".
type RecordError struct {
	Index   int32 // in the input batch
	Message string
}

// Outcome is what a batch becomes.
type Outcome struct {
	// Main are the records that stay in the input's topic and partition,
	// in order.
	Main []batchcodec.Record
	// Side are records for other topics, in order.
	Side []SideRecord
	// Errors, when not empty, fail the whole batch with INVALID_RECORD
	// (Kafka rejects a batch as a whole); Main and Side are then empty.
	// They come from on_reject = "error" routes, or from records whose
	// event type no route claims.
	Errors []RecordError
	// Dropped and DeadLettered count records by fate.
	Dropped, DeadLettered, Rejected int

	release func()
}

// Release lets the next Process call reuse the outcome's memory. After it,
// nothing of the outcome may be used: not its records, nor the byte slices
// and strings in them (encode Main, copy Side first). Not calling Release
// is safe; the memory then goes to the garbage collector.
func (o *Outcome) Release() {
	if o.release != nil {
		o.release()
		o.release = nil
	}
}

// item is a record moving through a chain, remembering its input index.
type item struct {
	idx   int32
	topic string
	rec   batchcodec.Record
}

// rejection is a record a plugin (or the host, for a failing plugin)
// rejected.
type rejection struct {
	it     item
	route  *Route
	code   int32
	reason string
	plugin string
}

// group is the records of one (route, event type) in a batch, in input
// order: one plugin call per plugin of the route's chain.
type group struct {
	route     *Route
	eventType string
	n         int    // records in the group
	items     []item // the group's records, then what its chain made of them
}

// Process runs every record through the chain of its route and returns the
// outcome. Records whose route has no plugins pass unchanged. A record no
// route claims (its topic has routes, but not for its event type) fails the
// batch like on_reject = "error" does.
//
// The outcome's records alias in.Records and the plugins' verdicts. Its
// memory comes from a scratch that Outcome.Release returns for the next
// call, so that a steady stream of batches allocates almost nothing.
func (p *Processor) Process(ctx context.Context, in Input) (Outcome, error) {
	sc, _ := p.scratches.Get().(*scratch)
	if sc == nil {
		sc = &scratch{}
	}
	out, err := p.process(ctx, in, sc)
	if err != nil || len(out.Main)+len(out.Side) == 0 {
		sc.reset()
		p.scratches.Put(sc)
		return out, err
	}
	out.release = func() {
		sc.reset()
		p.scratches.Put(sc)
	}
	return out, nil
}

func (p *Processor) process(ctx context.Context, in Input, sc *scratch) (Outcome, error) {
	var out Outcome
	recs := in.Records
	// Group records by (route, event type), keeping each record's
	// position: each group runs its chain, then the groups' outputs are
	// merged back in input order.
	c := p.Router.candidates(in.Topic)
	if cap(sc.gidx) < len(recs) {
		sc.gidx = make([]uint32, len(recs))
	}
	gidx := sc.gidx[:len(recs)]
	groups := sc.groups[:0]
	last := -1
	var unrouted []RecordError
	for i := range recs {
		r := &recs[i]
		prev := ""
		if last >= 0 {
			prev = groups[last].eventType
		}
		rt, et := c.matchHeaders(in.Topic, r.Headers, r.Value, prev)
		if rt == nil {
			// Routes claim the topic only for some event types; a
			// record of another type is refused like an unrouted topic.
			et = eventTypeOf(in.Topic, r.Headers, r.Value, nil, prev)
			unrouted = append(unrouted, RecordError{Index: int32(i), Message: fmt.Sprintf("evproxy: no route matches topic %q with event type %q", in.Topic, et)})
			continue
		}
		if last < 0 || groups[last].route != rt || groups[last].eventType != et {
			last = -1
			for g := range groups {
				if groups[g].route == rt && groups[g].eventType == et {
					last = g
					break
				}
			}
			if last < 0 {
				groups = append(groups, group{route: rt, eventType: et})
				last = len(groups) - 1
			}
		}
		groups[last].n++
		gidx[i] = uint32(last)
	}
	sc.groups = groups
	if len(unrouted) > 0 {
		return Outcome{Errors: unrouted}, nil
	}
	// Partition one backing array among the groups.
	backing := grow(&sc.items, len(recs))
	off := 0
	for g := range groups {
		groups[g].items = backing[off : off : off+groups[g].n]
		off += groups[g].n
	}
	for i := range recs {
		g := &groups[gidx[i]]
		g.items = append(g.items, item{idx: int32(i), topic: in.Topic, rec: recs[i]})
	}
	var rejected []rejection
	for g := range groups {
		grp := &groups[g]
		for _, name := range grp.route.Plugins {
			if len(grp.items) == 0 {
				break
			}
			next, rej, err := p.runPlugin(ctx, sc, name, grp.eventType, in.Partition, grp.items)
			if err != nil {
				return Outcome{}, err
			}
			grp.items = next
			for i := range rej {
				rej[i].plugin, rej[i].route = name, grp.route
			}
			rejected = append(rejected, rej...)
		}
	}
	// Record outcome of rejections. What outlives the scratch is copied:
	// the reasons of errors, and dead letters (built from the input).
	for _, rj := range rejected {
		switch {
		case rj.route.OnReject == RejectError:
			out.Errors = append(out.Errors, RecordError{Index: rj.it.idx, Message: strings.Clone(rj.reason)})
		case rj.route.OnReject == RejectDrop || !p.DeadLetter.Enabled:
			out.Dropped++
		default:
			out.Side = append(out.Side, p.deadLetter(in, rj))
			out.DeadLettered++
		}
		out.Rejected++
	}
	if len(out.Errors) > 0 {
		return Outcome{Errors: out.Errors, Rejected: out.Rejected}, nil
	}
	deadLetters := out.Side
	out.Side = nil
	n := 0
	for g := range groups {
		n += len(groups[g].items)
	}
	if cap(sc.main) < n {
		sc.main = make([]batchcodec.Record, 0, n)
	}
	out.Main = sc.main[:0]
	merge(groups, func(it *item) {
		if it.topic == in.Topic {
			out.Main = append(out.Main, it.rec)
		} else {
			out.Side = append(out.Side, SideRecord{Topic: it.topic, Key: it.rec.Key, Value: it.rec.Value, Headers: it.rec.Headers, Timestamp: it.rec.Timestamp})
		}
	})
	out.Side = append(out.Side, deadLetters...)
	return out, nil
}

// merge calls fn on the groups' items in input order. Each group's items
// are in input order (a chain keeps the order of its records and puts a
// record's outputs where the record was), and an input record belongs to
// one group, so a merge by input index gives every record's outputs in
// input order.
func merge(groups []group, fn func(*item)) {
	if len(groups) == 1 {
		for i := range groups[0].items {
			fn(&groups[0].items[i])
		}
		return
	}
	heads := make([]int, len(groups))
	for {
		best := -1
		for g := range groups {
			if heads[g] < len(groups[g].items) && (best < 0 || groups[g].items[heads[g]].idx < groups[best].items[heads[best]].idx) {
				best = g
			}
		}
		if best < 0 {
			return
		}
		// Every output of that input record, then look again.
		items := groups[best].items
		idx := items[heads[best]].idx
		for heads[best] < len(items) && items[heads[best]].idx == idx {
			fn(&items[heads[best]])
			heads[best]++
		}
	}
}

// runPlugin runs one plugin over items and applies its verdicts. When
// every verdict is KEEP, items is returned as is.
func (p *Processor) runPlugin(ctx context.Context, sc *scratch, name, eventType string, partition int32, items []item) ([]item, []rejection, error) {
	pl, release := p.Plugins.Get(name)
	if pl == nil {
		return nil, nil, fmt.Errorf("pipeline: plugin %q is not loaded", name)
	}
	defer release()
	verdicts, err := pl.ProcessWith(ctx, eventType, sc.pluginRecords(items, partition), &sc.verdicts)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: plugin %q: %w", name, err)
	}
	if len(verdicts) != len(items) {
		return nil, nil, fmt.Errorf("pipeline: plugin %q returned %d verdicts for %d records", name, len(verdicts), len(items))
	}
	outputs, kept := 0, 0
	for i := range verdicts {
		switch v := &verdicts[i]; v.Action {
		case plugins.Keep:
			kept++
			outputs++
		case plugins.Replace:
			outputs += len(v.Outputs)
		}
	}
	if kept == len(items) {
		return items, nil, nil
	}
	next := grow(&sc.items, outputs)
	n := 0
	var rej []rejection
	for i := range verdicts {
		v := &verdicts[i]
		switch v.Action {
		case plugins.Keep:
			next[n] = items[i]
			n++
		case plugins.Drop:
		case plugins.Reject:
			rej = append(rej, rejection{it: items[i], code: v.Code, reason: v.Reason})
		case plugins.Replace:
			for j := range v.Outputs {
				next[n] = items[i]
				applyOutput(&next[n], &v.Outputs[j])
				n++
			}
		}
	}
	return next[:n], rej, nil
}

// pluginRecords gives items to a plugin, from the scratch's memory. The
// records share their headers with the items (a plugin does not change
// its input).
func (sc *scratch) pluginRecords(items []item, partition int32) []plugins.Record {
	recs := grow(&sc.recs, len(items))
	for i := range items {
		it := &items[i]
		recs[i] = plugins.Record{Topic: it.topic, Partition: partition, Timestamp: it.rec.Timestamp, Key: it.rec.Key, Value: it.rec.Value, Headers: it.rec.Headers}
	}
	return recs
}

// applyOutput makes the item a REPLACE output describes.
func applyOutput(out *item, o *plugins.Output) {
	if o.TopicSet {
		out.topic = o.Topic
	}
	if o.KeySet {
		out.rec.Key = o.Key
	}
	if o.ValueSet {
		out.rec.Value = o.Value
	}
	if o.HeadersSet {
		out.rec.Headers = o.Headers
	}
}

// deadLetter builds the dead-letter record of a rejection (DESIGN §6).
func (p *Processor) deadLetter(in Input, rj rejection) SideRecord {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	orig := in.Records[rj.it.idx]
	hs := append([]batchcodec.Header(nil), orig.Headers...)
	hs = append(hs,
		batchcodec.Header{Key: "evproxy.error.stage", Value: []byte("plugin")},
		batchcodec.Header{Key: "evproxy.error.reason", Value: []byte(rj.reason)},
		batchcodec.Header{Key: "evproxy.error.code", Value: []byte(strconv.Itoa(int(rj.code)))},
		batchcodec.Header{Key: "evproxy.error.plugin", Value: []byte(rj.plugin)},
		batchcodec.Header{Key: "evproxy.original.topic", Value: []byte(in.Topic)},
		batchcodec.Header{Key: "evproxy.original.partition", Value: []byte(strconv.Itoa(int(in.Partition)))},
		batchcodec.Header{Key: "evproxy.attempts", Value: []byte("1")},
		batchcodec.Header{Key: "evproxy.failed.at", Value: []byte(now().UTC().Format(time.RFC3339Nano))},
	)
	return SideRecord{Topic: in.Topic + p.DeadLetter.TopicSuffix, Key: orig.Key, Value: orig.Value, Headers: hs, Timestamp: orig.Timestamp}
}

// Loaded adapts the runtime's plugin set to PluginSet.
func Loaded(s *plugins.Set) PluginSet { return loadedSet{s} }

type loadedSet struct{ s *plugins.Set }

func (l loadedSet) Get(name string) (Plugin, func()) {
	p, release := l.s.Get(name)
	if p == nil {
		return nil, func() {}
	}
	return p, release
}
