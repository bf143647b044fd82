package proxy_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/proxytest"
)

// frame prefixes body with its size.
func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// header builds a v1 request header.
func header(key, version int16, corr int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	b := setup(t, &setupOpts{maxRequest: 1 << 20})
	cases := []struct {
		name  string
		bytes []byte
		// closeWrite ends the client side after sending (truncation).
		closeWrite bool
	}{
		{name: "garbage", bytes: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{name: "oversized frame", bytes: binary.BigEndian.AppendUint32(nil, 2<<20)},
		{name: "negative size", bytes: binary.BigEndian.AppendUint32(nil, 0xfffffff0)},
		{name: "tiny frame", bytes: frame([]byte{0, 1})},
		{name: "truncated frame", bytes: append(binary.BigEndian.AppendUint32(nil, 100), header(18, 0, 1)...), closeWrite: true},
		{name: "truncated size", bytes: []byte{0, 0}, closeWrite: true},
		{name: "unknown api key", bytes: frame(header(9999, 0, 1))},
		{name: "unimplemented api", bytes: frame(header(11, 5, 1))}, // JoinGroup
		{name: "unsupported produce version", bytes: frame(header(0, 13, 1))},
		{name: "undecodable body", bytes: frame(append(header(0, 7, 1), 0xff, 0xff, 0, 1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// A healthy producer on another connection before and
			// after.
			good := b.producer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			topic := "bad-input-" + strings.ReplaceAll(c.name, " ", "-")
			if err := good.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("before")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			raw := dialRaw(t, b.addr)
			if _, err := raw.nc.Write(c.bytes); err != nil {
				t.Fatal(err)
			}
			if c.closeWrite {
				_ = raw.nc.(interface{ CloseWrite() error }).CloseWrite()
			}
			raw.expectClosed()
			if err := good.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("after")}).FirstErr(); err != nil {
				t.Fatalf("healthy producer failed after %s on another connection: %v", c.name, err)
			}
		})
	}
	t.Cleanup(func() {
		if n := testutil.ToFloat64(b.metrics.ProtocolErrors()); n < float64(len(cases)) {
			t.Errorf("protocol errors metric %v, want >= %d", n, len(cases))
		}
	})
}

func TestCorruptBatchAnswered(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.cluster.CreateTopic("corrupt", 1, nil); err != nil {
		t.Fatal(err)
	}
	good := makeBatch(-1, -1, -1, []testRecord{{value: []byte("payload")}})
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	twoBatches := append(append([]byte(nil), good...), good...)
	badMagic := append([]byte(nil), good...)
	badMagic[16] = 1
	cases := []struct {
		name  string
		batch []byte
		code  int16
		msg   string
	}{
		{"crc", badCRC, kerr.CorruptMessage.Code, "evproxy: record batch CRC mismatch"},
		{"truncated", good[:40], kerr.CorruptMessage.Code, "evproxy: record batch truncated"},
		{"two batches", twoBatches, kerr.InvalidRecord.Code, "evproxy: partition data holds more than one record batch"},
		{"magic 1", badMagic, kerr.UnsupportedForMessageFormat.Code, "evproxy: record batch magic is not 2"},
	}
	c := dialRaw(t, b.addr)
	for _, tc := range cases {
		resp := c.roundTrip(produceReq(9, -1, "corrupt", 0, tc.batch)).(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != tc.code {
			t.Fatalf("%s: code %d, want %d", tc.name, p.ErrorCode, tc.code)
		}
		if p.ErrorMessage == nil || !strings.HasPrefix(*p.ErrorMessage, tc.msg) {
			t.Fatalf("%s: message %v, want prefix %q", tc.name, p.ErrorMessage, tc.msg)
		}
	}
	// The connection is still usable and nothing corrupt went upstream.
	resp := c.roundTrip(produceReq(9, -1, "corrupt", 0, good)).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("good batch after corrupt ones: code %d offset %d, want 0 at offset 0", p.ErrorCode, p.BaseOffset)
	}
}

func TestStopFinishesInflightProduce(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.cluster.CreateTopic("drain", 1, nil); err != nil {
		t.Fatal(err)
	}
	// Hold the upstream's answer to the produce request until Stop has
	// closed the listener.
	reached, release := make(chan struct{}), make(chan struct{})
	b.cluster.ControlKey(0, func(kmsg.Request) (kmsg.Response, error, bool) {
		close(reached)
		<-release
		return nil, nil, false
	})
	c := dialRaw(t, b.addr)
	corr := c.send(produceReq(9, -1, "drain", 0, makeBatch(-1, -1, -1, []testRecord{{value: []byte("in flight")}})))
	<-reached
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- b.srv.Stop(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err != nil {
			break // listener closed: Stop is under way
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open 10s after Stop")
		}
		runtime.Gosched()
	}
	close(release)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	c.recv(corr, resp)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 {
		t.Fatalf("in-flight produce during shutdown: code %d", p.ErrorCode)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	c.expectClosed()
}

func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	s := proxytest.Start(t, &proxytest.Options{IdleTimeout: 300 * time.Millisecond})
	c := dialRaw(t, s.ProxyAddr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	if resp := c.roundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("code %d", resp.ErrorCode)
	}
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

// A client that sends requests but never reads its answers must not slow
// anyone else down: evproxy never blocks a shared goroutine (here: the
// upstream connection's reader, which completes produce answers) on one
// client's socket.
func TestClientNotReadingDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	const parts = 100
	if err := b.cluster.CreateTopic("wide", parts, nil); err != nil {
		t.Fatal(err)
	}
	slow := dialRaw(t, b.addr)
	_ = slow.nc.(*net.TCPConn).SetReadBuffer(4096)
	batch := makeBatch(-1, -1, -1, []testRecord{{value: []byte("slow")}})
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "wide"
	for p := int32(0); p < parts; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	// Each answer is a few KiB; thousands of them fill any socket buffer.
	go func() {
		for i := 0; i < 3000; i++ {
			slow.corr++
			if _, err := slow.nc.Write(slow.f.AppendRequest(nil, req, slow.corr)); err != nil {
				return
			}
		}
	}()
	// The healthy producer shares the upstream connection with the flood,
	// so it is slowed (in CI, under the race detector, a lot) but never
	// stopped; a blocking write would stop it for good.
	fast := b.producer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := 0; i < 50; i++ {
		if err := fast.ProduceSync(ctx, &kgo.Record{Topic: "wide", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("record %d of a healthy producer: %v (stalled behind a client that does not read)", i, err)
		}
	}
}
