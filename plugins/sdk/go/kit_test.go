package evp_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/evptest"
)

// funcPlugin adapts functions to evp.Plugin.
type funcPlugin struct {
	init    func([]byte) error
	process func(string, []evp.Record, []evp.Verdict)
}

func (p *funcPlugin) Init(c []byte) error {
	if p.init == nil {
		return nil
	}
	return p.init(c)
}

func (p *funcPlugin) Process(et string, recs []evp.Record, out []evp.Verdict) {
	p.process(et, recs, out)
}

func TestRecordHeaders(t *testing.T) {
	t.Parallel()
	r := evp.Record{Headers: []evp.Header{{Name: "a", Value: []byte("1")}, {Name: "b", Value: nil}, {Name: "a", Value: []byte("2")}}}
	if v, ok := r.Header("a"); !ok || string(v) != "1" {
		t.Errorf("Header(a) = %q, %v", v, ok)
	}
	if v, ok := r.Header("b"); !ok || v != nil {
		t.Errorf("Header(b) = %q, %v; want null, true", v, ok)
	}
	if _, ok := r.Header("c"); ok {
		t.Error("Header(c) found")
	}
	r.SetHeader("a", []byte("3"))
	r.SetHeader("c", []byte("4"))
	if got := headerString(r.Headers); got != "a=3 b=<null> c=4" {
		t.Errorf("after SetHeader: %s", got)
	}
	r.DelHeader("b")
	r.DelHeader("missing")
	if got := headerString(r.Headers); got != "a=3 c=4" {
		t.Errorf("after DelHeader: %s", got)
	}
	c := r.Clone()
	c.Headers[0].Value[0] = 'x'
	if string(r.Headers[0].Value) != "3" {
		t.Error("Clone shares header values")
	}
	var empty evp.Record
	empty.SetHeader("x", nil)
	if got := headerString(empty.Headers); got != "x=<null>" {
		t.Errorf("SetHeader on no headers: %s", got)
	}
}

func headerString(hs []evp.Header) string {
	var parts []string
	for _, h := range hs {
		v := "<null>"
		if h.Value != nil {
			v = string(h.Value)
		}
		parts = append(parts, h.Name+"="+v)
	}
	return strings.Join(parts, " ")
}

var records = []evp.Record{
	{Topic: "orders", Partition: 2, Timestamp: 1714566896789, Key: []byte("k1"), Value: []byte(`{"id":1}`),
		Headers: []evp.Header{{Name: "ce_type", Value: []byte("order.created")}, {Name: "n", Value: nil}, {Name: "e", Value: []byte{}}}},
	{Topic: "orders", Partition: 2, Timestamp: 1714566896790, Key: nil, Value: []byte{}},
	{Topic: "orders", Partition: 2, Key: []byte{}, Value: nil},
}

// TestModifiedRoundTrip: records go through both encodings unchanged,
// with null and empty kept apart.
func TestModifiedRoundTrip(t *testing.T) {
	t.Parallel()
	p := &funcPlugin{process: func(et string, recs []evp.Record, out []evp.Verdict) {
		if et != "order.created" {
			panic("event type " + et)
		}
		for i := range recs {
			out[i] = evp.Modified(recs[i])
		}
	}}
	vs := evptest.Run(t, p, "", "order.created", records...)
	for i, v := range vs {
		got := evptest.Apply(records[i], v)
		if len(got) != 1 {
			t.Fatalf("record %d: %v", i, v)
		}
		if a, b := evptest.AppendRecordJSON(nil, got[0]), evptest.AppendRecordJSON(nil, records[i]); !bytes.Equal(a, b) {
			t.Errorf("record %d:\n got %s\nwant %s", i, a, b)
		}
	}
}

