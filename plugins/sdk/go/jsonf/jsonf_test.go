package jsonf

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	t.Parallel()
	cases := []string{
		``, ` `, `{}`, ` { } `, `[]`, `[1,2]`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1}x`,
		`0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`, `1E-5`, `.5`, `+1`, `1.5e10`, `-12.0e-3`,
		`true`, `tru`, `truex`, `false`, `null`, `nul`, `"a"`, `"a`, `"\u00e9"`, `"\u00g9"`, `"\x"`,
		`"\/\b\f\n\r\t\"\\"`, "\"a\tb\"", "\"a\x7fb\"", "\"\xff\"", `"\ud800"`, `{"a":[{"b":{}}]}`,
		`{"a":[{"b":{}}]]`, `[[[]]]`, `[[[]]`, `{"a":{"b":1}`, "{\"a\":1}\n", `{"":""}`, `[1 2]`,
		`{"a":1 "b":2}`, `{,}`, `[,]`, `{"a":}`, `[1,,2]`, `"abcdefghijklmnopqrstuvwxyz0123456789"`,
		`"abcdefgh\"ijklmnop"`, `"abcdefghijklmnop\u0041qrst"`, "\"abcdefgh\x01ijkl\"",
		`{"a":1}{"b":2}`, ` [ 1 , { "a" : [ true , false , null ] } ] `,
	}
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func TestDepth(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 63, 64, 65, 128, 129, MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		arr := strings.Repeat("[", n) + strings.Repeat("]", n)
		obj := strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
		mixed := strings.Repeat(`[{"a":`, n/2) + "1" + strings.Repeat("}]", n/2)
		for _, doc := range []string{arr, obj, mixed} {
			if got, want := Valid([]byte(doc)), json.Valid([]byte(doc)); got != want {
				t.Errorf("depth %d: Valid = %v, encoding/json says %v", n, got, want)
			}
		}
		if n <= 200 { // Get re-scans each level: quadratic, keep it small
			path := make([]string, n)
			for i := range path {
				path[i] = "a"
			}
			if raw, ok := Get([]byte(obj), path...); !ok || string(raw) != "1" {
				t.Errorf("depth %d: Get = %q, %v", n, raw, ok)
			}
		}
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	doc := []byte(` {"id": "o-1", "n": -1.5e3, "ok": true, "none": null,
		"items": [1, {"x": "]"}], "cust": {"region": "eu", "tier": {"level": 2}},
		"esc\u0061ped": "yes", "dup": 1, "dup": 2, "caf\u00e9": "é", "q\"k": "quote"} `)
	cases := []struct {
		path []string
		raw  string
		ok   bool
	}{
		{[]string{"id"}, `"o-1"`, true},
		{[]string{"n"}, `-1.5e3`, true},
		{[]string{"ok"}, `true`, true},
		{[]string{"none"}, `null`, true},
		{[]string{"items"}, `[1, {"x": "]"}]`, true},
		{[]string{"cust", "region"}, `"eu"`, true},
		{[]string{"cust", "tier", "level"}, `2`, true},
		{[]string{"cust", "tier", "level", "x"}, ``, false},
		{[]string{"cust", "nope"}, ``, false},
		{[]string{"escaped"}, `"yes"`, true},
		{[]string{"dup"}, `2`, true},
		{[]string{"café"}, `"é"`, true},
		{[]string{`q"k`}, `"quote"`, true},
		{[]string{"missing"}, ``, false},
		{[]string{"items", "x"}, ``, false},
		{[]string{"ID"}, ``, false},
	}
	for _, c := range cases {
		raw, ok := Get(doc, c.path...)
		if ok != c.ok || string(raw) != c.raw {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", c.path, raw, ok, c.raw, c.ok)
		}
	}
	for _, bad := range []string{``, `[]`, `"a"`, `{"id":1`, `{"id":1}}`, `{"id":1,"x":}`, `{"id":1} 2`} {
		if raw, ok := Get([]byte(bad), "id"); ok {
			t.Errorf("Get(%q, id) = %q, true; want not ok", bad, raw)
		}
	}
	if s, ok := GetString(doc, "cust", "region"); !ok || s != "eu" {
		t.Errorf("GetString(cust.region) = %q, %v", s, ok)
	}
	if _, ok := GetString(doc, "n"); ok {
		t.Error("GetString of a number is ok")
	}
	if !Has(doc, "none") || Has(doc, "nothing") {
		t.Error("Has")
	}
}

