package upstream

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEncodeProduceMatchesKmsg checks our writev encoding byte for byte
// against kmsg's encoder for every version we send.
func TestEncodeProduceMatchesKmsg(t *testing.T) {
	batches := []*Batch{
		{Topic: "a", Partition: 0, Data: []byte("batch-a0")},
		{Topic: "b", Partition: 2, Data: []byte("batch-b2-longer")},
		{Topic: "a", Partition: 1, Data: bytes.Repeat([]byte{7}, 300)},
	}
	for v := int16(3); v <= maxProduceVersion; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			var f produceFrame
			encodeProduce(&f, v, 42, "evproxy", 30000, batches)
			var got bytes.Buffer
			for _, b := range f.bufs {
				got.Write(b)
			}
			req := kmsg.NewPtrProduceRequest()
			req.Version = v
			req.Acks = -1
			req.TimeoutMillis = 30000
			for _, name := range []string{"a", "b"} {
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = name
				for _, b := range batches {
					if b.Topic == name {
						p := kmsg.NewProduceRequestTopicPartition()
						p.Partition, p.Records = b.Partition, b.Data
						rt.Partitions = append(rt.Partitions, p)
					}
				}
				req.Topics = append(req.Topics, rt)
			}
			want := kmsg.NewRequestFormatter(kmsg.FormatterClientID("evproxy")).AppendRequest(nil, req, 42)
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("encoding differs from kmsg:\n got %x\nwant %x", got.Bytes(), want)
			}
		})
	}
}

func BenchmarkEncodeProduce(b *testing.B) {
	data := make([]byte, 1<<20)
	batches := []*Batch{{Topic: "bench", Partition: 0, Data: data}, {Topic: "bench", Partition: 1, Data: data}}
	var f produceFrame
	b.ReportAllocs()
	for b.Loop() {
		encodeProduce(&f, 9, 1, "evproxy", 30000, batches)
	}
}
