package proxy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestLegacyMessageSets produces with sarama configured as an old client, so
// it sends Produce v0 (magic 0) or v2 (magic 1) message sets, compressed;
// evproxy converts them to v2 batches and the upstream holds the same keys
// and values in the same order.
func TestLegacyMessageSets(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	cases := []struct {
		name    string
		version sarama.KafkaVersion
		codec   sarama.CompressionCodec
	}{
		{"v0.8.2 none", sarama.V0_8_2_0, sarama.CompressionNone},
		{"v0.8.2 gzip", sarama.V0_8_2_0, sarama.CompressionGZIP},
		{"v0.8.2 snappy", sarama.V0_8_2_0, sarama.CompressionSnappy},
		{"v0.10 gzip", sarama.V0_10_0_0, sarama.CompressionGZIP},
		{"v0.10 lz4", sarama.V0_10_0_0, sarama.CompressionLZ4},
		{"v0.10 snappy", sarama.V0_10_0_0, sarama.CompressionSnappy},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			topic := fmt.Sprintf("legacy-%d", i)
			if err := b.cluster.CreateTopic(topic, 1, nil); err != nil {
				t.Fatal(err)
			}
			cfg := sarama.NewConfig()
			cfg.Version = c.version
			cfg.Producer.Compression = c.codec
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Flush.Messages = 20
			cfg.Producer.Flush.Frequency = 5 * time.Millisecond
			cfg.Net.DialTimeout = 5 * time.Second
			prod, err := sarama.NewAsyncProducer([]string{b.addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			const n = 200
			go func() {
				for i := 0; i < n; i++ {
					prod.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i%5)), Value: sarama.ByteEncoder(fmt.Appendf(nil, "value-%d", i))}
				}
			}()
			timeout := time.After(30 * time.Second)
			for acked := 0; acked < n; {
				select {
				case <-prod.Successes():
					acked++
				case err := <-prod.Errors():
					t.Fatalf("produce: %v", err.Err)
				case <-timeout:
					t.Fatalf("%d of %d acknowledged", acked, n)
				}
			}
			prod.Close()
			got := b.consumeUpstream(t, topic, n)
			for i, r := range got {
				if string(r.Value) != fmt.Sprintf("value-%d", i) || string(r.Key) != fmt.Sprintf("k%d", i%5) {
					t.Fatalf("record %d: %q=%q", i, r.Key, r.Value)
				}
			}
		})
	}
}
