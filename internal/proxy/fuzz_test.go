package proxy

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeRequest feeds arbitrary frames to the request decoder: it must
// never panic, and a request it accepts must be one evproxy implements at a
// version it advertises.
func FuzzDecodeRequest(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	seed := func(r kmsg.Request) {
		b := fm.AppendRequest(nil, r, 7)
		f.Add(b[4:])
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	seed(av)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	seed(md)
	pr := kmsg.NewPtrProduceRequest()
	pr.Version = 9
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "t"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = make([]byte, 70)
	t.Partitions = append(t.Partitions, p)
	pr.Topics = append(pr.Topics, t)
	seed(pr)
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	seed(ip)
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, req, err := decodeRequest(frame)
		if err != nil {
			return
		}
		if req == nil {
			if h.key != 18 {
				t.Fatalf("nil request for key %d", h.key)
			}
			return
		}
		api, ok := lookupAPI(h.key)
		if !ok || h.version < api.min || h.version > api.max {
			t.Fatalf("accepted key %d v%d outside what we advertise", h.key, h.version)
		}
		if req.Key() != h.key || req.GetVersion() != h.version {
			t.Fatalf("decoded %d v%d from header %d v%d", req.Key(), req.GetVersion(), h.key, h.version)
		}
	})
}

// FuzzSkipTags checks the tagged-field skipper never reads out of bounds.
func FuzzSkipTags(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{1, 0, 2, 'a', 'b'})
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Fuzz(func(t *testing.T, b []byte) {
		rest, err := skipTags(b)
		if err == nil && len(rest) > len(b) {
			t.Fatal("rest longer than input")
		}
	})
}
