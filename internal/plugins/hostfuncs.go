package plugins

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/rs/zerolog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// This file implements the evp_v1 import module (docs/plugin-abi.md §4).
// Each plugin version has its own wazero runtime, so the functions are
// closures over that version's *Plugin (its logger, tables and counters).
// None of them traps: bad pointers and lengths give the documented codes.
// They use api.GoModuleFunc, wazero's fastest host call (no reflection):
// parameters and results travel in stack.

// Results of lookup (§4).
const (
	lookupNoKey   = -1
	lookupNoTable = -2
	lookupBadMem  = -3
)

const (
	maxLogMessage  = 4096
	invalidLogText = "<invalid log message>"
)

// instantiateHost instantiates the evp_v1 module in p's runtime.
func (p *Plugin) instantiateHost(ctx context.Context) error {
	b := p.rt.NewHostModuleBuilder(hostModule)
	def := func(name string, fn api.GoModuleFunc) {
		s := hostFuncs[name]
		b.NewFunctionBuilder().WithGoModuleFunction(fn, s.params, s.results).Export(name)
	}
	def(fnLog, p.hostLog)
	def(fnNowMS, hostNowMS)
	def(fnMetricAdd, p.hostMetricAdd)
	def(fnLookup, p.hostLookup)
	_, err := b.Instantiate(ctx)
	return err
}

// instantiateTick instantiates the evp_internal module of instrumented
// plugins (instrument.go).
func (p *Plugin) instantiateTick(ctx context.Context) error {
	_, err := p.rt.NewHostModuleBuilder(tickModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(tick), nil, []api.ValueType{i32}).Export(tickName).
		Instantiate(ctx)
	return err
}

// read returns the view [ptr, ptr+n) of mod's memory, or false if n is
// negative or the range is out of bounds.
func read(mod api.Module, ptr uint32, n int32) ([]byte, bool) {
	if n < 0 {
		return nil, false
	}
	mem := mod.Memory()
	if mem == nil {
		return nil, false
	}
	return mem.Read(ptr, uint32(n))
}

// initLog collects what the guest logs during evp_init, to explain a
// refusal (callState.initLog).
type initLog struct{ last string }

// hostLog is log(level: i32, ptr: i32, len: i32).
func (p *Plugin) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := int32(stack[0]), uint32(stack[1]), int32(stack[2])
	var lvl zerolog.Level
	switch level {
	case 0:
		lvl = zerolog.DebugLevel
	case 2:
		lvl = zerolog.WarnLevel
	case 3:
		lvl = zerolog.ErrorLevel
	default:
		lvl = zerolog.InfoLevel
	}
	msg, ok := read(mod, ptr, n)
	if !ok {
		msg = []byte(invalidLogText)
	}
	if len(msg) > maxLogMessage {
		msg = msg[:maxLogMessage]
	}
	c := stateOf(ctx)
	if c != nil && c.initLog != nil {
		c.initLog.last = string(msg)
	}
	if c != nil && c.warmup {
		// A warm-up call (synthetic records): what the plugin says about
		// them is not news.
		if e := p.log.Debug(); e != nil {
			e.Bool("warmup", true).Str("plugin_level", lvl.String()).Msg(string(msg))
		}
		return
	}
	if e := p.log.WithLevel(lvl); e != nil { // nil when the level is off: no copy
		e.Msg(string(msg))
	}
}

// hostNowMS is now_ms() -> i64.
func hostNowMS(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = uint64(time.Now().UnixMilli())
}

// hostMetricAdd is metric_add(name_ptr: i32, name_len: i32, delta: i64).
func (p *Plugin) hostMetricAdd(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n, delta := uint32(stack[0]), int32(stack[1]), int64(stack[2])
	if delta < 0 {
		return
	}
	if c := stateOf(ctx); c != nil && c.warmup {
		return // synthetic records do not count
	}
	name, ok := read(mod, ptr, n)
	if !ok || !validMetricName(name) {
		return
	}
	p.metrics.customAdd(name, delta, &p.log)
}

// hostLookup is lookup(table_ptr, table_len, key_ptr, key_len, out_ptr,
// out_cap: i32) -> i32. All three ranges are checked before anything else.
func (p *Plugin) hostLookup(_ context.Context, mod api.Module, stack []uint64) {
	tptr, tlen := uint32(stack[0]), int32(stack[1])
	kptr, klen := uint32(stack[2]), int32(stack[3])
	optr, ocap := uint32(stack[4]), int32(stack[5])
	result := func(r int32) { stack[0] = uint64(uint32(r)) }

	table, ok1 := read(mod, tptr, tlen)
	key, ok2 := read(mod, kptr, klen)
	out, ok3 := read(mod, optr, ocap)
	if !ok1 || !ok2 || !ok3 {
		result(lookupBadMem)
		return
	}
	t, ok := p.tables[string(table)]
	if !ok {
		result(lookupNoTable)
		return
	}
	v, ok := t[string(key)]
	if !ok {
		result(lookupNoKey)
		return
	}
	if len(v) <= len(out) {
		copy(out, v)
	}
	result(int32(len(v))) // table values are < 2 GiB: checked at load
}

// hostModuleConfig is the module configuration of every instance: WASI
// with nothing behind it (no files, no preopened directories, no
// environment, no arguments; stdin is empty and stdout and stderr are
// discarded, which are wazero's defaults), real clocks and a real random
// source (wazero's defaults are fake and deterministic), sleeping returns
// at once, and _initialize is the start function (a reactor).
func hostModuleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module in one runtime
		WithStartFunctions(exportInitial).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
}
