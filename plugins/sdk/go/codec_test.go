package evp

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"unsafe"
)

// encodeBatch is the host's encoding (docs/plugin-abi.md §3.1), written
// again here so the decoder is checked against an independent encoder.
func encodeBatch(eventType string, recs []Record) []byte {
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	str := func(s string) { u32(uint32(len(s))); b = append(b, s...) }
	nbytes := func(v []byte) {
		if v == nil {
			u32(math.MaxUint32)
			return
		}
		u32(uint32(len(v)))
		b = append(b, v...)
	}
	u32(uint32(len(recs)))
	str(eventType)
	for _, r := range recs {
		str(r.Topic)
		u32(uint32(r.Partition))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Timestamp))
		nbytes(r.Key)
		nbytes(r.Value)
		u32(uint32(len(r.Headers)))
		for _, h := range r.Headers {
			str(h.Name)
			nbytes(h.Value)
		}
	}
	return b
}

var sampleRecs = []Record{
	{Topic: "orders", Partition: 3, Timestamp: 1714566896789, Key: []byte("k1"), Value: []byte(`{"id":1}`),
		Headers: []Header{{"ce_type", []byte("order.created")}, {"empty", []byte{}}, {"null", nil}}},
	{Topic: "orders", Partition: -1, Timestamp: -5, Key: nil, Value: []byte{}},
	{Topic: "", Key: []byte{}, Value: nil, Headers: []Header{{"", []byte("x")}}},
	{Topic: "päyments", Value: bytes.Repeat([]byte{0xff}, 300)},
}

func TestDecodeBatch(t *testing.T) {
	t.Parallel()
	var d decoder
	for round := range 3 { // buffers are reused across batches
		in := encodeBatch("order.created", sampleRecs[round%2:])
		et, recs, err := d.decode(in)
		if err != nil {
			t.Fatal(err)
		}
		if et != "order.created" {
			t.Errorf("event type %q", et)
		}
		if got := encodeBatch(et, recs); !bytes.Equal(got, in) {
			t.Fatalf("round %d: decode then encode differs", round)
		}
		for i, r := range recs {
			want := sampleRecs[round%2+i]
			if (r.Key == nil) != (want.Key == nil) || (r.Value == nil) != (want.Value == nil) {
				t.Errorf("record %d: null/empty confused: key %v value %v", i, r.Key == nil, r.Value == nil)
			}
			for j, h := range r.Headers {
				if (h.Value == nil) != (want.Headers[j].Value == nil) {
					t.Errorf("record %d header %d: null/empty confused", i, j)
				}
			}
		}
	}
}

