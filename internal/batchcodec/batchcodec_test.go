package batchcodec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/evproxy/evproxy/internal/recordbatch"
)

// Attribute bits the tests set besides the codec.
const (
	attrLogAppendTime = 0x08
	attrTransactional = recordbatch.AttrTransactional
)

var codecs = []int16{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd}

// sameRecords fails t unless got matches want field by field, telling null
// from empty. With renumbered, got's offset deltas must be 0..n-1 instead
// of want's.
func sameRecords(t testing.TB, want, got []Record, renumbered bool) {
	t.Helper()
	if err := diffRecords(want, got, renumbered); err != nil {
		t.Fatal(err)
	}
}

func diffRecords(want, got []Record, renumbered bool) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := &want[i], &got[i]
		if err := sameBytes("key", w.Key, g.Key); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if err := sameBytes("value", w.Value, g.Value); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if g.Timestamp != w.Timestamp {
			return fmt.Errorf("record %d: timestamp %d, want %d", i, g.Timestamp, w.Timestamp)
		}
		wantDelta := w.OffsetDelta
		if renumbered {
			wantDelta = int32(i)
		}
		if g.OffsetDelta != wantDelta {
			return fmt.Errorf("record %d: offset delta %d, want %d", i, g.OffsetDelta, wantDelta)
		}
		if len(g.Headers) != len(w.Headers) {
			return fmt.Errorf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for h := range w.Headers {
			if g.Headers[h].Key != w.Headers[h].Key {
				return fmt.Errorf("record %d header %d: key %q, want %q", i, h, g.Headers[h].Key, w.Headers[h].Key)
			}
			if err := sameBytes("value", w.Headers[h].Value, g.Headers[h].Value); err != nil {
				return fmt.Errorf("record %d header %d: %w", i, h, err)
			}
		}
	}
	return nil
}

func sameBytes(what string, want, got []byte) error {
	if (want == nil) != (got == nil) || !bytes.Equal(want, got) {
		return fmt.Errorf("%s %s, want %s", what, show(got), show(want))
	}
	return nil
}

func show(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// text returns n bytes of compressible, varied text.
func text(seed, n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, `{"id":%d,"user":"user-%d","event":"click","n":%d}`, seed, (seed*7+i)%13, i)
	}
	return b[:n]
}

