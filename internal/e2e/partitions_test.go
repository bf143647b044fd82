package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/batchcodec"
	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/plugins"
	"github.com/evproxy/evproxy/internal/proxytest"
)

// The plugin-path partitions of one produce request are processed in
// parallel: each must come out whole and in order, with its own answer,
// and a partition that fails must not affect the others.
func TestPluginPartitionsOfOneRequest(t *testing.T) {
	t.Parallel()
	const perPartition = 200
	s := proxytest.Start(t, &proxytest.Options{
		KfakeOpts: []kfake.Opt{kfake.SeedTopics(4, "orders")},
		Routes: []pipeline.Route{{Name: "orders", Topics: []string{"orders"}, EventTypes: []string{"order.*"},
			Plugins: []string{"header-c"}, OnReject: pipeline.RejectDeadLetter, Delivery: pipeline.DeliveryDirect}},
		Plugins: []plugins.Config{plugin("header-c", example(t, "header-c"), `{"source":"e2e"}`)},
	})
	var enc batchcodec.Encoder
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "orders"
	for p := range int32(4) {
		recs := make([]batchcodec.Record, perPartition)
		for i := range recs {
			et := "order.created"
			if p == 2 && i == perPartition/2 {
				et = "invoice.paid" // no route claims it: partition 2 fails
			}
			recs[i] = batchcodec.Record{Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "p%d-%03d", p, i),
				Headers: []batchcodec.Header{{Key: "ce_type", Value: []byte(et)}}, Timestamp: time.Now().UnixMilli()}
		}
		batch, err := enc.Encode(nil, 0, -1, -1, -1, recs)
		if err != nil {
			t.Fatal(err)
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	raw := producer(t, s.ProxyAddr, kgo.DisableIdempotentWrite())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kresp, err := raw.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	answers := kresp.(*kmsg.ProduceResponse).Topics[0].Partitions
	if len(answers) != 4 {
		t.Fatalf("%d partition answers, want 4", len(answers))
	}
	for i, a := range answers {
		want := int16(0)
		if a.Partition == 2 {
			want = kerr.InvalidRecord.Code
		}
		if a.Partition != int32(i) || a.ErrorCode != want {
			t.Fatalf("answer %d: partition %d, error code %d, want partition %d, code %d", i, a.Partition, a.ErrorCode, i, want)
		}
	}
	got := consume(t, s.UpstreamAddr, "orders", 3*perPartition)
	next := map[int32]int{}
	for _, r := range got {
		if r.Partition == 2 {
			t.Fatalf("a record of the failed partition 2 was written: %s", r.Value)
		}
		if want := fmt.Sprintf("p%d-%03d", r.Partition, next[r.Partition]); string(r.Value) != want {
			t.Fatalf("partition %d: record %q, want %q (order lost or records mixed between partitions)", r.Partition, r.Value, want)
		}
		next[r.Partition]++
		if v, ok := header(r, "enriched-by"); !ok || v != "e2e" {
			t.Fatalf("record %s: enriched-by %q, want e2e", r.Value, v)
		}
	}
	for _, p := range []int32{0, 1, 3} {
		if next[p] != perPartition {
			t.Fatalf("partition %d holds %d records, want %d", p, next[p], perPartition)
		}
	}
}
