package main

import (
	"os"
	"testing"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/evptest"
)

func TestCases(t *testing.T) {
	t.Parallel()
	evptest.RunCases(t, "testdata/cases.json", func() evp.Plugin { return &route{} })
}

// TestSampleEvents: events.jsonl, the README's example, gives what the
// README says, record for record.
func TestSampleEvents(t *testing.T) {
	t.Parallel()
	f, err := os.Open("events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := evptest.ReadEvents(f)
	if err != nil {
		t.Fatal(err)
	}
	h := evptest.NewHost()
	in, err := h.Instantiate(&route{}, `{"field":"region","routes":{"eu":"orders.eu","us":"orders.us"},"copy_to":"orders.audit"}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		vs, err := in.Process(ev.EventType, []evp.Record{ev.Record})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range evptest.Apply(ev.Record, vs[0]) {
			got = append(got, string(r.Key)+"->"+r.Topic)
		}
	}
	want := []string{"c-1029->orders.eu", "c-1029->orders.audit", "c-2211->orders.us", "c-2211->orders.audit",
		"c-3001->orders", "c-3001->orders.audit"}
	if len(got) != len(want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: %s, want %s", i, got[i], want[i])
		}
	}
	if m := h.Metrics(); m["routed"] != 2 || m["unrouted"] != 1 {
		t.Errorf("metrics %v", m)
	}
}

// BenchmarkProcess: a 100-record batch, half routed, with copy_to, through
// the ABI encoding (natively).
func BenchmarkProcess(b *testing.B) {
	in, err := evptest.NewHost().Instantiate(&route{}, `{"field":"region","routes":{"eu":"orders.eu"},"copy_to":"audit"}`)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]evp.Record, 100)
	for i := range recs {
		region := []string{"eu", "us"}[i%2]
		recs[i] = evp.Record{Topic: "orders", Key: []byte("c-1029"), Value: []byte(
			`{"id":"o-1","customer":{"id":"c-1029"},"items":[{"sku":"A-100","qty":2}],"total":45.48,"region":"` + region + `"}`)}
	}
	for b.Loop() {
		if _, err := in.Process("order.created", recs); err != nil {
			b.Fatal(err)
		}
	}
}
