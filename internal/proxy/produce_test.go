package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/pipeline"
)

// genRecords makes n keyed records with headers and binary-safe values.
func genRecords(topic string, n, keys int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{
			Topic: topic,
			Key:   []byte(fmt.Sprintf("key-%d", i%keys)),
			Value: append([]byte(fmt.Sprintf("value-%d-", i)), 0, 1, 2, 0xff, byte(i)),
			Headers: []kgo.RecordHeader{
				{Key: "seq", Value: []byte(fmt.Sprint(i))},
				{Key: "bin", Value: []byte{0, byte(i >> 8), byte(i)}},
			},
		}
	}
	return out
}

func produceAll(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
}

// assertSame checks that got holds exactly sent: same bytes, same partition
// (as the producer was told), same order within each partition.
func assertSame(t *testing.T, sent, got []*kgo.Record) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("got %d records upstream, sent %d", len(got), len(sent))
	}
	type pk struct{ p int32 }
	sentBy := map[int32][]*kgo.Record{}
	for _, r := range sent {
		sentBy[r.Partition] = append(sentBy[r.Partition], r)
	}
	gotBy := map[int32][]*kgo.Record{}
	for _, r := range got {
		gotBy[r.Partition] = append(gotBy[r.Partition], r)
	}
	for p, s := range sentBy {
		// Records of one partition must arrive in the order their
		// promises were assigned offsets: sort sent by offset.
		g := gotBy[p]
		if len(g) != len(s) {
			t.Fatalf("partition %d: got %d records, sent %d", p, len(g), len(s))
		}
		byOffset := map[int64]*kgo.Record{}
		for _, r := range s {
			byOffset[r.Offset] = r
		}
		for i, r := range g {
			want := byOffset[r.Offset]
			if want == nil {
				t.Fatalf("partition %d: upstream offset %d was never acknowledged to the producer", p, r.Offset)
			}
			if !bytes.Equal(r.Key, want.Key) || !bytes.Equal(r.Value, want.Value) {
				t.Fatalf("partition %d record %d: key/value %q/%q, want %q/%q", p, i, r.Key, r.Value, want.Key, want.Value)
			}
			if len(r.Headers) != len(want.Headers) {
				t.Fatalf("partition %d record %d: %d headers, want %d", p, i, len(r.Headers), len(want.Headers))
			}
			for j := range r.Headers {
				if r.Headers[j].Key != want.Headers[j].Key || !bytes.Equal(r.Headers[j].Value, want.Headers[j].Value) {
					t.Fatalf("partition %d record %d header %d: %v, want %v", p, i, j, r.Headers[j], want.Headers[j])
				}
			}
			if i > 0 && r.Offset <= g[i-1].Offset {
				t.Fatalf("partition %d: offsets out of order", p)
			}
		}
	}
	_ = pk{}
}

func TestProduceCodecs(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			topic := "codec-" + c.name
			cl := b.producer(t, kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(5*time.Millisecond))
			recs := genRecords(topic, 500, 13)
			produceAll(t, cl, recs)
			assertSame(t, recs, b.consumeUpstream(t, topic, len(recs)))
		})
	}
}

func TestProduceAcks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	cases := []struct {
		name string
		opts []kgo.Opt
	}{
		{"all", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
		{"leader", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"none", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			topic := "acks-" + c.name
			cl := b.producer(t, append(c.opts, kgo.MaxBufferedRecords(10000))...)
			recs := genRecords(topic, 300, 7)
			produceAll(t, cl, recs)
			got := b.consumeUpstream(t, topic, len(recs))
			if c.name == "none" {
				// No offsets come back with acks=0: compare per
				// partition in send order.
				sentBy := map[int32][][]byte{}
				for _, r := range recs {
					sentBy[r.Partition] = append(sentBy[r.Partition], r.Value)
				}
				gotBy := map[int32][][]byte{}
				for _, r := range got {
					gotBy[r.Partition] = append(gotBy[r.Partition], r.Value)
				}
				for p, vs := range sentBy {
					if len(gotBy[p]) != len(vs) {
						t.Fatalf("partition %d: %d records upstream, sent %d", p, len(gotBy[p]), len(vs))
					}
					for i := range vs {
						if !bytes.Equal(vs[i], gotBy[p][i]) {
							t.Fatalf("partition %d record %d: %q, want %q", p, i, gotBy[p][i], vs[i])
						}
					}
				}
				return
			}
			assertSame(t, recs, got)
		})
	}
}

