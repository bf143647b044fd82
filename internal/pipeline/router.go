// Package pipeline decides what happens to each produced record: which
// route it belongs to (by topic and event type), which plugin chain runs on
// it, and what its verdicts mean for delivery. It knows nothing about
// sockets or SQL.
package pipeline

import (
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tidwall/gjson"

	"github.com/evproxy/evproxy/internal/batchcodec"
)

// Delivery is how a route's records reach Kafka.
type Delivery string

// Deliveries.
const (
	// DeliveryDirect forwards records to Kafka and acknowledges after Kafka
	// acknowledged them.
	DeliveryDirect Delivery = "direct"
	// DeliveryOutbox commits records to the outbox and acknowledges after
	// the commit; the relay publishes them.
	DeliveryOutbox Delivery = "outbox"
)

// OnReject is what happens to a record a plugin rejects.
type OnReject string

// OnReject values.
const (
	// RejectDeadLetter sends the record to the dead-letter topic.
	RejectDeadLetter OnReject = "dead_letter"
	// RejectError fails the producer's batch with INVALID_RECORD.
	RejectError OnReject = "error"
	// RejectDrop discards the record.
	RejectDrop OnReject = "drop"
)

// Route is one `route` block.
type Route struct {
	Name       string
	Topics     []string // path.Match globs
	EventTypes []string // path.Match globs; empty means every event type
	// EventTypeFrom is a JSON pointer into the value giving the event
	// type when no ce_type/event_type header does; "" means the topic.
	EventTypeFrom string
	Plugins       []string // plugin names, applied in order
	OnReject      OnReject
	Delivery      Delivery
	// Priority orders outbox relaying: lower first.
	Priority int32

	anyType bool   // EventTypes matches everything
	gjPath  string // EventTypeFrom as a gjson path
}

// Passthrough reports whether the route forwards records untouched: no
// plugins, and it claims every event type.
func (r *Route) Passthrough() bool { return r.anyType && len(r.Plugins) == 0 }

// Router finds the route of a record: the first route, in configuration
// order, whose topic glob matches and whose event-type glob matches the
// record's event type. It caches per-topic candidate lists and is safe for
// concurrent use.
type Router struct {
	routes []Route
	cache  sync.Map // topic -> *candidates
	cached atomic.Int64
}

// candidates are the routes whose topic globs match one topic, in order.
type candidates struct {
	routes []*Route
	// first is the route every record of the topic takes when it does not
	// depend on the record (the first candidate claims every event
	// type), else nil.
	first *Route
	// outbox is the first outbox route records of the topic may take.
	outbox *Route
}

// maxCached bounds the topic cache so a client inventing topic names cannot
// grow it without limit; past it, lookups are computed each time.
const maxCached = 100000

// NewRouter checks the routes' globs and returns a router over them.
func NewRouter(routes []Route) (*Router, error) {
	r := &Router{routes: append([]Route(nil), routes...)}
	for i := range r.routes {
		rt := &r.routes[i]
		for _, g := range append(append([]string(nil), rt.Topics...), rt.EventTypes...) {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("pipeline: route %q: bad glob %q: %w", rt.Name, g, err)
			}
		}
		rt.anyType = len(rt.EventTypes) == 0
		for _, g := range rt.EventTypes {
			if g == "*" {
				rt.anyType = true
			}
		}
		if rt.EventTypeFrom != "" {
			p, err := pointerToPath(rt.EventTypeFrom)
			if err != nil {
				return nil, fmt.Errorf("pipeline: route %q: event_type_from: %w", rt.Name, err)
			}
			rt.gjPath = p
		}
		if rt.OnReject == "" {
			rt.OnReject = RejectDeadLetter
		}
		if rt.Delivery == "" {
			rt.Delivery = DeliveryDirect
		}
	}
	return r, nil
}

func (r *Router) candidates(topic string) *candidates {
	if v, ok := r.cache.Load(topic); ok {
		return v.(*candidates)
	}
	c := &candidates{}
	for i := range r.routes {
		if matchAny(r.routes[i].Topics, topic) {
			c.routes = append(c.routes, &r.routes[i])
		}
	}
	if len(c.routes) > 0 && c.routes[0].anyType {
		c.first = c.routes[0]
	}
	for _, rt := range c.routes {
		if rt.Delivery == DeliveryOutbox {
			c.outbox = rt
			break
		}
		if rt.anyType {
			break // later routes never match
		}
	}
	if r.cached.Load() < maxCached {
		if _, loaded := r.cache.LoadOrStore(topic, c); !loaded {
			r.cached.Add(1)
		}
	}
	return c
}