func TestSet(t *testing.T) {
	t.Parallel()
	cases := []struct{ doc, field, raw, want string }{
		{`{}`, "a", `1`, `{"a":1}`},
		{` { } `, "a", `1`, ` { "a":1} `},
		{`{"b":2}`, "a", ` "x" `, `{"b":2,"a":"x"}`},
		{`{"a":0,"b":2}`, "a", `[1, 2]`, `{"a":[1, 2],"b":2}`},
		{`{"a":0,"b":{"a":5},"a" : 9 }`, "a", `true`, `{"a":true,"b":{"a":5},"a" : true }`},
		{`{"\u0061":0}`, "a", `null`, `{"\u0061":null}`},
		{"{\"b\":2}\n", "q\"\n", `1`, "{\"b\":2,\"q\\\"\\n\":1}\n"},
	}
	for _, c := range cases {
		got, err := Set([]byte(c.doc), c.field, []byte(c.raw))
		if err != nil || string(got) != c.want {
			t.Errorf("Set(%q, %q, %q) = %q, %v; want %q", c.doc, c.field, c.raw, got, err, c.want)
		}
	}
	for _, c := range []struct {
		doc, raw string
		err      error
	}{
		{`[]`, `1`, ErrNotObject}, {`"x"`, `1`, ErrNotObject}, {`{"a":}`, `1`, ErrInvalid},
		{`{}x`, `1`, ErrInvalid}, {`{}`, `1 2`, ErrInvalid}, {`{}`, ``, ErrInvalid},
	} {
		dst := []byte("keep")
		got, err := AppendSet(dst, []byte(c.doc), "a", []byte(c.raw))
		if !errors.Is(err, c.err) || string(got) != "keep" {
			t.Errorf("AppendSet(%q, %q) = %q, %v; want keep, %v", c.doc, c.raw, got, err, c.err)
		}
	}
	got, err := SetString([]byte(`{"id":1}`), "source", "check\"out\x01é\xff")
	if want := `{"id":1,"source":"check\"out\u0001é\ufffd"}`; err != nil || string(got) != want {
		t.Errorf("SetString = %q, %v; want %q", got, err, want)
	}
}

