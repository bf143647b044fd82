package plugins

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// encodeVerdicts is the guest side of §3.2, for tests: the canonical
// encoding (a Replace always lists its outputs).
func encodeVerdicts(vs []Verdict) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(vs)))
	str := func(s string) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	nbytes := func(v []byte) {
		if v == nil {
			b = binary.LittleEndian.AppendUint32(b, math.MaxUint32)
			return
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	for _, v := range vs {
		b = append(b, byte(v.Action))
		switch v.Action {
		case Reject:
			b = binary.LittleEndian.AppendUint32(b, uint32(v.Code))
			str(v.Reason)
		case Replace:
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Outputs)))
			for _, o := range v.Outputs {
				var fields byte
				if o.TopicSet {
					fields |= fieldTopic
				}
				if o.KeySet {
					fields |= fieldKey
				}
				if o.ValueSet {
					fields |= fieldValue
				}
				if o.HeadersSet {
					fields |= fieldHeaders
				}
				b = append(b, fields)
				if o.TopicSet {
					str(o.Topic)
				}
				if o.KeySet {
					nbytes(o.Key)
				}
				if o.ValueSet {
					nbytes(o.Value)
				}
				if o.HeadersSet {
					b = binary.LittleEndian.AppendUint32(b, uint32(len(o.Headers)))
					for _, h := range o.Headers {
						str(h.Key)
						nbytes(h.Value)
					}
				}
			}
		}
	}
	return b
}

// decodeBatch is the guest side of §3.1, for tests. It assumes valid input.
func decodeBatch(b []byte) (string, []Record) {
	le := binary.LittleEndian
	off := 0
	u32 := func() uint32 { off += 4; return le.Uint32(b[off-4:]) }
	str := func() string { n := int(u32()); off += n; return string(b[off-n : off]) }
	nbytes := func() []byte {
		n := int32(u32())
		if n < 0 {
			return nil
		}
		off += int(n)
		return append([]byte{}, b[off-int(n):off]...)
	}
	count := int(u32())
	et := str()
	recs := make([]Record, count)
	for i := range recs {
		r := &recs[i]
		r.Topic = str()
		r.Partition = int32(u32())
		r.Timestamp = int64(le.Uint64(b[off:]))
		off += 8
		r.Key = nbytes()
		r.Value = nbytes()
		if hc := int(u32()); hc > 0 {
			r.Headers = make([]Header, hc)
			for j := range r.Headers {
				r.Headers[j] = Header{Key: str(), Value: nbytes()}
			}
		}
	}
	if off != len(b) {
		panic("trailing bytes")
	}
	return et, recs
}

func TestEncodeBatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		eventType string
		recs      []Record
		want      []byte // nil: only check the round trip
	}{
		{
			name:      "one null record",
			eventType: "e",
			recs:      []Record{{Topic: "t", Partition: -1, Timestamp: -2}},
			want: []byte{
				1, 0, 0, 0, 1, 0, 0, 0, 'e', // count, event type
				1, 0, 0, 0, 't', // topic
				0xff, 0xff, 0xff, 0xff, // partition -1
				0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // timestamp -2
				0xff, 0xff, 0xff, 0xff, // key null
				0xff, 0xff, 0xff, 0xff, // value null
				0, 0, 0, 0, // no headers
			},
		},
		{
			name: "empty key and value are not null",
			recs: []Record{{Key: []byte{}, Value: []byte{}}},
			want: []byte{
				1, 0, 0, 0, 0, 0, 0, 0,
				0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			},
		},
		{
			name:      "headers",
			eventType: "order.created",
			recs: []Record{
				{Topic: "orders", Partition: 3, Timestamp: 1700000000000, Key: []byte("k"), Value: []byte("v"),
					Headers: []Header{{Key: "a", Value: []byte("1")}, {Key: "null", Value: nil}, {Key: "", Value: []byte{}}}},
				{Topic: "ünïcode", Value: bytes.Repeat([]byte{0}, 1000)},
			},
		},
		{name: "no records", eventType: "e", want: []byte{0, 0, 0, 0, 1, 0, 0, 0, 'e'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, ok := batchSize(tt.eventType, tt.recs)
			if !ok {
				t.Fatal("batchSize: does not fit")
			}
			buf := make([]byte, n)
			encodeBatch(buf, tt.eventType, tt.recs)
			if tt.want != nil && !bytes.Equal(buf, tt.want) {
				t.Fatalf("encoded\n%v\nwant\n%v", buf, tt.want)
			}
			et, recs := decodeBatch(buf)
			if et != tt.eventType || len(recs) != len(tt.recs) {
				t.Fatalf("round trip: %q %d records", et, len(recs))
			}
			for i := range recs {
				if !reflect.DeepEqual(recs[i], tt.recs[i]) {
					t.Fatalf("record %d round trip:\n%+v\nwant\n%+v", i, recs[i], tt.recs[i])
				}
			}
		})
	}
}

