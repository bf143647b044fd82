package messageset

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/recordbatch"
)

const (
	testNow   = int64(1_700_000_000_123)
	testLimit = 64 << 20
)

// msg is one legacy message to encode.
type msg struct {
	magic      int8
	attributes int8
	timestamp  int64
	key, value []byte // nil encodes null
}

// encode appends m to dst as a message set entry at the given offset, using
// kmsg's encoders and filling in the size and CRC.
func (m msg) encode(dst []byte, offset int64) []byte {
	start := len(dst)
	switch m.magic {
	case 0:
		v := kmsg.MessageV0{Offset: offset, Magic: 0, Attributes: m.attributes, Key: m.key, Value: m.value}
		dst = v.AppendTo(dst)
	default:
		v := kmsg.MessageV1{Offset: offset, Magic: m.magic, Attributes: m.attributes, Timestamp: m.timestamp, Key: m.key, Value: m.value}
		dst = v.AppendTo(dst)
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
	return dst
}

// set encodes msgs as a message set with offsets 0..n-1 (relative offsets,
// as inner magic 1 sets use).
func set(msgs ...msg) []byte {
	var b []byte
	for i, m := range msgs {
		b = m.encode(b, int64(i))
	}
	return b
}

// concat joins message sets.
func concat(sets ...[]byte) []byte { return bytes.Join(sets, nil) }

// wrap compresses inner with codec and returns the wrapper message.
func wrap(magic int8, codec int8, ts int64, inner []byte, compress func([]byte) []byte) msg {
	return msg{magic: magic, attributes: codec, timestamp: ts, value: compress(inner)}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := stdgzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func snappyRaw(b []byte) []byte { return snappy.Encode(nil, b) }

// snappyXerial frames b as snappy-java does, in chunks of chunk bytes.
func snappyXerial(chunk int) func([]byte) []byte {
	return func(b []byte) []byte {
		out := append([]byte(nil), xerialMagic...)
		out = binary.BigEndian.AppendUint32(out, 1) // version
		out = binary.BigEndian.AppendUint32(out, 1) // compatible version
		for len(b) > 0 {
			n := min(chunk, len(b))
			block := snappy.Encode(nil, b[:n])
			out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
			out = append(out, block...)
			b = b[n:]
		}
		return out
	}
}

// lz4Frame is a standard LZ4 frame, as magic 1 producers write.
func lz4Frame(opts ...lz4.Option) func([]byte) []byte {
	return func(b []byte) []byte {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if err := w.Apply(opts...); err != nil {
			panic(err)
		}
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
}

// lz4Kafka is an LZ4 frame with the header checksum computed over the magic
// number as well as the descriptor, as Kafka's magic 0 producers write it
// (KAFKA-3160).
func lz4Kafka(opts ...lz4.Option) func([]byte) []byte {
	return func(b []byte) []byte {
		f := lz4Frame(opts...)(b)
		hc := lz4HCPos(f)
		f[hc] = byte(xxh32(f[:hc]) >> 8)
		return f
	}
}

func lz4HCPos(f []byte) int {
	hc := 6
	if f[4]&lz4FlagContentSz != 0 {
		hc += 8
	}
	if f[4]&lz4FlagDictID != 0 {
		hc += 4
	}
	return hc
}

// want is an expected v2 record.
type want struct {
	ts         int64
	key, value []byte
}

// expect lists the records msgs convert to with timestamp rules applied by
// hand: magic 0 gets testNow, magic 1 keeps its own.
func expect(msgs ...msg) []want {
	var w []want
	for _, m := range msgs {
		ts := m.timestamp
		if m.magic == 0 {
			ts = testNow
		}
		w = append(w, want{ts: ts, key: m.key, value: m.value})
	}
	return w
}

// sample returns n messages of the given magic covering null and empty keys
// and values, and timestamps that go up and down.
func sample(magic int8, n int) []msg {
	msgs := make([]msg, n)
	for i := range msgs {
		m := msg{magic: magic, timestamp: testNow - 5000 + int64(i*7%13)*100}
		switch i % 5 {
		case 0:
			m.key, m.value = nil, []byte(fmt.Sprintf("value-%d", i))
		case 1:
			m.key, m.value = []byte{}, []byte{}
		case 2:
			m.key, m.value = []byte(fmt.Sprintf("key-%d", i)), nil
		case 3:
			m.key, m.value = nil, nil
		default:
			m.key, m.value = []byte(fmt.Sprintf("key-%d", i)), bytes.Repeat([]byte{byte(i)}, 300+i)
		}
		msgs[i] = m
	}
	return msgs
}

// decodeBatch checks everything about a produced batch except its records
// and returns the records.
func decodeBatch(t testing.TB, b []byte) []kmsg.Record {
	t.Helper()
	if _, err := recordbatch.Parse(b); err != nil {
		t.Fatalf("recordbatch.Parse: %v", err)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg.RecordBatch.ReadFrom: %v", err)
	}
	if got := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)); uint32(rb.CRC) != got {
		t.Fatalf("batch CRC %08x, computed %08x", uint32(rb.CRC), got)
	}
	if int(rb.Length) != len(b)-12 {
		t.Fatalf("batch length %d, have %d bytes after it", rb.Length, len(b)-12)
	}
	if rb.FirstOffset != 0 || rb.PartitionLeaderEpoch != -1 || rb.Magic != 2 || rb.Attributes != 0 ||
		rb.ProducerID != -1 || rb.ProducerEpoch != -1 || rb.FirstSequence != -1 {
		t.Fatalf("batch header fields: %+v", rb)
	}
	if rb.LastOffsetDelta != rb.NumRecords-1 {
		t.Fatalf("last offset delta %d with %d records", rb.LastOffsetDelta, rb.NumRecords)
	}
	recs := make([]kmsg.Record, 0, rb.NumRecords)
	maxTs := int64(math.MinInt64)
	for src := rb.Records; len(src) > 0; {
		l, n := binary.Varint(src)
		if n <= 0 || int(l) > len(src)-n {
			t.Fatalf("record %d: bad length %d", len(recs), l)
		}
		var r kmsg.Record
		if err := r.ReadFrom(src[:n+int(l)]); err != nil {
			t.Fatalf("record %d: %v", len(recs), err)
		}
		if r.OffsetDelta != int32(len(recs)) || r.Attributes != 0 || len(r.Headers) != 0 {
			t.Fatalf("record %d: offset delta %d, attributes %d, %d headers", len(recs), r.OffsetDelta, r.Attributes, len(r.Headers))
		}
		maxTs = max(maxTs, rb.FirstTimestamp+r.TimestampDelta64)
		recs = append(recs, r)
		src = src[n+int(l):]
	}
	if len(recs) != int(rb.NumRecords) {
		t.Fatalf("header says %d records, found %d", rb.NumRecords, len(recs))
	}
	if len(recs) > 0 && (rb.MaxTimestamp != maxTs || recs[0].TimestampDelta64 != 0) {
		t.Fatalf("max timestamp %d, want %d; first delta %d", rb.MaxTimestamp, maxTs, recs[0].TimestampDelta64)
	}
	return recs
}

// checkRecords compares a batch's records with want exactly, null versus
// empty included.
func checkRecords(t testing.TB, b []byte, ws []want) {
	t.Helper()
	var rb kmsg.RecordBatch
	_ = rb.ReadFrom(b)
	recs := decodeBatch(t, b)
	if len(recs) != len(ws) {
		t.Fatalf("got %d records, want %d", len(recs), len(ws))
	}
	for i, r := range recs {
		w := ws[i]
		if ts := rb.FirstTimestamp + r.TimestampDelta64; ts != w.ts {
			t.Errorf("record %d: timestamp %d, want %d", i, ts, w.ts)
		}
		if !sameBytes(r.Key, w.key) {
			t.Errorf("record %d: key %s, want %s", i, show(r.Key), show(w.key))
		}
		if !sameBytes(r.Value, w.value) {
			t.Errorf("record %d: value %s, want %s", i, show(r.Value), show(w.value))
		}
	}
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func show(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case len(b) > 20:
		return fmt.Sprintf("%q...(%d bytes)", b[:20], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func TestToRecordBatch(t *testing.T) {
	t.Parallel()

	m0, m1 := sample(0, 12), sample(1, 12)
	lat := []msg{ // inner messages of a LogAppendTime wrapper
		{magic: 1, timestamp: 11, key: []byte("a"), value: []byte("1")},
		{magic: 1, timestamp: 22, key: nil, value: []byte{}},
	}
	extremes := []msg{
		{magic: 1, timestamp: math.MaxInt64, value: []byte("max")},
		{magic: 1, timestamp: math.MinInt64, value: []byte("min")},
		{magic: 1, timestamp: -1, value: []byte("none")},
	}
	big := []msg{{magic: 1, timestamp: 5, key: bytes.Repeat([]byte("k"), 70000), value: bytes.Repeat([]byte("v"), 300000)}}

	tests := []struct {
		name string
		set  []byte
		want []want
	}{
		{"magic0/none", set(m0...), expect(m0...)},
		{"magic1/none", set(m1...), expect(m1...)},
		{"magic0/single", set(m0[4]), expect(m0[4])},
		{"magic1/extreme timestamps", set(extremes...), expect(extremes...)},
		{"magic1/large key and value", set(big...), expect(big...)},

		{"magic0/gzip", set(wrap(0, codecGzip, 0, set(m0...), gzipped)), expect(m0...)},
		{"magic0/snappy xerial", set(wrap(0, codecSnappy, 0, set(m0...), snappyXerial(32<<10))), expect(m0...)},
		{"magic0/snappy xerial small chunks", set(wrap(0, codecSnappy, 0, set(m0...), snappyXerial(100))), expect(m0...)},
		{"magic0/snappy raw", set(wrap(0, codecSnappy, 0, set(m0...), snappyRaw)), expect(m0...)},
		{"magic0/lz4 kafka framing", set(wrap(0, codecLZ4, 0, set(m0...), lz4Kafka())), expect(m0...)},
		{"magic0/lz4 kafka framing, content size and block checksums", set(wrap(0, codecLZ4, 0, set(m0...),
			lz4Kafka(lz4.SizeOption(uint64(len(set(m0...)))), lz4.BlockChecksumOption(true)))), expect(m0...)},
		{"magic0/lz4 standard framing", set(wrap(0, codecLZ4, 0, set(m0...), lz4Frame())), expect(m0...)},

		{"magic1/gzip", set(wrap(1, codecGzip, 99, set(m1...), gzipped)), expect(m1...)},
		{"magic1/snappy xerial", set(wrap(1, codecSnappy, 99, set(m1...), snappyXerial(32<<10))), expect(m1...)},
		{"magic1/snappy raw", set(wrap(1, codecSnappy, 99, set(m1...), snappyRaw)), expect(m1...)},
		{"magic1/lz4", set(wrap(1, codecLZ4, 99, set(m1...), lz4Frame())), expect(m1...)},
		{"magic1/lz4 content checksum off, block checksums on", set(wrap(1, codecLZ4, 99, set(m1...),
			lz4Frame(lz4.ChecksumOption(false), lz4.BlockChecksumOption(true)))), expect(m1...)},
		{"magic1/gzip large", set(wrap(1, codecGzip, 99, set(big...), gzipped)), expect(big...)},

		{"magic1/log append time wrapper", set(wrap(1, codecGzip|attrLogAppendTime, 777, set(lat...), gzipped)),
			[]want{{777, lat[0].key, lat[0].value}, {777, lat[1].key, lat[1].value}}},
		{"magic1/log append time on an uncompressed message", set(msg{magic: 1, attributes: attrLogAppendTime, timestamp: 5, value: []byte("x")}),
			[]want{{5, nil, []byte("x")}}},
		{"magic1/wrapper key ignored", set(msg{magic: 1, attributes: codecGzip, timestamp: 1, key: []byte("wk"), value: gzipped(set(lat...))}),
			expect(lat...)},
		{"magic1/mixed wrappers and plain messages", concat(
			set(m1[:3]...),
			set(wrap(1, codecSnappy, 0, set(m1[3:6]...), snappyXerial(64))),
			set(wrap(1, codecLZ4, 0, set(m1[6:9]...), lz4Frame())),
			set(m1[9:]...),
		), expect(m1...)},
		{"magic0 then magic1 at top level", concat(set(m0[:3]...), set(m1[3:6]...)), append(expect(m0[:3]...), expect(m1[3:6]...)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := bytes.Clone(tc.set)
			b, n, err := ToRecordBatch(in, testNow, testLimit)
			if err != nil {
				t.Fatalf("ToRecordBatch: %v", err)
			}
			if n != len(tc.want) {
				t.Fatalf("records %d, want %d", n, len(tc.want))
			}
			checkRecords(t, b, tc.want)
			if !bytes.Equal(in, tc.set) {
				t.Fatal("ToRecordBatch modified its input")
			}
		})
	}
}

// TestToRecordBatchErrors feeds malformed sets; each must fail with the
// sentinel and a message naming the problem.
func TestToRecordBatchErrors(t *testing.T) {
	t.Parallel()

	good := set(sample(1, 3)...)
	lastAt := len(set(sample(1, 3)[:2]...)) // position of good's last message
	inner := set(sample(1, 3)...)
	inner0 := set(sample(0, 3)...)
	zeros := make([]byte, 1<<20)
	bombSet := set(msg{magic: 1, value: zeros})

	corruptCRC := bytes.Clone(good)
	corruptCRC[len(corruptCRC)-1] ^= 1

	patch := func(b []byte, off int, v uint32) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint32(b[off:], v)
		binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
		return b
	}
	one := set(msg{magic: 1, key: []byte("k"), value: []byte("v")})
	// key length at 12+4+1+1+8 = 26 in a magic 1 message
	badKeyLen := patch(one, 26, uint32(0xfffffffe)) // -2
	longKeyLen := patch(one, 26, 1000)
	trailing := func() []byte {
		b := bytes.Clone(one)
		b = append(b, 0)
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
		binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
		return b
	}()
	negSize := bytes.Clone(one)
	binary.BigEndian.PutUint32(negSize[8:], uint32(0xffffffff))
	tinySize := bytes.Clone(one)[:16]
	binary.BigEndian.PutUint32(tinySize[8:], 4)
	shortMagic1 := func() []byte { // a magic 1 message the size of a magic 0 header
		b := set(msg{magic: 0, value: []byte{}})
		b[16] = 1
		binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
		return b
	}()

	// A v2 record batch where a message set was expected.
	v2, _, err := ToRecordBatch(good, testNow, testLimit)
	if err != nil {
		t.Fatal(err)
	}

	brokenHC := lz4Kafka()(inner)
	lz4Garbage := lz4Frame()(inner)
	lz4Garbage[len(lz4Garbage)/2] ^= 0xff

	tests := []struct {
		name     string
		set      []byte
		max      int
		sentinel error
		contains string
	}{
		{"empty", nil, testLimit, ErrEmpty, "empty message set"},
		{"crc mismatch", corruptCRC, testLimit, ErrCorrupt, "CRC mismatch"},
		{"truncated trailing message", good[:len(good)-1], testLimit, ErrCorrupt, "truncated message set"},
		{"truncated log header", good[:len(good)-len(one)+5], testLimit, ErrCorrupt, "truncated message set"},
		{"truncated first message", good[:20], testLimit, ErrCorrupt, "message at byte 0: corrupt message set: truncated message set"},
		{"negative message size", negSize, testLimit, ErrCorrupt, "negative message size"},
		{"message too small", tinySize, testLimit, ErrCorrupt, "below the minimum"},
		{"magic 1 message too small", shortMagic1, testLimit, ErrCorrupt, "below the magic 1 minimum"},
		{"unknown magic 2 (a record batch)", v2, testLimit, ErrCorrupt, "unknown magic 2"},
		{"unknown magic 3", func() []byte { b := bytes.Clone(one); b[16] = 3; return b }(), testLimit, ErrCorrupt, "unknown magic 3"},
		{"zstd codec", set(wrap(1, 4, 0, inner, gzipped)), testLimit, ErrCorrupt, "unknown codec 4"},
		{"key length -2", badKeyLen, testLimit, ErrCorrupt, "key length -2"},
		{"key length past end", longKeyLen, testLimit, ErrCorrupt, "key length 1000"},
		{"bytes after value", trailing, testLimit, ErrCorrupt, "1 bytes after the value"},
		{"later message corrupt", concat(one, corruptCRC), testLimit, ErrCorrupt, fmt.Sprintf("message at byte %d: corrupt message set: CRC mismatch", len(one)+lastAt)},

		{"nested compression", set(wrap(1, codecGzip, 0, set(wrap(1, codecGzip, 0, inner, gzipped)), gzipped)),
			testLimit, ErrCorrupt, "inside a compressed message"},
		{"inner magic differs", set(wrap(1, codecGzip, 0, inner0, gzipped)), testLimit, ErrCorrupt, "inner magic 0 in a magic 1 wrapper"},
		{"inner crc mismatch", set(wrap(1, codecGzip, 0, corruptCRC, gzipped)), testLimit, ErrCorrupt,
			fmt.Sprintf("message at byte 0: inner message at byte %d: corrupt message set: CRC mismatch", lastAt)},
		{"inner truncated", set(wrap(1, codecSnappy, 0, inner[:len(inner)-3], snappyRaw)), testLimit, ErrCorrupt, "truncated message set"},
		{"null wrapper value", set(msg{magic: 1, attributes: codecGzip}), testLimit, ErrCorrupt, "null value"},
		{"empty inner set", set(wrap(1, codecGzip, 0, nil, gzipped)), testLimit, ErrCorrupt, "holds no messages"},
		{"gzip garbage", set(msg{magic: 1, attributes: codecGzip, value: []byte("not gzip")}), testLimit, ErrCorrupt, "gzip"},
		{"gzip truncated", set(wrap(1, codecGzip, 0, inner, func(b []byte) []byte { g := gzipped(b); return g[:len(g)-5] })),
			testLimit, ErrCorrupt, "gzip"},
		{"snappy garbage", set(msg{magic: 1, attributes: codecSnappy, value: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 1}}),
			testLimit, ErrCorrupt, "snappy"},
		{"xerial chunk past end", set(wrap(1, codecSnappy, 0, inner, func(b []byte) []byte { x := snappyXerial(1 << 20)(b); return x[:len(x)-1] })),
			testLimit, ErrCorrupt, "xerial chunk length"},
		{"xerial header only", set(wrap(1, codecSnappy, 0, nil, snappyXerial(10))), testLimit, ErrCorrupt, "holds no messages"},
		{"lz4 garbage", set(wrap(1, codecLZ4, 0, inner, func([]byte) []byte { return lz4Garbage })), testLimit, ErrCorrupt, "lz4"},
		{"lz4 not a frame", set(msg{magic: 0, attributes: codecLZ4, value: []byte("nope")}), testLimit, ErrCorrupt, "lz4"},
		// Kafka checks the header checksum for magic 1, so we do too.
		{"lz4 kafka framing with magic 1", set(wrap(1, codecLZ4, 0, inner, func([]byte) []byte { return brokenHC })),
			testLimit, ErrCorrupt, "lz4"},

		{"gzip bomb", set(wrap(1, codecGzip, 0, bombSet, gzipped)), 64 << 10, ErrTooLarge, "limit"},
		{"snappy raw bomb", set(wrap(1, codecSnappy, 0, bombSet, snappyRaw)), 64 << 10, ErrTooLarge, "limit"},
		{"snappy xerial bomb", set(wrap(1, codecSnappy, 0, bombSet, snappyXerial(32<<10))), 64 << 10, ErrTooLarge, "limit"},
		{"lz4 bomb", set(wrap(1, codecLZ4, 0, bombSet, lz4Frame())), 64 << 10, ErrTooLarge, "limit"},
		{"limit shared by wrappers", concat(
			set(wrap(1, codecGzip, 0, bombSet, gzipped)),
			set(wrap(1, codecGzip, 0, bombSet, gzipped)),
		), 2*len(bombSet) - 1, ErrTooLarge, fmt.Sprintf("message at byte %d: gzip: message set too large: decompresses to more than the %d bytes left", len(set(wrap(1, codecGzip, 0, bombSet, gzipped))), len(bombSet)-1)},
		{"zero limit", set(wrap(1, codecGzip, 0, inner, gzipped)), 0, ErrTooLarge, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, n, err := ToRecordBatch(tc.set, testNow, tc.max)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.contains)
			}
			if b != nil || n != 0 {
				t.Fatalf("got %d bytes and %d records with an error", len(b), n)
			}
		})
	}
}

