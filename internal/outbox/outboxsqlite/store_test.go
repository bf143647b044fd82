package outboxsqlite

import (
	"context"
	"path/filepath"
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

// newStore opens and migrates a store in a fresh directory, closed at the
// end of the test.
func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(ctxFor(t), filepath.Join(t.TempDir(), "outbox.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctxFor(t)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	outboxtest.Exercise(t, func(t *testing.T) outbox.Store { return newStore(t) })
}
