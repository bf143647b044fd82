package outboxpgx

import (
	"testing"

	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/outbox/outboxtest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	outboxtest.Exercise(t, func(t *testing.T) outbox.Store { return newMigratedStore(t) })
}
