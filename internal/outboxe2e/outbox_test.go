package outboxe2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// checkKeyOrder asserts that records arrive in per-key order of their
// "i" value (key k<n>, value "<i>") with no gaps, and returns how many
// arrived per key.
func checkKeyOrder(t *testing.T, recs []*kgo.Record) map[string]int {
	t.Helper()
	last := map[string]int{}
	for _, r := range recs {
		i, err := strconv.Atoi(string(r.Value))
		if err != nil {
			t.Fatalf("unexpected value %q", r.Value)
		}
		k := string(r.Key)
		if prev, ok := last[k]; ok && i <= prev {
			t.Fatalf("key %s: %d after %d: order broken", k, i, prev)
		}
		last[k] = i
	}
	return last
}

const outboxRoutes = `
route "orders" {
  topics   = ["orders*"]
  delivery = "outbox"
}
route "direct" {
  topics = ["*"]
}
`

func TestOutboxDeliversInOrderWithEventIDs(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	schema := newSchema(t)
	a := startApp(t, kf.ListenAddrs()[0], pgOutbox(schema)+outboxRoutes)
	cl := producer(t, a.ProxyAddr(), kgo.MaxBufferedRecords(2000))
	const n, keys = 3000, 30
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for i := range n {
		r := &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("k%d", i%keys)), Value: []byte(strconv.Itoa(i))}
		if i%100 == 0 {
			r.Headers = []kgo.RecordHeader{{Key: "ce_id", Value: []byte(fmt.Sprintf("given-%d", i))}, {Key: "h", Value: []byte("v")}}
		}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) { errs <- err })
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	recs := consume(t, kf.ListenAddrs()[0], "orders", n, 60*time.Second)
	// Published rows are deleted: the table does not grow.
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for left := -1; left != 0; {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".outbox").Scan(&left); err != nil {
			t.Fatalf("%v (%d rows left)", err, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	per := checkKeyOrder(t, recs)
	if len(per) != keys {
		t.Fatalf("%d keys arrived, want %d", len(per), keys)
	}
	ids := map[string]bool{}
	for _, r := range recs {
		id, ok := header(r, "ce_id")
		if !ok || id == "" {
			t.Fatalf("record %s/%s has no ce_id header", r.Key, r.Value)
		}
		if ids[id] {
			t.Fatalf("ce_id %s twice", id)
		}
		ids[id] = true
		i, _ := strconv.Atoi(string(r.Value))
		if i%100 == 0 {
			if id != fmt.Sprintf("given-%d", i) {
				t.Fatalf("record %d: ce_id %q, want the producer's", i, id)
			}
			if h, _ := header(r, "h"); h != "v" || r.Headers[0].Key != "ce_id" || len(r.Headers) != 2 {
				t.Fatalf("record %d: headers %v, want the producer's two in order", i, r.Headers)
			}
		}
	}
}

func TestOutboxDeliverAt(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	a := startApp(t, kf.ListenAddrs()[0], pgOutbox(newSchema(t))+outboxRoutes)
	cl := producer(t, a.ProxyAddr())
	at := time.Now().Add(1500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: "orders.later", Key: []byte("a"), Value: []byte("0"), Headers: []kgo.RecordHeader{{Key: "evproxy.deliver-at", Value: []byte(at.UTC().Format(time.RFC3339Nano))}}},
		&kgo.Record{Topic: "orders.later", Key: []byte("b"), Value: []byte("1"), Headers: []kgo.RecordHeader{{Key: "evproxy.deliver-at", Value: []byte(strconv.FormatInt(at.UnixMilli(), 10))}}},
		// Same key as the first, not scheduled: scheduled records do
		// not hold back later ones.
		&kgo.Record{Topic: "orders.later", Key: []byte("a"), Value: []byte("2")},
	).FirstErr()
	if err != nil {
		t.Fatal(err)
	}
	first := consume(t, kf.ListenAddrs()[0], "orders.later", 1, 10*time.Second)
	if string(first[0].Value) != "2" || time.Now().After(at) {
		t.Fatalf("first record %q (at %s, deliver-at %s): want the unscheduled one before the scheduled time", first[0].Value, time.Now(), at)
	}
	recs := consume(t, kf.ListenAddrs()[0], "orders.later", 3, 20*time.Second)
	if time.Now().Before(at) {
		t.Fatalf("scheduled records arrived before %s", at)
	}
	for _, r := range recs {
		if _, ok := header(r, "evproxy.deliver-at"); ok {
			t.Fatalf("record %q still carries evproxy.deliver-at", r.Value)
		}
	}
}