func TestDecodeVerdicts(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	u32 := func(v uint32) []byte { return le.AppendUint32(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	str := func(s string) []byte { return cat(u32(uint32(len(s))), []byte(s)) }

	tests := []struct {
		name    string
		in      []byte
		count   int
		want    []Verdict
		wantErr string
	}{
		{name: "keep and drop", in: cat(u32(2), []byte{0, 1}), count: 2,
			want: []Verdict{{Action: Keep}, {Action: Drop}}},
		{name: "no records", in: u32(0), count: 0, want: []Verdict{}},
		{name: "reject", in: cat(u32(1), []byte{2}, u32(math.MaxUint32), str("nope")), count: 1,
			want: []Verdict{{Action: Reject, Code: -1, Reason: "nope"}}},
		{name: "replace with no outputs is drop", in: cat(u32(1), []byte{3}, u32(0)), count: 1,
			want: []Verdict{{Action: Drop}}},
		{name: "replace, every field", count: 2,
			in: cat(u32(2), []byte{3}, u32(2),
				[]byte{fieldsAll}, str("t2"), u32(math.MaxUint32), str("v"), u32(2), str("h"), u32(math.MaxUint32), str(""), u32(0),
				[]byte{0},
				[]byte{3}, u32(1), []byte{fieldKey}, u32(0)),
			want: []Verdict{
				{Action: Replace, Outputs: []Output{
					{Topic: "t2", TopicSet: true, Key: nil, KeySet: true, Value: []byte("v"), ValueSet: true,
						Headers: []Header{{Key: "h"}, {Key: "", Value: []byte{}}}, HeadersSet: true},
					{},
				}},
				{Action: Replace, Outputs: []Output{{Key: []byte{}, KeySet: true}}},
			}},
		{name: "headers set to none", count: 1, in: cat(u32(1), []byte{3}, u32(1), []byte{fieldHeaders}, u32(0)),
			want: []Verdict{{Action: Replace, Outputs: []Output{{HeadersSet: true}}}}},

		{name: "empty", in: nil, count: 0, wantErr: "verdict count"},
		{name: "short count", in: []byte{1, 0}, count: 1, wantErr: "verdict count"},
		{name: "count too small", in: cat(u32(1), []byte{0}), count: 2, wantErr: "1 verdicts for 2 records"},
		{name: "count too large", in: cat(u32(3), []byte{0, 0}), count: 2, wantErr: "3 verdicts for 2 records"},
		{name: "missing verdict", in: u32(1), count: 1, wantErr: "verdict 0: action"},
		{name: "unknown action", in: cat(u32(1), []byte{4}), count: 1, wantErr: "unknown action 4"},
		{name: "trailing bytes", in: cat(u32(1), []byte{0, 0}), count: 1, wantErr: "1 trailing bytes"},
		{name: "reject without reason", in: cat(u32(1), []byte{2}, u32(7)), count: 1, wantErr: "reject reason"},
		{name: "reason past the end", in: cat(u32(1), []byte{2}, u32(7), u32(5), []byte("abc")), count: 1, wantErr: "reject reason"},
		{name: "reason length huge", in: cat(u32(1), []byte{2}, u32(7), u32(math.MaxUint32)), count: 1, wantErr: "reject reason"},
		{name: "output count huge", in: cat(u32(1), []byte{3}, u32(math.MaxUint32)), count: 1, wantErr: "output count"},
		{name: "unknown field bit", in: cat(u32(1), []byte{3}, u32(1), []byte{0x10}), count: 1, wantErr: "unknown output field bits 0x10"},
		{name: "key length -2", in: cat(u32(1), []byte{3}, u32(1), []byte{fieldKey}, u32(math.MaxUint32-1)), count: 1, wantErr: "output key"},
		{name: "value past the end", in: cat(u32(1), []byte{3}, u32(1), []byte{fieldValue}, u32(2), []byte("x")), count: 1, wantErr: "output value"},
		{name: "header count huge", in: cat(u32(1), []byte{3}, u32(1), []byte{fieldHeaders}, u32(1<<30)), count: 1, wantErr: "output header count"},
		{name: "header truncated", in: cat(u32(1), []byte{3}, u32(1), []byte{fieldHeaders}, u32(1), str("name"), []byte{1, 0, 0, 0}), count: 1, wantErr: "output header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := make([]Verdict, tt.count)
			err := decodeVerdicts(tt.in, tt.count, out, nil)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, tt.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", out, tt.want)
			}
		})
	}
}

