package outbox

import "testing"

// TestLaneOf pins lanes computed by outboxpgx's generated lane column
// (outboxpgx's TestLaneOfMatchesSQL compares LaneOf with the live column).
func TestLaneOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		topic string
		key   []byte
		lane  int32
	}{
		{"t", nil, 36},
		{"t", []byte{}, 36},
		{"orders", []byte("k1"), 21},
		{"orders", []byte("k2"), 52},
		{"", []byte{0, 0xff}, 49},
		{"a.b-c", []byte("äöü"), 6},
		{"tøpic", []byte{0}, 43},
	}
	for _, tc := range cases {
		if got := LaneOf(tc.topic, tc.key); got != tc.lane {
			t.Errorf("LaneOf(%q, %q) = %d, want %d", tc.topic, tc.key, got, tc.lane)
		}
	}
}