func TestPartitionPreserved(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.cluster.CreateTopic("pinned", 5, nil); err != nil {
		t.Fatal(err)
	}
	cl := b.producer(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	recs := genRecords("pinned", 250, 3)
	for i, r := range recs {
		r.Partition = int32(i % 5)
	}
	want := make([]int32, len(recs))
	for i, r := range recs {
		want[i] = r.Partition
	}
	produceAll(t, cl, recs)
	got := b.consumeUpstream(t, "pinned", len(recs))
	for _, r := range got {
		var seq int
		fmt.Sscan(string(r.Headers[0].Value), &seq)
		if r.Partition != want[seq] {
			t.Fatalf("record %d landed in partition %d, producer chose %d", seq, r.Partition, want[seq])
		}
	}
	assertSame(t, recs, got)
}

func TestOrderingEightProducers(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	const producers, perProducer, keys = 8, 2000, 20
	topic := "ordering"
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		cl := b.producer(t, kgo.ProducerLinger(time.Millisecond))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := 0; i < perProducer; i++ {
				r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("p%d-k%d", p, i%keys)), Value: []byte(fmt.Sprintf("%d", i))}
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("produce: %v", err)
	default:
	}
	got := b.consumeUpstream(t, topic, producers*perProducer)
	last := map[string]int{}
	for _, r := range got {
		var i int
		fmt.Sscan(string(r.Value), &i)
		k := string(r.Key)
		if prev, ok := last[k]; ok && i <= prev {
			t.Fatalf("key %s: record %d arrived after %d", k, i, prev)
		}
		last[k] = i
	}
	if len(last) != producers*keys {
		t.Fatalf("%d keys upstream, want %d", len(last), producers*keys)
	}
}

func TestIdempotentRetryDeduplicated(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.cluster.CreateTopic("dedup", 1, nil); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.addr)
	ipid := kmsg.NewPtrInitProducerIDRequest()
	ipid.Version = 4
	pr := c.roundTrip(ipid).(*kmsg.InitProducerIDResponse)
	if pr.ErrorCode != 0 || pr.ProducerID < 0 {
		t.Fatalf("InitProducerId: code %d id %d", pr.ErrorCode, pr.ProducerID)
	}
	recs := []testRecord{{key: []byte("a"), value: []byte("one")}, {key: []byte("a"), value: []byte("two")}}
	batch0 := makeBatch(pr.ProducerID, pr.ProducerEpoch, 0, recs)
	first := c.roundTrip(produceReq(9, -1, "dedup", 0, append([]byte(nil), batch0...))).(*kmsg.ProduceResponse)
	retry := c.roundTrip(produceReq(9, -1, "dedup", 0, append([]byte(nil), batch0...))).(*kmsg.ProduceResponse)
	p1, p2 := first.Topics[0].Partitions[0], retry.Topics[0].Partitions[0]
	if p1.ErrorCode != 0 || p2.ErrorCode != 0 {
		t.Fatalf("codes %d, %d", p1.ErrorCode, p2.ErrorCode)
	}
	if p1.BaseOffset != p2.BaseOffset {
		t.Fatalf("retry answered offset %d, original %d", p2.BaseOffset, p1.BaseOffset)
	}
	// A gap in sequences is refused.
	gap := c.roundTrip(produceReq(9, -1, "dedup", 0, makeBatch(pr.ProducerID, pr.ProducerEpoch, 5, recs))).(*kmsg.ProduceResponse)
	if code := gap.Topics[0].Partitions[0].ErrorCode; code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap answered %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", code)
	}
	// The next in-order batch lands after the first.
	next := c.roundTrip(produceReq(9, -1, "dedup", 0, makeBatch(pr.ProducerID, pr.ProducerEpoch, 2, []testRecord{{key: []byte("a"), value: []byte("three")}}))).(*kmsg.ProduceResponse)
	if pp := next.Topics[0].Partitions[0]; pp.ErrorCode != 0 || pp.BaseOffset != p1.BaseOffset+2 {
		t.Fatalf("next batch: code %d offset %d, want 0 and %d", pp.ErrorCode, pp.BaseOffset, p1.BaseOffset+2)
	}
	got := b.consumeUpstream(t, "dedup", 3)
	var vals []string
	for _, r := range got {
		vals = append(vals, string(r.Value))
	}
	if fmt.Sprint(vals) != "[one two three]" {
		t.Fatalf("upstream holds %v, want [one two three] exactly once", vals)
	}
	// Nothing more arrived: the retry was not forwarded. The partition's
	// end offset says so exactly.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.upAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "dedup"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1 // latest
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lr, err := lo.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if end := lr.Topics[0].Partitions[0].Offset; end != 3 {
		t.Fatalf("upstream end offset %d, want 3", end)
	}
}

func TestUnroutedTopicRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, &setupOpts{routes: []pipeline.Route{{Name: "orders", Topics: []string{"orders", "orders.*"}, Delivery: pipeline.DeliveryDirect}}})
	c := dialRaw(t, b.addr)
	resp := c.roundTrip(produceReq(9, -1, "payments", 0, makeBatch(-1, -1, -1, []testRecord{{value: []byte("x")}}))).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("code %d, want TOPIC_AUTHORIZATION_FAILED", p.ErrorCode)
	}
	if p.ErrorMessage == nil || *p.ErrorMessage != `evproxy: no route matches topic "payments"` {
		t.Fatalf("message %v", p.ErrorMessage)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	for _, tn := range []string{"payments", "orders.eu"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(tn)
		md.Topics = append(md.Topics, rt)
	}
	md.AllowAutoTopicCreation = true
	mr := c.roundTrip(md).(*kmsg.MetadataResponse)
	codes := map[string]int16{}
	for _, t := range mr.Topics {
		codes[*t.Topic] = t.ErrorCode
	}
	if codes["payments"] != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("metadata for payments: code %d", codes["payments"])
	}
	if codes["orders.eu"] != 0 {
		t.Fatalf("metadata for routed orders.eu: code %d", codes["orders.eu"])
	}
	// A franz-go producer gets the error, not a hang.
	cl := b.producer(t, kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("franz-go producer got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

func TestTransactionalProducerRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c := dialRaw(t, b.addr)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.TransactionalID = kmsg.StringPtr("tx-1")
	resp := c.roundTrip(req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("code %d, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", resp.ErrorCode)
	}
}

func TestMetadataMirrorsUpstream(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.cluster.CreateTopic("seven", 7, nil); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.addr)
	for _, v := range []int16{0, 1, 4, 9, 12, 13} {
		md := kmsg.NewPtrMetadataRequest()
		md.Version = v
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("seven")
		md.Topics = append(md.Topics, rt)
		mr := c.roundTrip(md).(*kmsg.MetadataResponse)
		if len(mr.Brokers) != 1 || fmt.Sprintf("%s:%d", mr.Brokers[0].Host, mr.Brokers[0].Port) != b.addr {
			t.Fatalf("v%d brokers %+v, want only evproxy at %s", v, mr.Brokers, b.addr)
		}
		if len(mr.Topics) != 1 || len(mr.Topics[0].Partitions) != 7 {
			t.Fatalf("v%d: topics %+v, want seven with 7 partitions", v, mr.Topics)
		}
		for _, p := range mr.Topics[0].Partitions {
			if p.Leader != mr.Brokers[0].NodeID || p.ErrorCode != 0 {
				t.Fatalf("v%d partition %d: leader %d code %d", v, p.Partition, p.Leader, p.ErrorCode)
			}
		}
	}
}

func TestApiVersions(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c := dialRaw(t, b.addr)
	want := map[int16][2]int16{0: {0, 12}, 1: {4, 12}, 2: {1, 8}, 3: {0, 13}, 10: {0, 3}, 18: {0, 4}, 22: {0, 4}}
	check := func(resp *kmsg.ApiVersionsResponse) {
		t.Helper()
		if len(resp.ApiKeys) != len(want) {
			t.Fatalf("%d apis advertised, want %d", len(resp.ApiKeys), len(want))
		}
		for _, k := range resp.ApiKeys {
			if w, ok := want[k.ApiKey]; !ok || w != [2]int16{k.MinVersion, k.MaxVersion} {
				t.Fatalf("api %d advertised v%d-%d", k.ApiKey, k.MinVersion, k.MaxVersion)
			}
		}
	}
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: code %d", v, resp.ErrorCode)
		}
		check(resp)
	}
	// KIP-511: too new a version is answered in v0 with our range.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 5
	corr := c.send(req)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	c.recv(corr, resp)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	check(resp)
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.cluster.CreateTopic("pipe", 1, nil); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.addr)
	// Interleave slow (produce, metadata) and instant (api versions)
	// requests without waiting for answers.
	var corrs []int32
	var kinds []kmsg.Response
	for i := 0; i < 30; i++ {
		var req kmsg.Request
		switch i % 3 {
		case 0:
			req = produceReq(7, -1, "pipe", 0, makeBatch(-1, -1, -1, []testRecord{{value: []byte(fmt.Sprint(i))}}))
		case 1:
			r := kmsg.NewPtrApiVersionsRequest()
			r.Version = 3
			req = r
		default:
			r := kmsg.NewPtrMetadataRequest()
			r.Version = 7
			req = r
		}
		corrs = append(corrs, c.send(req))
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		kinds = append(kinds, resp)
	}
	var lastOffset int64 = -1
	for i, corr := range corrs {
		c.recv(corr, kinds[i])
		if pr, ok := kinds[i].(*kmsg.ProduceResponse); ok {
			p := pr.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.BaseOffset != lastOffset+1 {
				t.Fatalf("produce %d: code %d offset %d, want offset %d", i, p.ErrorCode, p.BaseOffset, lastOffset+1)
			}
			lastOffset = p.BaseOffset
		}
	}
}
