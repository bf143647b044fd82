package plugins

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// A tiny assembler for hand-made modules.

func wsec(id byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(appendU32([]byte{id}, uint32(len(b))), b...)
}

func wvec(items ...[]byte) []byte {
	return append(appendU32(nil, uint32(len(items))), bytes.Join(items, nil)...)
}

func wname(s string) []byte { return appendName(nil, s) }

func wmodule(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Join(sections, nil)...)
}

// wfunc is a code section entry: locals (count, type pairs) and body.
func wfunc(locals []byte, body ...byte) []byte {
	b := append(locals, body...)
	return append(appendU32(nil, uint32(len(b))), b...)
}

// shiftModule exercises every place a function index appears: an import
// (now_ms, function 0) re-exported, calls, call_indirect through an element
// segment, ref.func in a global, the start function, the name section.
func shiftModule() []byte {
	const (
		tNow  = 0 // () -> i64
		tI32  = 1 // () -> i32
		tUnOp = 2 // (i32) -> i32
		tVoid = 3 // () -> ()
	)
	types := wsec(secType, wvec(
		[]byte{0x60, 0, 1, 0x7E},
		[]byte{0x60, 0, 1, 0x7F},
		[]byte{0x60, 1, 0x7F, 1, 0x7F},
		[]byte{0x60, 0, 0},
	))
	imports := wsec(secImport, wvec(slices.Concat(wname("evp_v1"), wname("now_ms"), []byte{0x00, tNow})))
	// Functions: 1 count(n), 2 run, 3 viaTable, 4 viaRef, 5 start, 6 started.
	funcs := wsec(secFunction, wvec([]byte{tUnOp}, []byte{tI32}, []byte{tI32}, []byte{tI32}, []byte{tVoid}, []byte{tI32}))
	table := wsec(secTable, wvec([]byte{0x70, 0x00, 2}))
	globals := wsec(secGlobal, wvec(
		[]byte{0x70, 0x00, 0xD2, 1, 0x0B}, // funcref = ref.func count
		[]byte{0x7F, 0x01, 0x41, 0, 0x0B}, // mut i32 = 0
	))
	exports := wsec(secExport, wvec(
		slices.Concat(wname("run"), []byte{0, 2}),
		slices.Concat(wname("viaTable"), []byte{0, 3}),
		slices.Concat(wname("viaRef"), []byte{0, 4}),
		slices.Concat(wname("started"), []byte{0, 6}),
		slices.Concat(wname("now"), []byte{0, 0}),
		slices.Concat(wname("count"), []byte{0, 1}),
	))
	start := wsec(secStart, []byte{5})
	elems := wsec(secElement, wvec(
		[]byte{0x00, 0x41, 0, 0x0B, 1, 1}, // active at 0: count
		[]byte{0x03, 0x00, 1, 1},          // declarative: count
	))
	code := wsec(secCode, wvec(
		// count(n): i = 0; loop { if n == 0 break; n--; i++ } return i
		wfunc([]byte{1, 1, 0x7F},
			0x02, 0x40, // block
			0x03, 0x40, // loop
			0x20, 0, 0x45, 0x0D, 1, // br_if 1 (n == 0)
			0x20, 0, 0x41, 1, 0x6B, 0x21, 0, // n--
			0x20, 1, 0x41, 1, 0x6A, 0x21, 1, // i++
			0x0C, 0, // br 0
			0x0B, 0x0B,
			0x20, 1, 0x0B),
		wfunc([]byte{0}, 0x41, 7, 0x10, 1, 0x0B),                 // run: count(7)
		wfunc([]byte{0}, 0x41, 9, 0x41, 0, 0x11, tUnOp, 0, 0x0B), // viaTable: table[0](9)
		wfunc([]byte{0}, 0x41, 1, 0x23, 0, 0x26, 0, // table[1] = global 0
			0x41, 11, 0x41, 1, 0x11, tUnOp, 0, 0x0B), // table[1](11)
		wfunc([]byte{0}, 0x41, 42, 0x24, 1, 0x0B), // start: global 1 = 42
		wfunc([]byte{0}, 0x23, 1, 0x0B),           // started: global 1
	))
	names := wsec(secCustom, wname("name"), wsec(1, wvec(
		slices.Concat(appendU32(nil, 0), wname("imported_now")),
		slices.Concat(appendU32(nil, 1), wname("count_down")),
		slices.Concat(appendU32(nil, 2), wname("run_seven")),
	)))
	producers := wsec(secCustom, wname("producers"), []byte{0})
	return wmodule(types, imports, funcs, table, globals, exports, start, elems, code, names, producers)
}