func TestOutboxBadDeliverAtIsRefused(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	a := startApp(t, kf.ListenAddrs()[0], pgOutbox(newSchema(t))+outboxRoutes)
	cl := producer(t, a.ProxyAddr(), kgo.RecordRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x"), Headers: []kgo.RecordHeader{{Key: "evproxy.deliver-at", Value: []byte("tomorrow")}}}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("produce with a bad evproxy.deliver-at: %v, want INVALID_RECORD", err)
	}
}

func TestOutboxSQLPublish(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	schema := newSchema(t)
	// A long poll interval: only LISTEN/NOTIFY can deliver in time.
	startApp(t, kf.ListenAddrs()[0], pgOutbox(schema)+outboxRoutes)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	publish := func(commit bool, key, value string) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT "+schema+".publish($1, $2::bytea, $3::bytea, $4::jsonb)", "orders.sql", []byte(key), []byte(value), `{"source":"app"}`); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	publish(false, "k", "rolled back")
	publish(true, "k", "committed")
	recs := consume(t, kf.ListenAddrs()[0], "orders.sql", 1, 20*time.Second)
	r := recs[0]
	if string(r.Key) != "k" || string(r.Value) != "committed" {
		t.Fatalf("got %q=%q, want the committed event only", r.Key, r.Value)
	}
	if v, _ := header(r, "source"); v != "app" {
		t.Fatalf("headers %v: want source=app", r.Headers)
	}
	if id, _ := header(r, "ce_id"); len(id) != 36 {
		t.Fatalf("ce_id %q: want a UUID", id)
	}
}

func TestOutboxDatabaseDown(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	src := `outbox {
  database_url = "postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1"
}
` + outboxRoutes
	a := startApp(t, kf.ListenAddrs()[0], src)
	// No retries, so the first answer surfaces (an idempotent producer
	// would keep retrying the retriable error until its timeout).
	cl := producer(t, a.ProxyAddr(), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("produce to an outbox route with the database down: %v, want KAFKA_STORAGE_ERROR (retriable)", err)
	}
	// Direct routes keep working.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatalf("direct route while the outbox is down: %v", err)
	}
	resp, err := http.Get("http://" + a.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 4096)
	nb, _ := resp.Body.Read(body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !containsStr(string(body[:nb]), "outbox") {
		t.Fatalf("/readyz: %d %q, want 503 naming the outbox", resp.StatusCode, body[:nb])
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestOutboxEmbeddedSQLite(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	a := startApp(t, kf.ListenAddrs()[0], `outbox {
  database_url  = "sqlite:outbox.db"
  poll_interval = "50ms"
}
`+outboxRoutes)
	cl := producer(t, a.ProxyAddr())
	const n = 500
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consume(t, kf.ListenAddrs()[0], "orders", n, 30*time.Second)
	checkKeyOrder(t, got)
}

// batch_bytes bounds what one claim holds: with rows of about 520 bytes
// and a 1 KiB bound, the relay claims at most 3 rows at a time, and still
// publishes every row, in order per key.
func TestOutboxByteBoundedClaims(t *testing.T) {
	t.Parallel()
	kf := startKafka(t)
	schema := newSchema(t)
	a := startApp(t, kf.ListenAddrs()[0], pgOutbox(schema, `batch_bytes = "1KiB"`, `relay_workers = 2`)+outboxRoutes)
	cl := producer(t, a.ProxyAddr())
	const n, keys = 400, 10
	pad := make([]byte, 500)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for i := range n {
		r := &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("k%d", i%keys)), Value: []byte(strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "pad", Value: pad}}}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) { errs <- err })
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	recs := consume(t, kf.ListenAddrs()[0], "orders", n, 60*time.Second)
	if per := checkKeyOrder(t, recs); len(per) != keys {
		t.Fatalf("%d keys arrived, want %d", len(per), keys)
	}
	rounds := metric(t, a.AdminAddr(), "evproxy_outbox_publish_seconds_count")
	if published := metric(t, a.AdminAddr(), "evproxy_outbox_published_total"); published != n || rounds < n/3 {
		t.Fatalf("%v rows published in %v rounds, want %d rows in at least %d rounds (3 rows of ~520 B per 1 KiB claim)", published, rounds, n, n/3)
	}
}
