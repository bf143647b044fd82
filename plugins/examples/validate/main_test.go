package main

import (
	"os"
	"testing"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/evptest"
)

// TestCases runs the vectors validate-c must pass too.
func TestCases(t *testing.T) {
	t.Parallel()
	evptest.RunCases(t, "testdata/cases.json", func() evp.Plugin { return &validate{} })
}

// TestSampleEvents: events.jsonl, the README's example, gives what the
// README says.
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
	in, err := h.Instantiate(&validate{}, `{"required": ["id", "amount"]}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		vs, err := in.Process(ev.EventType, []evp.Record{ev.Record})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, vs[0].String())
	}
	want := []string{"KEEP", `REJECT(1, "missing field: amount")`, `REJECT(1, "not a JSON object")`, `REJECT(1, "not a JSON object")`}
	if len(got) != len(want) {
		t.Fatalf("verdicts %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %s, want %s", i, got[i], want[i])
		}
	}
	if m := h.Metrics(); m["rejected"] != 3 {
		t.Errorf("metric rejected = %d, want 3", m["rejected"])
	}
}

// BenchmarkProcess: a 100-record batch of valid orders, through the ABI
// encoding (natively).
func BenchmarkProcess(b *testing.B) {
	in, err := evptest.NewHost().Instantiate(&validate{}, `{"required": ["id", "customer", "total"]}`)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]evp.Record, 100)
	for i := range recs {
		recs[i] = evp.Record{Topic: "orders", Key: []byte("c-1029"), Value: []byte(
			`{"id":"o-1","customer":{"id":"c-1029","region":"eu"},"items":[{"sku":"A-100","qty":2}],"total":45.48,"currency":"EUR"}`)}
	}
	for b.Loop() {
		if _, err := in.Process("order.created", recs); err != nil {
			b.Fatal(err)
		}
	}
}
