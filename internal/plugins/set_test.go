package plugins

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// install copies a fixture to path atomically (write, then rename), as a
// deployment would.
func install(t testing.TB, fixtureName, path string) {
	t.Helper()
	b, err := os.ReadFile(fixture(fixtureName))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b)
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// versionOf tells which fixture produced a call's verdicts: "keep" (all
// KEEP) or "addheader" (all REPLACE with the via header). Anything else,
// including a mix, is "".
func versionOf(vs []Verdict, n int) string {
	if len(vs) != n {
		return ""
	}
	kind := ""
	for _, v := range vs {
		k := ""
		switch {
		case reflect.DeepEqual(v, keep):
			k = "keep"
		case v.Action == Replace && len(v.Outputs) == 1 && v.Outputs[0].HeadersSet &&
			len(v.Outputs[0].Headers) == 1 && v.Outputs[0].Headers[0].Key == "via":
			k = "addheader"
		}
		if k == "" || (kind != "" && k != kind) {
			return ""
		}
		kind = k
	}
	return kind
}

// Processing from several goroutines while the plugin file is replaced and
// reloaded, first by Reload, then by Watch: every call returns exactly one
// verdict per record from either the old or the new version, none fails
// and none is lost; replaced versions are closed once drained.
func TestHotReload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "p.wasm")
	install(t, "keep", path)
	cfg := b.config("keep")
	cfg.Name = "p"
	cfg.Path = path
	s, err := NewSet(b.rt, []Config{cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if p, _ := s.Get("nope"); p != nil {
		t.Fatal("Get of an unknown name returned a plugin")
	}

	records := recs("a", "b", "c")
	const workers = 4
	var (
		started, finished atomic.Int64
		wg                sync.WaitGroup
		stop              = make(chan struct{})
		mu                sync.Mutex
		seen              = map[string]int{} // version -> calls
		waiting           []func(map[string]int) bool
		wake              = make(chan struct{}, 1)
	)
	// waitFor blocks until cond holds for the calls seen so far (the
	// workers wake it after each call: no sleeping).
	waitFor := func(cond func(map[string]int) bool) {
		for {
			mu.Lock()
			ok := cond(seen)
			if !ok {
				waiting = append(waiting, cond)
			}
			mu.Unlock()
			if ok {
				return
			}
			select {
			case <-wake:
			case <-time.After(30 * time.Second):
				t.Fatal("timed out waiting for calls")
			}
		}
	}
	oldPlugin, release := s.Get("p")
	release()
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				started.Add(1)
				p, release := s.Get("p")
				vs, err := p.Process(context.Background(), "e", records)
				release()
				finished.Add(1)
				if err != nil {
					t.Error(err)
					return
				}
				v := versionOf(vs, len(records))
				if v == "" {
					t.Errorf("verdicts from no single version: %+v", vs)
					return
				}
				mu.Lock()
				seen[v]++
				if len(waiting) > 0 {
					waiting = nil
					select {
					case wake <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
			}
		})
	}

	waitFor(func(m map[string]int) bool { return m["keep"] >= 50 })
	install(t, "addheader", path)
	if err := s.Reload(context.Background(), []Config{cfg}); err != nil {
		t.Fatal(err)
	}
	waitFor(func(m map[string]int) bool { return m["addheader"] >= 50 })
	select {
	case <-oldPlugin.done: // the replaced version was closed once drained
	case <-time.After(30 * time.Second):
		t.Fatal("the replaced version was never closed")
	}

	// A reload that fails keeps the running version.
	writeFile(t, path, []byte("not wasm"))
	if err := s.Reload(context.Background(), []Config{cfg}); err == nil {
		t.Fatal("Reload of garbage succeeded")
	}
	mu.Lock()
	before := seen["addheader"]
	mu.Unlock()
	waitFor(func(m map[string]int) bool { return m["addheader"] >= before+50 })

	// Watch: the file changes, the plugin reloads by itself.
	reloaded := make(chan error, 10)
	watching := make(chan struct{})
	s.hooks = watchHooks{
		watching: func() { close(watching) },
		reloaded: func(name string, err error) { reloaded <- err },
	}
	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- s.Watch(ctx) }()
	<-watching
	mu.Lock()
	keepsBefore := seen["keep"]
	mu.Unlock()
	install(t, "keep", path)
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not reload")
	}
	waitFor(func(m map[string]int) bool { return m["keep"] >= keepsBefore+50 })

	close(stop)
	wg.Wait()
	cancel()
	if err := <-watchDone; err != nil {
		t.Fatal("Watch:", err)
	}
	if started.Load() != finished.Load() {
		t.Fatalf("%d calls started, %d finished", started.Load(), finished.Load())
	}
	t.Logf("calls: %v", seen)
}

