package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/plugins"
)

// Each sandbox fault costs one instance and dead-letters only its record;
// the others of the same batch keep their order, and evproxy keeps serving.
func TestSandboxFaultsDeadLettered(t *testing.T) {
	t.Parallel()
	pl := plugin("behave", fixture(t, "behave"), `{}`)
	pl.Timeout = time.Second
	pl.MemoryLimit = 4 << 20
	s := start(t, []pipeline.Route{route("faults", []string{"faults"}, pipeline.RejectDeadLetter, "behave")}, pl)
	if err := s.Upstream.CreateTopic("faults", 1, nil); err != nil {
		t.Fatal(err)
	}
	cl := producer(t, s.ProxyAddr, kgo.ProducerLinger(50*time.Millisecond))
	values := []string{"ok-1", "poison", "ok-2", "loop", "oob", "ok-3", "grow", "fail", "ok-4"}
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: "faults", Key: []byte(v), Value: []byte(v)})
	}
	if err := produceSync(t, cl, recs...); err != nil {
		t.Fatal(err)
	}
	good := consume(t, s.UpstreamAddr, "faults", 4)
	for i, r := range good {
		if want := fmt.Sprintf("ok-%d", i+1); string(r.Value) != want {
			t.Fatalf("record %d is %q, want %q (order of survivors)", i, r.Value, want)
		}
	}
	want := map[string][]string{
		"poison": {plugins.ReasonTrap},
		"loop":   {plugins.ReasonTimeout},
		"oob":    {plugins.ReasonTrap},
		// Memory growth hits the limit and traps, unless a slow machine
		// (race detector) reaches the time limit first: contained either way.
		"grow": {plugins.ReasonTrap, plugins.ReasonTimeout},
		"fail": {plugins.ReasonTrap, plugins.ReasonMalformed},
	}
	for _, r := range consume(t, s.UpstreamAddr, "faults.failed", len(want)) {
		reason, _ := header(r, "evproxy.error.reason")
		ok := false
		for _, w := range want[string(r.Value)] {
			ok = ok || reason == w
		}
		if !ok {
			t.Fatalf("dead letter %q: reason %q, want one of %v", r.Value, reason, want[string(r.Value)])
		}
	}
	// Still healthy.
	if err := produceSync(t, cl, &kgo.Record{Topic: "faults", Value: []byte("ok-5")}); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
}

// Replacing a plugin while producers run: every record arrives exactly
// once, in order, processed by the old or the new version, and per
// partition the switch happens once.
func TestHotReloadUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.wasm")
	copyFile(t, fixture(t, "keep"), path)
	cfg := plugin("p", path, `{}`)
	s := start(t, []pipeline.Route{route("hot", []string{"hot"}, pipeline.RejectDeadLetter, "p")}, cfg)
	if err := s.Upstream.CreateTopic("hot", 3, nil); err != nil {
		t.Fatal(err)
	}
	const n = 4000
	cl := producer(t, s.ProxyAddr, kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(2048))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	reloaded := make(chan struct{})
	for i := 0; i < n; i++ {
		if i == n/2 {
			// The first half is written by the old version.
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// Swap the file and reload while records are in flight.
			go func() {
				defer close(reloaded)
				copyFile(t, fixture(t, "addheader"), path+".new")
				if err := os.Rename(path+".new", path); err != nil {
					t.Error(err)
					return
				}
				if err := s.PluginSet.Reload(ctx, []plugins.Config{withTestLogger(cfg)}); err != nil {
					t.Errorf("reload: %v", err)
				}
			}()
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: "hot", Key: []byte(fmt.Sprint(i % 30)), Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	<-reloaded
	if firstErr != nil {
		t.Fatalf("produce during reload: %v", firstErr)
	}
	// A few more after the reload surely went through the new version.
	if err := produceSync(t, cl, &kgo.Record{Topic: "hot", Key: []byte("0"), Value: []byte(fmt.Sprint(n))}); err != nil {
		t.Fatal(err)
	}
	got := consume(t, s.UpstreamAddr, "hot", n+1)
	seen := make(map[string]bool, n+1)
	switched := map[int32]bool{}
	withHeader := 0
	for _, r := range got {
		if seen[string(r.Value)] {
			t.Fatalf("record %s twice", r.Value)
		}
		seen[string(r.Value)] = true
		_, has := header(r, "via")
		if has {
			withHeader++
			switched[r.Partition] = true
		} else if switched[r.Partition] {
			t.Fatalf("partition %d: record %s processed by the old version after the new one", r.Partition, r.Value)
		}
	}
	if withHeader == 0 || withHeader > n/2+1 {
		t.Fatalf("%d records went through the new version; want some, and none of the first half", withHeader)
	}
	t.Logf("%d of %d records went through the new version", withHeader, n+1)
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// withTestLogger keeps the config's logger quiet in reloads.
func withTestLogger(c plugins.Config) plugins.Config { return c }
