package proxy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/plugins"
	"github.com/evproxy/evproxy/internal/proxytest"
)

// BenchmarkProducePath sends pipelined produce requests (one 100-record
// batch of 200-byte values each) over one connection, directly to the
// broker, through evproxy, and through evproxy with the header-c example
// plugin on every record, against a blackholed kfake. The ratios are the
// proxy's and the plugin path's cost per request; -benchmem shows their
// allocations.
func BenchmarkProducePath(b *testing.B) {
	recs := make([]testRecord, 100)
	for i := range recs {
		recs[i] = testRecord{key: []byte(fmt.Sprintf("key-%d", i%10)), value: make([]byte, 200), headers: [][2]string{{"content-type", "application/json"}}}
	}
	batch := makeBatch(-1, -1, -1, recs)
	kopts := []kfake.Opt{kfake.BlackholeProduce(), kfake.SeedTopics(1, "bench")}
	plain := proxytest.Start(b, &proxytest.Options{KfakeOpts: kopts})
	targets := []struct {
		name string
		addr func(b *testing.B) string
	}{
		{"direct", func(*testing.B) string { return plain.UpstreamAddr }},
		{"evproxy", func(*testing.B) string { return plain.ProxyAddr }},
		{"evproxy+header-c", func(b *testing.B) string {
			wasm := examplePlugin(b, "header-c")
			s := proxytest.Start(b, &proxytest.Options{
				KfakeOpts: kopts,
				Routes:    []pipeline.Route{{Name: "all", Topics: []string{"*"}, Plugins: []string{"header-c"}, Delivery: pipeline.DeliveryDirect}},
				Plugins:   []plugins.Config{{Name: "header-c", Path: wasm, Config: []byte(`{"source":"bench"}`), Timeout: 100 * time.Millisecond}},
			})
			return s.ProxyAddr
		}},
	}
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			c := dialRaw(b, target.addr(b))
			const window = 8
			corrs := make(chan int32, window)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for corr := range corrs {
					resp := kmsg.NewPtrProduceResponse()
					resp.Version = 7
					c.recv(corr, resp)
					if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
						panic(fmt.Sprintf("produce error %d", code))
					}
				}
			}()
			for i := 0; i < b.N; i++ {
				corrs <- c.send(produceReq(7, -1, "bench", 0, batch))
			}
			close(corrs)
			<-done
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}

// examplePlugin returns the path of a built example plugin; a missing
// build skips the benchmark, naming the command that builds it.
func examplePlugin(b *testing.B, name string) string {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "plugins", "examples", name, name+".wasm")
	if _, err := os.Stat(p); err != nil {
		b.Skipf("%s is not built: run `make plugins`", p)
	}
	return p
}