func TestEveryVerdict(t *testing.T) {
	t.Parallel()
	hs := []evp.Header{{Name: "h", Value: []byte("v")}, {Name: "null", Value: nil}}
	want := []evp.Verdict{
		evp.Keep(),
		evp.Drop(),
		evp.Reject(-7, "bad: é"),
		evp.Replace(),
		evp.RouteTo("elsewhere"),
		evp.Replace(evp.Original(), evp.To("audit").WithKey(nil), evp.Original().WithValue([]byte{}).WithHeaders(nil)),
		evp.Replace(evp.Original().WithKey([]byte("k")).WithValue(nil).WithHeaders(hs).WithTopic("t")),
	}
	p := &funcPlugin{process: func(_ string, recs []evp.Record, out []evp.Verdict) { copy(out, want) }}
	recs := make([]evp.Record, len(want))
	for i := range recs {
		recs[i] = records[0]
	}
	got := evptest.Run(t, p, "{}", "order.created", recs...)
	for i := range want {
		if a, b := evptest.AppendVerdictJSON(nil, got[i]), evptest.AppendVerdictJSON(nil, want[i]); !bytes.Equal(a, b) {
			t.Errorf("verdict %d: got %s, want %s", i, a, b)
		}
		if got[i].String() != want[i].String() {
			t.Errorf("verdict %d: String %s, want %s", i, got[i], want[i])
		}
	}
	if s := want[5].String(); s != `REPLACE[{}, {topic=audit key=null}, {value="" headers=[]}]` {
		t.Errorf("String() = %s", s)
	}
}

func TestUnsetVerdictsKeep(t *testing.T) {
	t.Parallel()
	p := &funcPlugin{process: func(_ string, recs []evp.Record, out []evp.Verdict) { out[1] = evp.Drop() }}
	in, err := evptest.NewHost().Instantiate(p, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second batch must not see the first one's verdicts
		vs, err := in.Process("t", records)
		if err != nil {
			t.Fatal(err)
		}
		if vs[0].Action() != evp.ActionKeep || vs[1].Action() != evp.ActionDrop || vs[2].Action() != evp.ActionKeep {
			t.Errorf("verdicts %v", vs)
		}
		p.process = func(_ string, recs []evp.Record, out []evp.Verdict) {
			for i := range out {
				if out[i].Action() != evp.ActionKeep {
					panic("verdict not reset")
				}
			}
			out[1] = evp.Drop()
		}
	}
}