// The decoded verdicts must not alias the source (guest memory): changing
// it afterwards changes nothing.
func TestDecodeVerdictsCopies(t *testing.T) {
	t.Parallel()
	in := encodeVerdicts([]Verdict{
		{Action: Reject, Code: 1, Reason: "reason"},
		{Action: Replace, Outputs: []Output{{Topic: "topic", TopicSet: true, Value: []byte("value"), ValueSet: true,
			Headers: []Header{{Key: "n", Value: []byte("v")}}, HeadersSet: true}}},
	})
	out := make([]Verdict, 2)
	if err := decodeVerdicts(in, 2, out, nil); err != nil {
		t.Fatal(err)
	}
	want := make([]Verdict, 2)
	if err := decodeVerdicts(bytes.Clone(in), 2, want, nil); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'X'
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("verdicts changed with their source:\n%+v", out)
	}
	// Appending to a value must not overwrite what follows it.
	_ = append(out[1].Outputs[0].Value, "!!!!!!!!"...)
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("append overwrote a neighbour:\n%+v", out)
	}
}

// genVerdicts builds count valid verdicts from arbitrary bytes, for the
// round trip half of the fuzz test.
func genVerdicts(data []byte, count int) []Verdict {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		c := data[0]
		data = data[1:]
		return c
	}
	chunk := func() []byte {
		n := int(next())
		if n == 255 {
			return nil
		}
		n %= 8
		if n > len(data) {
			n = len(data)
		}
		b := append([]byte{}, data[:n]...)
		data = data[n:]
		return b
	}
	vs := make([]Verdict, count)
	for i := range vs {
		switch a := Action(next() % 4); a {
		case Keep, Drop:
			vs[i].Action = a
		case Reject:
			vs[i] = Verdict{Action: Reject, Code: int32(next()) - 128, Reason: string(chunk())}
		case Replace:
			n := 1 + int(next()%3)
			vs[i] = Verdict{Action: Replace, Outputs: make([]Output, n)}
			for j := range vs[i].Outputs {
				o := &vs[i].Outputs[j]
				f := next()
				if f&fieldTopic != 0 {
					o.Topic, o.TopicSet = string(chunk()), true
				}
				if f&fieldKey != 0 {
					o.Key, o.KeySet = chunk(), true
				}
				if f&fieldValue != 0 {
					o.Value, o.ValueSet = chunk(), true
				}
				if f&fieldHeaders != 0 {
					o.HeadersSet = true
					for range next() % 3 {
						o.Headers = append(o.Headers, Header{Key: string(chunk()), Value: chunk()})
					}
				}
			}
		}
	}
	return vs
}

