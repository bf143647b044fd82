package proxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/proxy"
	"github.com/evproxy/evproxy/internal/proxytest"
)

// testBundle is a running evproxy in front of a kfake cluster.
type testBundle struct {
	cluster *kfake.Cluster
	srv     *proxy.Server
	metrics *proxy.Metrics
	addr    string // evproxy
	upAddr  string // kfake
}

type setupOpts struct {
	routes     []pipeline.Route
	maxRequest int32
}

func setup(t testing.TB, o *setupOpts) *testBundle {
	t.Helper()
	po := &proxytest.Options{}
	if o != nil {
		po.Routes, po.MaxRequestBytes = o.routes, o.maxRequest
	}
	s := proxytest.Start(t, po)
	return &testBundle{cluster: s.Upstream, srv: s.Server, metrics: s.Metrics, addr: s.ProxyAddr, upAddr: s.UpstreamAddr}
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
