package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/batchcodec"
	"github.com/evproxy/evproxy/internal/pipeline"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkEnriched asserts what the enrich example promises.
func checkEnriched(t *testing.T, r *kgo.Record, source string) {
	t.Helper()
	if v, _ := header(r, "enriched-by"); v != source {
		t.Fatalf("record %q: enriched-by %q, want %q", r.Value, v, source)
	}
	if v, _ := header(r, "ce_id"); !uuidRE.MatchString(v) {
		t.Fatalf("record %q: ce_id %q is not a UUID", r.Value, v)
	}
	if v, _ := header(r, "ce_time"); v == "" {
		t.Fatalf("record %q: no ce_time", r.Value)
	} else if _, err := time.Parse(time.RFC3339, v); err != nil {
		t.Fatalf("record %q: ce_time %q: %v", r.Value, v, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(r.Value, &obj); err != nil || obj["source"] != source {
		t.Fatalf("record value %s: want JSON with \"source\": %q", r.Value, source)
	}
}

// validate then enrich on "orders": good records arrive enriched, bad ones
// go to orders.failed with the reason.
func TestValidateEnrichDeadLetter(t *testing.T) {
	t.Parallel()
	for _, twin := range []string{"validate", "validate-c"} {
		t.Run(twin, func(t *testing.T) {
			t.Parallel()
			s := start(t,
				[]pipeline.Route{route("orders", []string{"orders"}, pipeline.RejectDeadLetter, "validate", "enrich")},
				plugin("validate", example(t, twin), `{"required":["id","amount"]}`),
				plugin("enrich", example(t, "enrich"), `{"source":"checkout"}`),
			)
			cl := producer(t, s.ProxyAddr)
			in := []*kgo.Record{
				{Topic: "orders", Key: []byte("a"), Value: []byte(`{"id":"o-1","amount":10}`)},
				{Topic: "orders", Key: []byte("b"), Value: []byte(`{"amount":10}`)},
				{Topic: "orders", Key: []byte("c"), Value: []byte(`not json`), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}}},
				{Topic: "orders", Key: []byte("a"), Value: []byte(`{"id":"o-2","amount":20,"ce":1}`)},
			}
			if err := produceSync(t, cl, in...); err != nil {
				t.Fatal(err)
			}
			good := consume(t, s.UpstreamAddr, "orders", 2)
			for i, r := range good {
				checkEnriched(t, r, "checkout")
				if string(r.Key) != "a" {
					t.Fatalf("good record %d key %q", i, r.Key)
				}
			}
			if !strings.Contains(string(good[0].Value), `"o-1"`) || !strings.Contains(string(good[1].Value), `"o-2"`) {
				t.Fatalf("good records out of order: %s, %s", good[0].Value, good[1].Value)
			}
			bad := consume(t, s.UpstreamAddr, "orders.failed", 2)
			reasons := map[string]string{}
			for _, r := range bad {
				reason, _ := header(r, "evproxy.error.reason")
				reasons[string(r.Key)] = reason
				if v, _ := header(r, "evproxy.error.plugin"); v != "validate" {
					t.Fatalf("dead letter plugin %q", v)
				}
				if v, _ := header(r, "evproxy.original.topic"); v != "orders" {
					t.Fatalf("dead letter original topic %q", v)
				}
				if _, ok := header(r, "enriched-by"); ok {
					t.Fatal("a dead letter must be the original record, not enriched")
				}
			}
			if reasons["b"] != "missing field: id" || reasons["c"] != "not a JSON object" {
				t.Fatalf("dead letter reasons %v", reasons)
			}
			if v, _ := header(bad[1], "trace"); string(bad[1].Key) == "c" && v != "t-1" {
				t.Fatal("dead letter lost the original headers")
			}
		})
	}
}

