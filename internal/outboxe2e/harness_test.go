package outboxe2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evproxy/evproxy/internal/app"
	"github.com/evproxy/evproxy/internal/config"
	"github.com/evproxy/evproxy/internal/proxytest"
)

// databaseURL is the PostgreSQL database tests use.
func databaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// newSchema returns a fresh schema name, dropped when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "evproxy_e2e_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, databaseURL())
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// startKafka starts a one-broker kfake cluster that auto-creates topics
// with 3 partitions.
func startKafka(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// pgOutbox is an outbox block for the test's own PostgreSQL schema with
// fast polling, short leases and quick retries; extra lines override them.
func pgOutbox(schema string, extra ...string) string {
	lines := []string{
		fmt.Sprintf("database_url = %q", databaseURL()),
		fmt.Sprintf("schema = %q", schema),
		`poll_interval = "50ms"`,
		`publish_timeout = "2s"`,
		`lease_ttl = "5s"`,
		`retry_delay = "50ms"`,
		`max_retry_delay = "200ms"`,
		`breaker_timeout = "200ms"`,
	}
	for _, e := range extra {
		key, _, _ := strings.Cut(e, "=")
		key = strings.TrimSpace(key)
		lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+" ") })
	}
	return "outbox {\n  " + strings.Join(append(lines, extra...), "\n  ") + "\n}\n"
}

// startApp runs evproxy configured by src (plus a proxy block listening on
// a free port and the kafka block for brokers) until the test ends.
func startApp(t testing.TB, brokers, src string) *app.App {
	t.Helper()
	dir := t.TempDir()
	full := fmt.Sprintf("proxy { listen = \"127.0.0.1:0\" }\nadmin { listen = \"127.0.0.1:0\" }\nkafka { brokers = [%q] }\n%s", brokers, src)
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, full)
	}
	a, err := app.New(cfg, proxytest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return a
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

// consume reads exactly n records of topic from the upstream.
func consume(t testing.TB, addr, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	return proxytest.Consume(t, addr, topic, n, timeout)
}

func header(r *kgo.Record, name string) (string, bool) { return proxytest.Header(r, name) }
