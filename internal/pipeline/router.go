// Package pipeline decides what happens to each produced record: which route
// a topic belongs to and, as plugins arrive, which plugin chain runs and how
// the record is delivered. It knows nothing about sockets or SQL.
package pipeline

import (
	"fmt"
	"path"
	"sync"
	"sync/atomic"
)

// Delivery is how a route's records reach Kafka.
type Delivery string

// Deliveries.
const (
	// DeliveryDirect forwards records to Kafka and acknowledges after Kafka
	// acknowledged them.
	DeliveryDirect Delivery = "direct"
)

// Route is one `route` block: the topics it claims and how they are
// delivered.
type Route struct {
	Name     string
	Topics   []string // path.Match globs
	Delivery Delivery
}

// Router finds the route of a topic: the first route, in configuration
// order, with a matching glob. It caches answers per topic and is safe for
// concurrent use.
type Router struct {
	routes []Route
	cache  sync.Map // topic -> *Route (nil entry: no route)
	cached atomic.Int64
}

// maxCached bounds the topic cache so a client inventing topic names cannot
// grow it without limit; past it, lookups are computed each time.
const maxCached = 100000

// NewRouter checks the routes' globs and returns a router over them.
func NewRouter(routes []Route) (*Router, error) {
	for _, r := range routes {
		for _, g := range r.Topics {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("pipeline: route %q: bad topic glob %q: %w", r.Name, g, err)
			}
		}
	}
	return &Router{routes: append([]Route(nil), routes...)}, nil
}

// Match returns the route for topic, or nil if no route claims it.
func (r *Router) Match(topic string) *Route {
	if v, ok := r.cache.Load(topic); ok {
		return v.(*Route)
	}
	var found *Route
	for i := range r.routes {
		if matchAny(r.routes[i].Topics, topic) {
			found = &r.routes[i]
			break
		}
	}
	if r.cached.Load() < maxCached {
		if _, loaded := r.cache.LoadOrStore(topic, found); !loaded {
			r.cached.Add(1)
		}
	}
	return found
}

func matchAny(globs []string, topic string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, topic); ok {
			return true
		}
	}
	return false
}
