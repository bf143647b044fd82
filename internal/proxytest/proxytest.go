// Package proxytest starts a real evproxy Kafka listener in front of an
// in-process kfake cluster, over real TCP, for tests of evproxy and of the
// clients that talk to it.
package proxytest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/plugins"
	"github.com/evproxy/evproxy/internal/proxy"
	"github.com/evproxy/evproxy/internal/upstream"
)

// Options adjust the stack. The zero value routes every topic directly to
// a one-broker kfake cluster that auto-creates topics with 3 partitions.
type Options struct {
	// Routes replace the default catch-all direct route.
	Routes []pipeline.Route
	// MaxRequestBytes, MaxInflight are passed to the proxy.
	MaxRequestBytes int32
	MaxInflight     int
	IdleTimeout     time.Duration
	// KfakeOpts are added to the upstream cluster's options.
	KfakeOpts []kfake.Opt
	// Plugins are loaded (and watched for changes) for routes that name
	// them.
	Plugins []plugins.Config
	// DeadLetter defaults to enabled with suffix ".failed".
	DeadLetter *pipeline.DeadLetter
}

// Stack is a running evproxy in front of a kfake cluster. Everything is
// stopped by t.Cleanup.
type Stack struct {
	// ProxyAddr is where producers bootstrap (evproxy).
	ProxyAddr string
	// UpstreamAddr is the kfake broker, for reading what arrived.
	UpstreamAddr string
	Upstream     *kfake.Cluster
	Server       *proxy.Server
	Client       *upstream.Client
	Metrics      *proxy.Metrics
	Registry     *prometheus.Registry
	// PluginSet holds the loaded plugins (nil without Options.Plugins).
	PluginSet *plugins.Set
}

// Logger returns a logger writing to the test log when EVPROXY_TEST_LOG is
// set, and a silent one otherwise.
func Logger(t testing.TB) zerolog.Logger {
	if os.Getenv("EVPROXY_TEST_LOG") != "" {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

// Start starts the stack; o may be nil.
func Start(t testing.TB, o *Options) *Stack {
	t.Helper()
	if o == nil {
		o = &Options{}
	}
	kopts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}, o.KfakeOpts...)
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		t.Fatalf("proxytest: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	upAddr := c.ListenAddrs()[0]
	reg := prometheus.NewRegistry()
	m := proxy.NewMetrics(reg)
	up, err := upstream.New(upstream.Config{
		Brokers: []string{upAddr}, Logger: Logger(t), Hooks: m,
		ProduceTimeout: 10 * time.Second, RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("proxytest: upstream client: %v", err)
	}
	t.Cleanup(up.Close)
	routes := o.Routes
	if routes == nil {
		routes = []pipeline.Route{{Name: "default", Topics: []string{"*"}, Delivery: pipeline.DeliveryDirect}}
	}
	router, err := pipeline.NewRouter(routes)
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	dl := pipeline.DeadLetter{Enabled: true, TopicSuffix: ".failed"}
	if o.DeadLetter != nil {
		dl = *o.DeadLetter
	}
	proc := &pipeline.Processor{Router: router, DeadLetter: dl}
	var set *plugins.Set
	if len(o.Plugins) > 0 {
		// A compilation cache shared by every test of the machine: Go
		// plugins take seconds to compile under the race detector.
		cache := filepath.Join(os.TempDir(), "evproxy-test-wazero-cache")
		rt, err := plugins.NewRuntime(context.Background(), plugins.RuntimeConfig{CacheDir: cache})
		if err != nil {
			t.Fatalf("proxytest: plugin runtime: %v", err)
		}
		t.Cleanup(func() { _ = rt.Close(context.Background()) })
		pm := plugins.NewMetrics(reg)
		cfgs := make([]plugins.Config, len(o.Plugins))
		for i, c := range o.Plugins {
			c.Logger, c.Metrics = Logger(t), pm
			cfgs[i] = c
		}
		set, err = plugins.NewSet(rt, cfgs)
		if err != nil {
			t.Fatalf("proxytest: load plugins: %v", err)
		}
		t.Cleanup(func() { _ = set.Close(context.Background()) })
		proc.Plugins = pipeline.Loaded(set)
	}
	srv, err := proxy.New(proxy.Config{
		Listen: "127.0.0.1:0", Router: router, Pipeline: proc, Upstream: up, Logger: Logger(t), Metrics: m,
		MaxRequestBytes: o.MaxRequestBytes, MaxInflight: o.MaxInflight, IdleTimeout: o.IdleTimeout,
	})
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	return &Stack{
		ProxyAddr: srv.Addr(), UpstreamAddr: upAddr, Upstream: c,
		Server: srv, Client: up, Metrics: m, Registry: reg, PluginSet: set,
	}
}