func TestInstrumentRenumbers(t *testing.T) {
	t.Parallel()
	bin := shiftModule()
	out, loops, err := instrument(bin)
	if err != nil {
		t.Fatal(err)
	}
	if loops != 1 {
		t.Errorf("%d loops instrumented, want 1", loops)
	}
	if bytes.Contains(out, []byte("producers")) {
		t.Error("custom section producers kept")
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	_, err = rt.NewHostModuleBuilder(hostModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostNowMS), nil, []api.ValueType{i64}).Export(fnNowMS).Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ticks int
	_, err = rt.NewHostModuleBuilder(tickModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			ticks++
			stack[0] = 3 // a tick every 3 iterations
		}), nil, []api.ValueType{i32}).Export(tickName).Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, err := rt.CompileModule(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	for export, name := range map[string]string{"run": "run_seven", "count": "count_down", "now": "imported_now"} {
		if got := code.ExportedFunctions()[export].Name(); got != name {
			t.Errorf("export %s is named %q, want %q (name section)", export, got, name)
		}
	}
	mod, err := rt.InstantiateModule(ctx, code, wazero.NewModuleConfig())
	if err != nil {
		t.Fatal(err)
	}
	for export, want := range map[string]uint64{"run": 7, "viaTable": 9, "viaRef": 11, "started": 42} {
		res, err := mod.ExportedFunction(export).Call(ctx)
		if err != nil || len(res) != 1 || res[0] != want {
			t.Errorf("%s() = %v, %v; want %d", export, res, err, want)
		}
	}
	if res, err := mod.ExportedFunction("now").Call(ctx); err != nil || int64(res[0]) < time.Now().Add(-time.Hour).UnixMilli() {
		t.Errorf("now() = %v, %v", res, err)
	}
	// 7+9+11 loop iterations (plus one exit test each) with a budget of 3
	// after the first: the fuel starts at 1.
	if ticks < 9 || ticks > 11 {
		t.Errorf("%d ticks", ticks)
	}
}

func TestInstrumentRefuses(t *testing.T) {
	t.Parallel()
	valid := shiftModule()
	for name, bin := range map[string][]byte{
		"not wasm":  []byte("\x00asm garbage"),
		"truncated": valid[:len(valid)-30],
		"imports the tick module": wmodule(
			wsec(secType, wvec([]byte{0x60, 0, 1, 0x7F})),
			wsec(secImport, wvec(slices.Concat(wname(tickModule), wname(tickName), []byte{0x00, 0})))),
		"unknown opcode (exceptions: throw)": wmodule(
			wsec(secType, wvec([]byte{0x60, 0, 0})),
			wsec(secFunction, wvec([]byte{0})),
			wsec(secCode, wvec(wfunc([]byte{0}, 0x08, 0, 0x0B)))),
		"section out of order": wmodule(
			wsec(secFunction, wvec()),
			wsec(secType, wvec())),
	} {
		if _, _, err := instrument(bin); !errors.Is(err, errInstrument) {
			t.Errorf("%s: %v, want errInstrument", name, err)
		}
	}
}

// Every module the tests and examples load survives instrumentation:
// wazero accepts the result, and its exports are the same.
func TestInstrumentModules(t *testing.T) {
	t.Parallel()
	paths, _ := filepath.Glob("testdata/*.wasm")
	var examples []string // Go examples: TestInstrumentedExampleAgrees
	for _, name := range []string{"header-c", "validate-c"} {
		t.Run(name, func(t *testing.T) { examples = append(examples, examplePlugin(t, name)) })
	}
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(testCacheDir)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	defer cache.Close(ctx)
	defer rt.Close(ctx)
	for _, path := range append(paths, examples...) {
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		orig, err := rt.CompileModule(ctx, bin)
		if err != nil {
			t.Fatal(path, err)
		}
		out, loops, err := instrument(bin)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		code, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Errorf("%s: instrumented module: %v", path, err)
			continue
		}
		if want, got := exportNames(orig), exportNames(code); !slices.Equal(want, got) {
			t.Errorf("%s: exports %v, want %v", path, got, want)
		}
		if n := len(code.ImportedFunctions()); n != len(orig.ImportedFunctions())+1 {
			t.Errorf("%s: %d imports, want one more than %d", path, n, len(orig.ImportedFunctions()))
		}
		t.Logf("%s: %d loops", path, loops)
	}
}

func exportNames(m wazero.CompiledModule) []string {
	var names []string
	for name, f := range m.ExportedFunctions() {
		names = append(names, name+"="+f.Name())
	}
	slices.Sort(names)
	return names
}

// Instrumented or not, the plugins give the same verdicts (TestProcess
// runs every fixture case in each mode); this checks a Go example, whose
// module uses call_indirect, element segments and names. Not parallel: it
// compiles the module (seconds, a minute with -race) into the tests'
// cache before the parallel tests that use it start.
func TestInstrumentedExampleAgrees(t *testing.T) {
	rs := jsonRecords(50)
	var want []Verdict
	for _, instrumented := range []bool{false, true} {
		b := setup(t)
		if !instrumented {
			b.rt.instrument = func([]byte) ([]byte, int, error) { return nil, 0, errInstrument }
		}
		p := b.load(t, b.exampleConfig(t, "enrich", 0))
		if p.instrumented != instrumented {
			t.Fatalf("instrumented %v, want %v", p.instrumented, instrumented)
		}
		got := process(t, p, rs)
		if want == nil {
			want = got
			continue
		}
		for i := range got {
			if got[i].Action != want[i].Action || len(got[i].Outputs) != len(want[i].Outputs) {
				t.Fatalf("record %d: %+v, uninstrumented %+v", i, got[i], want[i])
			}
		}
	}
}

func FuzzInstrument(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.wasm")
	for _, p := range paths {
		bin, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bin)
	}
	f.Add(shiftModule())
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, _, err := instrument(bin)
		if err != nil {
			if !errors.Is(err, errInstrument) {
				t.Fatalf("error %v is not errInstrument", err)
			}
			return
		}
		code, err := rt.CompileModule(ctx, bin)
		if err != nil {
			return // not a valid module: nothing to compare
		}
		code.Close(ctx)
		code, err = rt.CompileModule(ctx, out)
		if err != nil {
			if strings.Contains(err.Error(), "too many") { // limits a larger module can hit
				return
			}
			t.Fatalf("the module compiles, the instrumented one does not: %v", err)
		}
		code.Close(ctx)
	})
}