// numbered returns n records with keys, values and a header each, and
// offset deltas 0..n-1.
func numbered(n, valueLen int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Key:         fmt.Appendf(nil, "key-%d", i%17),
			Value:       text(i, valueLen),
			Headers:     []Header{{Key: "trace-id", Value: fmt.Appendf(nil, "%016x", i)}},
			Timestamp:   1_700_000_000_000 + int64(i),
			OffsetDelta: int32(i),
		}
	}
	return recs
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	manyHeaders := make([]Header, 300)
	for i := range manyHeaders {
		manyHeaders[i] = Header{Key: fmt.Sprintf("h%d", i), Value: bytes.Repeat([]byte{byte(i)}, i%5)}
		if i%7 == 0 {
			manyHeaders[i].Value = nil
		}
	}
	cases := []struct {
		name string
		recs []Record
	}{
		{"null key and value", []Record{{Timestamp: 1}}},
		{"empty key and value", []Record{{Key: []byte{}, Value: []byte{}, Timestamp: 1}}},
		{"null key, empty value", []Record{{Value: []byte{}}, {Key: []byte{}}}},
		{"header values null and empty", []Record{{
			Key:     []byte("k"),
			Headers: []Header{{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}, {Key: "", Value: []byte("empty key")}, {Key: "ключ", Value: []byte("ü")}},
		}}},
		{"many headers", []Record{{Value: []byte("v"), Headers: manyHeaders}, {Value: []byte("w")}, {Headers: manyHeaders[:3]}}},
		{"timestamps unordered", []Record{{Timestamp: 50}, {Timestamp: 10}, {Timestamp: 30}, {Timestamp: 10}}},
		{"timestamps negative", []Record{{Timestamp: -1}, {Timestamp: -1_000_000}, {Timestamp: 0}}},
		{"timestamps extreme", []Record{{Timestamp: math.MaxInt64}, {Timestamp: math.MinInt64}, {Timestamp: 0}}},
		{"offset deltas renumbered", []Record{{OffsetDelta: 7}, {OffsetDelta: 7}, {OffsetDelta: -3}}},
		{"1000 records", numbered(1000, 50)},
		{"large values", []Record{{Value: text(1, 300_000)}, {Value: bytes.Repeat([]byte{0xff}, 70_000)}, {Key: text(2, 200_000)}}},
		{"incompressible", []Record{{Value: noise(100_000)}}},
	}
	var (
		enc Encoder
		dec Decoder // shared, so each case also decodes after another
	)
	for _, c := range cases {
		for _, codec := range codecs {
			for _, extra := range []int16{0, attrLogAppendTime | attrTransactional} {
				t.Run(fmt.Sprintf("%s/%s/attrs%#x", c.name, codecNames[codec], extra), func(t *testing.T) {
					attrs := codec | extra
					b, err := enc.Encode([]byte("prefix"), attrs, 4242, 3, 100, c.recs)
					if err != nil {
						t.Fatalf("encode: %v", err)
					}
					if string(b[:6]) != "prefix" {
						t.Fatalf("encode overwrote dst's prefix")
					}
					b = b[6:]
					h, err := recordbatch.Parse(b)
					if err != nil {
						t.Fatalf("recordbatch.Parse refuses the encoded batch: %v", err)
					}
					if h.Size() != len(b) || h.BaseOffset != 0 || h.NumRecords != int32(len(c.recs)) || h.Attributes != attrs ||
						h.ProducerID != 4242 || h.ProducerEpoch != 3 || h.BaseSequence != 100 {
						t.Fatalf("header %+v", h)
					}
					if epoch := int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])); epoch != -1 {
						t.Fatalf("partition leader epoch %d", epoch)
					}
					minTS, maxTS := c.recs[0].Timestamp, c.recs[0].Timestamp
					for _, r := range c.recs {
						minTS, maxTS = min(minTS, r.Timestamp), max(maxTS, r.Timestamp)
					}
					got, err := dec.Decode(b, 1<<20)
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					if got.Attributes != attrs || got.BaseTimestamp != minTS || got.MaxTimestamp != maxTS ||
						got.ProducerID != 4242 || got.ProducerEpoch != 3 || got.BaseSequence != 100 {
						t.Fatalf("batch %+v", got)
					}
					sameRecords(t, c.recs, got.Records, true)
				})
			}
		}
	}
}

// noise returns n incompressible bytes.
func noise(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// rawBatch builds an uncompressed-layout batch around a records section,
// with the given attributes and count and a correct CRC.
func rawBatch(attrs int16, count int32, records []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(records))
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], math.MaxUint32)
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(b[offLastDelta:], uint32(count-1))
	binary.BigEndian.PutUint64(b[offProducerID:], math.MaxUint64)
	binary.BigEndian.PutUint16(b[offEpoch:], math.MaxUint16)
	binary.BigEndian.PutUint32(b[offSequence:], math.MaxUint32)
	binary.BigEndian.PutUint32(b[offCount:], uint32(count))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crcTable))
	return b
}

// rebatch returns batch with its codec set to codec and its records
// section replaced by section, with length and CRC updated.
func rebatch(batch []byte, codec int16, section []byte) []byte {
	b := append(bytes.Clone(batch[:headerLen]), section...)
	attrs := int16(binary.BigEndian.Uint16(b[offAttributes:]))&^recordbatch.AttrCompressionMask | codec
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crcTable))
	return b
}

// rec builds one record's bytes from raw fields: body is everything after
// the length, which is computed unless length is given.
func rec(body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(appendVarint(nil, int64(len(b))), b...)
}

func vi(v int64) []byte { return appendVarint(nil, v) }

