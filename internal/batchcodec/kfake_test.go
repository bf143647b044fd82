package batchcodec

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/evproxy/evproxy/internal/recordbatch"
)

const kfakeTopic = "batchcodec"

var kgoCodecs = map[int16]kgo.CompressionCodec{
	codecNone:   kgo.NoCompression(),
	codecGzip:   kgo.GzipCompression(),
	codecSnappy: kgo.SnappyCompression(),
	codecLZ4:    kgo.Lz4Compression(),
	codecZstd:   kgo.ZstdCompression(),
}

// crossRecords are the records the cross-checks produce: null and empty
// keys, values and header values, many headers, large compressible and
// incompressible values (several LZ4 blocks and xerial chunks), and
// unordered timestamps.
func crossRecords() []Record {
	recs := numbered(200, 300)
	recs[0].Key, recs[0].Value = nil, nil
	recs[1].Key, recs[1].Value = []byte{}, []byte{}
	recs[2].Headers = []Header{{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}, {Key: "", Value: []byte("x")}}
	for h := range 100 {
		recs[3].Headers = append(recs[3].Headers, Header{Key: fmt.Sprintf("h-%d", h), Value: []byte(fmt.Sprint(h))})
	}
	recs[4].Value = text(4, 200_000)
	recs[5].Value = noise(100_000)
	recs[6].Timestamp -= 5_000
	recs[7].Timestamp += 5_000
	return recs
}

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, kfakeTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDecodeFranzGoBatches produces with franz-go's producer for each
// codec, captures the raw batches of the produce requests kfake receives,
// and decodes them to exactly the records produced.
func TestDecodeFranzGoBatches(t *testing.T) {
	t.Parallel()
	for _, codec := range codecs {
		t.Run(codecNames[codec], func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			c := newCluster(t)
			var (
				mu      sync.Mutex
				batches [][]byte
			)
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				for _, topic := range req.(*kmsg.ProduceRequest).Topics {
					for _, p := range topic.Partitions {
						mu.Lock()
						batches = append(batches, bytes.Clone(p.Records))
						mu.Unlock()
					}
				}
				return nil, nil, false // observe only: kfake handles it
			})
			cl, err := kgo.NewClient(
				kgo.SeedBrokers(c.ListenAddrs()...),
				kgo.DefaultProduceTopic(kfakeTopic),
				kgo.ProducerBatchCompression(kgoCodecs[codec]),
				kgo.ProducerLinger(50*time.Millisecond),
			)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()

			want := crossRecords()
			krecs := make([]*kgo.Record, len(want))
			for i, r := range want {
				kr := &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)}
				for _, h := range r.Headers {
					kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
				}
				krecs[i] = kr
			}
			if err := cl.ProduceSync(ctx, krecs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}

			mu.Lock()
			defer mu.Unlock()
			var (
				dec     Decoder
				got     []Record
				codecOK bool
			)
			for _, data := range batches {
				for len(data) > 0 {
					h, err := recordbatch.Parse(data)
					if err != nil {
						t.Fatalf("franz-go batch: %v", err)
					}
					b, err := dec.Decode(data[:h.Size()], 64<<20)
					if err != nil {
						t.Fatalf("decode franz-go %s batch: %v", codecNames[codec], err)
					}
					codecOK = codecOK || b.Attributes&recordbatch.AttrCompressionMask == codec
					if codec == codecSnappy && b.Attributes&recordbatch.AttrCompressionMask == codec {
						t.Logf("snappy batch of %d records, xerial framed: %v", len(b.Records), bytes.HasPrefix(data[headerLen:], xerialMagic))
					}
					if b.ProducerID != h.ProducerID || b.BaseSequence != h.BaseSequence || len(b.Records) != int(h.NumRecords) {
						t.Fatalf("batch %+v disagrees with header %+v", b, h)
					}
					got = append(got, cloneRecords(b.Records)...)
					data = data[h.Size():]
				}
			}
			if !codecOK {
				t.Fatalf("no captured batch used %s", codecNames[codec])
			}
			if err := diffRecordsNoOffsets(want, got); err != nil {
				t.Fatalf("%d batches: %v", len(batches), err)
			}
		})
	}
}

