// Command route is an evproxy plugin that sends records to a topic chosen
// by a field of their JSON value, and can copy every record to an audit
// topic.
//
// Config:
//
//	{"field": "region", "routes": {"eu": "orders.eu", "us": "orders.us"}, "copy_to": "orders.audit"}
//
// field names a top-level field of the value. When the value is a JSON
// object whose field is a string (or a number or boolean, matched by its
// JSON text, so 1 and 1.0 differ) that routes maps to a topic, the record
// is routed there: REPLACE with one output setting only the topic (key,
// value and headers unchanged; evproxy partitions it by key). With copy_to
// every record also gets a copy sent to that topic: REPLACE with two
// outputs, the routed record (or the original, when it is not routed) and
// the copy. Otherwise the record is kept. At least one of routes and
// copy_to is required.
package main

import (
	"errors"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/jsonf"
)

type route struct {
	field  string
	routes map[string]string
	copyTo string
	// The output lists, built once and shared by every verdict (the kit
	// only reads them), so Process allocates nothing.
	routed    map[string]evp.Verdict // topic -> REPLACE [to topic, (copy)]
	unrouted  evp.Verdict            // KEEP, or REPLACE [original, copy]
	nRouted   int64
	nUnrouted int64
}

var errRoutes = errors.New(`config "routes" must be an object of value: "topic" (non-empty strings)`)

func (p *route) Init(config []byte) error {
	it := jsonf.Members(config)
	for it.Next() {
		switch key := string(it.Key()); key {
		case "field":
			f, ok := jsonf.Unquote(it.Value())
			if !ok || len(f) == 0 {
				return errors.New(`config "field" must be a non-empty string`)
			}
			p.field = string(f)
		case "routes":
			p.routes = map[string]string{}
			r := jsonf.Members(it.Value())
			for r.Next() {
				topic, ok := jsonf.Unquote(r.Value())
				if !ok || len(topic) == 0 {
					return errRoutes
				}
				p.routes[string(r.Key())] = string(topic)
			}
			if r.Err() != nil {
				return errRoutes
			}
		case "copy_to":
			t, ok := jsonf.Unquote(it.Value())
			if !ok || len(t) == 0 {
				return errors.New(`config "copy_to" must be a non-empty topic name`)
			}
			p.copyTo = string(t)
		default:
			return errors.New(`unknown config key "` + key + `"`)
		}
	}
	switch {
	case it.Err() != nil:
		return errors.New("config must be a JSON object")
	case p.field == "":
		return errors.New(`config needs "field": the value's field to route by`)
	case len(p.routes) == 0 && p.copyTo == "":
		return errors.New(`config needs "routes" or "copy_to" (or both): nothing to do`)
	}
	p.routed = make(map[string]evp.Verdict, len(p.routes))
	for _, topic := range p.routes {
		if p.copyTo == "" {
			p.routed[topic] = evp.RouteTo(topic)
		} else {
			p.routed[topic] = evp.Replace(evp.To(topic), evp.To(p.copyTo))
		}
	}
	if p.copyTo != "" {
		p.unrouted = evp.Replace(evp.Original(), evp.To(p.copyTo))
	}
	return nil
}

func (p *route) Process(_ string, recs []evp.Record, out []evp.Verdict) {
	for i := range recs {
		if topic, ok := p.target(recs[i].Value); ok {
			out[i] = p.routed[topic]
			p.nRouted++
		} else {
			out[i] = p.unrouted
			p.nUnrouted++
		}
	}
	evp.MetricAdd("routed", p.nRouted)
	evp.MetricAdd("unrouted", p.nUnrouted)
	p.nRouted, p.nUnrouted = 0, 0
}

// target returns the topic routes gives the value's field.
func (p *route) target(value []byte) (string, bool) {
	raw, ok := jsonf.Get(value, p.field)
	if !ok {
		return "", false
	}
	switch jsonf.KindOf(raw) {
	case jsonf.String:
		raw, _ = jsonf.Unquote(raw)
	case jsonf.Number, jsonf.Bool:
	default:
		return "", false
	}
	topic, ok := p.routes[string(raw)]
	return topic, ok
}

func init() { evp.Register(&route{}) }

func main() {}