func TestDecodeBatchMalformed(t *testing.T) {
	t.Parallel()
	good := encodeBatch("t", sampleRecs)
	var d decoder
	for n := range len(good) {
		if _, _, err := d.decode(good[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	if _, _, err := d.decode(append(bytes.Clone(good), 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	huge := binary.LittleEndian.AppendUint32(nil, math.MaxUint32)
	huge = append(huge, 0, 0, 0, 0)
	if _, _, err := d.decode(huge); err == nil {
		t.Error("4G records in 8 bytes: no error")
	}
	neg := encodeBatch("t", []Record{{Topic: "a", Key: []byte("k")}})
	binary.LittleEndian.PutUint32(neg[4+4+1+4+1+4+8:], uint32(0xFFFFFFFE)) // key length -2
	if _, _, err := d.decode(neg); err == nil {
		t.Error("key length -2: no error")
	}
}

// TestHeadersDoNotSpill: records share one header array; growing one
// record's headers must not overwrite the next record's.
func TestHeadersDoNotSpill(t *testing.T) {
	t.Parallel()
	var d decoder
	in := encodeBatch("t", []Record{
		{Topic: "a", Headers: []Header{{"h", []byte("0")}}},
		{Topic: "a", Headers: []Header{{"h", []byte("1")}}},
	})
	_, recs, err := d.decode(in)
	if err != nil {
		t.Fatal(err)
	}
	recs[0].SetHeader("added", []byte("x"))
	recs[0].Key = append(recs[0].Key, "grown"...)
	if v, _ := recs[1].Header("h"); string(v) != "1" || len(recs[1].Headers) != 1 {
		t.Errorf("record 1 headers changed: %v", recs[1].Headers)
	}
	if !bytes.Equal(in, encodeBatch("t", []Record{
		{Topic: "a", Headers: []Header{{"h", []byte("0")}}},
		{Topic: "a", Headers: []Header{{"h", []byte("1")}}},
	})) {
		t.Error("appending to a key wrote into the input buffer")
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch("order.created", sampleRecs))
	f.Add(encodeBatch("", nil))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var d decoder
		et, recs, err := d.decode(in)
		if err != nil {
			return
		}
		// Whatever decodes is canonical: it encodes back to the same bytes.
		if got := encodeBatch(et, recs); !bytes.Equal(got, in) {
			t.Fatalf("decode(%x) re-encodes as %x", in, got)
		}
	})
}

type modifyPlugin struct{}

var yes = []byte("yes")

func (modifyPlugin) Init([]byte) error { return nil }
func (modifyPlugin) Process(_ string, recs []Record, out []Verdict) {
	for i := range recs {
		recs[i].SetHeader("seen", yes)
		out[i] = Modified(recs[i])
	}
}

type keepPlugin struct{}

func (keepPlugin) Init([]byte) error                   { return nil }
func (keepPlugin) Process(string, []Record, []Verdict) {}

func batchOf(n int) []byte {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Topic: "orders", Partition: 1, Timestamp: 1714566896789, Key: []byte("customer-1234"),
			Value:   []byte(`{"id":"o-1","customer":{"id":"c-1","region":"eu"},"total":45.48,"currency":"EUR"}`),
			Headers: []Header{{"ce_type", []byte("order.created")}, {"ce_id", []byte("0190f0e4-0000-7000-8000-000000000000")}}}
	}
	return encodeBatch("order.created", recs)
}

func run(d *driver, batch []byte) []byte {
	buf := d.Alloc(int32(len(batch)))
	copy(buf, batch)
	out, st := d.Process(buf)
	if st != 0 {
		panic("process failed")
	}
	return out
}

// TestSteadyStateAllocs: after the first batch, the kit allocates nothing
// per batch (the plugin's own allocations aside).
func TestSteadyStateAllocs(t *testing.T) {
	for _, p := range []Plugin{keepPlugin{}, modifyPlugin{}} {
		d := newDriver(p)
		if d.Init([]byte("{}")) != 0 {
			t.Fatal("init failed")
		}
		batch := batchOf(100)
		run(d, batch)
		if a := testing.AllocsPerRun(50, func() { run(d, batch) }); a != 0 {
			t.Errorf("%T: %v allocations per batch, want 0", p, a)
		}
	}
}

// BenchmarkProcess is the kit's share of a 100-record batch: decoding the
// input and encoding the verdicts (natively; see plugins/abicheck for the
// cost inside WebAssembly).
func BenchmarkProcess(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    Plugin
	}{{"keep", keepPlugin{}}, {"modify", modifyPlugin{}}} {
		b.Run(bc.name, func(b *testing.B) {
			d := newDriver(bc.p)
			d.Init([]byte("{}"))
			batch := batchOf(100)
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				run(d, batch)
			}
		})
	}
}

// TestRegion: evp_init and evp_process accept only ranges inside the
// buffer evp_alloc handed out.
func TestRegion(t *testing.T) {
	t.Parallel()
	d := newDriver(keepPlugin{})
	if _, ok := d.region(0, 0); ok {
		t.Error("region before any Alloc")
	}
	buf := d.Alloc(100)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	c := uintptr(cap(d.in))
	for _, tc := range []struct {
		ptr uintptr
		n   int32
		ok  bool
	}{
		{base, 100, true}, {base + 10, 90, true}, {base, int32(c), true}, {base + c, 0, true},
		{base - 1, 1, false}, {base + 1, int32(c), false}, {base, -1, false}, {base + c + 1, 0, false}, {0, 1, false},
	} {
		b, ok := d.region(tc.ptr, tc.n)
		if ok != tc.ok || ok && (len(b) != int(tc.n) || cap(b) != int(tc.n)) {
			t.Errorf("region(base%+d, %d) = %d bytes, %v; want ok %v", int(tc.ptr)-int(base), tc.n, len(b), ok, tc.ok)
		}
	}
	if d.Alloc(-1) != nil {
		t.Error("Alloc(-1) is not nil")
	}
	if b := d.Alloc(0); b == nil || unsafe.SliceData(b) == nil {
		t.Error("Alloc(0) has no address")
	}
	big := d.Alloc(int32(c) + 1)
	if len(big) != int(c)+1 {
		t.Errorf("Alloc grew to %d", len(big))
	}
}
