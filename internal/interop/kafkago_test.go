package interop

import (
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// TestKafkaGo produces with segmentio/kafka-go's Writer with lz4 and zstd.
// kafka-go has no idempotent producer; acks=all. Its default balancer is
// round robin, which ignores keys, so we use its Java-compatible murmur2
// balancer.
func TestKafkaGo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		codec kafka.Compression
	}{
		{name: "lz4", codec: kafka.Lz4},
		{name: "zstd", codec: kafka.Zstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			st := startStack(t)
			topic := newTopic(ctx, t, st)

			want := genRecords(numRecords, genOpts{NullKeys: true, Headers: richHeaders})
			expectPartitions(want, murmur2Partition)

			tr := &kafka.Transport{ClientID: "evproxy-interop", DialTimeout: 5 * time.Second}
			defer tr.CloseIdleConnections()
			var (
				mu       sync.Mutex
				acked    = make(map[int]int32, len(want))
				writeErr error
			)
			w := &kafka.Writer{
				Addr:         kafka.TCP(st.ProxyAddr),
				Topic:        topic,
				Balancer:     &kafka.Murmur2Balancer{},
				RequiredAcks: kafka.RequireAll,
				Compression:  tc.codec,
				BatchSize:    100,
				BatchTimeout: 5 * time.Millisecond, // the default, 1s, holds back partial batches
				WriteTimeout: 10 * time.Second,
				MaxAttempts:  5,
				Transport:    tr,
				ErrorLogger:  kafka.LoggerFunc(t.Logf),
				Completion: func(msgs []kafka.Message, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						writeErr = err
						return
					}
					for _, m := range msgs {
						acked[m.WriterData.(int)] = int32(m.Partition)
					}
				},
			}
			msgs := make([]kafka.Message, len(want))
			for i, r := range want {
				m := kafka.Message{Key: r.Key, Value: r.Value, WriterData: i}
				for _, h := range r.Headers {
					m.Headers = append(m.Headers, protocol.Header{Key: h.Key, Value: h.Value})
				}
				msgs[i] = m
			}
			start := time.Now()
			err := w.WriteMessages(ctx, msgs...)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("kafka-go: %v", err)
			}
			t.Logf("kafka-go sent %d records in %v", len(msgs), time.Since(start).Round(time.Millisecond))
			mu.Lock()
			if writeErr != nil {
				t.Errorf("kafka-go completion: %v", writeErr)
			}
			checkAcked(t, want, acked)
			mu.Unlock()

			got := consumeUpstream(ctx, t, st.UpstreamAddr, topic, len(want))
			assertRecords(t, want, got)
		})
	}
}
