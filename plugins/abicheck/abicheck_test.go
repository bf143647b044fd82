package abicheck

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/evptest"
)

// plugin is one example's .wasm and its test vectors.
type plugin struct {
	name  string
	wasm  string
	cases string
}

var plugins = []plugin{
	{"enrich", "../examples/enrich/enrich.wasm", "../examples/enrich/testdata/cases.json"},
	{"route", "../examples/route/route.wasm", "../examples/route/testdata/cases.json"},
	{"validate", "../examples/validate/validate.wasm", "../examples/validate/testdata/cases.json"},
	{"validate-c", "../examples/validate-c/validate-c.wasm", "../examples/validate/testdata/cases.json"},
	{"header-c", "../examples/header-c/header-c.wasm", ""}, // the benchmark's plugin: shape and call sequence only
}

var rt *runtime

func TestMain(m *testing.M) {
	var err error
	if rt, err = newRuntime(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	rt.r.Close(context.Background())
	os.Exit(code)
}

// load compiles p's .wasm, skipping the test when it is not built (failing
// under CI).
func load(t testing.TB, p plugin) []byte {
	t.Helper()
	wasm, err := os.ReadFile(p.wasm)
	if os.IsNotExist(err) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not built: run make plugins first", p.wasm)
		}
		t.Skipf("%s is not built: run make plugins first", p.wasm)
	}
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// TestEveryExampleIsChecked: a new example needs an entry in plugins.
func TestEveryExampleIsChecked(t *testing.T) {
	dirs, err := filepath.Glob("../examples/*/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := filepath.Glob("../examples/*/*.c")
	for _, f := range append(dirs, cs...) {
		name := filepath.Base(filepath.Dir(f))
		if !slices.ContainsFunc(plugins, func(p plugin) bool { return p.name == name }) {
			t.Errorf("example %s is not in abicheck's plugins list", name)
		}
	}
}

func sig(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		var s []string
		for _, t := range ts {
			s = append(s, api.ValueTypeName(t))
		}
		return "(" + strings.Join(s, ",") + ")"
	}
	return names(params) + "->" + names(results)
}

// TestModuleShape checks docs/plugin-abi.md §1 and the signatures of §4.
func TestModuleShape(t *testing.T) {
	want := map[string]string{
		"_initialize": "()->()",
		"evp_abi_v1":  "()->()",
		"evp_alloc":   "(i32)->(i32)",
		"evp_init":    "(i32,i32)->(i32)",
		"evp_process": "(i32,i32)->(i64)",
	}
	hostSigs := map[string]string{
		"log":        "(i32,i32,i32)->()",
		"now_ms":     "()->(i64)",
		"metric_add": "(i32,i32,i64)->()",
		"lookup":     "(i32,i32,i32,i32,i32,i32)->(i32)",
	}
	for _, p := range plugins {
		t.Run(p.name, func(t *testing.T) {
			m, err := rt.compile(context.Background(), p.wasm, load(t, p))
			if err != nil {
				t.Fatal(err)
			}
			exports := m.ExportedFunctions()
			for name, s := range want {
				f, ok := exports[name]
				if !ok {
					t.Errorf("no export %s", name)
					continue
				}
				if got := sig(f.ParamTypes(), f.ResultTypes()); got != s {
					t.Errorf("export %s: %s, want %s", name, got, s)
				}
			}
			if _, ok := m.ExportedMemories()["memory"]; !ok {
				t.Error("no memory export")
			}
			if _, ok := exports["_start"]; ok {
				t.Error("exports _start: a plugin is a reactor")
			}
			for _, f := range m.ImportedFunctions() {
				mod, name, _ := f.Import()
				switch mod {
				case "wasi_snapshot_preview1":
				case "evp_v1":
					if got := sig(f.ParamTypes(), f.ResultTypes()); got != hostSigs[name] {
						t.Errorf("import evp_v1.%s: %s, want %s", name, got, hostSigs[name])
					}
				default:
					t.Errorf("imports %s.%s: only evp_v1 and wasi_snapshot_preview1 are allowed", mod, name)
				}
			}
		})
	}
}

// run instantiates p for case c and returns its verdicts, or the reason it
// refused to start.
func run(t testing.TB, p plugin, c *evptest.Case) (vs []evp.Verdict, refused string) {
	t.Helper()
	ctx := context.Background()
	m, err := rt.compile(ctx, p.wasm, load(t, p))
	if err != nil {
		t.Fatal(err)
	}
	h := newHost()
	h.now, h.tables = c.NowMillis, c.Tables
	in, err := rt.instantiate(ctx, m, h)
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	st, err := in.init(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if st != 0 {
		return nil, h.lastError()
	}
	out, res, err := in.call(evptest.AppendBatch(nil, c.EventType, c.Records))
	if err != nil {
		t.Fatal(err)
	}
	if res < 0 {
		t.Fatalf("evp_process returned %d: %s", res, h.lastError())
	}
	vs, err = evptest.DecodeVerdicts(out, len(c.Records))
	if err != nil {
		t.Fatal(err)
	}
	return vs, ""
}

// TestCases runs every example's test vectors through its .wasm build.
func TestCases(t *testing.T) {
	for _, p := range plugins {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			if p.cases == "" {
				t.Skip("no test vectors")
			}
			cases, err := evptest.LoadCases(p.cases)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					vs, refused := run(t, p, &c)
					if refused != "" || c.InitError != nil {
						if err := c.CheckInitError(refused); err != nil || refused == "" {
							t.Fatalf("init: %v (refused: %q)", err, refused)
						}
						return
					}
					if err := c.Check(vs); err != nil {
						t.Error(err)
					}
				})
			}
		})
	}
}

// TestCallSequence: the failure paths of §2 and §5 that a host relies on.
func TestCallSequence(t *testing.T) {
	config := map[string][]byte{
		"enrich": []byte(`{"source":"x"}`), "route": []byte(`{"field":"f","copy_to":"c"}`),
		"validate": []byte(`{"required":["id"]}`), "validate-c": []byte(`{"required":["id"]}`),
		"header-c": []byte(`{"source":"x"}`),
	}
	for _, p := range plugins {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			m, err := rt.compile(ctx, p.wasm, load(t, p))
			if err != nil {
				t.Fatal(err)
			}
			h := newHost()
			in, err := rt.instantiate(ctx, m, h)
			if err != nil {
				t.Fatal(err)
			}
			defer in.close()
			batch := evptest.AppendBatch(nil, "t", []evp.Record{{Topic: "t", Value: []byte(`{"id":1}`)}})
			if _, res, err := in.call(batch); err != nil || res >= 0 {
				t.Errorf("evp_process before evp_init: %d, %v; want a negative result", res, err)
			}
			if res, err := in.alloc.Call(ctx, 0); err != nil || res[0] == 0 {
				t.Errorf("evp_alloc(0) = %v, %v; want a pointer", res, err)
			}
			if st, err := in.init(config[p.name]); err != nil || st != 0 {
				t.Fatalf("evp_init: %d %v: %s", st, err, h.lastError())
			}
			// Many batches of varying sizes on one instance (buffers reused
			// and grown), then a malformed one.
			r := rand.New(rand.NewPCG(1, 2))
			for i := range 40 {
				recs := make([]evp.Record, r.IntN(300))
				for j := range recs {
					recs[j] = evp.Record{Topic: "t", Key: []byte(fmt.Sprint(j)),
						Value: []byte(fmt.Sprintf(`{"id":%d,"f":"%s"}`, j, strings.Repeat("x", r.IntN(2000))))}
				}
				out, res, err := in.call(evptest.AppendBatch(nil, "t", recs))
				if err != nil || res < 0 {
					t.Fatalf("batch %d: %d %v: %s", i, res, err, h.lastError())
				}
				if _, err := evptest.DecodeVerdicts(out, len(recs)); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
			}
			if _, res, err := in.call(batch[:len(batch)-1]); err != nil || res >= 0 {
				t.Errorf("truncated batch: %d, %v; want a negative result", res, err)
			}
			if h.lastError() == "(nothing logged)" {
				t.Error("truncated batch: the plugin failed without logging why")
			}
		})
	}
}

// TestValidateTwins runs the Go and C builds of validate on thousands of
// generated values and compares every verdict.
func TestValidateTwins(t *testing.T) {
	goWasm, cWasm := plugins[2], plugins[3]
	load(t, goWasm)
	load(t, cWasm)
	configs := []string{
		`{"required":["id","amount"]}`,
		`{"required":["café","\ufffd",""]}`,
		`{"required":[]}`,
		`{"required":["a","a","b","\u0000"]}`,
	}
	values := twinValues()
	for _, cfg := range configs {
		for start := 0; start < len(values); start += 200 {
			recs := make([]evp.Record, 0, 200)
			for _, v := range values[start:min(start+200, len(values))] {
				recs = append(recs, evp.Record{Topic: "t", Value: v})
			}
			c := &evptest.Case{Name: "twins", Config: []byte(cfg), EventType: "t", Records: recs}
			a, _ := run(t, goWasm, c)
			b, _ := run(t, cWasm, c)
			for i := range recs {
				ja, jb := evptest.AppendVerdictJSON(nil, a[i]), evptest.AppendVerdictJSON(nil, b[i])
				if !bytes.Equal(ja, jb) {
					t.Errorf("config %s, value %q:\n  Go %s\n  C  %s", cfg, recs[i].Value, ja, jb)
				}
			}
		}
	}
}

// twinValues: seeds that exercise the scanner, their mutations, and
// nesting around the depth limit.
func twinValues() [][]byte {
	seeds := []string{
		`{"id":1,"amount":2}`, `{"id":null,"amount":[1,{"a":"}"}]}`, ` {"\u0069d" : "x" , "amount":-0.5e+3} `,
		`{"café":1,"\ud800":2,"":3}`, "{\"caf\xc3\xa9\":1,\"\xff\":2,\"\":0}", `{"a":1,"a":2,"b":3,"\u0000":4}`,
		`{"id":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, `[{"id":1}]`, `"id"`, `{"id":01}`, `{"id":1,}`, `{}`,
		`{"x":{"y":{"z":[true,false,null]}},"id":0,"amount":1E7}`, `{"id":"a` + "\t" + `b"}`, `{"id":tru}`,
	}
	var out [][]byte
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	r := rand.New(rand.NewPCG(7, 11))
	alphabet := []byte("{}[]\":,\\ u0dabeE.-+tfn\xff\xc3\xa9\t")
	for range 4000 {
		v := []byte(seeds[r.IntN(len(seeds))])
		for range 1 + r.IntN(3) {
			i := r.IntN(len(v) + 1)
			switch c := alphabet[r.IntN(len(alphabet))]; r.IntN(3) {
			case 0:
				v = slices.Insert(v, i, c)
			case 1:
				if i < len(v) {
					v = slices.Delete(v, i, i+1)
				}
			default:
				if i < len(v) {
					v[i] = c
				}
			}
		}
		out = append(out, v)
	}
	for _, d := range []int{9998, 9999, 10000, 10001} {
		out = append(out, []byte(`{"id":`+strings.Repeat("[", d)+strings.Repeat("]", d)+`,"amount":1}`))
		out = append(out, []byte(`{"id":1,"amount":`+strings.Repeat(`{"a":`, d)+"1"+strings.Repeat("}", d)+`}`))
	}
	return out
}

// BenchmarkBatch: one evp_process call on 100 order events, per plugin,
// through wazero (compiler); ns/record includes the host's encoding.
func BenchmarkBatch(b *testing.B) {
	config := map[string]string{
		"enrich": `{"source":"checkout"}`, "route": `{"field":"region","routes":{"eu":"orders.eu"},"copy_to":"audit"}`,
		"validate": `{"required":["id","customer","total"]}`, "validate-c": `{"required":["id","customer","total"]}`,
		"header-c": `{"source":"checkout"}`,
	}
	recs := make([]evp.Record, 100)
	for i := range recs {
		recs[i] = evp.Record{Topic: "orders", Partition: 1, Timestamp: 1714566896789, Key: []byte("c-1029"),
			Value: []byte(`{"id":"o-1","customer":{"id":"c-1029","region":"eu"},"items":[{"sku":"A-100","qty":2}],` +
				`"total":45.48,"currency":"EUR","region":"` + []string{"eu", "us"}[i%2] + `"}`),
			Headers: []evp.Header{{Name: "ce_type", Value: []byte("order.created")}}}
	}
	batch := evptest.AppendBatch(nil, "order.created", recs)
	for _, p := range plugins {
		b.Run(p.name, func(b *testing.B) {
			ctx := context.Background()
			m, err := rt.compile(ctx, p.wasm, load(b, p))
			if err != nil {
				b.Fatal(err)
			}
			in, err := rt.instantiate(ctx, m, newHost())
			if err != nil {
				b.Fatal(err)
			}
			defer in.close()
			if st, err := in.init([]byte(config[p.name])); err != nil || st != 0 {
				b.Fatal(st, err)
			}
			for b.Loop() {
				if _, res, err := in.call(batch); err != nil || res < 0 {
					b.Fatal(res, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/record")
		})
	}
}

// BenchmarkInstantiate: a fresh instance, _initialize and evp_init.
func BenchmarkInstantiate(b *testing.B) {
	for _, p := range plugins {
		b.Run(p.name, func(b *testing.B) {
			ctx := context.Background()
			m, err := rt.compile(ctx, p.wasm, load(b, p))
			if err != nil {
				b.Fatal(err)
			}
			cfg := map[string]string{"enrich": `{"source":"x"}`, "header-c": `{"source":"x"}`, "route": `{"field":"f","copy_to":"c"}`}[p.name]
			if cfg == "" {
				cfg = `{"required":["id"]}`
			}
			for b.Loop() {
				in, err := rt.instantiate(ctx, m, newHost())
				if err != nil {
					b.Fatal(err)
				}
				if st, err := in.init([]byte(cfg)); err != nil || st != 0 {
					b.Fatal(st, err)
				}
				in.close()
			}
		})
	}
}
