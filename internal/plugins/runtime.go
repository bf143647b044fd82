package plugins

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
)

// RuntimeConfig configures a Runtime.
type RuntimeConfig struct {
	// CacheDir is the directory where wazero keeps compiled plugins between
	// runs, so a restart does not compile them again. "" keeps compiled
	// code in memory only (it is still shared by all plugins and reloads).
	CacheDir string
}

// Runtime is what all plugins share: one wazero configuration (the
// optimizing compiler where wazero supports it, else its interpreter) and
// one compilation cache. Each loaded plugin version gets its own wazero
// runtime built from that configuration plus its memory limit and timeout
// setting; compiled code comes from the cache, so loading a module that
// was compiled before (a reload of an unchanged file, a restart with
// CacheDir) skips compilation.
//
// Close the Runtime after every Set using it (see the package
// documentation, "Shutdown").
type Runtime struct {
	base  wazero.RuntimeConfig
	cache wazero.CompilationCache
	// instrument is instrument (instrument.go); tests replace it.
	instrument func([]byte) ([]byte, int, error)

	mu      sync.Mutex
	closed  bool
	plugins map[*Plugin]struct{} // loaded and not yet finalized

	// refs is 1 (the Runtime itself, dropped by Close) plus one per plugin
	// until it is finalized. The cache is closed when it reaches 0: closing
	// it earlier would pull compiled code from under live instances.
	refs refCount
	done chan struct{} // closed when refs reached 0 and the cache is closed
}

// NewRuntime creates a Runtime. It fails only if cfg.CacheDir cannot be
// used.
func NewRuntime(ctx context.Context, cfg RuntimeConfig) (*Runtime, error) {
	var (
		cache wazero.CompilationCache
		err   error
	)
	if cfg.CacheDir != "" {
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("plugins: compilation cache %q: %w", cfg.CacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	r := &Runtime{
		base:       wazero.NewRuntimeConfig().WithCompilationCache(cache),
		cache:      cache,
		instrument: instrument,
		plugins:    map[*Plugin]struct{}{},
		done:       make(chan struct{}),
	}
	r.refs.init()
	return r, nil
}

// acquire takes a reference for a plugin being loaded.
func (r *Runtime) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.closed && r.refs.tryAcquire()
}

// register records a loaded plugin, so Close closes it. It fails if Close
// started while the plugin was loading.
func (r *Runtime) register(p *Plugin) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.plugins[p] = struct{}{}
	return true
}

// release drops the reference of a plugin that was finalized or failed to
// load.
func (r *Runtime) release(p *Plugin) {
	r.mu.Lock()
	delete(r.plugins, p)
	r.mu.Unlock()
	if r.refs.release() {
		r.finalize()
	}
}

func (r *Runtime) finalize() {
	_ = r.cache.Close(context.Background())
	close(r.done)
}

// Close closes every plugin loaded from r (waiting for their in-flight
// Process calls), then the compilation cache. Load fails once Close has
// started. If ctx ends first, Close returns its error and the remaining
// resources are freed as soon as the last in-flight call returns. It is
// safe to call more than once.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	ps := make([]*Plugin, 0, len(r.plugins))
	for p := range r.plugins {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	if first {
		for _, p := range ps {
			p.closeAsync()
		}
		if r.refs.release() {
			r.finalize()
		}
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refCount is a reference count that starts at 1, the owner's reference.
// Once it has dropped to 0 it can never be acquired again, so exactly one
// release reports the drop and the owner can free what it guards then.
type refCount struct{ n atomic.Int64 }

func (c *refCount) init() { c.n.Store(1) }

// tryAcquire takes a reference unless the count already dropped to 0.
func (c *refCount) tryAcquire() bool {
	for {
		n := c.n.Load()
		if n <= 0 {
			return false
		}
		if c.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference and reports whether it was the last.
func (c *refCount) release() bool {
	n := c.n.Add(-1)
	if n < 0 {
		panic("plugins: reference released twice")
	}
	return n == 0
}
