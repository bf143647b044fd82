package messageset

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The tests here capture message sets written by real clients, sarama and
// kcat (librdkafka), by pretending to be a Kafka broker that speaks only
// Metadata and Produce v0-v2, and check that ToRecordBatch reads them.

const fakeTopic = "legacy"

// produced is the partition data of one Produce request.
type produced struct {
	version int16
	data    []byte
}

// fakeBroker answers ApiVersions, Metadata for fakeTopic (one partition, led
// by itself) and Produce v0-v2, reporting every Produce's partition data on sets.
type fakeBroker struct {
	t    *testing.T
	ln   net.Listener
	host string
	port int32
	sets chan produced

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newFakeBroker(t *testing.T) *fakeBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	fb := &fakeBroker{t: t, ln: ln, host: addr.IP.String(), port: int32(addr.Port), sets: make(chan produced, 1000)}
	fb.wg.Add(1)
	go fb.accept()
	t.Cleanup(func() {
		ln.Close()
		fb.mu.Lock()
		for _, c := range fb.conns {
			c.Close()
		}
		fb.mu.Unlock()
		fb.wg.Wait()
	})
	return fb
}

func (fb *fakeBroker) addr() string { return net.JoinHostPort(fb.host, strconv.Itoa(int(fb.port))) }

func (fb *fakeBroker) accept() {
	defer fb.wg.Done()
	for {
		c, err := fb.ln.Accept()
		if err != nil {
			return
		}
		fb.mu.Lock()
		fb.conns = append(fb.conns, c)
		fb.wg.Add(1)
		fb.mu.Unlock()
		go func() {
			defer fb.wg.Done()
			defer c.Close()
			fb.serve(c)
		}()
	}
}

func (fb *fakeBroker) serve(c net.Conn) {
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, frame); err != nil || len(frame) < 10 {
			return
		}
		key := int16(binary.BigEndian.Uint16(frame))
		version := int16(binary.BigEndian.Uint16(frame[2:]))
		corr := binary.BigEndian.Uint32(frame[4:])
		body := frame[10+max(0, int(int16(binary.BigEndian.Uint16(frame[8:])))):]

		var resp kmsg.Response
		switch key {
		case 18:
			resp = apiVersions(version)
		case 3:
			resp = fb.metadata(version, body)
		case 0:
			if version > 2 {
				fb.t.Errorf("fake broker: Produce v%d, want v0-v2", version)
				return
			}
			var ok bool
			if resp, ok = fb.produce(version, body); !ok {
				return
			}
		default:
			fb.t.Errorf("fake broker: unexpected API key %d v%d", key, version)
			return
		}
		if resp == nil {
			continue // acks=0
		}
		out := binary.BigEndian.AppendUint32(nil, 0)
		out = binary.BigEndian.AppendUint32(out, corr)
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// apiVersions advertises what a 0.10.0 broker could: Produce v0-v2, Fetch
// v0-v2 (librdkafka writes magic 1 only with both), Metadata v0-v1,
// ApiVersions v0-v3. The response header is v0 even for the
// flexible versions.
func apiVersions(version int16) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(min(version, 3))
	for _, k := range [][3]int16{{0, 0, 2}, {1, 0, 2}, {3, 0, 1}, {18, 0, 3}} {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k[0], k[1], k[2]
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	return resp
}

func (fb *fakeBroker) metadata(version int16, body []byte) kmsg.Response {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(version)
	_ = req.ReadFrom(body)
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(version)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: fb.host, Port: fb.port}}
	resp.ControllerID = 1
	names := []string{fakeTopic}
	if len(req.Topics) > 0 {
		names = names[:0]
		for _, tp := range req.Topics {
			names = append(names, *tp.Topic)
		}
	}
	for _, name := range names {
		tp := kmsg.NewMetadataResponseTopic()
		tp.Topic = kmsg.StringPtr(name)
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Leader, p.Replicas, p.ISR = 1, []int32{1}, []int32{1}
		tp.Partitions = append(tp.Partitions, p)
		resp.Topics = append(resp.Topics, tp)
	}
	return resp
}

