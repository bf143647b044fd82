package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// The fixtures in testdata are WAT sources with their compiled .wasm next
// to them (go generate rebuilds them with wabt's wat2wasm); each .wat
// starts with a comment saying what the plugin does.

func fixture(name string) string { return filepath.Join("testdata", name+".wasm") }

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testBundle is what most tests need: a runtime, metrics and a log.
type testBundle struct {
	rt      *Runtime
	metrics *Metrics
	log     *logBuffer
}

// testCacheDir is a compilation cache shared by the tests' runtimes, so
// that each example plugin is compiled once per mode (they take seconds).
var testCacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plugins-test-cache-")
	if err != nil {
		panic(err)
	}
	testCacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	rt, err := NewRuntime(context.Background(), RuntimeConfig{CacheDir: testCacheDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return &testBundle{rt: rt, metrics: NewMetrics(prometheus.NewRegistry()), log: &logBuffer{}}
}

// config returns a Config for a fixture, with the bundle's logger and
// metrics.
func (b *testBundle) config(name string) Config {
	return Config{
		Name:     name,
		Path:     fixture(name),
		PoolSize: 2,
		Logger:   zerolog.New(b.log).Level(zerolog.DebugLevel),
		Metrics:  b.metrics,
	}
}

// configOne is config(name) with a pool of one instance and the per-call
// timeout (0: none).
func (b *testBundle) configOne(name string, timeout time.Duration) Config {
	cfg := b.config(name)
	cfg.PoolSize = 1
	cfg.Timeout = timeout
	return cfg
}

// open loads cfg, failing the test if it cannot; the test closes the
// plugin.
func (b *testBundle) open(t testing.TB, cfg Config) *Plugin {
	t.Helper()
	p, err := b.rt.Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// load is open, with the plugin closed when the test ends.
func (b *testBundle) load(t testing.TB, cfg Config) *Plugin {
	t.Helper()
	p := b.open(t, cfg)
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p
}

func (b *testBundle) errorCount(plugin, kind string) int {
	return int(testutil.ToFloat64(b.metrics.errors.WithLabelValues(plugin, kind)))
}

// checkErrors fails the test unless plugin's errors_total of each kind in
// want is the count given.
func (b *testBundle) checkErrors(t testing.TB, plugin string, want map[string]int) {
	t.Helper()
	for kind, n := range want {
		if got := b.errorCount(plugin, kind); got != n {
			t.Errorf("errors_total{kind=%q} = %d, want %d", kind, got, n)
		}
	}
}

func rec(value string) Record {
	return Record{Topic: "orders", Partition: 1, Timestamp: 1700000000000, Key: []byte("k"), Value: []byte(value)}
}

func recs(values ...string) []Record {
	rs := make([]Record, len(values))
	for i, v := range values {
		rs[i] = rec(v)
	}
	return rs
}

var (
	keep = Verdict{Action: Keep}
	drop = Verdict{Action: Drop}
)

func hostReject(reason string) Verdict { return Verdict{Action: Reject, Reason: reason} }

func process(t testing.TB, p *Plugin, rs []Record) []Verdict {
	t.Helper()
	vs, err := p.Process(context.Background(), "order.created", rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(rs) {
		t.Fatalf("%d verdicts for %d records", len(vs), len(rs))
	}
	return vs
}

func TestProcess(t *testing.T) {
	t.Parallel()
	rejected := Verdict{Action: Reject, Code: 42, Reason: "value says reject"}
	tests := []processCase{
		{name: "keep all", plugin: "keep", records: recs("a", "b", "c"), want: []Verdict{keep, keep, keep}},
		{name: "keep one", plugin: "keep", records: recs("a"), want: []Verdict{keep}},
		{name: "drop and reject by value", plugin: "behave",
			records: append(recs("fine", "drop me", "reject me"), Record{Topic: "t", Value: nil}),
			want:    []Verdict{keep, drop, rejected, keep}},
		{name: "trap isolated by bisection", plugin: "behave",
			records: recs("a", "drop", "poison", "reject", "b", "c", "d", "e"),
			want:    []Verdict{keep, drop, hostReject(ReasonTrap), rejected, keep, keep, keep, keep},
			errors:  map[string]int{kindTrap: 4}}, // 8, 4, 2 and 1 records
		{name: "two traps", plugin: "behave",
			records: recs("poison", "a", "b", "poison", "c"),
			want:    []Verdict{hostReject(ReasonTrap), keep, keep, hostReject(ReasonTrap), keep}},
		{name: "every record traps", plugin: "behave",
			records: recs("poison", "poison", "poison"),
			want:    []Verdict{hostReject(ReasonTrap), hostReject(ReasonTrap), hostReject(ReasonTrap)}},
		{name: "out of bounds access", plugin: "behave",
			records: recs("a", "oob", "reject"),
			want:    []Verdict{keep, hostReject(ReasonTrap), rejected}},
		{name: "negative evp_process result", plugin: "behave",
			records: recs("a", "fail", "b"),
			want:    []Verdict{keep, hostReject(ReasonTrap), keep}},
		{name: "memory blow-up", plugin: "behave",
			cfg:     func(c *Config) { c.MemoryLimit = 1 << 20 },
			records: recs("a", "grow", "drop"),
			want:    []Verdict{keep, hostReject(ReasonTrap), drop}},
		{name: "batch larger than the memory limit", plugin: "behave",
			cfg:     func(c *Config) { c.MemoryLimit = 256 << 10 }, // input at 64 KiB + 3n must fit
			records: []Record{rec(strings.Repeat("x", 25000)), rec(strings.Repeat("y", 25000)), rec(strings.Repeat("z", 25000)), rec("drop")},
			want:    []Verdict{keep, keep, keep, drop}},
		{name: "record larger than the memory limit", plugin: "behave",
			cfg:     func(c *Config) { c.MemoryLimit = 256 << 10 },
			records: []Record{rec(strings.Repeat("x", 100000)), rec("drop")},
			want:    []Verdict{hostReject(ReasonTrap), drop}},
		{name: "timeout", plugin: "behave",
			cfg:     func(c *Config) { c.Timeout = 50 * time.Millisecond },
			records: recs("a", "loop", "reject", "b"),
			want:    []Verdict{keep, hostReject(ReasonTimeout), rejected, keep},
			errors:  map[string]int{kindTimeout: 3}}, // 4, 2 and 1 records
		{name: "timeout configured, nothing loops", plugin: "behave",
			cfg:     func(c *Config) { c.Timeout = time.Second },
			records: recs("a", "poison", "drop"),
			want:    []Verdict{keep, hostReject(ReasonTrap), drop}},
		{name: "malformed: wrong count", plugin: "malformed",
			records: recs("a", "b", "bad", "c"),
			want:    []Verdict{keep, keep, hostReject(ReasonMalformed), keep},
			errors:  map[string]int{kindMalformed: 3}},
		{name: "malformed: unknown action", plugin: "malformed",
			records: recs("weird", "a"),
			want:    []Verdict{hostReject(ReasonMalformed), keep}},
	}
	// Each case runs as configured (instrumented: instrument.go), with a
	// timeout if it has none, with the timeout enforced by wazero's
	// termination checks instead (the fallback when a module cannot be
	// instrumented), and without instrumentation nor timeout: the verdicts
	// and errors are the same.
	modes := []string{"as configured", "instrumented timeout", "wazero timeout", "not instrumented"}
	for _, tt := range tests {
		for _, mode := range modes {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				tt.run(t, mode)
			})
		}
	}
}

// processCase is one case of TestProcess.
type processCase struct {
	name    string
	plugin  string
	cfg     func(*Config)
	records []Record
	want    []Verdict
	errors  map[string]int // evproxy_plugin_errors_total by kind
}

func (tt processCase) run(t *testing.T, mode string) {
	b := setup(t)
	cfg := b.config(tt.plugin)
	if tt.cfg != nil {
		tt.cfg(&cfg)
	}
	switch mode {
	case "instrumented timeout", "wazero timeout":
		if cfg.Timeout == 0 {
			cfg.Timeout = time.Minute
		}
	case "not instrumented":
		if cfg.Timeout > 0 {
			t.Skip("the same as wazero timeout")
		}
	}
	instrumented := mode == "as configured" || mode == "instrumented timeout"
	if !instrumented {
		b.rt.instrument = func([]byte) ([]byte, int, error) { return nil, 0, errInstrument }
	}
	p := b.load(t, cfg)
	if p.instrumented != instrumented {
		t.Fatalf("instrumented: %v", p.instrumented)
	}
	got := process(t, p, tt.records)
	if !reflect.DeepEqual(got, tt.want) {
		t.Fatalf("verdicts\n%+v\nwant\n%+v\nlog:\n%s", got, tt.want, b.log)
	}
	b.checkErrors(t, tt.plugin, tt.errors)
	// The plugin is fine afterwards, on every pool slot.
	for range 3 {
		if got := process(t, p, recs("ok", "drop")); !reflect.DeepEqual(got, []Verdict{keep, drop}) && tt.plugin == "behave" {
			t.Fatalf("after: %+v", got)
		}
	}
	if got := testutil.ToFloat64(b.metrics.records.WithLabelValues(tt.plugin)); int(got) != len(tt.records)+6 {
		t.Errorf("records_total = %v, want %d", got, len(tt.records)+6)
	}
}

func TestAddHeader(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.load(t, b.config("addheader"))
	in := []Record{
		{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "a", Value: []byte("1")}, {Key: "n", Value: nil}}},
		{Topic: "t", Key: nil, Value: nil},
	}
	got := process(t, p, in)
	via := Header{Key: "via", Value: []byte("evproxy")}
	want := []Verdict{
		{Action: Replace, Outputs: []Output{{HeadersSet: true, Headers: []Header{in[0].Headers[0], in[0].Headers[1], via}}}},
		{Action: Replace, Outputs: []Output{{HeadersSet: true, Headers: []Header{via}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("verdicts\n%+v\nwant\n%+v", got, want)
	}
	if n := testutil.ToFloat64(b.metrics.verdicts.WithLabelValues("addheader", "replace")); n != 2 {
		t.Errorf("verdicts_total{action=replace} = %v", n)
	}
}

func TestHostFunctions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := t.TempDir()
	geo := filepath.Join(dir, "geo.json")
	if err := os.WriteFile(geo, []byte(`{"fr":"Paris","it":"Roma","empty":""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := b.config("hostfuncs")
	cfg.Tables = map[string]string{"geo": geo}
	p := b.load(t, cfg)

	withKey := func(key, value string) Record { r := rec(value); r.Key = []byte(key); return r }
	replaced := func(v string) Verdict {
		return Verdict{Action: Replace, Outputs: []Output{{Value: []byte(v), ValueSet: true}}}
	}
	reject := func(code int32, reason string) Verdict { return Verdict{Action: Reject, Code: code, Reason: reason} }
	tests := []struct {
		name string
		rec  Record
		want Verdict
	}{
		{"lookup found", withKey("fr", ""), replaced("Paris")},
		{"lookup found, empty value", withKey("empty", ""), replaced("")},
		{"lookup missing key", withKey("de", ""), reject(lookupNoKey, "lookup")},
		{"lookup null key", Record{Value: []byte("x")}, reject(lookupBadMem, "lookup")},
		{"lookup missing table", withKey("fr", "notable"), reject(lookupNoTable, "notable")},
		{"lookup buffer too small", withKey("it", "small"), reject(4, "small")},
		{"lookup bad pointers", withKey("fr", "badptr"), reject(100*lookupBadMem+lookupBadMem, "badptr")},
		{"now_ms", withKey("fr", "now"), reject(1, "now")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := process(t, p, []Record{tt.rec}); !reflect.DeepEqual(got[0], tt.want) {
				t.Fatalf("verdict %+v, want %+v", got[0], tt.want)
			}
		})
	}
	t.Run("metric_add", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cfg := b.config("hostfuncs")
		cfg.PoolSize = 1
		p := b.load(t, cfg)
		process(t, p, []Record{withKey("x", "a"), withKey("x", "b"), withKey("x", "c")})
		if n := testutil.ToFloat64(b.metrics.custom.WithLabelValues("hostfuncs", "records")); n != 3 {
			t.Errorf("custom{name=records} = %v, want 3", n)
		}
		// "bad name" and the negative delta were ignored.
		if n := testutil.CollectAndCount(b.metrics.custom); n != 1 {
			t.Errorf("%d custom series, want 1", n)
		}
		// 120 new names: 99 fit beside "records", and one warning.
		process(t, p, []Record{withKey("x", "many"), withKey("x", "many")})
		if n := testutil.CollectAndCount(b.metrics.custom); n != maxCustomNames {
			t.Errorf("%d custom series, want %d", n, maxCustomNames)
		}
		if n := strings.Count(b.log.String(), "too many distinct counter names"); n != 1 {
			t.Errorf("%d warnings about the name limit, want 1", n)
		}
	})
	t.Run("log", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.load(t, b.config("hostfuncs"))
		process(t, p, []Record{withKey("fr", "badptr")})
		type line struct {
			Level, Plugin, Message string
			Warmup                 bool
		}
		var lines []line
		for _, l := range strings.Split(strings.TrimSpace(b.log.String()), "\n") {
			var ln line
			if err := json.Unmarshal([]byte(l), &ln); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			lines = append(lines, ln)
		}
		want := []line{
			{"info", "hostfuncs", "hostfuncs ready", false}, // evp_init, one per pool slot
			{"debug", "hostfuncs", "batch", true},           // its warm-up batch, at debug level
			{"info", "hostfuncs", "hostfuncs ready", false},
			{"debug", "hostfuncs", "batch", true},
			{"debug", "hostfuncs", "batch", false},
			{"warn", "hostfuncs", invalidLogText, false}, // pointer out of range
			{"warn", "hostfuncs", invalidLogText, false}, // negative length
		}
		if !reflect.DeepEqual(lines, want) {
			t.Fatalf("log\n%+v\nwant\n%+v", lines, want)
		}
	})
}

func TestWASISandbox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.load(t, b.config("wasi_open"))
	// Each byte of the code is a WASI errno: path_open("/etc/passwd"),
	// path_open("etc/passwd"), fd_prestat_get(3) (both on descriptor 3,
	// where a first preopened directory would be), fd_write(stdout).
	const (
		ebadf = 8
		eperm = 63 // wazero refuses absolute paths before looking at the descriptor
	)
	for range 2 { // and the instance is still fine
		got := process(t, p, recs("a"))
		if got[0].Action != Reject || got[0].Reason != "errno" {
			t.Fatalf("verdict %+v", got[0])
		}
		errnos := [4]uint8{uint8(got[0].Code), uint8(got[0].Code >> 8), uint8(got[0].Code >> 16), uint8(got[0].Code >> 24)}
		if errnos[0] != ebadf && errnos[0] != eperm || errnos[1] != ebadf || errnos[2] != ebadf || errnos[3] != 0 {
			t.Fatalf("errnos %v, want [%d or %d, %d, %d, 0]", errnos, ebadf, eperm, ebadf, ebadf)
		}
	}
	if n := b.errorCount("wasi_open", kindTrap); n != 0 {
		t.Fatalf("%d traps", n)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badTable := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badTable, []byte(`{"a": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.wasm")
	if err := os.WriteFile(garbage, []byte("\x00asm garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		want    string
		wantABI bool
	}{
		{name: "imports evp_v2", cfg: Config{Name: "x", Path: fixture("abi_v2_import")},
			want: `plugin "x": built for ABI evp_v2; this evproxy speaks evp_v1`, wantABI: true},
		{name: "exports evp_abi_v2", cfg: Config{Name: "x", Path: fixture("abi_v2_export")},
			want: `plugin "x": built for ABI evp_v2; this evproxy speaks evp_v1`, wantABI: true},
		{name: "no marker", cfg: Config{Name: "x", Path: fixture("nomarker")},
			want: `plugin "x": not an evproxy plugin (no evp_abi_v1 export)`, wantABI: true},
		{name: "foreign import", cfg: Config{Name: "x", Path: fixture("badimport")},
			want: `plugin "x": imports env.abort; plugins may import only from evp_v1 and wasi_snapshot_preview1`, wantABI: true},
		{name: "unknown host function", cfg: Config{Name: "x", Path: fixture("unknownhost")},
			want: `plugin "x": imports evp_v1.frobnicate, which evp_v1 does not define`, wantABI: true},
		{name: "host function type", cfg: Config{Name: "x", Path: fixture("badhostsig")},
			want: `plugin "x": imports evp_v1.now_ms as () -> (i32), want () -> (i64)`, wantABI: true},
		{name: "export type", cfg: Config{Name: "x", Path: fixture("badsig")},
			want: `plugin "x": export evp_process has type (i32, i32) -> (i32), want (i32, i32) -> (i64)`, wantABI: true},
		{name: "evp_init refuses", cfg: Config{Name: "x", Path: fixture("hostfuncs"), Config: []byte(`{"mode":"refuse"}`)},
			want: `plugin "x": evp_init refused to start (code 7): refusing: config says refuse`},
		{name: "not wasm", cfg: Config{Name: "x", Path: garbage}, want: `plugin "x": ` + garbage},
		{name: "missing file", cfg: Config{Name: "x", Path: filepath.Join(dir, "none.wasm")}, want: "no such file"},
		{name: "bad table", cfg: Config{Name: "x", Path: fixture("keep"), Tables: map[string]string{"t": badTable}},
			want: `plugin "x": table "t"`},
		{name: "missing table", cfg: Config{Name: "x", Path: fixture("keep"), Tables: map[string]string{"t": "/nonexistent.json"}},
			want: `plugin "x": table "t"`},
		{name: "config not JSON", cfg: Config{Name: "x", Path: fixture("keep"), Config: []byte("{")}, want: "config is not valid JSON"},
		{name: "no name", cfg: Config{Path: fixture("keep")}, want: "needs a name"},
		{name: "memory limit", cfg: Config{Name: "x", Path: fixture("keep"), MemoryLimit: 3 << 30}, want: "above 2 GiB"},
		{name: "memory limit below the module's minimum", cfg: Config{Name: "x", Path: fixture("keep"), MemoryLimit: 64 << 10},
			want: `plugin "x": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p, err := b.rt.Load(context.Background(), tt.cfg)
			if err == nil {
				_ = p.Close(context.Background())
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
			var abiErr *ABIError
			if errors.As(err, &abiErr) != tt.wantABI {
				t.Fatalf("ABIError: %v, want %v", !tt.wantABI, tt.wantABI)
			}
		})
	}
}

func TestProcessContextAndClose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.open(t, b.configOne("behave", time.Minute))

	// A cancelled context interrupts a running guest (a timeout is set).
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Process(ctx, "e", recs("loop"))
		errc <- err
	}()
	// No sleep: cancelling before or during the call must give the same.
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Process: %v, want context.Canceled", err)
	}
	// Still usable; the slot's instance was replaced.
	if got := process(t, p, recs("drop")); !reflect.DeepEqual(got[0], drop) {
		t.Fatalf("%+v", got)
	}

	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := p.Process(context.Background(), "e", recs("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Process after Close: %v", err)
	}
	if n := testutil.ToFloat64(b.metrics.instances.WithLabelValues("behave")); n != 0 {
		t.Fatalf("%v instances after Close", n)
	}
}

// Many goroutines on a small pool, with failures mixed in: every call gets
// the right verdicts (run with -race).
func TestProcessConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config("behave")
	cfg.PoolSize = 2
	p := b.load(t, cfg)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				values := []string{"a", "drop", "b", "c"}
				if (g+i)%3 == 0 {
					values[2] = "poison"
				}
				got, err := p.Process(context.Background(), "e", recs(values...))
				if err != nil {
					t.Error(err)
					return
				}
				want := []Verdict{keep, drop, keep, keep}
				if values[2] == "poison" {
					want[2] = hostReject(ReasonTrap)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("goroutine %d call %d: %+v", g, i, got)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := testutil.ToFloat64(b.metrics.instances.WithLabelValues("behave")); n > 2 {
		t.Fatalf("%v instances, pool size 2", n)
	}
}

func TestRuntimeClose(t *testing.T) {
	t.Parallel()
	rt, err := NewRuntime(context.Background(), RuntimeConfig{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := rt.Load(context.Background(), Config{Name: "a", Path: fixture("keep"), PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Same module again: served by the cache.
	p2, err := rt.Load(context.Background(), Config{Name: "b", Path: fixture("keep"), PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Plugin{p1, p2} {
		if _, err := p.Process(context.Background(), "e", recs("a")); !errors.Is(err, ErrClosed) {
			t.Fatalf("%s after Runtime.Close: %v", p.Name(), err)
		}
	}
	if _, err := rt.Load(context.Background(), Config{Name: "c", Path: fixture("keep")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal("second Close:", err)
	}
}

func ExamplePlugin_Process() {
	ctx := context.Background()
	rt, _ := NewRuntime(ctx, RuntimeConfig{})
	defer rt.Close(ctx)
	p, err := rt.Load(ctx, Config{Name: "behave", Path: "testdata/behave.wasm", Timeout: 100 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)
	vs, _ := p.Process(ctx, "order.created", []Record{
		{Topic: "orders", Value: []byte("fine")},
		{Topic: "orders", Value: []byte("please drop")},
		{Topic: "orders", Value: []byte("poison")},
		{Topic: "orders", Value: []byte("reject this")},
	})
	for _, v := range vs {
		fmt.Printf("%v code=%d reason=%q\n", v.Action, v.Code, v.Reason)
	}
	// Output:
	// keep code=0 reason=""
	// drop code=0 reason=""
	// reject code=0 reason="plugin_trap"
	// reject code=42 reason="value says reject"
}
