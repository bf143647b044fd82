package main

import (
	"os"
	"regexp"
	"testing"
	"time"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/evptest"
)

func TestCases(t *testing.T) {
	t.Parallel()
	evptest.RunCases(t, "testdata/cases.json", func() evp.Plugin { return &enrich{} })
}

var uuidv7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestIDs: generated ce_ids are UUIDv7 carrying the host's clock, distinct
// within and across batches; ce_time follows the clock.
func TestIDs(t *testing.T) {
	t.Parallel()
	h := evptest.NewHost()
	h.SetNow(1714566896789)
	in, err := h.Instantiate(&enrich{}, `{"source":"checkout"}`)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]evp.Record, 500)
	for i := range recs {
		recs[i] = evp.Record{Topic: "orders", Value: []byte(`{}`)}
	}
	seen := map[string]bool{}
	for batch := range 3 {
		vs, err := in.Process("order.created", recs)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vs {
			out := evptest.Apply(recs[i], v)[0]
			id, _ := out.Header("ce_id")
			if !uuidv7.Match(id) || seen[string(id)] {
				t.Fatalf("batch %d record %d: ce_id %q (a UUIDv7 never seen before?)", batch, i, id)
			}
			seen[string(id)] = true
			if want := []string{"018f3426-9c95", "018f3426-a17d", "018f3426-a565"}[batch]; string(id[:13]) != want {
				t.Errorf("batch %d: ce_id %s does not start with the clock %s", batch, id, want)
			}
			ts, _ := out.Header("ce_time")
			if want := []string{"2024-05-01T12:34:56.789Z", "2024-05-01T12:34:58.045Z", "2024-05-01T12:34:59.045Z"}[batch]; string(ts) != want {
				t.Errorf("batch %d: ce_time %s, want %s", batch, ts, want)
			}
		}
		h.Advance([]time.Duration{1256 * time.Millisecond, time.Second, 0}[batch])
	}
	if m := h.Metrics(); m["ids_generated"] != 1500 {
		t.Errorf("ids_generated = %d", m["ids_generated"])
	}
}

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
	in, err := evptest.NewHost().Instantiate(&enrich{}, `{"source":"checkout"}`)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		vs, err := in.Process(ev.EventType, []evp.Record{ev.Record})
		if err != nil {
			t.Fatal(err)
		}
		out := evptest.Apply(ev.Record, vs[0])
		if len(out) != 1 {
			t.Fatalf("event %d: %v", i, vs[0])
		}
		if v, _ := out[0].Header("enriched-by"); string(v) != "checkout" {
			t.Errorf("event %d: enriched-by %q", i, v)
		}
	}
}

// BenchmarkProcess: a 100-record batch of orders without ce_id and
// ce_time, through the ABI encoding (natively).
func BenchmarkProcess(b *testing.B) {
	in, err := evptest.NewHost().Instantiate(&enrich{}, `{"source":"checkout"}`)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]evp.Record, 100)
	for i := range recs {
		recs[i] = evp.Record{Topic: "orders", Key: []byte("c-1029"), Value: []byte(
			`{"id":"o-1","customer":{"id":"c-1029","region":"eu"},"items":[{"sku":"A-100","qty":2}],"total":45.48,"currency":"EUR"}`),
			Headers: []evp.Header{{Name: "ce_type", Value: []byte("order.created")}}}
	}
	for b.Loop() {
		if _, err := in.Process("order.created", recs); err != nil {
			b.Fatal(err)
		}
	}
}