func TestDecodeCorrupt(t *testing.T) {
	t.Parallel()
	// A valid record: attributes, ts delta 5, offset delta 0, key "k",
	// value null, one header "h" = "v".
	good := rec([]byte{0}, vi(5), vi(0), vi(1), []byte("k"), vi(-1), vi(1), vi(1), []byte("h"), vi(1), []byte("v"))
	valid := rawBatch(0, 1, good)
	if _, err := new(Decoder).Decode(valid, 0); err != nil {
		t.Fatalf("the valid batch does not decode: %v", err)
	}
	cases := []struct {
		name  string
		batch []byte
		want  error
		msg   string // a substring of the error
	}{
		{"short", valid[:60], ErrCorrupt, "61"},
		{"trailing byte after the batch", append(bytes.Clone(valid), 0), ErrCorrupt, "batch length"},
		{"truncated", valid[:len(valid)-1], ErrCorrupt, "batch length"},
		{"magic", func() []byte { b := bytes.Clone(valid); b[offMagic] = 1; return b }(), ErrCorrupt, "magic 1"},
		{"negative count", rawBatch(0, -1, good), ErrCorrupt, "record count -1"},
		{"count above records", rawBatch(0, 2, good), ErrCorrupt, "at most 1"},
		{"count below records", rawBatch(0, 1, append(bytes.Clone(good), good...)), ErrCorrupt, "follow the last record"},
		{"count zero with records", rawBatch(0, 0, good), ErrCorrupt, "follow the last record"},
		{"trailing garbage", rawBatch(0, 1, append(bytes.Clone(good), 0, 0, 0, 0, 0, 0, 0, 0)), ErrCorrupt, "record 1 at batch byte 73: 8 bytes follow"},
		{"record length past the end", rawBatch(0, 1, append(vi(100), good[1:]...)), ErrCorrupt, "record 0 at batch byte 61: length 100"},
		{"record length negative", rawBatch(0, 1, append(vi(-2), good[1:]...)), ErrCorrupt, "length -2"},
		{"record length short of fields", rawBatch(0, 1, append(append(vi(int64(len(good)-2)), good[1:len(good)-1]...), 0)), ErrCorrupt, "header 0 value length"},
		{"record length beyond fields", rawBatch(0, 1, rec([]byte{0}, vi(5), vi(0), vi(-1), vi(-1), vi(0), []byte{0, 0, 0})), ErrCorrupt, "fields end 3 bytes before"},
		{"length varint too long", rawBatch(0, 1, append([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0}, good[1:]...)), ErrCorrupt, "malformed length varint"},
		{"length varint past 32 bits, high bits dropped as Java does", rawBatch(0, 1, append([]byte{0xff, 0xff, 0xff, 0xff, 0x7f}, good...)), ErrCorrupt, "length -2147483648"},
		{"key length past the record", rawBatch(0, 1, rec([]byte{0}, vi(0), vi(0), vi(9), []byte("k"), vi(-1), vi(0), []byte{0, 0, 0, 0, 0})), ErrCorrupt, "key length"},
		{"key length below -1", rawBatch(0, 1, rec([]byte{0}, vi(0), vi(0), vi(-2), vi(-1), vi(0), []byte{0, 0})), ErrCorrupt, "key length"},
		{"value length past the record", rawBatch(0, 1, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(5), []byte("ab"), vi(0))), ErrCorrupt, "value length"},
		{"null header key", rawBatch(0, 1, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(1), vi(-1), vi(-1))), ErrCorrupt, "header 0 key length"},
		{"header count negative", rawBatch(0, 1, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(-1), []byte{0, 0})), ErrCorrupt, "header count"},
		{"header count beyond the record", rawBatch(0, 1, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(1_000_000), []byte{0, 0})), ErrCorrupt, "header count"},
		{"record cut in the timestamp", rawBatch(0, 1, append(rec([]byte{0}, []byte{0x80}), make([]byte, 6)...)), ErrCorrupt, "timestamp delta"},
		{"codec 5", rawBatch(5, 1, good), ErrUnsupportedCodec, "codec 5"},
		{"codec 7", rawBatch(7, 1, good), ErrUnsupportedCodec, "codec 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := new(Decoder).Decode(c.batch, 1<<20)
			if !errors.Is(err, c.want) || got != nil {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not mention %q", err, c.msg)
			}
		})
	}
}