// The same flow from librdkafka (kcat).
func TestKcatThroughPlugins(t *testing.T) {
	t.Parallel()
	needTool(t, "kcat", "kcat")
	s := start(t,
		[]pipeline.Route{route("orders", []string{"orders"}, pipeline.RejectDeadLetter, "validate", "enrich")},
		plugin("validate", example(t, "validate"), `{"required":["id"]}`),
		plugin("enrich", example(t, "enrich"), `{"source":"kcat"}`),
	)
	cmd := exec.Command("kcat", "-P", "-b", s.ProxyAddr, "-t", "orders", "-K:", "-z", "lz4", "-X", "enable.idempotence=true")
	cmd.Stdin = strings.NewReader("k1:{\"id\":1}\nk2:{\"no\":1}\nk1:{\"id\":2}\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	good := consume(t, s.UpstreamAddr, "orders", 2)
	for _, r := range good {
		checkEnriched(t, r, "kcat")
	}
	bad := consume(t, s.UpstreamAddr, "orders.failed", 1)
	if v, _ := header(bad[0], "evproxy.error.reason"); v != "missing field: id" || string(bad[0].Key) != "k2" {
		t.Fatalf("dead letter %q reason %q", bad[0].Key, v)
	}
}

// route sends records to the topic their field names, and copy_to fans
// out a copy of every record.
func TestRouteAndFanOut(t *testing.T) {
	t.Parallel()
	s := start(t,
		[]pipeline.Route{route("events", []string{"events"}, pipeline.RejectDeadLetter, "route")},
		plugin("route", example(t, "route"), `{"field":"region","routes":{"eu":"events.eu","us":"events.us"},"copy_to":"events.audit"}`),
	)
	cl := producer(t, s.ProxyAddr)
	if err := produceSync(t, cl,
		&kgo.Record{Topic: "events", Key: []byte("1"), Value: []byte(`{"region":"eu","n":1}`)},
		&kgo.Record{Topic: "events", Key: []byte("2"), Value: []byte(`{"region":"us","n":2}`)},
		&kgo.Record{Topic: "events", Key: []byte("3"), Value: []byte(`{"region":"apac","n":3}`)},
	); err != nil {
		t.Fatal(err)
	}
	if r := consume(t, s.UpstreamAddr, "events.eu", 1)[0]; string(r.Key) != "1" {
		t.Fatalf("events.eu got key %q", r.Key)
	}
	if r := consume(t, s.UpstreamAddr, "events.us", 1)[0]; string(r.Key) != "2" {
		t.Fatalf("events.us got key %q", r.Key)
	}
	if r := consume(t, s.UpstreamAddr, "events", 1)[0]; string(r.Key) != "3" {
		t.Fatalf("unrouted record: key %q in events", r.Key)
	}
	if got := consume(t, s.UpstreamAddr, "events.audit", 3); len(got) != 3 {
		t.Fatal("copies missing")
	}
}

// on_reject = "error": the producer gets INVALID_RECORD with the reason.
func TestOnRejectError(t *testing.T) {
	t.Parallel()
	s := start(t,
		[]pipeline.Route{route("orders", []string{"orders"}, pipeline.RejectError, "validate")},
		plugin("validate", example(t, "validate"), `{"required":["id"]}`),
	)
	cl := producer(t, s.ProxyAddr, kgo.RecordRetries(1))
	err := produceSync(t, cl, &kgo.Record{Topic: "orders", Value: []byte(`{"x":1}`)})
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("producer error %v, want INVALID_RECORD", err)
	}
	// The answer carries the reason, per batch and per record (v8+).
	var enc batchcodec.Encoder
	batch, err := enc.Encode(nil, 0, -1, -1, -1, []batchcodec.Record{{Value: []byte(`{"ok":1}`)}, {Value: []byte(`{"id":2}`)}})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw := producer(t, s.ProxyAddr, kgo.DisableIdempotentWrite())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kresp, err := raw.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	p := kresp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.InvalidRecord.Code || p.ErrorMessage == nil || *p.ErrorMessage != "missing field: id" {
		t.Fatalf("answer code %d message %v, want INVALID_RECORD \"missing field: id\"", p.ErrorCode, p.ErrorMessage)
	}
	if len(p.ErrorRecords) != 1 || p.ErrorRecords[0].RelativeOffset != 0 || *p.ErrorRecords[0].ErrorMessage != "missing field: id" {
		t.Fatalf("record errors %+v, want record 0 with the reason", p.ErrorRecords)
	}
	if err := produceSync(t, cl, &kgo.Record{Topic: "orders", Value: []byte(`{"id":1}`)}); err != nil {
		t.Fatalf("a valid record after a rejected one: %v", err)
	}
	if got := consume(t, s.UpstreamAddr, "orders", 1); string(got[0].Value) != `{"id":1}` {
		t.Fatalf("orders holds %s", got[0].Value)
	}
}
