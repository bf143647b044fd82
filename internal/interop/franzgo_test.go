package interop

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGo produces with franz-go's kgo, idempotent by default: one
// subtest per codec with the default (murmur2 sticky key) partitioner, one
// pinning every record to a partition, and one with leader acks, which
// needs idempotence off.
func TestFranzGo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		codec kgo.CompressionCodec
		pin   bool
		opts  []kgo.Opt
	}{
		{name: "gzip", codec: kgo.GzipCompression()},
		{name: "snappy", codec: kgo.SnappyCompression()},
		{name: "lz4", codec: kgo.Lz4Compression()},
		{name: "zstd", codec: kgo.ZstdCompression()},
		{
			name: "manual-partitions", codec: kgo.NoCompression(), pin: true,
			opts: []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())},
		},
		{
			name: "acks=leader", codec: kgo.Lz4Compression(),
			opts: []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			st := startStack(t)
			topic := newTopic(ctx, t, st)

			opts := genOpts{NullKeys: true, Headers: richHeaders}
			if tc.pin {
				opts.Partition = func(i int) int32 { return int32(i*7/3) % numPartitions }
			}
			want := genRecords(numRecords, opts)
			expectPartitions(want, murmur2Partition)

			cl, err := kgo.NewClient(append([]kgo.Opt{
				kgo.SeedBrokers(st.ProxyAddr),
				kgo.ClientID("evproxy-interop"),
				kgo.DefaultProduceTopic(topic),
				kgo.ProducerBatchCompression(tc.codec),
				kgo.RecordDeliveryTimeout(20 * time.Second),
			}, tc.opts...)...)
			if err != nil {
				t.Fatalf("franz-go producer: %v", err)
			}
			defer cl.Close()

			recs := make([]*kgo.Record, len(want))
			for i, r := range want {
				recs[i] = &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Partition: max(r.Partition, 0)}
			}
			start := time.Now()
			res := cl.ProduceSync(ctx, recs...)
			if err := res.FirstErr(); err != nil {
				t.Fatalf("franz-go produce: %v", err)
			}
			t.Logf("franz-go sent %d records in %v", len(recs), time.Since(start).Round(time.Millisecond))
			acked := make(map[int]int32, len(recs))
			for i, r := range recs {
				acked[i] = r.Partition
			}
			checkAcked(t, want, acked)

			got := consumeUpstream(ctx, t, st.UpstreamAddr, topic, len(want))
			assertRecords(t, want, got)
		})
	}
}
