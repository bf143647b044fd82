package outboxpgx

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evproxy/evproxy/internal/outbox"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func claimAll(t *testing.T, e outbox.Executor, now time.Time) []*outbox.Row {
	t.Helper()
	rows, err := e.OutboxClaimBatch(testCtx(t), &outbox.OutboxClaimBatchParams{Now: now, Limit: 1000})
	if err != nil {
		t.Fatalf("OutboxClaimBatch: %v", err)
	}
	return rows
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestPublish(t *testing.T) {
	t.Parallel()

	t.Run("TextLiterals", func(t *testing.T) {
		t.Parallel()
		s := newMigratedStore(t)
		ctx := testCtx(t)
		var id1, id2 int64
		// Untyped literals resolve to the text overload.
		if err := s.pool.QueryRow(ctx, `SELECT `+s.schema+`.publish('orders', 'k1', '{"a":1}')`).Scan(&id1); err != nil {
			t.Fatalf("publish with literals: %v", err)
		}
		if err := s.pool.QueryRow(ctx, `SELECT `+s.schema+`.publish('orders', 'k1', '{"a":2}')`).Scan(&id2); err != nil {
			t.Fatal(err)
		}
		rows := claimAll(t, s, time.Now().Add(time.Minute))
		if len(rows) != 2 || rows[0].ID != id1 || rows[1].ID != id2 {
			t.Fatalf("rows %+v, want ids %d, %d", rows, id1, id2)
		}
		for i, r := range rows {
			if string(r.Key) != "k1" || string(r.Value) != fmt.Sprintf(`{"a":%d}`, i+1) || r.Topic != "orders" ||
				r.Partition != -1 || r.Priority != 0 || r.Processed || !r.Timestamp.IsZero() {
				t.Errorf("row %d = %+v", i, r)
			}
			if !uuidPattern.MatchString(r.EventID) {
				t.Errorf("generated ce_id %q is not a UUID v4", r.EventID)
			}
			want := []outbox.Header{{Key: "ce_id", Value: []byte(r.EventID)}}
			if !slices.EqualFunc(r.Headers, want, headerEqual) {
				t.Errorf("headers %v, want %v", r.Headers, want)
			}
			if r.Lane != outbox.LaneOf("orders", []byte("k1")) {
				t.Errorf("lane %d", r.Lane)
			}
		}
		if rows[0].EventID == rows[1].EventID {
			t.Errorf("two publishes got the same ce_id %s", rows[0].EventID)
		}
	})

	t.Run("BinaryParamsAndHeaders", func(t *testing.T) {
		t.Parallel()
		s := newMigratedStore(t)
		ctx := testCtx(t)
		deliverAt := time.Now().Add(time.Hour).Truncate(time.Millisecond)
		var id int64
		// Binary keys need the cast: untyped parameters resolve to the
		// text overload, as literals do.
		err := s.pool.QueryRow(ctx, `SELECT `+s.schema+`.publish($1, $2::bytea, $3::bytea, $4, $5, $6)`,
			"t", []byte{0xff, 0, 1}, []byte{}, `{"b": "x", "a": null, "ce_id": "my-id", "n": 5, "ü": "é"}`,
			deliverAt.Add(999*time.Microsecond), 7).Scan(&id)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if rows := claimAll(t, s, time.Now()); len(rows) != 0 {
			t.Fatalf("a row for later was claimed now: %+v", rows[0])
		}
		rows := claimAll(t, s, deliverAt)
		if len(rows) != 1 {
			t.Fatalf("claimed %d rows at deliver_at", len(rows))
		}
		r := rows[0]
		if r.ID != id || r.EventID != "my-id" || string(r.Key) != "\xff\x00\x01" || r.Value == nil || len(r.Value) != 0 ||
			!r.DeliverAt.Equal(deliverAt) || r.Priority != 7 || r.Processed {
			t.Errorf("row = %+v", r)
		}
		// jsonb key order: shorter keys first, then bytewise.
		want := []outbox.Header{
			{Key: "a", Value: nil},
			{Key: "b", Value: []byte("x")},
			{Key: "n", Value: []byte("5")},
			{Key: "ü", Value: []byte("é")},
			{Key: "ce_id", Value: []byte("my-id")},
		}
		if !slices.EqualFunc(r.Headers, want, headerEqual) {
			t.Errorf("headers %v, want %v", r.Headers, want)
		}
	})

	t.Run("NullCeIDIsGenerated", func(t *testing.T) {
		t.Parallel()
		s := newMigratedStore(t)
		ctx := testCtx(t)
		if _, err := s.pool.Exec(ctx, `SELECT `+s.schema+`.publish('t', NULL::bytea, NULL::bytea, '{"ce_id": null, "x": "y"}')`); err != nil {
			t.Fatal(err)
		}
		rows := claimAll(t, s, time.Now().Add(time.Minute))
		if len(rows) != 1 {
			t.Fatalf("%d rows", len(rows))
		}
		r := rows[0]
		want := []outbox.Header{{Key: "x", Value: []byte("y")}, {Key: "ce_id", Value: []byte(r.EventID)}}
		if !uuidPattern.MatchString(r.EventID) || !slices.EqualFunc(r.Headers, want, headerEqual) || r.Key != nil || r.Value != nil {
			t.Errorf("row %+v", r)
		}
	})

	t.Run("DuplicateCeIDAbsorbed", func(t *testing.T) {
		t.Parallel()
		s := newMigratedStore(t)
		ctx := testCtx(t)
		var id1, id2 int64
		q := `SELECT ` + s.schema + `.publish('orders', 'k', 'v', '{"ce_id":"e-1"}')`
		if err := s.pool.QueryRow(ctx, q).Scan(&id1); err != nil {
			t.Fatal(err)
		}
		if err := s.pool.QueryRow(ctx, q).Scan(&id2); err != nil {
			t.Fatalf("second publish of the same ce_id: %v (want it absorbed)", err)
		}
		if rows := claimAll(t, s, time.Now().Add(time.Minute)); id1 != id2 || len(rows) != 1 {
			t.Fatalf("ids %d, %d and %d rows: want one row and its id twice", id1, id2, len(rows))
		}
	})

	t.Run("DeliverAtHeader", func(t *testing.T) {
		t.Parallel()
		s := newMigratedStore(t)
		ctx := testCtx(t)
		at := time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC)
		for _, v := range []string{at.Format(time.RFC3339Nano), fmt.Sprint(at.UnixMilli())} {
			if _, err := s.pool.Exec(ctx, `SELECT `+s.schema+`.publish('orders', 'k', 'v', jsonb_build_object('evproxy.deliver-at', $1::text, 'h', 'x'))`, v); err != nil {
				t.Fatalf("publish with evproxy.deliver-at %q: %v", v, err)
			}
		}
		rows := claimAll(t, s, at)
		if len(rows) != 2 {
			t.Fatalf("%d rows due at %s, want 2", len(rows), at)
		}
		if early := claimAll(t, s, at.Add(-time.Millisecond)); len(early) != 0 {
			t.Fatalf("%d rows due before %s", len(early), at)
		}
		for _, r := range rows {
			if !r.DeliverAt.Equal(at) {
				t.Errorf("deliver_at %s, want %s", r.DeliverAt, at)
			}
			for _, h := range r.Headers {
				if h.Key == "evproxy.deliver-at" {
					t.Errorf("evproxy.deliver-at kept as a header: %+v", r.Headers)
				}
			}
		}
	})

	t.Run("BadHeaders", func(t *testing.T) {
		t.Parallel()
		s := newMigratedStore(t)
		_, err := s.pool.Exec(testCtx(t), `SELECT `+s.schema+`.publish('t', 'k', 'v', '["not", "an object"]')`)
		if err == nil {
			t.Fatal("publish with an array of headers succeeded")
		}
	})

	t.Run("RollbackLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := newMigratedStore(t)
		ctx := testCtx(t)
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT `+s.schema+`.publish('t', 'k', 'v')`); err != nil {
			t.Fatal(err)
		}
		if rows := claimAll(t, s.Tx(tx), time.Now().Add(time.Minute)); len(rows) != 1 {
			t.Fatalf("inside the transaction: %d rows", len(rows))
		}
		if rows := claimAll(t, s, time.Now().Add(time.Minute)); len(rows) != 0 {
			t.Fatalf("outside the uncommitted transaction: %d rows", len(rows))
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if rows := claimAll(t, s, time.Now().Add(time.Minute)); len(rows) != 0 {
			t.Fatalf("after rollback: %d rows", len(rows))
		}
	})
}

func headerEqual(a, b outbox.Header) bool {
	return a.Key == b.Key && (a.Value == nil) == (b.Value == nil) && string(a.Value) == string(b.Value)
}

// listener runs Listen and reports its wake calls on a channel.
func listener(t *testing.T, s *Store) (wakes <-chan struct{}, stop func() error) {
	ch := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Listen(ctx, func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		})
	}()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return ch, stop
}

func waitWake(t *testing.T, wakes <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-wakes:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake within 10s: %s", what)
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	s := newMigratedStore(t)
	ctx := testCtx(t)
	if !s.SupportsListenNotify() {
		t.Fatal("SupportsListenNotify is false")
	}
	wakes, stop := listener(t, s)
	waitWake(t, wakes, "listening")

	publishTx := func(commit bool, n int) {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := tx.Exec(ctx, `SELECT `+s.schema+`.publish('t', 'k', 'v')`); err != nil {
				t.Fatal(err)
			}
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
	// A rolled-back publish notifies nobody; a committed one wakes the
	// listener once however many rows it published (NOTIFY folds them).
	// Notifications arrive in commit order, so the rolled-back one would
	// have come first.
	publishTx(false, 1)
	publishTx(true, 3)
	waitWake(t, wakes, "publish committed")
	// The outbox's own inserts do not notify: publish again and expect
	// exactly the one wake of it.
	if _, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: []*outbox.Message{{EventID: "x", Topic: "t", Partition: -1}}}); err != nil {
		t.Fatal(err)
	}
	publishTx(true, 1)
	waitWake(t, wakes, "second publish")
	select {
	case <-wakes:
		t.Fatal("extra wake: a rolled-back publish or OutboxInsertMany notified")
	default:
	}

	// Kill the listening connection: Listen reconnects and wakes.
	var killed bool
	err := s.pool.QueryRow(ctx, `SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity
		WHERE query = $1 AND pid <> pg_backend_pid()`, s.q.listen).Scan(&killed)
	if err != nil || !killed {
		t.Fatalf("terminate the listening backend: %v, %v", killed, err)
	}
	waitWake(t, wakes, "listening again after the connection was killed")
	publishTx(true, 1)
	waitWake(t, wakes, "publish after reconnecting")

	if err := stop(); err != nil {
		t.Errorf("Listen returned %v after ctx ended, want nil", err)
	}
}

func TestTxExecutor(t *testing.T) {
	t.Parallel()
	s := newMigratedStore(t)
	ctx := testCtx(t)
	now := time.Now()
	msgs := func(ids ...string) *outbox.OutboxInsertManyParams {
		p := &outbox.OutboxInsertManyParams{}
		for _, id := range ids {
			p.Messages = append(p.Messages, &outbox.Message{EventID: id, Topic: "t", Partition: -1, Key: []byte(id)})
		}
		return p
	}
	for _, commit := range []bool{false, true} {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e := s.Tx(tx)
		n, err := e.OutboxInsertMany(ctx, msgs("a", "b"))
		if err != nil || n != 2 {
			t.Fatalf("OutboxInsertMany in tx = %d, %v", n, err)
		}
		if rows := claimAll(t, e, now.Add(time.Minute)); len(rows) != 2 {
			t.Fatalf("claim in tx: %d rows", len(rows))
		}
		if rows := claimAll(t, s, now.Add(time.Minute)); len(rows) != 0 {
			t.Fatalf("claim outside the tx: %d rows", len(rows))
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if commit {
			want = 2
		}
		if rows := claimAll(t, s, now.Add(time.Minute)); len(rows) != want {
			t.Fatalf("commit %v: %d rows after, want %d", commit, len(rows), want)
		}
	}

	// Complete and the dead letters inside a caller's transaction.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	e := s.Tx(tx)
	rows := claimAll(t, e, now.Add(time.Minute))
	if err := e.OutboxComplete(ctx, &outbox.OutboxCompleteParams{
		Sent: []int64{rows[0].ID},
		Dead: []outbox.OutboxDead{{ID: rows[1].ID, Attempts: 1, Stage: "delivery", Reason: "r", FailedAt: now}},
	}); err != nil {
		t.Fatal(err)
	}
	if rows := claimAll(t, e, now.Add(time.Minute)); len(rows) != 0 {
		t.Fatalf("after complete in tx: %d rows", len(rows))
	}
	n, err := e.DeadLetterReplay(ctx, &outbox.DeadLetterListParams{})
	if err != nil || n != 1 {
		t.Fatalf("DeadLetterReplay in tx = %d, %v", n, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if rows := claimAll(t, s, now.Add(time.Minute)); len(rows) != 2 {
		t.Fatalf("after rollback: %d rows, want both back", len(rows))
	}
}

// TestCompleteAtomic makes the dead-letter insert fail and checks that the
// sent and retried rows of the same call are untouched.
func TestCompleteAtomic(t *testing.T) {
	t.Parallel()
	s := newMigratedStore(t)
	ctx := testCtx(t)
	now := time.Now()
	if _, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: []*outbox.Message{
		{EventID: "sent", Topic: "t", Partition: -1, Key: []byte("a")},
		{EventID: "retry", Topic: "t", Partition: -1, Key: []byte("b")},
		{EventID: "dead", Topic: "t", Partition: -1, Key: []byte("c")},
	}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.pool.Exec(ctx, `
CREATE FUNCTION `+s.schema+`.fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'dead letters are broken'; END $$;
CREATE TRIGGER fail BEFORE INSERT ON `+s.schema+`.dead_letter FOR EACH ROW EXECUTE FUNCTION `+s.schema+`.fail();`)
	if err != nil {
		t.Fatal(err)
	}
	rows := claimAll(t, s, now.Add(time.Minute))
	err = s.OutboxComplete(ctx, &outbox.OutboxCompleteParams{
		Sent:  []int64{rows[0].ID},
		Retry: []outbox.OutboxRetry{{ID: rows[1].ID, Attempts: 1, NextAttemptAt: now.Add(time.Hour), Error: "e", Blocks: true}},
		Dead:  []outbox.OutboxDead{{ID: rows[2].ID, Attempts: 1, Stage: "delivery", Reason: "r", FailedAt: now}},
	})
	if err == nil {
		t.Fatal("OutboxComplete succeeded though the dead-letter insert fails")
	}
	if errors.Is(err, outbox.ErrUnavailable) {
		t.Errorf("a statement error is ErrUnavailable: %v", err)
	}
	after := claimAll(t, s, now.Add(time.Minute))
	if len(after) != 3 || after[1].Attempts != 0 {
		t.Fatalf("after a failed complete: %d rows (%+v)", len(after), after)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()

	t.Run("ConcurrentStores", func(t *testing.T) {
		t.Parallel()
		schema := testSchemaName(t)
		stores := []*Store{newTestStore(t, schema), newTestStore(t, schema), newTestStore(t, schema)}
		ctx := testCtx(t)
		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Migrate(ctx)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("store %d: Migrate: %v", i, err)
			}
		}
		rows, err := stores[0].pool.Query(ctx, `SELECT version, name FROM `+schema+`.migration ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		type rec struct {
			Version int64
			Name    string
		}
		got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rec])
		if err != nil {
			t.Fatal(err)
		}
		if want := []rec{{1, "outbox"}, {2, "relay"}}; !slices.Equal(got, want) {
			t.Errorf("migrations recorded %v, want %v", got, want)
		}
	})

	t.Run("DownUp", func(t *testing.T) {
		t.Parallel()
		s := newMigratedStore(t)
		ctx := testCtx(t)
		migs, err := migrations("main", s.schema)
		if err != nil {
			t.Fatal(err)
		}
		if len(migs) == 0 || migs[0].Version != 1 || migs[0].Name != "outbox" {
			t.Fatalf("migrations %+v", migs)
		}
		for i := len(migs) - 1; i >= 0; i-- {
			if _, err := s.pool.Exec(ctx, migs[i].Down); err != nil {
				t.Fatalf("down %d: %v", migs[i].Version, err)
			}
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.migration`); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate after down: %v", err)
		}
		if _, err := s.pool.Exec(ctx, `SELECT `+s.schema+`.publish('t', 'k', 'v')`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("BadSchemaName", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"", "Evproxy", "a-b", "1abc", `x"; DROP TABLE y; --`, "a234567890123456789012345678901234567890123456789012345678"} {
			if _, err := New(testCtx(t), testDatabaseURL(), WithSchema(name)); err == nil {
				t.Errorf("New accepted schema %q", name)
			}
		}
	})
}

func TestErrUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)

	// Nothing listens on port 1: New succeeds (it does not connect), the
	// queries fail with ErrUnavailable.
	down, err := New(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatalf("New against a closed port: %v", err)
	}
	defer down.Close()
	if err := down.Ping(ctx); !errors.Is(err, outbox.ErrUnavailable) {
		t.Errorf("Ping against a closed port: %v, want ErrUnavailable", err)
	}
	if _, err := down.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: []*outbox.Message{{EventID: "e", Topic: "t"}}}); !errors.Is(err, outbox.ErrUnavailable) {
		t.Errorf("OutboxInsertMany against a closed port: %v, want ErrUnavailable", err)
	}
	if err := down.Migrate(ctx); !errors.Is(err, outbox.ErrUnavailable) {
		t.Errorf("Migrate against a closed port: %v, want ErrUnavailable", err)
	}

	s := newMigratedStore(t)
	// A connection whose backend is terminated.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var pid uint32
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SELECT 1`)
	if err == nil {
		t.Fatal("query on a terminated backend succeeded")
	}
	if werr := wrapErr("test", err); !errors.Is(werr, outbox.ErrUnavailable) {
		t.Errorf("terminated backend: %v, want ErrUnavailable", werr)
	}

	// Statement errors and the caller's cancellation are not.
	_, err = s.pool.Exec(ctx, `SELECT * FROM no_such_table`)
	if werr := wrapErr("test", err); errors.Is(werr, outbox.ErrUnavailable) || werr.Error()[:16] != "outboxpgx: test:" {
		t.Errorf("statement error: %v", werr)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.OutboxClaimBatch(cctx, &outbox.OutboxClaimBatchParams{Limit: 1, Now: time.Now()}); err == nil || errors.Is(err, outbox.ErrUnavailable) {
		t.Errorf("cancelled claim: %v", err)
	}
}

// TestLaneOfMatchesSQL: the lane column PostgreSQL generates is
// outbox.LaneOf, which outboxsqlite stores and the relay relies on.
func TestLaneOfMatchesSQL(t *testing.T) {
	t.Parallel()
	s := newMigratedStore(t)
	type topicKey struct {
		topic string
		key   []byte
	}
	keys := map[string]topicKey{ // by event id
		"nil": {"t", nil}, "empty": {"t", []byte{}}, "text": {"orders", []byte("k1")},
		"binary": {"o", []byte{0, 0xff, 0x80}}, "utf8": {"a.b-c", []byte("äöü")}, "utf8topic": {"tøpic", []byte{0}},
	}
	for i := range 100 {
		keys[fmt.Sprint("k", i)] = topicKey{"t", []byte{byte(i), byte(i * 7), 'k'}}
	}
	var msgs []*outbox.Message
	for id, k := range keys {
		msgs = append(msgs, &outbox.Message{EventID: id, Topic: k.topic, Partition: -1, Key: k.key})
	}
	if _, err := s.OutboxInsertMany(testCtx(t), &outbox.OutboxInsertManyParams{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	rows := claimAll(t, s, time.Now().Add(time.Minute))
	if len(rows) != len(msgs) {
		t.Fatalf("%d rows, want %d", len(rows), len(msgs))
	}
	for _, r := range rows {
		if want := outbox.LaneOf(r.Topic, r.Key); r.Lane != want {
			t.Errorf("row %s (%q, %q): lane %d, outbox.LaneOf %d", r.EventID, r.Topic, r.Key, r.Lane, want)
		}
	}
}

// TestOutboxMaintain: with the server's autovacuum off, maintenance
// vacuums the outbox table (its deleted rows are gone from the table);
// with it on, it leaves the table to autovacuum.
func TestOutboxMaintain(t *testing.T) {
	t.Parallel()
	s := newMigratedStore(t)
	ctx := testCtx(t)
	var msgs []*outbox.Message
	for i := range 200 {
		msgs = append(msgs, &outbox.Message{EventID: fmt.Sprint(i), Topic: "t", Partition: -1, Key: []byte("k"), Processed: true})
	}
	if _, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	rows := claimAll(t, s, time.Now().Add(time.Minute))
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	if err := s.OutboxComplete(ctx, &outbox.OutboxCompleteParams{Sent: ids}); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxMaintain(ctx); err != nil {
		t.Fatalf("OutboxMaintain: %v", err)
	}
	var auto string
	if err := s.pool.QueryRow(ctx, "SELECT current_setting('autovacuum')").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	var vacuumed bool
	if err := s.pool.QueryRow(ctx, "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'outbox'", s.schema).Scan(&vacuumed); err != nil {
		t.Fatal(err)
	}
	if want := auto != "on"; vacuumed != want {
		t.Fatalf("autovacuum %s: outbox vacuumed by OutboxMaintain = %v, want %v", auto, vacuumed, want)
	}
}

// TestInsertGeneratedIDsWithCopy: messages whose event ids were all just
// generated are inserted with COPY: same rows, same order, as the general
// path.
func TestInsertGeneratedIDsWithCopy(t *testing.T) {
	t.Parallel()
	s := newMigratedStore(t)
	ctx := testCtx(t)
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := time.UnixMilli(1700000000123)
	msgs := []*outbox.Message{
		{EventID: outbox.NewEventID(), Generated: true, Topic: "t", Partition: 2, Key: []byte("a"), Value: []byte{}, Headers: []outbox.Header{{Key: "h", Value: nil}, {Key: "h", Value: []byte("2")}}, Timestamp: ts, Priority: 3, Processed: true},
		{EventID: outbox.NewEventID(), Generated: true, Topic: "t", Partition: -1, Key: nil, Value: []byte("v"), DeliverAt: at},
	}
	n, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: msgs})
	if err != nil || n != 2 {
		t.Fatalf("OutboxInsertMany = %d, %v", n, err)
	}
	rows := claimAll(t, s, at)
	if len(rows) != 2 || rows[0].ID >= rows[1].ID {
		t.Fatalf("%d rows", len(rows))
	}
	for i, r := range rows {
		m := msgs[i]
		if r.EventID != m.EventID || r.Partition != m.Partition || string(r.Key) != string(m.Key) || (r.Key == nil) != (m.Key == nil) ||
			string(r.Value) != string(m.Value) || (r.Value == nil) != (m.Value == nil) || r.Priority != m.Priority || r.Processed != m.Processed ||
			len(r.Headers) != len(m.Headers) || r.Lane != outbox.LaneOf(m.Topic, m.Key) {
			t.Errorf("row %d = %+v, want %+v", i, r, m)
		}
	}
	if !rows[0].Timestamp.Equal(ts) || !rows[1].DeliverAt.Equal(at) || rows[0].Headers[0].Value != nil || string(rows[0].Headers[1].Value) != "2" {
		t.Errorf("timestamps/headers: %+v", rows)
	}
}
