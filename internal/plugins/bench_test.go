package plugins

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
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
			Headers:   []Header{{Key: "content-type", Value: []byte("application/json")}},
		}
	}
	return rs
}

// BenchmarkProcess is one Process call on a 100-record batch, per plugin
// and with the timeout off and on.
func BenchmarkProcess(b *testing.B) {
	for _, plugin := range []string{"keep", "addheader"} {
		for _, timeout := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/timeout=%v", plugin, timeout), func(b *testing.B) {
				tb := setup(b)
				p := tb.load(b, tb.configOne(plugin, timeout))
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

// BenchmarkCallOverhead is the fixed cost of a Process call: one record
// through the KEEP plugin, per interruption mechanism (see
// BenchmarkExamples). wazero's WithCloseOnContextDone starts a goroutine
// per guest call (two per Process call) and needs a context.WithTimeout.
func BenchmarkCallOverhead(b *testing.B) {
	for _, mode := range []struct {
		name       string
		instrument bool
		timeout    time.Duration
	}{
		{"checks=none", false, 0},
		{"checks=fuel/timeout=100ms", true, 100 * time.Millisecond},
		{"checks=wazero/timeout=100ms", false, 100 * time.Millisecond},
	} {
		b.Run(mode.name, func(b *testing.B) {
			tb := setup(b)
			if !mode.instrument {
				tb.rt.instrument = func([]byte) ([]byte, int, error) { return nil, 0, errInstrument }
			}
			p := tb.load(b, tb.configOne("keep", mode.timeout))
			rs := benchRecords()[:1]
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Process(ctx, "order.created", rs); err != nil {
					b.Fatal(err)
				}
			}
		})
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
			{Key: "content-type", Value: []byte("application/json")}, {Key: "via", Value: []byte("evproxy")}}}}}
	}
	enc := encodeVerdicts(vs)
	out := make([]Verdict, len(vs))
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if err := decodeVerdicts(enc, len(vs), out, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// examplePlugin returns the path of a built example plugin
// (plugins/examples/NAME/NAME.wasm, built by `make plugins`). Missing
// builds fail under CI and skip elsewhere.
func examplePlugin(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join("..", "..", "plugins", "examples", name, name+".wasm")
	if _, err := os.Stat(p); err != nil {
		msg := p + " is not built: run `make plugins`"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return p
}

// exampleConfig is the configuration of an example plugin as
// cmd/evproxy-bench runs it.
func (b *testBundle) exampleConfig(tb testing.TB, name string, timeout time.Duration) Config {
	cfg := b.configOne(name, timeout)
	cfg.Path = examplePlugin(tb, name)
	cfg.Config = []byte(`{"source":"bench"}`)
	cfg.Logger = zerolog.Nop()
	return cfg
}

// jsonRecords is a batch of n records like cmd/evproxy-bench's: 200-byte
// JSON objects, keys from a set of 32, no headers.
func jsonRecords(n int) []Record {
	rs := make([]Record, n)
	for i := range rs {
		v := fmt.Appendf(nil, `{"id":"%016x","type":"page_view","user":"u%07d","session":"%012x","ts":%d,"page":"/checkout","amount":%d.%02d,"ok":true,"note":"`,
			uint64(i)*0x9E3779B97F4A7C15, i*7919%10_000_000, uint64(i)*0x5851F42D>>16, 1_750_000_000_000+int64(i), i%1000, i%100)
		for len(v) < 198 {
			v = append(v, "lorem "[len(v)%6])
		}
		v = append(v, `"}`...)
		rs[i] = Record{Topic: "bench", Partition: int32(i % 6), Timestamp: 1_750_000_000_000 + int64(i),
			Key: fmt.Appendf(nil, "customer-%04d", i%32), Value: v}
	}
	return rs
}

// BenchmarkExamples is one Process call on a batch of JSON records with
// the example plugins cmd/evproxy-bench uses, on a warm instance, per
// interruption mechanism: none (no timeout, not instrumented), fuel
// (instrument.go, without and with a timeout) and wazero
// (WithCloseOnContextDone, the fallback).
func BenchmarkExamples(b *testing.B) {
	modes := []struct {
		name       string
		instrument bool
		timeout    time.Duration
	}{
		{"checks=none", false, 0},
		{"checks=fuel/timeout=0s", true, 0},
		{"checks=fuel/timeout=100ms", true, 100 * time.Millisecond},
		{"checks=wazero/timeout=100ms", false, 100 * time.Millisecond},
	}
	for _, plugin := range []string{"header-c", "enrich"} {
		for _, n := range []int{100, 1400} {
			for _, mode := range modes {
				b.Run(fmt.Sprintf("%s/records=%d/%s", plugin, n, mode.name), func(b *testing.B) {
					tb := setup(b)
					if !mode.instrument {
						tb.rt.instrument = func([]byte) ([]byte, int, error) { return nil, 0, errInstrument }
					}
					p := tb.load(b, tb.exampleConfig(b, plugin, mode.timeout))
					rs := jsonRecords(n)
					ctx := context.Background()
					process(b, p, rs) // the first call is BenchmarkFirstCalls'
					b.ReportAllocs()
					for b.Loop() {
						if _, err := p.Process(ctx, "order.created", rs); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/record")
					b.ReportMetric(float64(tb.errorCount(plugin, kindTimeout))/float64(b.N), "timeouts/op")
				})
			}
		}
	}
}

// firstCalls is how many calls BenchmarkFirstCalls times on each fresh
// instance.
const firstCalls = 4

// BenchmarkFirstCalls times the first calls of a fresh instance, made (and
// warmed up, unless cold) outside the timing, on batches of JSON records
// with the timeout on, the way a replacement instance meets its first
// batches. Metrics: ms/call-K is the mean latency of the K-th call
// (bisection after a timeout included), timeouts/op the timeouts per fresh
// instance. Warm-up: cold (none), default (defaultWarmBatch) or sampled (a
// batch of the benchmark's shape, as after the plugin processed one).
func BenchmarkFirstCalls(b *testing.B) {
	for _, plugin := range []string{"header-c", "enrich"} {
		for _, n := range []int{100, 1400} {
			for _, warm := range []string{"cold", "default", "sampled"} {
				b.Run(fmt.Sprintf("%s/records=%d/warmup=%s", plugin, n, warm), func(b *testing.B) {
					tb := setup(b)
					p := tb.load(b, tb.exampleConfig(b, plugin, 100*time.Millisecond))
					rs := jsonRecords(n)
					setWarmup(p, warm, rs)
					ctx := context.Background()
					var sum [firstCalls]time.Duration
					b.ResetTimer()
					for range b.N {
						b.StopTimer()
						freshInstance(b, p)
						b.StartTimer()
						for k := range firstCalls {
							t0 := time.Now()
							if _, err := p.Process(ctx, "order.created", rs); err != nil {
								b.Fatal(err)
							}
							sum[k] += time.Since(t0)
						}
					}
					b.StopTimer()
					for k, d := range sum {
						b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), fmt.Sprintf("ms/call-%d", k+1))
					}
					b.ReportMetric(float64(tb.errorCount(plugin, kindTimeout))/float64(b.N), "timeouts/op")
				})
			}
		}
	}
}