// produce reports the request's partition data and returns the response,
// nil for acks=0.
func (fb *fakeBroker) produce(version int16, body []byte) (kmsg.Response, bool) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	if err := req.ReadFrom(body); err != nil {
		fb.t.Errorf("fake broker: Produce v%d: %v", version, err)
		return nil, false
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(version)
	for _, tp := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = tp.Topic
		for _, p := range tp.Partitions {
			fb.sets <- produced{version: version, data: bytes.Clone(p.Records)}
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if req.Acks == 0 {
		return nil, true
	}
	return resp, true
}

// convertAll converts every set the broker captured and returns the records
// in order with their timestamps, checking the Produce version and the
// magic of the first message.
func (fb *fakeBroker) convertAll(t *testing.T, wantVersion int16, wantMagic int8) (recs []want, raw [][]byte) {
	t.Helper()
	for {
		select {
		case p := <-fb.sets:
			if p.version != wantVersion {
				t.Errorf("Produce v%d, want v%d", p.version, wantVersion)
			}
			if len(p.data) > 16 && int8(p.data[16]) != wantMagic {
				t.Errorf("magic %d, want %d", p.data[16], wantMagic)
			}
			b, n, err := ToRecordBatch(p.data, testNow, testLimit)
			if err != nil {
				t.Fatalf("ToRecordBatch of a Produce v%d set (% x...): %v", p.version, p.data[:min(len(p.data), 40)], err)
			}
			raw = append(raw, p.data)
			var rb kmsg.RecordBatch
			_ = rb.ReadFrom(b)
			got := decodeBatch(t, b)
			if len(got) != n {
				t.Fatalf("%d records reported, %d decoded", n, len(got))
			}
			for _, r := range got {
				recs = append(recs, want{ts: rb.FirstTimestamp + r.TimestampDelta64, key: r.Key, value: r.Value})
			}
		default:
			return recs, raw
		}
	}
}

func compareRecords(t *testing.T, got, ws []want) {
	t.Helper()
	if len(got) != len(ws) {
		t.Fatalf("got %d records, want %d", len(got), len(ws))
	}
	for i := range ws {
		if got[i].ts != ws[i].ts || !sameBytes(got[i].key, ws[i].key) || !sameBytes(got[i].value, ws[i].value) {
			t.Fatalf("record %d: got ts %d key %s value %s, want ts %d key %s value %s", i,
				got[i].ts, show(got[i].key), show(got[i].value), ws[i].ts, show(ws[i].key), show(ws[i].value))
		}
	}
}

// TestSarama produces with sarama as a Kafka 0.8.2 client (Produce v0,
// magic 0) and a 0.10.0 client (Produce v2, magic 1) with every codec it
// allows there.
func TestSarama(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version sarama.KafkaVersion
		produce int16
		codec   sarama.CompressionCodec
	}{
		{sarama.V0_8_2_0, 0, sarama.CompressionNone},
		{sarama.V0_8_2_0, 0, sarama.CompressionGZIP},
		{sarama.V0_8_2_0, 0, sarama.CompressionSnappy},
		{sarama.V0_10_0_0, 2, sarama.CompressionNone},
		{sarama.V0_10_0_0, 2, sarama.CompressionGZIP},
		{sarama.V0_10_0_0, 2, sarama.CompressionSnappy},
		{sarama.V0_10_0_0, 2, sarama.CompressionLZ4},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.version, tc.codec), func(t *testing.T) {
			t.Parallel()
			fb := newFakeBroker(t)
			cfg := sarama.NewConfig()
			cfg.Version = tc.version
			cfg.Producer.Compression = tc.codec
			cfg.Producer.Return.Successes = true
			cfg.Producer.RequiredAcks = sarama.WaitForLocal
			cfg.Producer.Partitioner = sarama.NewManualPartitioner
			cfg.Producer.Flush.Messages = 50
			cfg.Producer.Flush.Frequency = time.Second
			cfg.Net.MaxOpenRequests = 1
			p, err := sarama.NewSyncProducer([]string{fb.addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []*sarama.ProducerMessage
			var ws []want
			for i := range 50 {
				m := &sarama.ProducerMessage{Topic: fakeTopic, Timestamp: time.UnixMilli(testNow - int64(i)*3)}
				var k, v []byte
				switch i % 4 {
				case 0:
					k, v = []byte(fmt.Sprintf("key-%d", i)), []byte(strings.Repeat("value ", i))
				case 1:
					v = []byte(fmt.Sprintf("v%d", i))
				case 2:
					k, v = []byte{}, []byte{}
				case 3:
					k = []byte("tombstone")
				}
				if k != nil {
					m.Key = sarama.ByteEncoder(k)
				}
				if v != nil {
					m.Value = sarama.ByteEncoder(v)
				}
				ts := testNow // magic 0 has no timestamp
				if tc.produce == 2 {
					ts = m.Timestamp.UnixMilli()
				}
				msgs = append(msgs, m)
				ws = append(ws, want{ts: ts, key: k, value: v})
			}
			if err := p.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			got, _ := fb.convertAll(t, tc.produce, int8(tc.produce/2))
			compareRecords(t, got, ws)
		})
	}
}