// A table file change reloads the plugin that uses it.
func TestWatchTables(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := t.TempDir()
	geo := filepath.Join(dir, "geo.json")
	writeFile(t, geo, []byte(`{"fr":"Paris"}`))
	cfg := b.config("hostfuncs")
	cfg.Tables = map[string]string{"geo": geo}
	s, err := NewSet(b.rt, []Config{cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	lookup := func() string {
		p, release := s.Get("hostfuncs")
		defer release()
		r := rec("")
		r.Key = []byte("fr")
		vs := process(t, p, []Record{r})
		if vs[0].Action != Replace {
			t.Fatalf("%+v", vs[0])
		}
		return string(vs[0].Outputs[0].Value)
	}
	if got := lookup(); got != "Paris" {
		t.Fatalf("lookup: %q", got)
	}

	reloaded := make(chan error, 10)
	watching := make(chan struct{})
	s.hooks = watchHooks{
		watching: func() { close(watching) },
		reloaded: func(name string, err error) { reloaded <- err },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Watch(ctx)
	<-watching

	// Written in place, in two steps: the debounce loads it once, complete.
	f, err := os.OpenFile(geo, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"fr":`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`"Lyon"}`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not reload")
	}
	if got := lookup(); got != "Lyon" {
		t.Fatalf("lookup after the table changed: %q", got)
	}
}

func TestSetReloadAndClose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, k := b.config("addheader"), b.config("keep")
	s, err := NewSet(b.rt, []Config{a})
	if err != nil {
		t.Fatal(err)
	}

	// A Reload is all or nothing.
	bad := Config{Name: "bad", Path: fixture("nomarker")}
	if err := s.Reload(context.Background(), []Config{k, bad}); err == nil {
		t.Fatal("Reload with a bad plugin succeeded")
	}
	if p, _ := s.Get("keep"); p != nil {
		t.Fatal("a failed Reload added a plugin")
	}
	if err := s.Reload(context.Background(), []Config{k, k}); err == nil {
		t.Fatal("Reload with a name twice succeeded")
	}
	// Plugins not named in a Reload stay.
	if err := s.Reload(context.Background(), []Config{k}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"addheader", "keep"} {
		p, release := s.Get(name)
		if p == nil {
			t.Fatalf("%s missing", name)
		}
		release()
	}
	if n := testutil.ToFloat64(b.metrics.instances.WithLabelValues("bad")); n != 0 {
		t.Fatalf("%v instances of a plugin that failed to load", n)
	}

	// Close waits for a held reference.
	held, release := s.Get("keep")
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	if _, err := held.Process(context.Background(), "e", recs("a")); err != nil {
		t.Fatal("Process on a held plugin during Close:", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Get("keep"); p != nil {
		t.Fatal("Get after Close returned a plugin")
	}
	if _, err := held.Process(context.Background(), "e", recs("a")); !errors.Is(err, ErrClosed) {
		t.Fatal("Process after Set.Close:", err)
	}
	if err := s.Reload(context.Background(), []Config{k}); !errors.Is(err, ErrClosed) {
		t.Fatal("Reload after Close:", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal("second Close:", err)
	}
}
