package recordbatch

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// batch builds a minimal valid batch with n records of opaque record bytes.
func batch(n int32, recordBytes []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(recordBytes))
	b = append(b, recordBytes...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	b[offMagic] = 2
	binary.BigEndian.PutUint32(b[offLastDelta:], uint32(n-1))
	binary.BigEndian.PutUint64(b[offProducerID:], ^uint64(0))
	binary.BigEndian.PutUint16(b[offEpoch:], 0xffff)
	binary.BigEndian.PutUint32(b[offSequence:], ^uint32(0))
	binary.BigEndian.PutUint32(b[offCount:], uint32(n))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crcTable))
	return b
}

func TestParse(t *testing.T) {
	good := batch(3, []byte("records"))
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"valid", func(b []byte) []byte { return b }, nil},
		{"short", func(b []byte) []byte { return b[:20] }, ErrTruncated},
		{"truncated body", func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated},
		{"magic", func(b []byte) []byte { b[offMagic] = 1; return b }, ErrMagic},
		{"crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCRC},
		{"negative length", func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLength:], 0xffffffff); return b }, ErrCorrupt},
		{"count mismatch", func(b []byte) []byte { binary.BigEndian.PutUint32(b[offCount:], 9); return b }, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(append([]byte(nil), good...))
			h, err := Parse(b)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.want == nil && (h.NumRecords != 3 || h.Size() != len(good) || h.ProducerID != -1 || h.LastSequence() != -1) {
				t.Fatalf("header %+v", h)
			}
		})
	}
}

func TestSetProducer(t *testing.T) {
	b := batch(4, []byte("abc"))
	SetProducer(b, 42, 3, 100)
	h, err := Parse(b)
	if err != nil {
		t.Fatalf("rewritten batch does not parse: %v", err)
	}
	if h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != 100 || h.LastSequence() != 103 {
		t.Fatalf("header %+v", h)
	}
}

// TestSetProducerCRCMatchesFullRecompute checks the incremental CRC update
// against a full recompute for many sizes and field values.
func TestSetProducerCRCMatchesFullRecompute(t *testing.T) {
	for _, n := range []int{0, 1, 7, 100, 4096, 100000} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i*31 + n)
		}
		for _, f := range []struct {
			id    int64
			epoch int16
			seq   int32
		}{{0, 0, 0}, {-1, -1, -1}, {1 << 40, 7, 1 << 30}, {123456789, 32767, 2147483647}} {
			b := batch(3, body)
			SetProducer(b, f.id, f.epoch, f.seq)
			want := crc32.Checksum(b[offAttributes:], crcTable)
			if got := binary.BigEndian.Uint32(b[offCRC:]); got != want {
				t.Fatalf("size %d fields %+v: crc %08x, full recompute %08x", n, f, got, want)
			}
		}
	}
}

func BenchmarkSetProducer(b *testing.B) {
	buf := batch(100, make([]byte, 1<<20))
	b.SetBytes(int64(len(buf)))
	for i := 0; b.Loop(); i++ {
		SetProducer(buf, 1, 0, int32(i))
	}
}

// FuzzParse: never panics; an accepted batch has a consistent header and
// survives a producer rewrite.
func FuzzParse(f *testing.F) {
	f.Add(batch(1, nil))
	f.Add(batch(5, []byte("some records")))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			return
		}
		if h.Size() > len(b) || h.Size() < HeaderLen || h.NumRecords <= 0 {
			t.Fatalf("accepted inconsistent header %+v for %d bytes", h, len(b))
		}
		c := append([]byte(nil), b[:h.Size()]...)
		SetProducer(c, 1, 2, 3)
		if _, err := Parse(c); err != nil {
			t.Fatalf("rewrite broke the batch: %v", err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	buf := batch(100, make([]byte, 100*200))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(buf); err != nil {
			b.Fatal(err)
		}
	}
}