// TestEncodeReadByFranzGo produces batches made by Encode with raw produce
// requests to kfake, which checks their framing and CRC, and reads them back
// with franz-go's consumer, which decompresses and decodes them.
func TestEncodeReadByFranzGo(t *testing.T) {
	t.Parallel()
	// CreateTime only: for LogAppendTime kfake stamps the batch's
	// timestamps without updating its CRC, so franz-go's consumer refuses
	// the batch. TestRoundTrip covers the attribute bit.
	for _, codec := range codecs {
		t.Run(codecNames[codec], func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			c := newCluster(t)
			cl, err := kgo.NewClient(
				kgo.SeedBrokers(c.ListenAddrs()...),
				kgo.ConsumeTopics(kfakeTopic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				// Produce v13 addresses topics by id; the raw
				// request below names its topic.
				kgo.MaxVersions(kversion.V3_9_0()),
			)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()

			want := crossRecords()
			var enc Encoder
			// Two batches, to check consecutive offsets too.
			for _, part := range [][]Record{want[:100], want[100:]} {
				b, err := enc.Encode(nil, codec, -1, -1, -1, part)
				if err != nil {
					t.Fatal(err)
				}
				req := kmsg.NewPtrProduceRequest()
				req.Acks = -1
				req.TimeoutMillis = 5000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = kfakeTopic
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition = 0
				rp.Records = b
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					t.Fatalf("produce: %v", err)
				}
				if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
					t.Fatalf("kfake refuses the encoded %s batch: error code %d", codecNames[codec], code)
				}
			}

			var got []*kgo.Record
			for len(got) < len(want) {
				fs := cl.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("consumed %d of %d records: %v", len(got), len(want), err)
				}
				fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
				got = append(got, fs.Records()...)
			}
			if len(got) != len(want) {
				t.Fatalf("consumed %d records, want %d", len(got), len(want))
			}
			for i, g := range got {
				w := want[i]
				if g.Offset != int64(i) {
					t.Fatalf("record %d at offset %d", i, g.Offset)
				}
				if err := sameBytes("key", w.Key, g.Key); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if err := sameBytes("value", w.Value, g.Value); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if len(g.Headers) != len(w.Headers) {
					t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
				}
				for h := range w.Headers {
					if g.Headers[h].Key != w.Headers[h].Key {
						t.Fatalf("record %d header %d: key %q, want %q", i, h, g.Headers[h].Key, w.Headers[h].Key)
					}
					if err := sameBytes("value", w.Headers[h].Value, g.Headers[h].Value); err != nil {
						t.Fatalf("record %d header %d: %v", i, h, err)
					}
				}
				if ts := g.Timestamp.UnixMilli(); ts != w.Timestamp {
					t.Fatalf("record %d: timestamp %d, want %d", i, ts, w.Timestamp)
				}
			}
		})
	}
}

// cloneRecords deep-copies records out of a Decoder's buffers.
func cloneRecords(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = Record{Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value), Timestamp: r.Timestamp, OffsetDelta: r.OffsetDelta}
		for _, h := range r.Headers {
			out[i].Headers = append(out[i].Headers, Header{Key: h.Key, Value: bytes.Clone(h.Value)})
		}
	}
	return out
}

// diffRecordsNoOffsets compares records split across batches, whose offset
// deltas restart in each batch.
func diffRecordsNoOffsets(want, got []Record) error {
	g := cloneRecords(got)
	for i := range g {
		if i < len(want) {
			g[i].OffsetDelta = want[i].OffsetDelta
		}
	}
	return diffRecords(want, g, false)
}
