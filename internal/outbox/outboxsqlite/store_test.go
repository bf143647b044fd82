package outboxsqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/outbox/outboxtest"
)

// ctxFor is a context for one test's calls.
func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens and migrates the store at path, closed at the end of the
// test.
func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(ctxFor(t), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctxFor(t)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// newStore is openStore in a fresh directory.
func newStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), "outbox.db"))
}

// message is a message due a minute ago with a string key ("" is nil).
func message(id, topic, key string) *outbox.Message {
	m := &outbox.Message{EventID: id, Topic: topic, Partition: -1, Value: []byte("v-" + id), DeliverAt: time.Now().Add(-time.Minute)}
	if key != "" {
		m.Key = []byte(key)
	}
	return m
}

func insertN(t testing.TB, e outbox.Executor, want int, msgs ...*outbox.Message) {
	t.Helper()
	n, err := e.OutboxInsertMany(ctxFor(t), &outbox.OutboxInsertManyParams{Messages: msgs})
	if err != nil {
		t.Fatalf("OutboxInsertMany: %v", err)
	}
	if n != want {
		t.Fatalf("OutboxInsertMany = %d new, want %d", n, want)
	}
}

func claimAll(t testing.TB, e outbox.Executor) []*outbox.Row {
	t.Helper()
	rows, err := e.OutboxClaimBatch(ctxFor(t), &outbox.OutboxClaimBatchParams{Now: time.Now().Add(24 * time.Hour), Limit: 1 << 20})
	if err != nil {
		t.Fatalf("OutboxClaimBatch: %v", err)
	}
	return rows
}

func eventIDs(rows []*outbox.Row) []string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.EventID)
	}
	return ids
}

func TestConformance(t *testing.T) {
	t.Parallel()
	outboxtest.Exercise(t, func(t *testing.T) outbox.Store { return newStore(t) })
}

func TestOpenRejectsPaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := Open(ctxFor(t), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestOpenCreatesDirectoriesAndSetsPragmas(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "outbox.db")
	s := openStore(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	if s.Name() != "sqlite" || s.SupportsListenNotify() {
		t.Errorf("Name, SupportsListenNotify = %q, %v", s.Name(), s.SupportsListenNotify())
	}
	if err := s.Listen(ctxFor(t), func() {}); !errors.Is(err, outbox.ErrNotSupported) {
		t.Errorf("Listen = %v, want ErrNotSupported", err)
	}
	// Every pooled connection has the settings: hold maxConns at once.
	ctx := ctxFor(t)
	for i := range maxConns {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, c := range []struct {
			pragma, want string
		}{
			{"journal_mode", "wal"},
			{"synchronous", "2"}, // FULL
			{"busy_timeout", "10000"},
			{"cache_size", "-16384"},
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("conn %d: PRAGMA %s = %s, want %s", i, c.pragma, got, c.want)
			}
		}
	}
}

func TestOpenInUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "outbox.db")
	first, err := Open(ctxFor(t), path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(ctxFor(t), path)
	if err == nil {
		second.Close()
		t.Fatal("second Open of the same database succeeded")
	}
	if !errors.Is(err, ErrInUse) {
		t.Errorf("second Open: %v, want ErrInUse", err)
	}
	want := fmt.Sprintf("outboxsqlite: %s is in use by another evproxy process (pid %d)", path, os.Getpid())
	if err.Error() != want {
		t.Errorf("second Open: %q, want %q", err, want)
	}
	first.Close()
	first.Close() // idempotent
	third, err := Open(ctxFor(t), path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	third.Close()
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "outbox.db")
	s := openStore(t, path)
	ctx := ctxFor(t)
	insertN(t, s, 3, message("a", "t", "k"), message("b", "t", ""), message("c", "t", "k"))
	rows := claimAll(t, s)
	if err := s.OutboxComplete(ctx, &outbox.OutboxCompleteParams{
		Sent: []int64{rows[2].ID},
		Dead: []outbox.OutboxDead{{ID: rows[1].ID, Attempts: 1, Stage: "plugin", Reason: "r", FailedAt: time.Now()}},
	}); err != nil {
		t.Fatal(err)
	}
	lanes, err := s.LaneAcquire(ctx, &outbox.LaneAcquireParams{Owner: "me", TTL: time.Hour, Max: 3})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openStore(t, path) // Migrate again: nothing to do
	if got := eventIDs(claimAll(t, s)); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after reopen outbox holds %v, want [a]", got)
	}
	dls, err := s.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
	if err != nil || len(dls) != 1 || dls[0].EventID != "b" {
		t.Errorf("after reopen dead letters %v, %v", dls, err)
	}
	if n, err := s.LaneOwners(ctx, "other"); err != nil || n != 1 {
		t.Errorf("after reopen LaneOwners = %d, %v; want 1", n, err)
	}
	again, err := s.LaneAcquire(ctx, &outbox.LaneAcquireParams{Owner: "me", TTL: time.Hour, Max: 3})
	if err != nil || !slices.Equal(again, lanes) {
		t.Errorf("after reopen lanes %v, %v; want %v", again, err, lanes)
	}
	// ids are never reused, not even the highest after it was deleted.
	insertN(t, s, 1, message("d", "t", "k"))
	rows2 := claimAll(t, s)
	if last := rows2[len(rows2)-1]; last.EventID != "d" || last.ID <= rows[2].ID {
		t.Errorf("new row %s has id %d, want more than %d", last.EventID, last.ID, rows[2].ID)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := ctxFor(t)
	versions := func() []int {
		rows, err := s.db.QueryContext(ctx, "SELECT version FROM migration WHERE line = 'main' ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var vs []int
		for rows.Next() {
			var v int
			rows.Scan(&v)
			vs = append(vs, v)
		}
		return vs
	}
	tables := func() []string {
		rows, err := s.db.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('outbox', 'lane', 'dead_letter', 'relay') ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ns []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			ns = append(ns, n)
		}
		return ns
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := versions(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("migration versions %v, want [1 2]", got)
	}
	if got := tables(); !slices.Equal(got, []string{"dead_letter", "lane", "outbox", "relay"}) {
		t.Fatalf("tables %v", got)
	}
	// Down and up again.
	if err := s.migrate(ctx, "main", 0); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	if got, tb := versions(), tables(); len(got) != 0 || len(tb) != 0 {
		t.Fatalf("after down: versions %v, tables %v", got, tb)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insertN(t, s, 1, message("a", "t", "k"))

	if lines := s.GetMigrationLines(); !slices.Equal(lines, []string{"main"}) {
		t.Errorf("GetMigrationLines = %v", lines)
	}
	fsys := s.GetMigrationFS("main")
	if fsys == nil {
		t.Fatal("GetMigrationFS(main) = nil")
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil || !slices.Equal(names, []string{"001_outbox.down.sql", "001_outbox.up.sql", "002_relay.down.sql", "002_relay.up.sql"}) {
		t.Errorf("migration files %v, %v", names, err)
	}
	if s.GetMigrationFS("nope") != nil {
		t.Errorf("GetMigrationFS(nope) != nil")
	}
}

func TestTx(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := ctxFor(t)

	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insertN(t, tx, 2, message("a", "t", "k"), message("b", "t", "k"))
	if got := eventIDs(claimAll(t, tx)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("inside the transaction: %v", got)
	}
	if got := claimAll(t, s); len(got) != 0 {
		t.Fatalf("outside the transaction before commit: %v", eventIDs(got))
	}
	// A write of the Store waits for the transaction.
	done := make(chan error, 1)
	go func() {
		_, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: []*outbox.Message{message("c", "t", "k")}})
		done <- err
	}()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := eventIDs(claimAll(t, s)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after rollback: %v, want [c]", got)
	}

	tx, err = s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	insertN(t, tx, 1, message("d", "t", "k"))
	rows := claimAll(t, tx)
	if err := tx.OutboxComplete(ctx, &outbox.OutboxCompleteParams{Sent: []int64{rows[0].ID}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Errorf("Rollback after Commit: %v", err)
	}
	if got := eventIDs(claimAll(t, s)); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("after commit: %v, want [d]", got)
	}

	// Begin waits for ctx while another transaction is open.
	tx, err = s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Begin(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Begin with a cancelled context while busy: %v", err)
	}
	tx.Rollback(ctx)
}

// TestConcurrentUse runs the front door (inserts), the relay (claim,
// complete) and the admin reads at once; every row is published once.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := ctxFor(t)
	const writers, batches, batch = 3, 20, 25
	total := writers * batches * batch
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var msgs []*outbox.Message
				for i := range batch {
					msgs = append(msgs, message(fmt.Sprintf("w%d-%d-%d", w, b, i), "t", fmt.Sprint("k", i%5)))
				}
				if _, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: msgs}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.OutboxStats(ctx, time.Now()); err != nil {
				errs <- err
				return
			}
			if _, _, err := s.OutboxNextDue(ctx); err != nil {
				errs <- err
				return
			}
		}
	}()
	seen := map[string]int{}
	lastOfKey := map[string]int64{}
	for len(seen) < total {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		rows, err := s.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Now: time.Now(), Limit: 40})
		if err != nil {
			t.Fatal(err)
		}
		var sent []int64
		for _, r := range rows {
			seen[r.EventID]++
			if r.ID <= lastOfKey[string(r.Key)] {
				t.Fatalf("row %d of key %s after %d", r.ID, r.Key, lastOfKey[string(r.Key)])
			}
			lastOfKey[string(r.Key)] = r.ID
			sent = append(sent, r.ID)
		}
		if err := s.OutboxComplete(ctx, &outbox.OutboxCompleteParams{Sent: sent}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s published %d times", id, n)
		}
	}
	if got := claimAll(t, s); len(got) != 0 {
		t.Errorf("%d rows left", len(got))
	}
}

func TestLaneAcquireArguments(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, p := range []outbox.LaneAcquireParams{
		{Owner: "", TTL: time.Minute, Max: 1},
		{Owner: "a", TTL: 0, Max: 1},
	} {
		if _, err := s.LaneAcquire(ctxFor(t), &p); err == nil || !strings.HasPrefix(err.Error(), "outboxsqlite: ") {
			t.Errorf("LaneAcquire(%+v) = %v, want an error", p, err)
		}
	}
	if got, err := s.LaneAcquire(ctxFor(t), &outbox.LaneAcquireParams{Owner: "a", TTL: time.Minute, Max: 1000}); err != nil || len(got) != outbox.Lanes {
		t.Errorf("Max above Lanes: %v, %v", got, err)
	}
}
