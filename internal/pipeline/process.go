package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/evproxy/evproxy/internal/batchcodec"
	"github.com/evproxy/evproxy/internal/plugins"
)

// Plugin runs one plugin over a batch of records of one event type,
// returning one verdict per record (internal/plugins.Plugin).
type Plugin interface {
	Process(ctx context.Context, eventType string, recs []plugins.Record) ([]plugins.Verdict, error)
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
	code   int32
	reason string
	plugin string
}

// Process runs every record through the chain of its route and returns the
// outcome. Records whose route has no plugins pass unchanged. A record no
// route claims (its topic has routes, but not for its event type) fails the
// batch like on_reject = "error" does.
func (p *Processor) Process(ctx context.Context, in Input) (Outcome, error) {
	var out Outcome
	// Group consecutive work by (route, event type) while keeping each
	// record's position: records are processed per group, then merged
	// back in input order.
	type group struct {
		route     *Route
		eventType string
		items     []item
	}
	var groups []*group
	find := func(rt *Route, et string) *group {
		for _, g := range groups {
			if g.route == rt && g.eventType == et {
				return g
			}
		}
		g := &group{route: rt, eventType: et}
		groups = append(groups, g)
		return g
	}
	routeOf := make([]*Route, len(in.Records))
	var unrouted []RecordError
	for i := range in.Records {
		r := &in.Records[i]
		rt, et := p.Router.MatchRecord(in.Topic, headerLookup(r.Headers), r.Value)
		if rt == nil {
			// Routes claim the topic only for some event types; a
			// record of another type is refused like an unrouted topic.
			et = EventType(in.Topic, headerLookup(r.Headers), r.Value, nil)
			unrouted = append(unrouted, RecordError{Index: int32(i), Message: fmt.Sprintf("evproxy: no route matches topic %q with event type %q", in.Topic, et)})
			continue
		}
		routeOf[i] = rt
		g := find(rt, et)
		g.items = append(g.items, item{idx: int32(i), topic: in.Topic, rec: *r})
	}
	if len(unrouted) > 0 {
		return Outcome{Errors: unrouted}, nil
	}
	// results[i] are the outputs of input record i, in order.
	results := make([][]item, len(in.Records))
	var rejected []rejection
	for _, g := range groups {
		items := g.items
		for _, name := range g.route.Plugins {
			if len(items) == 0 {
				break
			}
			next, rej, err := p.runPlugin(ctx, name, g.eventType, in.Partition, items)
			if err != nil {
				return Outcome{}, err
			}
			items = next
			for i := range rej {
				rej[i].plugin = name
			}
			rejected = append(rejected, rej...)
		}
		for _, it := range items {
			results[it.idx] = append(results[it.idx], it)
		}
	}
	// Record outcome of rejections.
	for _, rj := range rejected {
		rt := routeOf[rj.it.idx]
		switch {
		case rt.OnReject == RejectError:
			out.Errors = append(out.Errors, RecordError{Index: rj.it.idx, Message: rj.reason})
		case rt.OnReject == RejectDrop || !p.DeadLetter.Enabled:
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
	for i := range results {
		if results[i] == nil {
			continue
		}
		for _, it := range results[i] {
			if it.topic == in.Topic {
				out.Main = append(out.Main, it.rec)
			} else {
				out.Side = append(out.Side, SideRecord{Topic: it.topic, Key: it.rec.Key, Value: it.rec.Value, Headers: it.rec.Headers, Timestamp: it.rec.Timestamp})
			}
		}
	}
	out.Side = append(out.Side, deadLetters...)
	return out, nil
}

// runPlugin runs one plugin over items and applies its verdicts.
func (p *Processor) runPlugin(ctx context.Context, name, eventType string, partition int32, items []item) ([]item, []rejection, error) {
	pl, release := p.Plugins.Get(name)
	if pl == nil {
		return nil, nil, fmt.Errorf("pipeline: plugin %q is not loaded", name)
	}
	defer release()
	recs := make([]plugins.Record, len(items))
	for i, it := range items {
		recs[i] = toPluginRecord(it, partition)
	}
	verdicts, err := pl.Process(ctx, eventType, recs)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: plugin %q: %w", name, err)
	}
	if len(verdicts) != len(items) {
		return nil, nil, fmt.Errorf("pipeline: plugin %q returned %d verdicts for %d records", name, len(verdicts), len(items))
	}
	next := items[:0:0]
	var rej []rejection
	for i, v := range verdicts {
		it := items[i]
		switch v.Action {
		case plugins.Keep:
			next = append(next, it)
		case plugins.Drop:
		case plugins.Reject:
			rej = append(rej, rejection{it: it, code: v.Code, reason: v.Reason})
		case plugins.Replace:
			for _, o := range v.Outputs {
				next = append(next, applyOutput(it, o))
			}
		}
	}
	return next, rej, nil
}

func toPluginRecord(it item, partition int32) plugins.Record {
	hs := make([]plugins.Header, len(it.rec.Headers))
	for i, h := range it.rec.Headers {
		hs[i] = plugins.Header{Name: h.Key, Value: h.Value}
	}
	return plugins.Record{Topic: it.topic, Partition: partition, Timestamp: it.rec.Timestamp, Key: it.rec.Key, Value: it.rec.Value, Headers: hs}
}

// applyOutput makes the item a REPLACE output describes.
func applyOutput(in item, o plugins.Output) item {
	out := in
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
		hs := make([]batchcodec.Header, len(o.Headers))
		for i, h := range o.Headers {
			hs[i] = batchcodec.Header{Key: h.Name, Value: h.Value}
		}
		out.rec.Headers = hs
	}
	return out
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

// headerLookup returns a lookup over headers (last value wins).
func headerLookup(hs []batchcodec.Header) func(string) ([]byte, bool) {
	return func(name string) ([]byte, bool) {
		for i := len(hs) - 1; i >= 0; i-- {
			if hs[i].Key == name {
				return hs[i].Value, true
			}
		}
		return nil, false
	}
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
