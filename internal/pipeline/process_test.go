package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evproxy/evproxy/internal/batchcodec"
	"github.com/evproxy/evproxy/internal/plugins"
)

// funcPlugin is a plugin written in Go for tests: it maps each record to a
// verdict and records the event types it was called with.
type funcPlugin struct {
	fn    func(plugins.Record) plugins.Verdict
	calls []string
}

func (f *funcPlugin) ProcessWith(_ context.Context, et string, recs []plugins.Record, _ *plugins.Buffers) ([]plugins.Verdict, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s:%d", et, len(recs)))
	out := make([]plugins.Verdict, len(recs))
	for i, r := range recs {
		out[i] = f.fn(r)
	}
	return out, nil
}

type fakeSet map[string]*funcPlugin

func (s fakeSet) Get(name string) (Plugin, func()) {
	p, ok := s[name]
	if !ok {
		return nil, func() {}
	}
	return p, func() {}
}

func rec(key, value string, headers ...string) batchcodec.Record {
	r := batchcodec.Record{Key: []byte(key), Value: []byte(value), Timestamp: 1700000000000}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, batchcodec.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return r
}

func header(r batchcodec.Record, name string) string {
	for _, h := range r.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

func TestEventTypeAndRouteSelection(t *testing.T) {
	router, err := NewRouter([]Route{
		{Name: "orders-created", Topics: []string{"orders"}, EventTypes: []string{"order.created"}, EventTypeFrom: "/type"},
		{Name: "orders-rest", Topics: []string{"orders"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(hs ...string) func(string) ([]byte, bool) {
		return func(n string) ([]byte, bool) {
			for i := 0; i+1 < len(hs); i += 2 {
				if hs[i] == n {
					return []byte(hs[i+1]), true
				}
			}
			return nil, false
		}
	}
	cases := []struct {
		name      string
		headers   []string
		value     string
		route, et string
	}{
		{"ce_type header first", []string{"ce_type", "order.created", "event_type", "x"}, `{"type":"y"}`, "orders-created", "order.created"},
		{"event_type header second", []string{"event_type", "order.created"}, `{"type":"y"}`, "orders-created", "order.created"},
		{"json pointer third", nil, `{"type":"order.created"}`, "orders-created", "order.created"},
		{"topic last", nil, `not json`, "orders-rest", "orders"},
		{"other type falls through", []string{"ce_type", "order.paid"}, ``, "orders-rest", "order.paid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt, et := router.MatchRecord("orders", hdr(c.headers...), []byte(c.value))
			if rt == nil || rt.Name != c.route || et != c.et {
				t.Fatalf("route %v event type %q, want %s %q", rt, et, c.route, c.et)
			}
		})
	}
	if r, ok := router.Match("orders"); ok || r != nil {
		t.Fatal("orders routes depend on the event type; Match must say so")
	}
	if r, ok := router.Match("payments"); !ok || r != nil {
		t.Fatal("no route claims payments")
	}
	if _, err := pointerToPath("/a~1b/c.d"); err != nil {
		t.Fatal(err)
	}
	if p, _ := pointerToPath("/a~1b/c.d"); p != `a/b.c\.d` {
		t.Fatalf("pointer path %q", p)
	}
}

func TestProcessVerdicts(t *testing.T) {
	enrich := &funcPlugin{fn: func(r plugins.Record) plugins.Verdict {
		hs := append(append([]plugins.Header(nil), r.Headers...), plugins.Header{Key: "enriched", Value: []byte("yes")})
		return plugins.Verdict{Action: plugins.Replace, Outputs: []plugins.Output{{Headers: hs, HeadersSet: true}}}
	}}
	judge := &funcPlugin{fn: func(r plugins.Record) plugins.Verdict {
		switch {
		case bytes.HasPrefix(r.Value, []byte("bad")):
			return plugins.Verdict{Action: plugins.Reject, Code: 1, Reason: "missing field: id"}
		case bytes.HasPrefix(r.Value, []byte("drop")):
			return plugins.Verdict{Action: plugins.Drop}
		case bytes.HasPrefix(r.Value, []byte("route")):
			return plugins.Verdict{Action: plugins.Replace, Outputs: []plugins.Output{{Topic: "vip", TopicSet: true}}}
		case bytes.HasPrefix(r.Value, []byte("fan")):
			return plugins.Verdict{Action: plugins.Replace, Outputs: []plugins.Output{{}, {Topic: "audit", TopicSet: true}}}
		}
		return plugins.Verdict{Action: plugins.Keep}
	}}
	set := fakeSet{"enrich": enrich, "judge": judge}
	input := []batchcodec.Record{rec("k1", "ok-1"), rec("k2", "bad-1"), rec("k3", "drop-1"), rec("k4", "route-1"), rec("k5", "fan-1"), rec("k6", "ok-2")}
	for _, onReject := range []OnReject{RejectDeadLetter, RejectDrop, RejectError} {
		t.Run(string(onReject), func(t *testing.T) {
			router, _ := NewRouter([]Route{{Name: "r", Topics: []string{"orders"}, Plugins: []string{"enrich", "judge"}, OnReject: onReject}})
			p := &Processor{Router: router, Plugins: set, DeadLetter: DeadLetter{Enabled: true, TopicSuffix: ".failed"},
				Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
			out, err := p.Process(context.Background(), Input{Topic: "orders", Partition: 2, Records: input})
			if err != nil {
				t.Fatal(err)
			}
			if onReject == RejectError {
				if len(out.Errors) != 1 || out.Errors[0].Index != 1 || out.Errors[0].Message != "missing field: id" || len(out.Main)+len(out.Side) != 0 {
					t.Fatalf("on_reject=error outcome %+v", out)
				}
				return
			}
			var main []string
			for _, r := range out.Main {
				if header(r, "enriched") != "yes" {
					t.Fatalf("record %s not enriched by the first plugin", r.Value)
				}
				main = append(main, string(r.Value))
			}
			if strings.Join(main, ",") != "ok-1,fan-1,ok-2" {
				t.Fatalf("main records %v, want ok-1,fan-1,ok-2 in order", main)
			}
			var side []string
			for _, s := range out.Side {
				side = append(side, s.Topic+"="+string(s.Value))
			}
			want := "vip=route-1,audit=fan-1"
			if onReject == RejectDeadLetter {
				want += ",orders.failed=bad-1"
				dl := out.Side[len(out.Side)-1]
				for name, v := range map[string]string{
					"evproxy.error.stage": "plugin", "evproxy.error.reason": "missing field: id", "evproxy.error.plugin": "judge",
					"evproxy.original.topic": "orders", "evproxy.original.partition": "2", "evproxy.failed.at": "2026-01-02T03:04:05Z",
				} {
					if got := header(batchcodec.Record{Headers: dl.Headers}, name); got != v {
						t.Fatalf("dead letter header %s = %q, want %q", name, got, v)
					}
				}
				if header(batchcodec.Record{Headers: dl.Headers}, "enriched") != "" {
					t.Fatal("dead letter must carry the original record, not the enriched one")
				}
			}
			if strings.Join(side, ",") != want {
				t.Fatalf("side records %v, want %s", side, want)
			}
			if out.Rejected != 1 {
				t.Fatalf("rejected %d", out.Rejected)
			}
		})
	}
}

func TestProcessGroupsByEventType(t *testing.T) {
	p1 := &funcPlugin{fn: func(plugins.Record) plugins.Verdict { return plugins.Verdict{Action: plugins.Keep} }}
	router, _ := NewRouter([]Route{{Name: "r", Topics: []string{"t"}, Plugins: []string{"p"}}})
	p := &Processor{Router: router, Plugins: fakeSet{"p": p1}}
	input := []batchcodec.Record{rec("a", "1", "ce_type", "x"), rec("b", "2", "ce_type", "y"), rec("c", "3", "ce_type", "x")}
	out, err := p.Process(context.Background(), Input{Topic: "t", Records: input})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p1.calls) != "[x:2 y:1]" {
		t.Fatalf("plugin calls %v, want one call per event type", p1.calls)
	}
	var vals []string
	for _, r := range out.Main {
		vals = append(vals, string(r.Value))
	}
	if strings.Join(vals, "") != "123" {
		t.Fatalf("order after grouping %v, want input order", vals)
	}
}

func TestProcessRefusesUnroutedEventType(t *testing.T) {
	router, _ := NewRouter([]Route{{Name: "created", Topics: []string{"orders"}, EventTypes: []string{"order.created"}}})
	p := &Processor{Router: router}
	out, err := p.Process(context.Background(), Input{Topic: "orders", Records: []batchcodec.Record{
		rec("a", "1", "ce_type", "order.created"), rec("b", "2", "ce_type", "order.paid"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 1 || out.Errors[0].Index != 1 || out.Errors[0].Message != `evproxy: no route matches topic "orders" with event type "order.paid"` || len(out.Main) != 0 {
		t.Fatalf("outcome %+v", out)
	}
}

func TestProcessMergesGroupsInInputOrder(t *testing.T) {
	// Event type x fans out to a copy (main) and an audit record (side);
	// y drops "drop" values and keeps the rest. Outputs must come back in
	// input order across the two groups, each record's outputs together.
	fan := &funcPlugin{fn: func(r plugins.Record) plugins.Verdict {
		return plugins.Verdict{Action: plugins.Replace, Outputs: []plugins.Output{
			{Value: append(append([]byte(nil), r.Value...), 'a'), ValueSet: true},
			{Value: append(append([]byte(nil), r.Value...), 'b'), ValueSet: true},
			{Topic: "audit", TopicSet: true},
		}}
	}}
	drop := &funcPlugin{fn: func(r plugins.Record) plugins.Verdict {
		if bytes.HasPrefix(r.Value, []byte("drop")) {
			return plugins.Verdict{Action: plugins.Drop}
		}
		return plugins.Verdict{Action: plugins.Keep}
	}}
	router, _ := NewRouter([]Route{
		{Name: "x", Topics: []string{"t"}, EventTypes: []string{"x"}, Plugins: []string{"fan"}},
		{Name: "y", Topics: []string{"t"}, EventTypes: []string{"y"}, Plugins: []string{"drop"}},
	})
	p := &Processor{Router: router, Plugins: fakeSet{"fan": fan, "drop": drop}}
	input := []batchcodec.Record{
		rec("1", "1", "ce_type", "x"), rec("2", "2", "ce_type", "y"), rec("3", "drop3", "ce_type", "y"),
		rec("4", "4", "ce_type", "x"), rec("5", "5", "ce_type", "y"), rec("6", "6", "ce_type", "x"),
	}
	out, err := p.Process(context.Background(), Input{Topic: "t", Records: input})
	if err != nil {
		t.Fatal(err)
	}
	var main, side []string
	for _, r := range out.Main {
		main = append(main, string(r.Value))
	}
	for _, r := range out.Side {
		side = append(side, r.Topic+"="+string(r.Value))
	}
	if got, want := strings.Join(main, ","), "1a,1b,2,4a,4b,5,6a,6b"; got != want {
		t.Fatalf("main records %s, want %s", got, want)
	}
	if got, want := strings.Join(side, ","), "audit=1,audit=4,audit=6"; got != want {
		t.Fatalf("side records %s, want %s", got, want)
	}
	if out.Dropped != 0 || out.Rejected != 0 {
		t.Fatalf("a plugin's DROP is not a rejection: %+v", out)
	}
	if fmt.Sprint(fan.calls, drop.calls) != "[x:3] [y:3]" {
		t.Fatalf("plugin calls %v %v, want one call per event type", fan.calls, drop.calls)
	}
}

// TestProcessAllocatesPerBatch guards the hot path: Process allocates per
// batch, not per record, when a plugin keeps or rewrites every record.
func TestProcessAllocatesPerBatch(t *testing.T) {
	keep := &funcPlugin{fn: func(plugins.Record) plugins.Verdict { return plugins.Verdict{Action: plugins.Keep} }}
	outs := []plugins.Output{{Headers: []plugins.Header{{Key: "enriched-by", Value: []byte("bench")}}, HeadersSet: true}}
	replace := &funcPlugin{fn: func(plugins.Record) plugins.Verdict {
		return plugins.Verdict{Action: plugins.Replace, Outputs: outs}
	}}
	for _, name := range []string{"keep", "replace"} {
		t.Run(name, func(t *testing.T) {
			router, _ := NewRouter([]Route{{Name: "r", Topics: []string{"t"}, Plugins: []string{name}}})
			p := &Processor{Router: router, Plugins: fakeSet{"keep": keep, "replace": replace}}
			allocs := func(n int) float64 {
				recs := make([]batchcodec.Record, n)
				for i := range recs {
					recs[i] = rec("k", "v", "ce_type", "order.created")
				}
				return testing.AllocsPerRun(20, func() {
					keep.calls, replace.calls = keep.calls[:0], replace.calls[:0]
					if _, err := p.Process(context.Background(), Input{Topic: "t", Records: recs}); err != nil {
						t.Fatal(err)
					}
				})
			}
			// The test plugins allocate their verdicts (one slice per
			// call, and the call log), like a real plugin's Process.
			// The scratch pool makes a few more allocations vary (under
			// the race detector sync.Pool drops a quarter of what it is
			// given, so the scratch's slices are sometimes made anew);
			// one allocation per record would be about 1,000 more.
			if small, large := allocs(10), allocs(1000); large > small+20 {
				t.Fatalf("Process allocates %.0f times for 1000 records, %.0f for 10: allocations grow with records", large, small)
			}
		})
	}
}