func TestInit(t *testing.T) {
	t.Parallel()
	var kept []byte
	p := &funcPlugin{init: func(c []byte) error {
		kept = c
		if !bytes.Contains(c, []byte("ok")) {
			return errors.New("config: want ok")
		}
		return nil
	}, process: func(string, []evp.Record, []evp.Verdict) {}}
	h := evptest.NewHost()
	if _, err := h.Instantiate(p, `{"x":1}`); err == nil || !strings.Contains(err.Error(), "config: want ok") {
		t.Errorf("Instantiate: %v", err)
	}
	if logs := h.Logs(); len(logs) != 1 || logs[0].Level != evp.LevelError || logs[0].Message != "config: want ok" {
		t.Errorf("logs %v", logs)
	}
	in, err := h.Instantiate(p, `{"ok":true}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Process("t", records); err != nil { // reuses the buffer the config was in
		t.Fatal(err)
	}
	if string(kept) != `{"ok":true}` {
		t.Errorf("the config the plugin kept is now %q", kept)
	}
	if _, err := evptest.NewHost().Instantiate(nil, ""); err == nil || !strings.Contains(err.Error(), "no plugin registered") {
		t.Errorf("nil plugin: %v", err)
	}
}

func TestPanics(t *testing.T) {
	t.Parallel()
	p := &funcPlugin{process: func(_ string, recs []evp.Record, _ []evp.Verdict) { _ = recs[len(recs)] }}
	h := evptest.NewHost()
	in, err := h.Instantiate(p, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.Process("t", records)
	if err == nil || !strings.Contains(err.Error(), "panic in Process: runtime error: index out of range") {
		t.Fatalf("Process: %v", err)
	}
	if !strings.Contains(h.Logs()[0].Message, "kit_test.go") {
		t.Errorf("the panic log has no stack: %q", h.Logs()[0].Message)
	}
	if _, err := in.Process("t", records); !errors.Is(err, evptest.ErrInstanceBroken) {
		t.Errorf("after a failed call: %v", err)
	}
	pi := &funcPlugin{init: func([]byte) error { panic("at init") }}
	if _, err := evptest.NewHost().Instantiate(pi, ""); err == nil || !strings.Contains(err.Error(), "panic in Init: at init") {
		t.Errorf("Instantiate: %v", err)
	}
}

func TestHostFunctions(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("v", 300) // longer than the kit's first lookup buffer
	var got []string
	p := &funcPlugin{process: func(string, []evp.Record, []evp.Verdict) {
		evp.Log(evp.LevelWarn, "warned")
		evp.Log(evp.Level(42), "odd level")
		evp.Log(evp.LevelDebug, strings.Repeat("x", 5000))
		evp.MetricAdd("seen", 2)
		evp.MetricAdd("seen", 3)
		evp.MetricAdd("seen", -1)
		evp.MetricAdd("bad name", 1)
		for i := range 101 {
			evp.MetricAdd("m"+strings.Repeat("0", i%10)+string(rune('a'+i/10)), 1)
		}
		for _, k := range []string{"short", "long", "missing"} {
			v, ok := evp.Lookup("t", k)
			got = append(got, k+"="+strings.TrimRight(string(v), "v")+map[bool]string{true: "!", false: "?"}[ok]+
				map[bool]string{true: "L", false: ""}[len(v) == 300])
		}
		_, ok := evp.Lookup("no-table", "short")
		got = append(got, map[bool]string{true: "table!", false: "table?"}[ok])
		got = append(got, string(rune('0'+evp.NowMillis()%10)))
	}}
	h := evptest.NewHost()
	h.SetNow(1714566896787)
	h.SetTable("t", map[string]string{"short": "s", "long": long})
	in, err := h.Instantiate(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Process("t", records[:1]); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "short=s! long=!L missing=? table? 7" {
		t.Errorf("lookups and clock: %s", s)
	}
	logs := h.Logs()
	if len(logs) != 4 || logs[0].Level != evp.LevelWarn || logs[1].Level != evp.LevelInfo || len(logs[2].Message) != 4096 ||
		!strings.Contains(logs[3].Message, "too many metric names") {
		t.Errorf("logs: %+v", logs)
	}
	m := h.Metrics()
	if m["seen"] != 5 || len(m) != 100 || m["bad name"] != 0 {
		t.Errorf("metrics: seen=%d, %d names", m["seen"], len(m))
	}
}

// TestParallelInstances: instances on different hosts may be used from
// parallel tests (run with -race).
func TestParallelInstances(t *testing.T) {
	t.Parallel()
	for i := range 4 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			h := evptest.NewHost()
			h.SetNow(int64(i))
			p := &funcPlugin{process: func(_ string, recs []evp.Record, out []evp.Verdict) {
				for j := range out {
					out[j] = evp.Reject(int32(evp.NowMillis()), "")
				}
			}}
			in, err := h.Instantiate(p, "")
			if err != nil {
				t.Fatal(err)
			}
			for range 50 {
				vs, err := in.Process("t", records)
				if err != nil || vs[0].Code() != int32(i) {
					t.Fatalf("%v %v", vs, err)
				}
			}
		})
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("orders", int32(1), int64(2), []byte("k"), []byte(`{"a":1}`), "h", []byte("v"), uint8(0))
	f.Add("", int32(-1), int64(-1), []byte{}, []byte(nil), "", []byte(nil), uint8(255))
	f.Fuzz(func(t *testing.T, topic string, part int32, ts int64, key, value []byte, hn string, hv []byte, nulls uint8) {
		if nulls&1 != 0 {
			key = nil
		}
		if nulls&2 != 0 {
			value = nil
		}
		if nulls&4 != 0 {
			hv = nil
		}
		rec := evp.Record{Topic: topic, Partition: part, Timestamp: ts, Key: key, Value: value, Headers: []evp.Header{{Name: hn, Value: hv}}}
		p := &funcPlugin{process: func(_ string, recs []evp.Record, out []evp.Verdict) {
			for i := range recs {
				if nulls&8 != 0 {
					out[i] = evp.Replace(evp.OutputOf(recs[i]), evp.To(recs[i].Topic).WithHeaders(recs[i].Headers))
				} else {
					out[i] = evp.Modified(recs[i])
				}
			}
		}}
		vs := evptest.Run(t, p, "", topic, rec, rec)
		for _, v := range vs {
			for _, r := range evptest.Apply(rec, v) {
				if a, b := evptest.AppendRecordJSON(nil, r), evptest.AppendRecordJSON(nil, rec); !bytes.Equal(a, b) {
					t.Fatalf("got %s, want %s", a, b)
				}
			}
		}
	})
}
