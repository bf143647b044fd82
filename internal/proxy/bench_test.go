package proxy_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/proxytest"
)

// BenchmarkProducePath sends pipelined produce requests (one 100-record
// batch of 200-byte values each) over one connection, directly to the
// broker and through evproxy, against a blackholed kfake. The ratio of the
// two is the proxy's cost per request; -benchmem shows its allocations.
func BenchmarkProducePath(b *testing.B) {
	recs := make([]testRecord, 100)
	for i := range recs {
		recs[i] = testRecord{key: []byte(fmt.Sprintf("key-%d", i%10)), value: make([]byte, 200)}
	}
	batch := makeBatch(-1, -1, -1, recs)
	s := proxytest.Start(b, &proxytest.Options{KfakeOpts: []kfake.Opt{kfake.BlackholeProduce(), kfake.SeedTopics(1, "bench")}})
	for _, target := range []struct{ name, addr string }{{"direct", s.UpstreamAddr}, {"evproxy", s.ProxyAddr}} {
		b.Run(target.name, func(b *testing.B) {
			c := dialRaw(b, target.addr)
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
		})
	}
}