// TestDecodeSnappyVariants decodes xerial framed snappy as the Java
// producer writes it, and refuses S2 extensions.
func TestDecodeSnappyVariants(t *testing.T) {
	t.Parallel()
	recs := numbered(400, 300) // > 100 KiB of records: several xerial chunks
	var enc Encoder
	plain, err := enc.Encode(nil, codecNone, -1, -1, -1, recs)
	if err != nil {
		t.Fatal(err)
	}
	raw := plain[headerLen:]

	xerial := []byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01")
	for chunk := raw; len(chunk) > 0; {
		n := min(len(chunk), 32<<10)
		block := s2.EncodeSnappy(nil, chunk[:n])
		xerial = binary.BigEndian.AppendUint32(xerial, uint32(len(block)))
		xerial = append(xerial, block...)
		chunk = chunk[n:]
	}
	var dec Decoder
	got, err := dec.Decode(rebatch(plain, codecSnappy, xerial), len(raw))
	if err != nil {
		t.Fatalf("xerial: %v", err)
	}
	sameRecords(t, recs, got.Records, false)
	if _, err := dec.Decode(rebatch(plain, codecSnappy, xerial), len(raw)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("xerial one byte over the limit: %v, want ErrTooLarge", err)
	}
	bad := bytes.Clone(xerial)
	binary.BigEndian.PutUint32(bad[16:], uint32(len(xerial))) // first chunk's length past the end
	if _, err := dec.Decode(rebatch(plain, codecSnappy, bad), len(raw)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "xerial chunk length") {
		t.Fatalf("xerial with a bad chunk length: %v", err)
	}

	// s2.Encode may use S2's repeat offsets, which snappy lacks; the
	// decoder accepts them (see snappyBlock).
	got, err = dec.Decode(rebatch(plain, codecSnappy, s2.Encode(nil, raw)), len(raw))
	if err != nil {
		t.Fatalf("S2 block: %v", err)
	}
	sameRecords(t, recs, got.Records, false)
}

