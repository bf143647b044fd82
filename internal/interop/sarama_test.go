package interop

import (
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestSarama produces with IBM/sarama's idempotent producer and snappy at
// three protocol versions: sarama picks request versions from
// Config.Version (capped by ApiVersions), so 2.1 sends Produce v7
// (non-flexible), the default 2.8 Produce v9 (flexible) and 4.0 Produce v10.
func TestSarama(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		version sarama.KafkaVersion
	}{
		{name: "snappy-v2.1", version: sarama.V2_1_0_0},
		{name: "snappy-default", version: sarama.DefaultVersion},
		{name: "snappy-v4.0", version: sarama.V4_0_0_0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			st := startStack(t)
			topic := newTopic(ctx, t, st)

			want := genRecords(numRecords, genOpts{NullKeys: true, Headers: richHeaders})
			expectPartitions(want, saramaHashPartition)

			cfg := sarama.NewConfig()
			cfg.ClientID = "evproxy-interop"
			cfg.Version = tc.version // headers and idempotence need >= 0.11
			cfg.Producer.Idempotent = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll // required by Idempotent
			cfg.Net.MaxOpenRequests = 1                   // required by Idempotent
			cfg.Producer.Retry.Max = 5
			cfg.Producer.Retry.Backoff = 50 * time.Millisecond
			cfg.Producer.Return.Successes = true // required by SyncProducer
			cfg.Producer.Compression = sarama.CompressionSnappy
			cfg.Producer.Partitioner = sarama.NewHashPartitioner // the default, spelled out
			cfg.Producer.Timeout = 10 * time.Second
			cfg.Metadata.AllowAutoTopicCreation = false
			cfg.Net.DialTimeout = 5 * time.Second
			cfg.Net.ReadTimeout = 10 * time.Second
			cfg.Net.WriteTimeout = 10 * time.Second

			p, err := sarama.NewSyncProducer([]string{st.ProxyAddr}, cfg)
			if err != nil {
				t.Fatalf("sarama producer: %v", err)
			}
			defer func() {
				if err := p.Close(); err != nil {
					t.Errorf("closing sarama producer: %v", err)
				}
			}()

			msgs := make([]*sarama.ProducerMessage, len(want))
			for i, r := range want {
				m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(r.Value), Metadata: i}
				if r.Key != nil {
					m.Key = sarama.ByteEncoder(r.Key)
				}
				for _, h := range r.Headers {
					m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
				}
				msgs[i] = m
			}
			start := time.Now()
			if err := p.SendMessages(msgs); err != nil {
				var perrs sarama.ProducerErrors
				if errors.As(err, &perrs) && len(perrs) > 0 {
					t.Fatalf("sarama: %d records failed, first: %v", len(perrs), perrs[0].Err)
				}
				t.Fatalf("sarama: %v", err)
			}
			t.Logf("sarama sent %d records in %v", len(msgs), time.Since(start).Round(time.Millisecond))
			acked := make(map[int]int32, len(msgs))
			for _, m := range msgs {
				acked[m.Metadata.(int)] = m.Partition
			}
			checkAcked(t, want, acked)

			got := consumeUpstream(ctx, t, st.UpstreamAddr, topic, len(want))
			assertRecords(t, want, got)
		})
	}
}