// TestLimitExact checks that decompressing to exactly maxBytes passes, one
// byte less fails, and the largest limit does not overflow.
func TestLimitExact(t *testing.T) {
	t.Parallel()
	inner := set(sample(1, 20)...)
	for _, c := range []struct {
		name     string
		codec    int8
		compress func([]byte) []byte
	}{
		{"gzip", codecGzip, gzipped},
		{"snappy raw", codecSnappy, snappyRaw},
		{"snappy xerial", codecSnappy, snappyXerial(100)},
		{"lz4", codecLZ4, lz4Frame()},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := set(wrap(1, c.codec, 0, inner, c.compress))
			if _, _, err := ToRecordBatch(s, testNow, len(inner)); err != nil {
				t.Fatalf("limit = size: %v", err)
			}
			if _, _, err := ToRecordBatch(s, testNow, len(inner)-1); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("limit = size-1: err = %v, want ErrTooLarge", err)
			}
			if _, _, err := ToRecordBatch(s, testNow, math.MaxInt); err != nil {
				t.Fatalf("limit = MaxInt: %v", err)
			}
		})
	}
}

// TestLZ4HeaderChecksum checks that the magic 0 fix-up really replaces a
// wrong checksum (the broken one differs from the right one) and leaves the
// caller's bytes alone.
func TestLZ4HeaderChecksum(t *testing.T) {
	t.Parallel()
	inner := set(sample(0, 3)...)
	for _, opts := range [][]lz4.Option{
		nil,
		{lz4.SizeOption(uint64(len(inner)))},
		{lz4.BlockSizeOption(lz4.Block4Mb), lz4.BlockChecksumOption(true)},
	} {
		good := lz4Frame(opts...)(inner)
		broken := lz4Kafka(opts...)(inner)
		hc := lz4HCPos(good)
		if good[hc] == broken[hc] {
			t.Fatalf("%v: broken and correct header checksums agree (%02x); the test proves nothing", opts, good[hc])
		}
		if want := byte(xxh32(good[4:hc]) >> 8); good[hc] != want {
			t.Fatalf("%v: xxh32 disagrees with pierrec/lz4: %02x vs %02x", opts, want, good[hc])
		}
		orig := bytes.Clone(broken)
		var fixed bytes.Buffer
		fixed.ReadFrom(fixLZ4HeaderChecksum(broken))
		if !bytes.Equal(fixed.Bytes(), good) {
			t.Fatalf("%v: fixed frame differs from the standard one", opts)
		}
		if !bytes.Equal(orig, broken) {
			t.Fatalf("%v: fix-up modified its input", opts)
		}
	}
}