func TestUnquoteAndQuote(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`""`, `"abc"`, `"a\"b"`, `"\u00e9\n"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00\ud83d"`,
		`"\ud83dx"`, `"\ud83d\u0041"`, "\"\xff\xfe\"", "\"é\"", `"\/"`} {
		got, ok := Unquote([]byte(raw))
		var want string
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if !ok || string(got) != want {
			t.Errorf("Unquote(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
	for _, raw := range []string{``, `"`, `"a`, `a"`, `"a"b"`, `"\x"`, `1`, `"a" `} {
		if got, ok := Unquote([]byte(raw)); ok {
			t.Errorf("Unquote(%q) = %q, true", raw, got)
		}
	}
	plain := []byte(`"no escapes"`)
	if got, _ := Unquote(plain); &got[0] != &plain[1] {
		t.Error("Unquote copied a string that needs no decoding")
	}
	for _, s := range []string{"", "abc", "a\"b\\c", "\x00\x1f\t\n\r\b\f", "<&>", "é😀", "\xff", "a\xc3", "\u2028"} {
		q := AppendQuote(nil, s)
		var back, want string
		if err := json.Unmarshal(q, &back); err != nil {
			t.Fatalf("AppendQuote(%q) = %q: %v", s, q, err)
		}
		m, _ := json.Marshal(s)
		_ = json.Unmarshal(m, &want)
		if back != want {
			t.Errorf("AppendQuote(%q) = %q reads back as %q, want %q", s, q, back, want)
		}
	}
}

func TestIter(t *testing.T) {
	t.Parallel()
	it := Members([]byte(`{"a":1, "b\u0063":[2], "é":{}}`))
	var keys, vals []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
		vals = append(vals, string(it.Value()))
	}
	if it.Err() != nil || strings.Join(keys, ",") != "a,bc,é" || strings.Join(vals, ",") != "1,[2],{}" {
		t.Errorf("Members: keys %q values %q err %v", keys, vals, it.Err())
	}
	el := Elements([]byte(` [1, "x", {"a":[]} ,null] `))
	vals = vals[:0]
	for el.Next() {
		vals = append(vals, string(el.Value()))
	}
	if el.Err() != nil || strings.Join(vals, "|") != `1|"x"|{"a":[]}|null` {
		t.Errorf("Elements: %q err %v", vals, el.Err())
	}
	for doc, want := range map[string]error{`[1]`: ErrNotObject, `{"a":1,}`: ErrInvalid, `{"a":1`: ErrInvalid, `{} 1`: ErrInvalid, `{}`: nil} {
		it := Members([]byte(doc))
		for it.Next() {
		}
		if !errors.Is(it.Err(), want) {
			t.Errorf("Members(%q).Err() = %v, want %v", doc, it.Err(), want)
		}
	}
	var zero Iter
	if zero.Next() || zero.Err() != ErrNotObject {
		t.Errorf("zero Iter: %v", zero.Err())
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]Kind{`{}`: Object, `[]`: Array, `"x"`: String, `-1`: Number, `7`: Number,
		`true`: Bool, `false`: Bool, `null`: Null, ``: Invalid, `x`: Invalid, ` 1`: Number} {
		if got := KindOf([]byte(raw)); got != want {
			t.Errorf("KindOf(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	doc := []byte(benchDoc)
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := Get(doc, "customer", "region"); !ok {
			t.Fatal("no region")
		}
		if !IsObject(doc) {
			t.Fatal("not an object")
		}
		if _, ok := Get(doc, "caf\u00e9"); !ok {
			t.Fatal("no café")
		}
		var err error
		if dst, err = AppendSetString(dst[:0], doc, "source", "checkout"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
}

// The differential fuzz tests check jsonf against encoding/json on
// arbitrary documents.

var fuzzSeeds = []string{
	`{}`, `{"a":1}`, `{"a":{"b":[1,2,{"c":null}]},"d":"x"}`, `{"a":1,"a":2}`, `{"\u0061":"\ud83d\ude00"}`,
	`{"é":"\u00e9","\ud800":1}`, "{\"\xff\":1}", `[1,2]`, `"str"`, `{"a":1`, ` {"a" : [ ] , "b" : { } } `,
	`{"n":-0.5e-3,"t":true,"f":false}`, `{"a":"\\\"\/\b\f\n\r\t"}`, `{"long":"abcdefghijklmnopqrstuvwxyz"}`,
}

func FuzzGet(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "a", "b")
	}
	f.Fuzz(func(t *testing.T, data []byte, k1, k2 string) {
		valid := json.Valid(data)
		if Valid(data) != valid {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", data, !valid, valid)
		}
		var m map[string]json.RawMessage
		isObj := json.Unmarshal(data, &m) == nil && m != nil
		if IsObject(data) != isObj {
			t.Fatalf("IsObject(%q) = %v, encoding/json says %v", data, !isObj, isObj)
		}
		raw, ok := Get(data, k1)
		want, has := m[k1]
		if ok != has || !bytes.Equal(raw, want) {
			t.Fatalf("Get(%q, %q) = %q, %v; encoding/json: %q, %v", data, k1, raw, ok, want, has)
		}
		if has {
			var m2 map[string]json.RawMessage
			isObj2 := json.Unmarshal(want, &m2) == nil && m2 != nil
			want2, has2 := m2[k2]
			raw2, ok2 := Get(data, k1, k2)
			if ok2 != (isObj2 && has2) || !bytes.Equal(raw2, want2) {
				t.Fatalf("Get(%q, %q, %q) = %q, %v; encoding/json: %q, %v", data, k1, k2, raw2, ok2, want2, has2)
			}
			var s string
			isStr := json.Unmarshal(want, &s) == nil && want[0] == '"'
			gs, gok := GetString(data, k1)
			if gok != isStr || gs != s {
				t.Fatalf("GetString(%q, %q) = %q, %v; encoding/json: %q, %v", data, k1, gs, gok, s, isStr)
			}
		}
		if isObj {
			it := Members(data)
			n := 0
			for it.Next() {
				if _, dup := m[string(it.Key())]; !dup {
					t.Fatalf("Members(%q) yields key %q that encoding/json does not see", data, it.Key())
				}
				n++
			}
			if it.Err() != nil || n < len(m) {
				t.Fatalf("Members(%q): %d members, err %v; encoding/json sees %d keys", data, n, it.Err(), len(m))
			}
		}
	})
}

func FuzzSet(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "a", []byte(`"v"`), "v")
	}
	f.Fuzz(func(t *testing.T, data []byte, field string, raw []byte, s string) {
		var before map[string]json.RawMessage
		isObj := json.Unmarshal(data, &before) == nil && before != nil
		check := func(name string, out []byte, err error, value []byte) {
			if !isObj || !json.Valid(value) {
				if err == nil {
					t.Fatalf("%s(%q, %q, %q) = %q, want an error", name, data, field, value, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s(%q, %q, %q): %v", name, data, field, value, err)
			}
			var after map[string]json.RawMessage
			if err := json.Unmarshal(out, &after); err != nil {
				t.Fatalf("%s(%q, %q, %q) = %q: invalid: %v", name, data, field, value, out, err)
			}
			var ka string
			kq, _ := json.Marshal(field)
			_ = json.Unmarshal(kq, &ka) // the key as encoding/json reads it back
			for k, v := range before {
				if k != ka && !bytes.Equal(after[k], v) {
					t.Fatalf("%s(%q, %q) changed %q: %q -> %q", name, data, field, k, v, after[k])
				}
			}
			if len(after) != len(before) && len(after) != len(before)+1 {
				t.Fatalf("%s(%q, %q): %d keys -> %d", name, data, field, len(before), len(after))
			}
			if got := after[ka]; !bytes.Equal(got, trimSpace(value)) {
				t.Fatalf("%s(%q, %q, %q): field reads %q", name, data, field, value, got)
			}
		}
		out, err := Set(data, field, raw)
		check("Set", out, err, raw)
		out, err = SetString(data, field, s)
		check("SetString", out, err, AppendQuote(nil, s))
	})
}

func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\ud83d"`, "\"\xff\"", `"a\"b"`, `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want string
		isStr := json.Unmarshal(raw, &want) == nil && len(raw) > 0 && raw[0] == '"' && raw[len(raw)-1] == '"'
		if !isStr {
			want = "" // Unquote takes exactly one token, no surrounding space
		}
		got, ok := Unquote(raw)
		if ok != isStr || string(got) != want {
			t.Fatalf("Unquote(%q) = %q, %v; encoding/json: %q, %v", raw, got, ok, want, isStr)
		}
		s := string(raw)
		var back, viaJSON string
		if err := json.Unmarshal(AppendQuote(nil, s), &back); err != nil {
			t.Fatalf("AppendQuote(%q) = %q: %v", s, AppendQuote(nil, s), err)
		}
		m, _ := json.Marshal(s)
		_ = json.Unmarshal(m, &viaJSON)
		if back != viaJSON {
			t.Fatalf("AppendQuote(%q) reads back %q, encoding/json round trip %q", s, back, viaJSON)
		}
	})
}

const benchDoc = `{"id":"8c1f2a40-5b7e-4c1d-9f0e-2b6a1c3d4e5f","type":"order.created","time":"2024-05-01T12:34:56.789Z",
"customer":{"id":"c-1029","name":"Ada Lovelace","email":"ada@example.com","region":"eu","tier":"gold"},
"items":[{"sku":"A-100","qty":2,"price":19.99},{"sku":"B-200","qty":1,"price":5.5}],
"total":45.48,"currency":"EUR","caf\u00e9":true,"notes":"leave at the door, ring twice"}`

// BenchmarkGet and friends: per-record cost of the helpers plugins use, on
// a 420-byte order event.
func BenchmarkGet(b *testing.B) {
	doc := []byte(benchDoc)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, ok := Get(doc, "currency"); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkGetNested(b *testing.B) {
	doc := []byte(benchDoc)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, ok := Get(doc, "customer", "region"); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkIsObject(b *testing.B) {
	doc := []byte(benchDoc)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if !IsObject(doc) {
			b.Fatal("not an object")
		}
	}
}

func BenchmarkAppendSetString(b *testing.B) {
	doc := []byte(benchDoc)
	dst := make([]byte, 0, 1024)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var err error
		if dst, err = AppendSetString(dst[:0], doc, "source", "checkout"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodingJSON is the baseline: what a plugin pays to read one
// field with encoding/json (natively; in a Go guest it is far slower).
func BenchmarkEncodingJSON(b *testing.B) {
	doc := []byte(benchDoc)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(doc, &m); err != nil {
			b.Fatal(err)
		}
	}
}
