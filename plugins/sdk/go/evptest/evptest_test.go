package evptest_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/evptest"
)

type emit struct{ vs []evp.Verdict }

func (*emit) Init([]byte) error { return nil }
func (e *emit) Process(_ string, _ []evp.Record, out []evp.Verdict) {
	copy(out, e.vs)
}

func TestDecodeVerdictsMalformed(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	cases := map[string][]byte{
		"empty":            {},
		"count mismatch":   le.AppendUint32(nil, 2),
		"unknown action":   append(le.AppendUint32(nil, 1), 4),
		"truncated reject": append(le.AppendUint32(nil, 1), 2, 1, 0),
		"reason past end":  append(le.AppendUint32(nil, 1), 2, 0, 0, 0, 0, 9, 0, 0, 0, 'x'),
		"unknown field":    append(le.AppendUint32(nil, 1), 3, 1, 0, 0, 0, 0x10),
		"key length -2":    append(le.AppendUint32(nil, 1), 3, 1, 0, 0, 0, 2, 0xFE, 0xFF, 0xFF, 0xFF),
		"huge outputs":     append(le.AppendUint32(nil, 1), 3, 0xFF, 0xFF, 0xFF, 0xFF),
		"trailing byte":    append(le.AppendUint32(nil, 1), 0, 0),
		"huge headers":     append(le.AppendUint32(nil, 1), 3, 1, 0, 0, 0, 8, 0xFF, 0xFF, 0xFF, 0x0F),
	}
	for name, buf := range cases {
		if _, err := evptest.DecodeVerdicts(buf, 1); !errors.Is(err, evptest.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	vs, err := evptest.DecodeVerdicts(append(le.AppendUint32(nil, 2), 0, 3, 0, 0, 0, 0), 2)
	if err != nil || vs[0].Action() != evp.ActionKeep || vs[1].Action() != evp.ActionReplace || vs[1].NumOutputs() != 0 {
		t.Errorf("keep + empty replace: %v %v", vs, err)
	}
}

// FuzzDecodeVerdicts: any buffer the host accepts encodes back, through the
// kit, to verdicts that print the same.
func FuzzDecodeVerdicts(f *testing.F) {
	le := binary.LittleEndian
	f.Add(append(le.AppendUint32(nil, 1), 0), 1)
	f.Add(append(le.AppendUint32(nil, 2), 2, 1, 0, 0, 0, 1, 0, 0, 0, 'x', 3, 2, 0, 0, 0, 0, 15, 1, 0, 0, 0, 't', 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'h', 0xFF, 0xFF, 0xFF, 0xFF), 2)
	f.Fuzz(func(t *testing.T, buf []byte, n int) {
		if n < 0 || n > 64 {
			return
		}
		vs, err := evptest.DecodeVerdicts(buf, n)
		if err != nil {
			return
		}
		recs := make([]evp.Record, n)
		for i := range recs {
			recs[i].Topic = "t"
		}
		again := evptest.Run(t, &emit{vs}, "", "t", recs...)
		for i := range vs {
			if a, b := evptest.AppendVerdictJSON(nil, again[i]), evptest.AppendVerdictJSON(nil, vs[i]); !bytes.Equal(a, b) {
				t.Fatalf("verdict %d: %s became %s", i, b, a)
			}
		}
	})
}

func TestRecordJSON(t *testing.T) {
	t.Parallel()
	for _, line := range []string{
		`{"topic":"orders","partition":1,"timestamp":5,"key":"k","value":{"id": 1, "x":[true]},"headers":{"a":"1","a":null,"b":""}}`,
		`{"topic":"t","partition":0,"timestamp":0,"key":null,"value":"plain text","headers":{}}`,
		`{"topic":"t","partition":0,"timestamp":0,"key":"","value":"\"quoted\"","headers":{}}`,
		`{"topic":"t","partition":0,"timestamp":0,"key_b64":"/w==","value":"null","headers":{}}`,
		`{"topic":"t","partition":0,"timestamp":0,"key":null,"value":42,"headers":{}}`,
	} {
		r, _, err := evptest.ParseRecord([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got := evptest.AppendRecordJSON(nil, r); string(got) != line {
			t.Errorf("round trip:\n got %s\nwant %s", got, line)
		}
	}
	r, _, err := evptest.ParseRecord([]byte(`{"topic":"t","value":"null"}`))
	if err != nil || string(r.Value) != "null" || r.Key != nil {
		t.Errorf("value \"null\" is the text: %q %v", r.Value, err)
	}
	for _, bad := range []string{`{}`, `{"topic":"t","extra":1}`, `{"topic":"t","key":"a","key_b64":"YQ=="}`,
		`{"topic":"t","headers":{"a":1}}`, `{"topic":"t","headers":[]}`, `{"topic":"t"} {}`, `{"topic":"t","value_b64":"!"}`} {
		if _, _, err := evptest.ParseRecord([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	evs, err := evptest.ReadEvents(strings.NewReader(`# sample
{"topic":"orders","headers":{"ce_type":"order.created"}}

{"topic":"orders","headers":{"event_type":"order.paid"}}
{"topic":"orders","event_type":"explicit","headers":{"ce_type":"ignored"}}
{"topic":"payments"}
`))
	if err != nil {
		t.Fatal(err)
	}
	var ets []string
	for _, e := range evs {
		ets = append(ets, e.EventType)
	}
	if got := strings.Join(ets, ","); got != "order.created,order.paid,explicit,payments" {
		t.Errorf("event types %s", got)
	}
	if _, err := evptest.ReadEvents(strings.NewReader("{\"topic\":\"a\"}\n{bad}\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	in := evp.Record{Topic: "orders", Partition: 3, Key: []byte("k"), Value: []byte("v"), Headers: []evp.Header{{Name: "h", Value: []byte("1")}}}
	check := func(v evp.Verdict, want ...string) {
		t.Helper()
		var got []string
		for _, r := range evptest.Apply(in, v) {
			got = append(got, string(evptest.AppendRecordJSON(nil, r)))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("Apply(%v):\n%s\nwant\n%s", v, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	orig := `{"topic":"orders","partition":3,"timestamp":0,"key":"k","value":"v","headers":{"h":"1"}}`
	check(evp.Keep(), orig)
	check(evp.Drop())
	check(evp.Reject(1, "x"))
	check(evp.Replace())
	check(evp.Replace(evp.Original(), evp.To("orders"), evp.To("audit").WithKey(nil).WithHeaders(nil)),
		orig, orig, `{"topic":"audit","partition":-1,"timestamp":0,"key":null,"value":"v","headers":{}}`)
}

func TestCases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "cases.json")
	file := `{"plugin":"emit","cases":[
	  {"name":"all kinds","records":[{"topic":"a"},{"topic":"a"},{"topic":"a"},{"topic":"a"}],
	   "verdicts":[{"action":"keep"},{"action":"drop"},{"action":"reject","code":3,"reason":"r"},
	     {"action":"replace","outputs":[{"topic":"b","headers":{"id":{"regex":"^[0-9]+$"},"n":null}},{}]}]}
	]}`
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	good := []evp.Verdict{evp.Keep(), evp.Drop(), evp.Reject(3, "r"),
		evp.Replace(evp.To("b").WithHeaders([]evp.Header{{Name: "id", Value: []byte("123")}, {Name: "n", Value: nil}}), evp.Original())}
	evptest.RunCases(t, path, func() evp.Plugin { return &emit{good} })

	cases, err := evptest.LoadCases(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := [][]evp.Verdict{
		{evp.Drop(), good[1], good[2], good[3]},
		{good[0], good[1], evp.Reject(3, "s"), good[3]},
		{good[0], good[1], good[2], evp.Replace(evp.To("b").WithHeaders([]evp.Header{{Name: "id", Value: []byte("12a")}, {Name: "n", Value: nil}}), evp.Original())},
		{good[0], good[1], good[2], evp.Replace(evp.To("b").WithHeaders([]evp.Header{{Name: "id", Value: []byte("1")}, {Name: "n", Value: []byte{}}}), evp.Original())},
		{good[0], good[1], good[2], evp.Replace(evp.To("b").WithHeaders([]evp.Header{{Name: "id", Value: []byte("1")}, {Name: "n", Value: nil}}), evp.Original().WithKey(nil))},
		{good[0], good[1], good[2], evp.Replace(evp.To("b"), evp.Original())},
	}
	for i, vs := range bad {
		if err := cases[0].Check(vs); err == nil {
			t.Errorf("bad %d: no mismatch found", i)
		}
	}
	for _, c := range []string{
		`{"cases":[{"name":"x","records":[{"topic":"a"}],"verdicts":[]}]}`,
		`{"cases":[{"name":"x","records":[{"topic":"a"}],"verdicts":[{"action":"maybe"}]}]}`,
		`{"cases":[{"name":"x","records":[{"topic":"a"}],"verdicts":[{"action":"keep","code":1}]}]}`,
		`{"cases":[{"name":"x","init_error":"y","records":[{"topic":"a"}]}]}`,
		`{"cases":[{"records":[],"verdicts":[]}]}`,
		`{"cases":[],"extra":1}`,
	} {
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := evptest.LoadCases(path); err == nil {
			t.Errorf("%s: no error", c)
		}
	}
}

func TestHostClock(t *testing.T) {
	t.Parallel()
	h := evptest.NewHost()
	var got []int64
	p := &clock{&got}
	in, err := h.Instantiate(p, "")
	if err != nil {
		t.Fatal(err)
	}
	h.SetNow(1000)
	_, _ = in.Process("t", []evp.Record{{Topic: "t"}})
	h.Advance(1500e6) // 1.5 s in nanoseconds
	_, _ = in.Process("t", []evp.Record{{Topic: "t"}})
	if len(got) != 2 || got[0] != 1000 || got[1] != 2500 {
		t.Errorf("clock readings %v", got)
	}
}

type clock struct{ got *[]int64 }

func (*clock) Init([]byte) error { return nil }
func (c *clock) Process(string, []evp.Record, []evp.Verdict) {
	*c.got = append(*c.got, evp.NowMillis())
}
