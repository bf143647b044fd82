package outboxsqlite

import (
	"bytes"
	"testing"

	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/outbox/outboxtest"
)

func TestHeaders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		hs   []outbox.Header
		enc  []byte
	}{
		{"None", nil, nil},
		{"Empty", []outbox.Header{}, nil},
		{"NullValue", []outbox.Header{{Key: "a", Value: nil}}, []byte{0, 0, 0, 1, 'a', 0xff, 0xff, 0xff, 0xff}},
		{"EmptyValue", []outbox.Header{{Key: "a", Value: []byte{}}}, []byte{0, 0, 0, 1, 'a', 0, 0, 0, 0}},
		{"Two", []outbox.Header{{Key: "", Value: []byte("x")}, {Key: "bb", Value: []byte{0}}},
			[]byte{0, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 0, 2, 'b', 'b', 0, 0, 0, 1, 0}},
	}
	for _, tc := range cases {
		enc := encodeHeaders(tc.hs)
		if !bytes.Equal(enc, tc.enc) || (enc == nil) != (tc.enc == nil) {
			t.Errorf("%s: encoded % x, want % x", tc.name, enc, tc.enc)
		}
		dec, err := decodeHeaders(enc)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := tc.hs
		if len(want) == 0 {
			want = nil
		}
		if !headersEqual(dec, want) {
			t.Errorf("%s: decoded %v, want %v", tc.name, dec, want)
		}
	}
	for _, bad := range [][]byte{{0}, {0, 0, 0, 2, 'a'}, {0, 0, 0, 1, 'a', 0, 0}, {0, 0, 0, 1, 'a', 0xff, 0xff, 0xff, 0xfe}, {0, 0, 0, 1, 'a', 0, 0, 0, 5, 'x'}, {0xff, 0xff, 0xff, 0xff}} {
		if _, err := decodeHeaders(bad); err == nil {
			t.Errorf("decodeHeaders(% x) succeeded", bad)
		}
	}
}

// headersEqual keeps nil values apart from empty ones.
func headersEqual(a, b []outbox.Header) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || (a[i].Value == nil) != (b[i].Value == nil) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// FuzzHeaders: decoding never panics, and what decodes encodes back to the
// same bytes.
func FuzzHeaders(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 'a', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 0, 2, 'b', 'b', 0, 0, 0, 0})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := decodeHeaders(b)
		if err != nil {
			return
		}
		if enc := encodeHeaders(hs); !bytes.Equal(enc, b) {
			t.Fatalf("decode then encode % x: % x", b, enc)
		}
	})
}

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
