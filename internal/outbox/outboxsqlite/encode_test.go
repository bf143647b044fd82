package outboxsqlite

import (
	"testing"

	"github.com/evproxy/evproxy/internal/outbox/outboxtest"
)

func TestLaneOfMatchesOutboxtest(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		topic string
		key   []byte
	}{
		{"t", nil}, {"t", []byte{}}, {"orders", []byte("k1")}, {"", []byte{0, 0xff}}, {"a.b-c", []byte("äöü")},
	} {
		if got, want := laneOf(c.topic, c.key), outboxtest.Lane(c.topic, c.key); got != want {
			t.Errorf("laneOf(%q, %q) = %d, outboxtest.Lane = %d", c.topic, c.key, got, want)
		}
	}
}
