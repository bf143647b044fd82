package outboxpgx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const defaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testDatabaseURL is TEST_DATABASE_URL, or the local test database.
func testDatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultTestDatabaseURL
}

// testSchemaName is a fresh schema name, evproxy_test_<random>.
func testSchemaName(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "evproxy_test_" + hex.EncodeToString(b[:])
}

// newTestStore connects a store to a schema of its own, not migrated;
// the schema is dropped and the store closed at cleanup. Without a
// database (TEST_DATABASE_URL unset and the default unreachable) the test
// is skipped.
func newTestStore(t testing.TB, schema string) *Store {
	t.Helper()
	return newTestStoreURL(t, testDatabaseURL(), schema)
}

// noSyncCommitURL is u with synchronous_commit off for its sessions (u
// must be a URL): commits do not wait for the WAL flush.
func noSyncCommitURL(t testing.TB, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL is not a URL: %v", err)
	}
	q := pu.Query()
	q.Set("options", "-c synchronous_commit=off")
	pu.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20") // pgx reads + literally
	return pu.String()
}

func newTestStoreURL(t testing.TB, databaseURL, schema string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, databaseURL, WithSchema(schema))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		if os.Getenv("TEST_DATABASE_URL") == "" {
			t.Skipf("no test database (set TEST_DATABASE_URL): %v", err)
		}
		t.Fatalf("Ping: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
		s.Close()
	})
	return s
}

// newMigratedStore is newTestStore on a fresh, migrated schema.
func newMigratedStore(t testing.TB) *Store {
	t.Helper()
	s := newTestStore(t, testSchemaName(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}
