package outbox

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// headerEqual keeps a nil value apart from an empty one.
func headerEqual(a, b Header) bool {
	return a.Key == b.Key && (a.Value == nil) == (b.Value == nil) && bytes.Equal(a.Value, b.Value)
}

func TestHeadersCodec(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		hs   []Header
		enc  []byte
	}{
		{"None", nil, nil},
		{"Empty", []Header{}, nil},
		{"NullValue", []Header{{Key: "a", Value: nil}}, []byte{0, 0, 0, 1, 'a', 0xff, 0xff, 0xff, 0xff}},
		{"EmptyValue", []Header{{Key: "a", Value: []byte{}}}, []byte{0, 0, 0, 1, 'a', 0, 0, 0, 0}},
		{"NullAndEmpty", []Header{{Key: "a", Value: nil}, {Key: "", Value: []byte{}}},
			[]byte("\x00\x00\x00\x01a\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"Two", []Header{{Key: "", Value: []byte("x")}, {Key: "bb", Value: []byte{0}}},
			[]byte{0, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 0, 2, 'b', 'b', 0, 0, 0, 1, 0}},
		{"Dup", []Header{{Key: "k", Value: []byte("1")}, {Key: "k", Value: []byte("2")}},
			[]byte("\x00\x00\x00\x01k\x00\x00\x00\x011\x00\x00\x00\x01k\x00\x00\x00\x012")},
	}
	for _, tc := range cases {
		enc := EncodeHeaders(tc.hs)
		if !bytes.Equal(enc, tc.enc) || (enc == nil) != (tc.enc == nil) {
			t.Errorf("%s: encoded % x, want % x", tc.name, enc, tc.enc)
		}
		dec, err := DecodeHeaders(enc)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := tc.hs
		if len(want) == 0 {
			want = nil
		}
		if (dec == nil) != (want == nil) || !slices.EqualFunc(dec, want, headerEqual) {
			t.Errorf("%s: decoded %v, want %v", tc.name, dec, want)
		}
	}
	for _, bad := range []string{
		"\x00",                               // truncated name length
		"\x00\x00\x00\x05ab",                 // name longer than the column
		"\xff\xff\xff\xff",                   // negative name length
		"\x00\x00\x00\x01a",                  // no value length
		"\x00\x00\x00\x01a\x00\x00",          // truncated value length
		"\x00\x00\x00\x01a\xff\xff\xff\xfe",  // value length -2
		"\x00\x00\x00\x01a\x00\x00\x00\x05x", // value longer than the column
		"\x00\x00\x00\x00\x00\x00\x00\x09x",  // value longer than the column, empty name
	} {
		if _, err := DecodeHeaders([]byte(bad)); !errors.Is(err, errHeaders) {
			t.Errorf("DecodeHeaders(%q) = %v, want errHeaders", bad, err)
		}
	}
}

// TestDecodeHeadersCopies: decoded values never alias the column, which a
// database driver may reuse for the next row.
func TestDecodeHeadersCopies(t *testing.T) {
	t.Parallel()
	b := EncodeHeaders([]Header{{Key: "k", Value: []byte("v")}})
	hs, err := DecodeHeaders(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if hs[0].Key != "k" || string(hs[0].Value) != "v" {
		t.Errorf("decoded %v changed with the column", hs)
	}
}

// FuzzDecodeHeaders: decoding never panics, and what decodes is canonical:
// it encodes back to the same bytes.
func FuzzDecodeHeaders(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 'a', 0xff, 0xff, 0xff, 0xff})
	f.Add(EncodeHeaders([]Header{{Key: "a", Value: nil}, {Key: "b", Value: []byte("x")}}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 0, 2, 'b', 'b', 0, 0, 0, 0})
	f.Add([]byte("\x00\x00\x00\x01a\xff\xff\xff\xfe"))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := DecodeHeaders(b)
		if err != nil {
			if !errors.Is(err, errHeaders) {
				t.Fatalf("DecodeHeaders(% x): %v, want errHeaders", b, err)
			}
			return
		}
		if enc := EncodeHeaders(hs); !bytes.Equal(enc, b) {
			t.Fatalf("DecodeHeaders(% x) = %v encodes to % x", b, hs, enc)
		}
	})
}