func TestDecodeTooLarge(t *testing.T) {
	t.Parallel()
	recs := numbered(300, 200)
	var enc Encoder
	plain, err := enc.Encode(nil, codecNone, -1, -1, -1, recs)
	if err != nil {
		t.Fatal(err)
	}
	size := len(plain) - headerLen
	for _, codec := range codecs[1:] {
		t.Run(codecNames[codec], func(t *testing.T) {
			t.Parallel()
			var enc Encoder
			b, err := enc.Encode(nil, codec, -1, -1, -1, recs)
			if err != nil {
				t.Fatal(err)
			}
			var dec Decoder
			if _, err := dec.Decode(b, size); err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			for _, limit := range []int{size - 1, size / 2, 0, -5} {
				if _, err := dec.Decode(b, limit); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("limit %d: %v, want ErrTooLarge", limit, err)
				}
			}
			if got, err := dec.Decode(b, math.MaxInt); err != nil {
				t.Fatalf("no limit: %v", err)
			} else {
				sameRecords(t, recs, got.Records, false)
			}
		})
	}
	// An uncompressed batch is not bounded.
	if _, err := new(Decoder).Decode(plain, 0); err != nil {
		t.Fatalf("uncompressed with limit 0: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	var enc Encoder
	dst := []byte("keep")
	for _, c := range []struct {
		name  string
		attrs int16
		recs  []Record
		want  error
	}{
		{"no records", 0, nil, errNoRecords},
		{"codec 5", 5, []Record{{}}, ErrUnsupportedCodec},
		{"codec 7", 7 | attrTransactional, []Record{{}}, ErrUnsupportedCodec},
	} {
		got, err := enc.Encode(dst, c.attrs, -1, -1, -1, c.recs)
		if !errors.Is(err, c.want) || string(got) != "keep" {
			t.Errorf("%s: %q, %v; want dst unchanged and %v", c.name, got, err, c.want)
		}
	}
}

// TestDecoderReuse decodes batches of growing and shrinking shapes with one
// Decoder, so that its buffers move, and checks each result.
func TestDecoderReuse(t *testing.T) {
	t.Parallel()
	var (
		enc Encoder
		dec Decoder
	)
	for i, n := range []int{1, 50, 3, 2000, 10, 2000, 1} {
		recs := numbered(n, 20+i)
		for r := range recs {
			for h := range r % 4 {
				recs[r].Headers = append(recs[r].Headers, Header{Key: fmt.Sprintf("x-%d-%d", i, h), Value: []byte{byte(h)}})
			}
		}
		codec := codecs[i%len(codecs)]
		b, err := enc.Encode(nil, codec, -1, -1, -1, recs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(b, 1<<24)
		if err != nil {
			t.Fatalf("batch %d (%s): %v", i, codecNames[codec], err)
		}
		sameRecords(t, recs, got.Records, true)
		// The records' headers lie end to end in the Decoder's array.
		at := 0
		for r, rec := range got.Records {
			if len(rec.Headers) > 0 && &rec.Headers[0] != &dec.hdrs[at] {
				t.Fatalf("batch %d record %d: headers not in the decoder's array at %d", i, r, at)
			}
			at += len(rec.Headers)
		}
	}
}

// TestDecodeAliasing checks which buffer records point into, and that their
// capacity is cut so appends cannot overwrite the next field.
func TestDecodeAliasing(t *testing.T) {
	t.Parallel()
	recs := []Record{{Key: []byte("ab"), Value: []byte("cd"), Headers: []Header{{Key: "h", Value: []byte("ef")}}}}
	var (
		enc Encoder
		dec Decoder
	)
	b, err := enc.Encode(nil, codecNone, -1, -1, -1, recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec.Decode(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := got.Records[0]
	if cap(r.Key) != 2 || cap(r.Value) != 2 || cap(r.Headers[0].Value) != 2 || cap(got.Records) != 1 || cap(r.Headers) != 1 {
		t.Fatalf("capacities not cut: key %d value %d header value %d records %d headers %d",
			cap(r.Key), cap(r.Value), cap(r.Headers[0].Value), cap(got.Records), cap(r.Headers))
	}
	before := bytes.Clone(b)
	_ = append(r.Key, 'X')
	_ = append(r.Value, 'Y')
	_ = append(r.Headers[0].Value, 'Z')
	if !bytes.Equal(b, before) {
		t.Fatal("appending to a decoded slice overwrote the batch")
	}
	if at := headerLen + bytes.Index(b[headerLen:], []byte("ab")); &r.Key[0] != &b[at] {
		t.Fatal("an uncompressed record's key does not point into the input")
	}
}

// TestInternOverflow decodes more distinct header keys than the intern
// table holds.
func TestInternOverflow(t *testing.T) {
	t.Parallel()
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i].Headers = []Header{{Key: fmt.Sprintf("key-%d", i)}, {Key: strings.Repeat("long", 40)}, {Key: "common"}}
	}
	var (
		enc Encoder
		dec Decoder
	)
	b, err := enc.Encode(nil, codecNone, -1, -1, -1, recs)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := dec.Decode(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, recs, got.Records, true)
		if len(dec.keys) > maxInternedKeys {
			t.Fatalf("%d interned keys", len(dec.keys))
		}
	}
}

// TestSteadyStateAllocs pins the hot path: decoding and encoding an
// uncompressed batch allocate nothing once the buffers have grown.
func TestSteadyStateAllocs(t *testing.T) {
	recs := numbered(100, 200)
	var (
		enc Encoder
		dec Decoder
	)
	for _, codec := range codecs {
		b, err := enc.Encode(nil, codec, -1, -1, -1, recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dec.Decode(b, 1<<20); err != nil {
			t.Fatal(err)
		}
		decAllocs := testing.AllocsPerRun(100, func() {
			if _, err := dec.Decode(b, 1<<20); err != nil {
				t.Fatal(err)
			}
		})
		dst := make([]byte, 0, 1<<16) // room for any codec's worst case
		encAllocs := testing.AllocsPerRun(100, func() {
			if _, err := enc.Encode(dst[:0], codec, -1, -1, -1, recs); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%s: decode %v allocs, encode %v allocs", codecNames[codec], decAllocs, encAllocs)
		// gzip and zstd allocations are up to klauspost/compress; the
		// other paths are ours.
		if ours := codec == codecNone || codec == codecSnappy || codec == codecLZ4; ours && (decAllocs != 0 || encAllocs != 0) {
			t.Errorf("%s: decode %v allocs, encode %v allocs; want 0", codecNames[codec], decAllocs, encAllocs)
		}
	}
}
