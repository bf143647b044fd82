package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/plugins"
	"github.com/evproxy/evproxy/internal/proxytest"
)

// repoRoot is the repository root (two levels up from this package).
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// example returns the path of a built example plugin. Missing builds fail
// under CI and skip elsewhere, naming the command that builds them.
func example(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "plugins", "examples", name, name+".wasm")
	if _, err := os.Stat(p); err != nil {
		msg := p + " is not built: run `make plugins`"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// fixture returns a runtime test fixture (internal/plugins/testdata).
func fixture(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "internal", "plugins", "testdata", name+".wasm")
}

func plugin(name, path, config string) plugins.Config {
	return plugins.Config{Name: name, Path: path, Config: []byte(config), Timeout: time.Second, PoolSize: 2}
}

func route(name string, topics []string, onReject pipeline.OnReject, chain ...string) pipeline.Route {
	return pipeline.Route{Name: name, Topics: topics, Plugins: chain, OnReject: onReject, Delivery: pipeline.DeliveryDirect}
}

func start(t testing.TB, routes []pipeline.Route, pls ...plugins.Config) *proxytest.Stack {
	t.Helper()
	return proxytest.Start(t, &proxytest.Options{Routes: routes, Plugins: pls})
}

func producer(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produceSync(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// consume reads exactly n records of topic from the upstream (waiting up to
// 30s), then checks for 300ms that no more arrive.
func consume(t testing.TB, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	return proxytest.Consume(t, addr, topic, n, 30*time.Second)
}

func header(r *kgo.Record, name string) (string, bool) { return proxytest.Header(r, name) }

func needTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		msg := name + " is not installed (Debian package " + pkg + ")"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}
