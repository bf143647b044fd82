package outboxe2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fixture is a plugin test fixture of internal/plugins/testdata.
func fixture(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "plugins", "testdata", name+".wasm")
}

// examplePlugin is a built example plugin; missing builds fail under CI
// and skip elsewhere.
func examplePlugin(t *testing.T, name string) string {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "plugins", "examples", name, name+".wasm")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not built: run `make plugins`", p)
		}
		t.Skipf("%s is not built: run `make plugins`", p)
	}
	return p
}

// TestPluginsRunOnceForOutboxRows: an outbox route's plugins run on
// produced records before the commit, and on rows applications write with
// publish() once, at relay time: every record upstream carries the
// plugin's header exactly once.
func TestPluginsRunOnceForOutboxRows(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	schema := newSchema(t)
	a := startApp(t, kf.ListenAddrs()[0], pgOutbox(schema)+fmt.Sprintf(`
plugin "addheader" {
  path = %q
}
route "orders" {
  topics   = ["orders"]
  plugins  = ["addheader"]
  delivery = "outbox"
}
`, fixture("addheader")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := producer(t, a.ProxyAddr())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("k"), Value: []byte("produced")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT "+schema+".publish('orders', 'k', 'from sql')"); err != nil {
		t.Fatal(err)
	}
	for _, r := range consume(t, kf.ListenAddrs()[0], "orders", 2, 20*time.Second) {
		n := 0
		for _, h := range r.Headers {
			if h.Key == "via" && string(h.Value) == "evproxy" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("record %q carries via=evproxy %d times, want once: %v", r.Value, n, r.Headers)
		}
	}
}

// TestRelayTimeValidationDeadLetters: a row an application wrote that the
// route's validate plugin rejects goes to the dead-letter table and topic
// with stage plugin and the plugin's reason; a valid one is published.
func TestRelayTimeValidationDeadLetters(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	schema := newSchema(t)
	startApp(t, kf.ListenAddrs()[0], pgOutbox(schema)+fmt.Sprintf(`
plugin "validate" {
  path   = %q
  config = { required = ["id"] }
}
route "orders" {
  topics   = ["orders"]
  plugins  = ["validate"]
  delivery = "outbox"
}
`, examplePlugin(t, "validate-c")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, v := range []string{`{"id":1}`, `{"name":"x"}`} {
		if _, err := conn.Exec(ctx, "SELECT "+schema+".publish('orders', 'k', $1::text)", v); err != nil {
			t.Fatal(err)
		}
	}
	if got := consume(t, kf.ListenAddrs()[0], "orders", 1, 20*time.Second); string(got[0].Value) != `{"id":1}` {
		t.Fatalf("published %q, want the valid row only", got[0].Value)
	}
	dl := consume(t, kf.ListenAddrs()[0], "orders.failed", 1, 20*time.Second)[0]
	for k, want := range map[string]string{"evproxy.error.stage": "plugin", "evproxy.error.reason": "missing field: id", "evproxy.error.plugin": "validate"} {
		if got, _ := header(dl, k); got != want {
			t.Errorf("dead letter %s = %q, want %q", k, got, want)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".dead_letter WHERE stage = 'plugin'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("dead-letter table: %d plugin rows (%v), want 1", n, err)
	}
}
