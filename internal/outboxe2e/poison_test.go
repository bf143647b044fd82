package outboxe2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// setTopicMaxBytes creates topic (if needed) and sets its max.message.bytes.
func setTopicMaxBytes(t *testing.T, broker, topic string, max int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := strconv.Itoa(max)
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, 1, 1
	cfg := kmsg.NewCreateTopicsRequestTopicConfig()
	cfg.Name, cfg.Value = "max.message.bytes", &v
	ct.Configs = append(ct.Configs, cfg)
	create.Topics = append(create.Topics, ct)
	cresp, err := create.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := cresp.Topics[0].ErrorCode; code == 0 {
		return
	} else if code != kerr.TopicAlreadyExists.Code {
		t.Fatalf("create %s: %v", topic, kerr.ErrorForCode(code))
	}
	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value, c.Op = "max.message.bytes", &v, kmsg.IncrementalAlterConfigOpSet
	res.Configs = append(res.Configs, c)
	alter.Resources = append(alter.Resources, res)
	aresp, err := alter.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := aresp.Resources[0].ErrorCode; code != 0 {
		t.Fatalf("alter %s: %v", topic, kerr.ErrorForCode(code))
	}
}

// TestPoisonRecordDeadLetteredAndReplayed: a record over the topic's
// max.message.bytes cannot be published: it goes to the dead-letter table
// and the .failed topic with the documented headers, later records of its
// key are not held back forever, and `evproxy dlq replay` publishes it
// once the limit is raised.
func TestPoisonRecordDeadLetteredAndReplayed(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	broker := kf.ListenAddrs()[0]
	setTopicMaxBytes(t, broker, "orders.poison", 1000)
	schema := newSchema(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.hcl")
	p := startProcess(t, dir, processConfig(freePort(t), broker, schema))

	cl := producer(t, p.proxyAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Incompressible, so that it stays over the limit whatever codec
	// the relay's producer uses.
	big := make([]byte, 5000)
	_, _ = rand.Read(big)
	err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: "orders.poison", Key: []byte("k"), Value: []byte("before")},
		&kgo.Record{Topic: "orders.poison", Key: []byte("k"), Value: big, Headers: []kgo.RecordHeader{{Key: "ce_id", Value: []byte("poison-1")}, {Key: "h", Value: []byte("1")}}},
		&kgo.Record{Topic: "orders.poison", Key: []byte("k"), Value: []byte("after")},
	).FirstErr()
	if err != nil {
		t.Fatal(err)
	}
	got := consume(t, broker, "orders.poison", 2, 30*time.Second)
	if string(got[0].Value) != "before" || string(got[1].Value) != "after" {
		t.Fatalf("got %q, %q: want before, after", got[0].Value, got[1].Value)
	}
	dl := consume(t, broker, "orders.poison.failed", 1, 30*time.Second)[0]
	if !bytes.Equal(dl.Value, big) || string(dl.Key) != "k" {
		t.Fatalf("dead letter %q: want the original key and value", dl.Key)
	}
	want := map[string]string{
		"ce_id": "poison-1", "h": "1",
		"evproxy.error.stage":        "delivery",
		"evproxy.original.topic":     "orders.poison",
		"evproxy.original.partition": "",
		"evproxy.attempts":           "1",
	}
	for k, v := range want {
		got, ok := header(dl, k)
		if !ok || (v != "" && got != v) {
			t.Errorf("dead letter header %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if reason, _ := header(dl, "evproxy.error.reason"); !strings.Contains(reason, "MESSAGE_TOO_LARGE") {
		t.Errorf("evproxy.error.reason %q: want it to name MESSAGE_TOO_LARGE", reason)
	}
	if at, _ := header(dl, "evproxy.failed.at"); at == "" {
		t.Error("no evproxy.failed.at")
	} else if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
		t.Errorf("evproxy.failed.at %q: %v", at, err)
	}

	// Fix the limit, replay, and the record arrives.
	setTopicMaxBytes(t, broker, "orders.poison", 1<<20)
	out, err := exec.Command(evproxyBin, "dlq", "replay", "--topic", "orders.poison", "-c", cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	t.Logf("dlq replay: %s", out)
	all := consume(t, broker, "orders.poison", 3, 30*time.Second)
	if !bytes.Equal(all[2].Value, big) {
		t.Fatalf("after replay: third record has %d bytes, want the replayed one", len(all[2].Value))
	}
	if id, _ := header(all[2], "ce_id"); id != "poison-1" {
		t.Fatalf("replayed record ce_id %q, want poison-1", id)
	}
}
