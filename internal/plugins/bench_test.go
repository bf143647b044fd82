package plugins

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// benchRecords is a 100-record batch with 16-byte keys, 200-byte values
// and one header each.
func benchRecords() []Record {
	rs := make([]Record, 100)
	for i := range rs {
		rs[i] = Record{
			Topic:     "orders",
			Partition: 3,
			Timestamp: 1700000000000 + int64(i),
			Key:       fmt.Appendf(nil, "customer-%07d", i),
			Value:     bytes.Repeat([]byte{'v'}, 200),
			Headers:   []Header{{Name: "content-type", Value: []byte("application/json")}},
		}
	}
	return rs
}

// BenchmarkProcess is one Process call on a 100-record batch, per plugin
// and with the timeout off and on (WithCloseOnContextDone, a context with a
// deadline per call).
func BenchmarkProcess(b *testing.B) {
	for _, plugin := range []string{"keep", "addheader"} {
		for _, timeout := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/timeout=%v", plugin, timeout), func(b *testing.B) {
				tb := setup(b)
				cfg := tb.config(plugin)
				cfg.Timeout = timeout
				cfg.PoolSize = 1
				p := tb.load(b, cfg)
				rs := benchRecords()
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					vs, err := p.Process(ctx, "order.created", rs)
					if err != nil || len(vs) != len(rs) {
						b.Fatal(err, len(vs))
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/record")
			})
		}
	}
}

// BenchmarkProcessParallel is BenchmarkProcess with the KEEP plugin from
// GOMAXPROCS goroutines sharing one pool.
func BenchmarkProcessParallel(b *testing.B) {
	tb := setup(b)
	cfg := tb.config("keep")
	cfg.PoolSize = 0 // GOMAXPROCS
	p := tb.load(b, cfg)
	rs := benchRecords()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Process(context.Background(), "order.created", rs); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDecodeVerdicts decodes 100 REPLACE verdicts like addheader's.
func BenchmarkDecodeVerdicts(b *testing.B) {
	vs := make([]Verdict, 100)
	for i := range vs {
		vs[i] = Verdict{Action: Replace, Outputs: []Output{{HeadersSet: true, Headers: []Header{
			{Name: "content-type", Value: []byte("application/json")}, {Name: "via", Value: []byte("evproxy")}}}}}
	}
	enc := encodeVerdicts(vs)
	out := make([]Verdict, len(vs))
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if err := decodeVerdicts(enc, len(vs), out); err != nil {
			b.Fatal(err)
		}
	}
}