// Match returns the route records of topic take when that does not depend
// on the record, or nil if no route claims the topic. ok is false when the
// route depends on each record's event type (use MatchRecord).
func (r *Router) Match(topic string) (route *Route, ok bool) {
	c := r.candidates(topic)
	if c.first != nil {
		return c.first, true
	}
	return nil, len(c.routes) == 0
}

// Outbox returns the first outbox route that may claim records of topic, or
// nil. A topic's records take outbox delivery as a whole when any route
// they may take is an outbox route (delivery cannot differ by event type
// within one partition batch), with that route's priority.
func (r *Router) Outbox(topic string) *Route { return r.candidates(topic).outbox }

// Claims reports whether any route may claim records of topic.
func (r *Router) Claims(topic string) bool { return len(r.candidates(topic).routes) > 0 }

// MatchRecord returns the route of one record and its event type, or nil
// if no route claims it.
func (r *Router) MatchRecord(topic string, headers func(name string) ([]byte, bool), value []byte) (*Route, string) {
	c := r.candidates(topic)
	for _, rt := range c.routes {
		et := EventType(topic, headers, value, rt)
		if rt.anyType || matchAny(rt.EventTypes, et) {
			return rt, et
		}
	}
	return nil, ""
}

// matchHeaders is MatchRecord over a record's decoded headers. When the
// event type equals prev (the previous record's, typically), prev is
// returned without allocating a new string.
func (c *candidates) matchHeaders(topic string, hs []batchcodec.Header, value []byte, prev string) (*Route, string) {
	for _, rt := range c.routes {
		et := eventTypeOf(topic, hs, value, rt, prev)
		if rt.anyType || matchAny(rt.EventTypes, et) {
			return rt, et
		}
	}
	return nil, ""
}

// eventTypeOf is EventType over decoded headers, returning prev when the
// event type equals it.
func eventTypeOf(topic string, hs []batchcodec.Header, value []byte, rt *Route, prev string) string {
	intern := func(b []byte) string {
		if string(b) == prev {
			return prev
		}
		return string(b)
	}
	if v, ok := lastHeader(hs, "ce_type"); ok && len(v) > 0 {
		return intern(v)
	}
	if v, ok := lastHeader(hs, "event_type"); ok && len(v) > 0 {
		return intern(v)
	}
	if rt != nil && rt.gjPath != "" && len(value) > 0 {
		if res := gjson.GetBytes(value, rt.gjPath); res.Type == gjson.String && res.Str != "" {
			return res.Str
		}
	}
	return topic
}

// lastHeader returns the value of the last header called name.
func lastHeader(hs []batchcodec.Header, name string) ([]byte, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == name {
			return hs[i].Value, true
		}
	}
	return nil, false
}

// EventType is a record's event type under route rt (DESIGN §6): header
// ce_type, else header event_type, else the route's event_type_from JSON
// pointer into the value, else the topic.
func EventType(topic string, headers func(name string) ([]byte, bool), value []byte, rt *Route) string {
	if v, ok := headers("ce_type"); ok && len(v) > 0 {
		return string(v)
	}
	if v, ok := headers("event_type"); ok && len(v) > 0 {
		return string(v)
	}
	if rt != nil && rt.gjPath != "" && len(value) > 0 {
		if res := gjson.GetBytes(value, rt.gjPath); res.Type == gjson.String && res.Str != "" {
			return res.Str
		}
	}
	return topic
}

// pointerToPath turns an RFC 6901 JSON pointer into a gjson path.
func pointerToPath(ptr string) (string, error) {
	if !strings.HasPrefix(ptr, "/") {
		return "", fmt.Errorf("JSON pointer %q must start with '/'", ptr)
	}
	parts := strings.Split(ptr[1:], "/")
	for i, p := range parts {
		p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		var b strings.Builder
		for _, ch := range p {
			if strings.ContainsRune(`.*?|#@\!=<>%`, ch) {
				b.WriteByte('\\')
			}
			b.WriteRune(ch)
		}
		parts[i] = b.String()
	}
	return strings.Join(parts, "."), nil
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}
