package plugins

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// Set holds the loaded plugins by name and replaces them without a
// restart. Get is lock-free; Reload and Close are serialized.
type Set struct {
	r *Runtime

	// cur is the current name → entry map. It is never modified: Reload
	// and Close store a new one, so one Store swaps every plugin of a
	// Reload at once.
	cur atomic.Pointer[map[string]*entry]

	mu     sync.Mutex        // serializes Reload and Close; guards cfgs and closed
	cfgs   map[string]Config // the configuration of each current plugin, for Watch
	closed bool

	retiring sync.WaitGroup // one per replaced entry until its plugin is closed
	closing  chan struct{}  // closed when Close starts
	drained  chan struct{}  // closed when every retired plugin is closed, after Close

	changed chan struct{} // Reload tells Watch to look at the file list again (cap 1)
	hooks   watchHooks    // tests only
}

// entry is one plugin version in the Set. refs is 1 while the version is
// current (dropped when it is replaced or the Set closes) plus one per Get
// not yet released; the version is closed when it reaches 0.
type entry struct {
	p         *Plugin
	refs      refCount
	releaseFn func() // e.release, allocated once rather than per Get
	drained   chan struct{}
}

func newEntry(p *Plugin) *entry {
	e := &entry{p: p, drained: make(chan struct{})}
	e.refs.init()
	e.releaseFn = e.release
	return e
}

func (e *entry) release() {
	if e.refs.release() {
		close(e.drained)
	}
}

func noRelease() {}

// NewSet loads cfgs (see Reload) into a new Set.
func NewSet(r *Runtime, cfgs []Config) (*Set, error) {
	s := &Set{
		r:       r,
		cfgs:    map[string]Config{},
		closing: make(chan struct{}),
		drained: make(chan struct{}),
		changed: make(chan struct{}, 1),
	}
	empty := map[string]*entry{}
	s.cur.Store(&empty)
	if err := s.Reload(context.Background(), cfgs); err != nil {
		return nil, err
	}
	return s, nil
}

// Get returns the current version of the named plugin and a function that
// must be called exactly once when the caller is done with it (typically
// after Process returns): until then a Reload or Close does not close that
// version. The plugin is nil if the name is unknown (the release function
// is then a no-op, still safe to call).
func (s *Set) Get(name string) (*Plugin, func()) {
	for {
		e := (*s.cur.Load())[name]
		if e == nil {
			return nil, noRelease
		}
		if e.refs.tryAcquire() {
			return e.p, e.releaseFn
		}
		// e was replaced and drained between the Load and tryAcquire; cur
		// already holds what replaced it.
	}
}

// Reload loads every configuration in cfgs as a new version (each under its
// Name; plugins of the Set not in cfgs are left as they are) and then, only
// if all loaded, swaps them in at once. If any fails, nothing changes: the
// new versions are closed, the current ones keep running, and the error
// says what failed. A replaced version is closed in the background once
// every Get of it has been released, so its in-flight calls finish on it.
func (s *Set) Reload(ctx context.Context, cfgs []Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	seen := make(map[string]bool, len(cfgs))
	for _, cfg := range cfgs {
		if cfg.Name == "" {
			return errors.New("plugins: a plugin needs a name")
		}
		if seen[cfg.Name] {
			return fmt.Errorf("plugin %q: configured twice", cfg.Name)
		}
		seen[cfg.Name] = true
	}
	var (
		loaded []*Plugin
		errs   []error
	)
	for _, cfg := range cfgs {
		p, err := s.r.Load(ctx, cfg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		loaded = append(loaded, p)
	}
	if len(errs) > 0 {
		for _, p := range loaded {
			_ = p.Close(context.Background()) // nothing is in flight on it
		}
		return errors.Join(errs...)
	}

	old := *s.cur.Load()
	next := maps.Clone(old)
	for i, p := range loaded {
		next[p.name] = newEntry(p)
		s.cfgs[p.name] = cfgs[i]
	}
	s.cur.Store(&next)
	for i, p := range loaded {
		if e := old[p.name]; e != nil {
			s.retire(e)
			cfgs[i].Logger.Info().Str("plugin", p.name).Str("path", cfgs[i].Path).Msg("plugin reloaded")
		}
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// retire drops the Set's reference to a replaced entry and closes its
// plugin once the last Get of it is released. Called with s.mu held.
func (s *Set) retire(e *entry) {
	s.retiring.Add(1)
	go func() {
		defer s.retiring.Done()
		<-e.drained
		_ = e.p.Close(context.Background()) // no call in flight: returns at once
	}()
	e.release()
}

// config returns the configuration of the named current plugin.
func (s *Set) config(name string) (Config, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, ok := s.cfgs[name]
	return cfg, ok
}

// Close removes every plugin from the Set (Get then returns nil) and
// closes them once their in-flight calls are released. If ctx ends first,
// Close returns its error and the plugins are closed when those calls
// finish. It is safe to call more than once. Close the Runtime after.
func (s *Set) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
		old := *s.cur.Load()
		empty := map[string]*entry{}
		s.cur.Store(&empty)
		for _, e := range old {
			s.retire(e)
		}
		go func() { // ends when the last retired plugin is closed
			s.retiring.Wait()
			close(s.drained)
		}()
	}
	s.mu.Unlock()
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
