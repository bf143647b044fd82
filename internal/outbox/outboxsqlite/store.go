package outboxsqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/evproxy/evproxy/internal/outbox"
)

// maxConns bounds the connection pool: one writer at a time (writes are
// serialised in Go) and a few readers beside it.
const maxConns = 4

// Store is the embedded outbox store. It implements outbox.Store; its
// methods are safe for concurrent use.
type Store struct {
	executor
	path string
	db   *sql.DB
	lock *fileLock
	// wsem serialises write transactions in this process, so they never
	// wait on SQLite's lock (whose busy handler polls with sleeps).
	wsem      chan struct{}
	closeOnce sync.Once
}

var _ outbox.Store = (*Store)(nil)

// Open opens (creating it and its parent directories if needed) the store
// in the SQLite database file at path, and locks it for this process: an
// Open of a database another evproxy process, or another Store of this
// one, has open fails with an error naming path and matching ErrInUse.
// The lock file is path + ".lock"; it stays after Close. Open does not
// create the schema: call Migrate.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("outboxsqlite: %q: need the path of a database file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("outboxsqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("outboxsqlite: %w", err)
	}
	lock, err := lockFile(path, abs+".lock")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	// Where the platform's fsync does not reach the disk (macOS), use
	// F_FULLFSYNC; elsewhere these are no-ops.
	q.Add("_pragma", "fullfsync(1)")
	q.Add("_pragma", "checkpoint_fullfsync(1)")
	// A 16 MiB page cache per connection (the default is 2 MiB): claims
	// read the outbox's indexes all over.
	q.Add("_pragma", "cache_size(-16384)")
	db, err := sql.Open("sqlite", abs+"?"+q.Encode())
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("outboxsqlite: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &Store{path: path, db: db, lock: lock, wsem: make(chan struct{}, 1)}
	s.executor = executor{read: db, write: s.writeTx, stmts: &stmtCache{db: db}}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		s.Close()
		return nil, wrapErr("open "+path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		s.Close()
		return nil, fmt.Errorf("outboxsqlite: open %s: journal mode is %q, not wal", path, mode)
	}
	return s, nil
}

// Name is "sqlite".
func (s *Store) Name() string { return "sqlite" }

// SupportsListenNotify is false: only this process writes the database.
func (s *Store) SupportsListenNotify() bool { return false }

// Listen returns outbox.ErrNotSupported.
func (s *Store) Listen(ctx context.Context, wake func()) error { return outbox.ErrNotSupported }

// Ping checks the database file can be read (with or without the schema).
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return wrapErr("ping", s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n))
}

// Close closes the database and releases the lock. It waits for no caller
// transaction; one still open fails.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.stmts.close()
		s.db.Close()
		s.lock.release()
	})
}

// Tx is a write transaction of the caller's: an outbox.Executor whose
// statements all run in it until Commit or Rollback. While a Tx is open
// every other write of the Store waits, so a goroutine holding one must
// not write through the Store itself.
type Tx struct {
	executor
	tx   *sql.Tx
	once sync.Once
	done func()
}

var _ outbox.Executor = (*Tx)(nil)

// Begin starts a write transaction (BEGIN IMMEDIATE). It waits for the
// Store's other writes to finish, or for ctx.
func (s *Store) Begin(ctx context.Context) (*Tx, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.releaseW()
		return nil, wrapErr("begin", err)
	}
	t := &Tx{tx: tx, done: s.releaseW}
	t.executor = executor{read: tx, tx: tx, stmts: s.stmts,
		write: func(_ context.Context, fn func(querier) error) error { return fn(tx) }}
	return t, nil
}

// Commit commits the transaction. ctx is unused: a commit is not
// interrupted.
func (t *Tx) Commit(ctx context.Context) error {
	defer t.once.Do(t.done)
	return wrapErr("commit", t.tx.Commit())
}

// Rollback abandons the transaction; after Commit it does nothing and
// returns nil, so it can be deferred.
func (t *Tx) Rollback(ctx context.Context) error {
	defer t.once.Do(t.done)
	err := t.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return wrapErr("rollback", err)
}

// acquire takes the write semaphore.
func (s *Store) acquire(ctx context.Context) error {
	select {
	case s.wsem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) releaseW() { <-s.wsem }

// writeTx runs fn in a write transaction of its own.
func (s *Store) writeTx(ctx context.Context, fn func(querier) error) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.releaseW()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wrapErr names the operation and marks errors of the database file
// itself (locked, I/O, full, cannot open) outbox.ErrUnavailable.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return fmt.Errorf("outboxsqlite: %s: %w: %w", op, outbox.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("outboxsqlite: %s: %w", op, err)
}

// stmtCache holds the prepared statements of the hot reads, prepared on
// first use (the tables may not exist at Open); database/sql prepares them
// again on each connection that runs them.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[query]; st != nil {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}