func FuzzDecodeVerdicts(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0}, uint16(1))
	f.Add(encodeVerdicts([]Verdict{{Action: Drop}, {Action: Reject, Code: 3, Reason: "r"}}), uint16(2))
	f.Add(encodeVerdicts([]Verdict{{Action: Replace, Outputs: []Output{
		{Topic: "t", TopicSet: true, Key: []byte("k"), KeySet: true, Value: nil, ValueSet: true,
			Headers: []Header{{Key: "h", Value: []byte("v")}}, HeadersSet: true}}}}), uint16(1))
	f.Add([]byte{1, 0, 0, 0, 3, 0, 0, 0, 0}, uint16(1))
	f.Add([]byte{1, 0, 0, 0, 3, 255, 255, 255, 255}, uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, count uint16) {
		n := int(count % 512)

		// Arbitrary bytes: never a panic; either an errMalformed error or
		// verdicts that encode back to the same bytes (less 4 per REPLACE
		// with no outputs, which decodes as DROP).
		out := make([]Verdict, n)
		if err := decodeVerdicts(data, n, out, nil); err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
		} else {
			enc := encodeVerdicts(out)
			if len(enc) == len(data) {
				if !bytes.Equal(enc, data) {
					t.Fatalf("re-encoded\n%v\nfrom\n%v", enc, data)
				}
			} else if len(enc) > len(data) || (len(data)-len(enc))%4 != 0 {
				t.Fatalf("re-encoded %d bytes from %d", len(enc), len(data))
			}
			again := make([]Verdict, n)
			if err := decodeVerdicts(enc, n, again, nil); err != nil || !reflect.DeepEqual(again, out) {
				t.Fatalf("re-decoded %+v (%v), want %+v", again, err, out)
			}
		}

		// Valid verdicts built from the bytes: encode → decode is the
		// identity.
		vs := genVerdicts(data, n)
		enc := encodeVerdicts(vs)
		got := make([]Verdict, n)
		if err := decodeVerdicts(enc, n, got, nil); err != nil {
			t.Fatalf("valid encoding refused: %v", err)
		}
		if !reflect.DeepEqual(got, vs) {
			t.Fatalf("round trip\n%+v\nwant\n%+v", got, vs)
		}
	})
}

// Verdicts decoded into one Buffers stay intact until Reset, however many
// calls share it; after Reset the memory is reused without allocating.
func TestBuffersKeepVerdictsUntilReset(t *testing.T) {
	batch := func(tag string) []Verdict {
		return []Verdict{
			{Action: Keep},
			{Action: Reject, Code: 7, Reason: "reason-" + tag},
			{Action: Replace, Outputs: []Output{
				{Topic: "topic-" + tag, TopicSet: true, Value: []byte("value-" + tag), ValueSet: true},
				{Headers: []Header{{Key: "h-" + tag, Value: []byte("v-" + tag)}}, HeadersSet: true},
			}},
		}
	}
	var b Buffers
	var got [][]Verdict
	for _, tag := range []string{"a", "b", "c"} {
		out := b.takeVerdicts(3)
		if err := decodeVerdicts(encodeVerdicts(batch(tag)), 3, out, &b); err != nil {
			t.Fatal(err)
		}
		got = append(got, out)
	}
	for i, tag := range []string{"a", "b", "c"} {
		if !reflect.DeepEqual(got[i], batch(tag)) {
			t.Fatalf("verdicts of call %d changed by later calls:\n%+v", i, got[i])
		}
	}
	encs := [][]byte{encodeVerdicts(batch("a")), encodeVerdicts(batch("b"))}
	if n := testing.AllocsPerRun(10, func() {
		b.Reset()
		for _, enc := range encs {
			if err := decodeVerdicts(enc, 3, b.takeVerdicts(3), &b); err != nil {
				t.Fatal(err)
			}
		}
	}); n != 0 {
		t.Fatalf("decoding into reset Buffers allocates %.0f times, want 0", n)
	}
}