// TestXXH32 checks xxh32 against published vectors and against the content
// checksums pierrec/lz4 writes, for lengths on both sides of 16.
func TestXXH32(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		in   string
		want uint32
	}{
		{"", 0x02cc5d05},
		{"a", 0x550d7456},
		{"abc", 0x32d153ff},
		{"Nobody inspects the spammish repetition", 0xe2293b2f},
	} {
		if got := xxh32([]byte(v.in)); got != v.want {
			t.Errorf("xxh32(%q) = %08x, want %08x", v.in, got, v.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f := lz4Frame(lz4.ChecksumOption(true))(b)
		if want := binary.LittleEndian.Uint32(f[len(f)-4:]); xxh32(b) != want {
			t.Fatalf("len %d: xxh32 %08x, lz4 content checksum %08x", n, xxh32(b), want)
		}
	}
}

func TestVarintLen(t *testing.T) {
	t.Parallel()
	for _, x := range []int64{0, 1, -1, 63, -64, 64, -65, 8191, 8192, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64} {
		if got, want := varintLen(x), len(binary.AppendVarint(nil, x)); got != want {
			t.Errorf("varintLen(%d) = %d, want %d", x, got, want)
		}
	}
}

// FuzzToRecordBatch checks that no input panics, that every success is a
// valid batch with at least one record, and that the output stays within
// the input plus the decompression limit plus per-record overhead.
func FuzzToRecordBatch(f *testing.F) {
	m0, m1 := sample(0, 4), sample(1, 4)
	f.Add(set(m0...), 1<<20)
	f.Add(set(m1...), 1<<20)
	f.Add(set(wrap(0, codecGzip, 0, set(m0...), gzipped)), 1<<20)
	f.Add(set(wrap(0, codecSnappy, 0, set(m0...), snappyXerial(64))), 1<<20)
	f.Add(set(wrap(0, codecLZ4, 0, set(m0...), lz4Kafka())), 1<<20)
	f.Add(set(wrap(1, codecGzip|attrLogAppendTime, 5, set(m1...), gzipped)), 1<<20)
	f.Add(set(wrap(1, codecSnappy, 0, set(m1...), snappyRaw)), 1<<20)
	f.Add(set(wrap(1, codecLZ4, 0, set(m1...), lz4Frame())), 100)
	f.Add(concat(set(m1[:2]...), set(wrap(1, codecGzip, 0, set(m1[2:]...), gzipped))), 1<<20)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, in []byte, limit int) {
		limit = max(0, limit%(4<<20)) // keep bombs cheap
		b, n, err := ToRecordBatch(in, testNow, limit)
		if err != nil {
			if b != nil || n != 0 {
				t.Fatalf("output with error %v", err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if n <= 0 {
			t.Fatalf("%d records without an error", n)
		}
		recs := decodeBatch(t, b)
		if len(recs) != n {
			t.Fatalf("%d records reported, %d in the batch", n, len(recs))
		}
		// Each message is at least 26 bytes and becomes a record of at
		// most 32 bytes plus its key and value.
		if bound := batchHeaderLen + 2*(len(in)+limit); len(b) > bound {
			t.Fatalf("batch of %d bytes from %d input bytes with limit %d", len(b), len(in), limit)
		}
	})
}

// BenchmarkToRecordBatch converts 100 uncompressed magic 1 messages with
// 200-byte values.
func BenchmarkToRecordBatch(b *testing.B) {
	msgs := make([]msg, 100)
	for i := range msgs {
		msgs[i] = msg{magic: 1, timestamp: testNow + int64(i), key: []byte(fmt.Sprintf("key-%03d", i)), value: bytes.Repeat([]byte{'v'}, 200)}
	}
	s := set(msgs...)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ToRecordBatch(s, testNow, testLimit); err != nil {
			b.Fatal(err)
		}
	}
}
