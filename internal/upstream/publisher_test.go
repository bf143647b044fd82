package upstream

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPublisherOutageOpensBreaker: while the cluster drops every
// connection, publishes fail as a whole (ErrUpstreamDown, never per-record
// errors that would count as attempts), the breaker opens after
// BreakerFailures of them, and once the cluster is back a probe closes it
// and records are delivered to the partitions they name.
func TestPublisherOutageOpensBreaker(t *testing.T) {
	t.Parallel()
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	var down atomic.Bool
	kf.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if down.Load() {
			return nil, errors.New("test: broker down"), true
		}
		return nil, nil, false
	})
	var transitions []string
	p, err := NewPublisher(PublisherConfig{
		Brokers: kf.ListenAddrs(), BreakerFailures: 2, BreakerTimeout: 100 * time.Millisecond,
		OnStateChange: func(from, to string) { transitions = append(transitions, to) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	publish := func() ([]error, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return p.Publish(ctx, []*kgo.Record{
			{Topic: "t", Partition: 2, Key: []byte("a"), Value: []byte("1")},
			{Topic: "t", Partition: -1, Key: []byte("b"), Value: []byte("2")},
		})
	}
	if errs, err := publish(); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("publish while up: %v %v", errs, err)
	}
	down.Store(true)
	for i := range 2 {
		errs, err := publish()
		if !errors.Is(err, ErrUpstreamDown) || errs != nil {
			t.Fatalf("publish %d while down: %v, %v; want ErrUpstreamDown and no per-record errors", i, errs, err)
		}
	}
	if p.Available() || p.BreakerState() != "open" {
		t.Fatalf("breaker %s after 2 failed publishes, want open", p.BreakerState())
	}
	if _, err := publish(); !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("publish with the breaker open: %v, want it refused", err)
	}
	down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for !p.Available() {
		if time.Now().After(deadline) {
			t.Fatal("breaker never half-opened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if errs, err := publish(); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("probe after recovery: %v %v", errs, err)
	}
	if p.BreakerState() != "closed" {
		t.Fatalf("breaker %s after a good probe, want closed", p.BreakerState())
	}
	want := []string{"open", "half-open", "closed"}
	if len(transitions) != 3 || transitions[0] != want[0] || transitions[1] != want[1] || transitions[2] != want[2] {
		t.Fatalf("transitions %v, want %v", transitions, want)
	}
	// The records kept their partitions: both good publishes put "a"
	// in partition 2, and no record of the failed ones arrived.
	cl, _ := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var got []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < 4 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != 4 {
		t.Fatalf("%d records upstream, want 4 (two good publishes of two)", len(got))
	}
	for _, r := range got {
		if string(r.Key) == "a" && r.Partition != 2 {
			t.Fatalf("record a in partition %d, want 2", r.Partition)
		}
	}
}
