// Package abicheck checks the example plugins' .wasm builds end to end
// under wazero, before and independently of evproxy's own plugin runtime:
// module shape (exports, imports and their signatures, per
// docs/plugin-abi.md §1 and §4), then the test vectors of each example run
// through a real instance with a minimal host that follows the spec, and a
// differential test of the Go and C builds of validate.
//
// Build the plugins first (make plugins); the tests skip plugins that are
// not built, unless CI is set.
package abicheck

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// host is the state behind the evp_v1 functions for one instance.
type host struct {
	mu      sync.Mutex
	now     *int64 // nil: the real clock
	tables  map[string]map[string]string
	logs    []logEntry
	metrics map[string]int64
}

type logEntry struct {
	level int32
	msg   string
}

func newHost() *host { return &host{metrics: map[string]int64{}} }

func (h *host) lastError() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.logs) - 1; i >= 0; i-- {
		if h.logs[i].level == 3 {
			return h.logs[i].msg
		}
	}
	return "(nothing logged)"
}

type hostKey struct{}

func hostOf(ctx context.Context) *host { return ctx.Value(hostKey{}).(*host) }

var metricName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)

// runtime is a wazero runtime with WASI and the evp_v1 module, as
// docs/plugin-abi.md §4 specifies them.
type runtime struct {
	r    wazero.Runtime
	mu   sync.Mutex
	n    int
	mods map[string]wazero.CompiledModule
}

func newRuntime(ctx context.Context) (*runtime, error) {
	r := wazero.NewRuntime(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	_, err := r.NewHostModuleBuilder("evp_v1").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, level, ptr, n uint32) {
		msg, ok := m.Memory().Read(ptr, n)
		text := string(msg)
		if !ok {
			text = "<invalid log message>"
		}
		if len(text) > 4096 {
			text = text[:4096]
		}
		if int32(level) < 0 || level > 3 {
			level = 1
		}
		h := hostOf(ctx)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.logs = append(h.logs, logEntry{int32(level), text})
	}).Export("log").
		NewFunctionBuilder().WithFunc(func(ctx context.Context) int64 {
		if h := hostOf(ctx); h.now != nil {
			return *h.now
		}
		return time.Now().UnixMilli()
	}).Export("now_ms").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, ptr, n uint32, delta int64) {
		name, ok := m.Memory().Read(ptr, n)
		if !ok || delta < 0 || !metricName.Match(name) {
			return
		}
		h := hostOf(ctx)
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, seen := h.metrics[string(name)]; seen || len(h.metrics) < 100 {
			h.metrics[string(name)] += delta
		}
	}).Export("metric_add").
		NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, tp, tl, kp, kl, op, oc uint32) int32 {
		mem := m.Memory()
		table, ok1 := mem.Read(tp, tl)
		key, ok2 := mem.Read(kp, kl)
		if _, ok3 := mem.Read(op, oc); !ok1 || !ok2 || !ok3 {
			return -3
		}
		t, ok := hostOf(ctx).tables[string(table)]
		if !ok {
			return -2
		}
		v, ok := t[string(key)]
		if !ok {
			return -1
		}
		if uint32(len(v)) <= oc {
			mem.Write(op, []byte(v))
		}
		return int32(len(v))
	}).Export("lookup").
		Instantiate(ctx)
	if err != nil {
		return nil, err
	}
	return &runtime{r: r, mods: map[string]wazero.CompiledModule{}}, nil
}

// compile compiles path once.
func (rt *runtime) compile(ctx context.Context, path string, wasm []byte) (wazero.CompiledModule, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if m, ok := rt.mods[path]; ok {
		return m, nil
	}
	m, err := rt.r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, err
	}
	rt.mods[path] = m
	return m, nil
}

// instance is one plugin instance and its host state.
type instance struct {
	ctx                    context.Context
	mod                    api.Module
	h                      *host
	alloc, initFn, process api.Function
}

// instantiate runs _initialize (as a reactor) with h behind evp_v1.
func (rt *runtime) instantiate(ctx context.Context, m wazero.CompiledModule, h *host) (*instance, error) {
	rt.mu.Lock()
	rt.n++
	name := fmt.Sprintf("plugin-%d", rt.n)
	rt.mu.Unlock()
	ctx = context.WithValue(ctx, hostKey{}, h)
	cfg := wazero.NewModuleConfig().WithName(name).WithStartFunctions("_initialize").
		WithRandSource(rand.Reader).WithSysWalltime().WithSysNanotime()
	mod, err := rt.r.InstantiateModule(ctx, m, cfg)
	if err != nil {
		return nil, err
	}
	return &instance{ctx: ctx, mod: mod, h: h,
		alloc: mod.ExportedFunction("evp_alloc"), initFn: mod.ExportedFunction("evp_init"),
		process: mod.ExportedFunction("evp_process")}, nil
}

func (in *instance) close() { in.mod.Close(in.ctx) }

// write asks evp_alloc for a buffer and writes b there.
func (in *instance) write(b []byte) (ptr uint32, err error) {
	res, err := in.alloc.Call(in.ctx, uint64(len(b)))
	if err != nil {
		return 0, err
	}
	ptr = uint32(res[0])
	if ptr == 0 {
		return 0, fmt.Errorf("evp_alloc(%d) returned 0", len(b))
	}
	if !in.mod.Memory().Write(ptr, b) {
		return 0, fmt.Errorf("evp_alloc(%d) returned %#x: out of memory bounds", len(b), ptr)
	}
	return ptr, nil
}

// init calls evp_init with config; its result is 0 when the plugin is ready.
func (in *instance) init(config []byte) (int32, error) {
	ptr, err := in.write(config)
	if err != nil {
		return 0, err
	}
	res, err := in.initFn.Call(in.ctx, uint64(ptr), uint64(len(config)))
	if err != nil {
		return 0, err
	}
	return int32(res[0]), nil
}

// call processes one encoded batch and returns a copy of the output
// buffer, or the negative result.
func (in *instance) call(batch []byte) (out []byte, result int64, err error) {
	ptr, err := in.write(batch)
	if err != nil {
		return nil, 0, err
	}
	res, err := in.process.Call(in.ctx, uint64(ptr), uint64(len(batch)))
	if err != nil {
		return nil, 0, err
	}
	result = int64(res[0])
	if result < 0 {
		return nil, result, nil
	}
	optr, olen := uint32(uint64(result)>>32), uint32(result)
	view, ok := in.mod.Memory().Read(optr, olen)
	if !ok {
		return nil, result, fmt.Errorf("evp_process returned %d bytes at %#x: out of memory bounds", olen, optr)
	}
	return append([]byte(nil), view...), result, nil
}

var le = binary.LittleEndian