// TestKcat produces with kcat, whose librdkafka (2.0.2 here) writes
// magic 0 message sets for a 0.9 broker, LZ4 with the KAFKA-3160 header
// checksum included, and magic 1 for a 0.10 broker.
func TestKcat(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed (Debian package kcat)")
	}
	for _, tc := range []struct {
		fallback string
		produce  int16
		codec    string
	}{
		{"0.9.0", 1, "none"},
		{"0.9.0", 1, "gzip"},
		{"0.9.0", 1, "snappy"},
		{"0.9.0", 1, "lz4"},
		{"0.10.0", 2, "none"},
		{"0.10.0", 2, "gzip"},
		{"0.10.0", 2, "snappy"},
		{"0.10.0", 2, "lz4"},
	} {
		t.Run(tc.fallback+"/"+tc.codec, func(t *testing.T) {
			t.Parallel()
			fb := newFakeBroker(t)
			var in bytes.Buffer
			var ws []want
			for i := range 200 {
				k := fmt.Sprintf("key-%d", i)
				v := fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%37))
				fmt.Fprintf(&in, "%s\t%s\n", k, v)
				ws = append(ws, want{ts: testNow, key: []byte(k), value: []byte(v)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "kcat", "-P", "-b", fb.addr(), "-t", fakeTopic, "-p", "0",
				"-z", tc.codec, "-K", "\t",
				"-X", "api.version.request=false",
				"-X", "broker.version.fallback="+tc.fallback,
				"-X", "linger.ms=100")
			cmd.Stdin = &in
			start := time.Now().UnixMilli()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat: %v\n%s", err, out)
			}
			end := time.Now().UnixMilli()
			got, raw := fb.convertAll(t, tc.produce, int8(tc.produce/2))
			if tc.codec == "lz4" && tc.produce < 2 {
				checkKafkaLZ4Framing(t, raw)
			}
			if tc.produce == 2 { // librdkafka stamps magic 1 messages itself
				for i := range got {
					if got[i].ts < start || got[i].ts > end {
						t.Fatalf("record %d: timestamp %d outside the run [%d, %d]", i, got[i].ts, start, end)
					}
					ws[i].ts = got[i].ts
				}
			}
			compareRecords(t, got, ws)
		})
	}
}

// checkKafkaLZ4Framing checks that the LZ4 wrappers of magic 0 sets carry
// the KAFKA-3160 header checksum (magic number hashed too), so that the
// fix-up was really needed.
func checkKafkaLZ4Framing(t *testing.T, sets [][]byte) {
	t.Helper()
	for _, s := range sets {
		m, _, err := readMessage(s)
		if err != nil || m.attributes&attrCodecMask != codecLZ4 || len(m.value) < 7 {
			t.Fatalf("first message is not an LZ4 wrapper: %+v, %v", m, err)
		}
		f := m.value
		hc := lz4HCPos(f)
		broken, correct := byte(xxh32(f[:hc])>>8), byte(xxh32(f[4:hc])>>8)
		if f[hc] != broken || f[hc] == correct {
			t.Fatalf("header checksum %02x: KAFKA-3160 one is %02x, standard one %02x", f[hc], broken, correct)
		}
	}
}
