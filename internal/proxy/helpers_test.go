package proxy_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/proxy"
	"github.com/evproxy/evproxy/internal/upstream"
)

// testBundle is a running evproxy in front of a kfake cluster.
type testBundle struct {
	cluster  *kfake.Cluster
	up       *upstream.Client
	srv      *proxy.Server
	metrics  *proxy.Metrics
	registry *prometheus.Registry
	addr     string // evproxy
	upAddr   string // kfake
}

type setupOpts struct {
	routes      []pipeline.Route
	maxRequest  int32
	kfakeOpts   []kfake.Opt
	maxInflight int
}

func testLogger(t testing.TB) zerolog.Logger {
	if os.Getenv("EVPROXY_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

func setup(t testing.TB, o *setupOpts) *testBundle {
	t.Helper()
	if o == nil {
		o = &setupOpts{}
	}
	kopts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}, o.kfakeOpts...)
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	upAddr := c.ListenAddrs()[0]
	reg := prometheus.NewRegistry()
	m := proxy.NewMetrics(reg)
	up, err := upstream.New(upstream.Config{Brokers: []string{upAddr}, Logger: testLogger(t), Hooks: m, ProduceTimeout: 10 * time.Second, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	routes := o.routes
	if routes == nil {
		routes = []pipeline.Route{{Name: "default", Topics: []string{"*"}, Delivery: pipeline.DeliveryDirect}}
	}
	router, err := pipeline.NewRouter(routes)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(proxy.Config{
		Listen: "127.0.0.1:0", Router: router, Upstream: up, Logger: testLogger(t), Metrics: m,
		MaxRequestBytes: o.maxRequest, MaxInflight: o.maxInflight,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	return &testBundle{cluster: c, up: up, srv: srv, metrics: m, registry: reg, addr: srv.Addr(), upAddr: upAddr}
}

// producer returns a franz-go producer bootstrapped at evproxy.
func (b *testBundle) producer(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consumeUpstream reads n records of topic directly from kfake.
func (b *testBundle) consumeUpstream(t testing.TB, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.upAddr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s before the deadline", len(out), n, topic)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}
