package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestWarmBatchShape(t *testing.T) {
	t.Parallel()
	in := []Record{
		{Topic: "orders", Partition: 4, Timestamp: 17, Key: []byte("customer-42"), Value: []byte(`{"id":"o-1","amount":12.5}`),
			Headers: []Header{{Key: "ce_type", Value: []byte("order.created")}, {Key: "trace", Value: nil}}},
		{Topic: "orders", Value: []byte(`  {"a":1}`)}, // short: {} padded
		{Topic: "orders", Key: []byte{}, Value: []byte("plain text")},
		{Topic: "orders", Value: []byte("[1,2,3]")},
		{Topic: "orders"}, // null key and value
	}
	w := newWarmBatch("order.created", in)
	if w.eventType != "order.created" || len(w.recs) != len(in) {
		t.Fatalf("%q, %d records", w.eventType, len(w.recs))
	}
	if size, _ := batchSize("order.created", in); w.size != size {
		t.Errorf("size %d, want the input's %d", w.size, size)
	}
	for i, r := range w.recs {
		o := in[i]
		if r.Topic != o.Topic || r.Partition != o.Partition || r.Timestamp != o.Timestamp {
			t.Errorf("record %d: %s/%d@%d, want %s/%d@%d", i, r.Topic, r.Partition, r.Timestamp, o.Topic, o.Partition, o.Timestamp)
		}
		same := func(what string, a, b []byte) {
			if (a == nil) != (b == nil) || len(a) != len(b) {
				t.Errorf("record %d: %s %q, want %d bytes like %q", i, what, a, len(b), b)
			}
			if len(b) > 2 && bytes.Contains(a, b[1:len(b)-1]) {
				t.Errorf("record %d: %s %q holds the real bytes %q", i, what, a, b)
			}
		}
		same("key", r.Key, o.Key)
		same("value", r.Value, o.Value)
		if len(r.Headers) != len(o.Headers) {
			t.Fatalf("record %d: %d headers", i, len(r.Headers))
		}
		for j, h := range r.Headers {
			if h.Key != o.Headers[j].Key {
				t.Errorf("record %d: header %q, want %q", i, h.Key, o.Headers[j].Key)
			}
			same("header "+h.Key, h.Value, o.Headers[j].Value)
		}
		if v := bytes.TrimSpace(o.Value); len(v) > 0 && v[0] == '{' && !json.Valid(r.Value) {
			t.Errorf("record %d: value %q is not JSON; the real one was an object", i, r.Value)
		}
	}
	if !strings.HasPrefix(string(w.recs[0].Value), `{"evproxy_warmup":"xxx`) {
		t.Errorf("value %q", w.recs[0].Value)
	}
	if d := defaultWarmBatch(64 << 20); len(d.recs) != defaultWarmCount || !json.Valid(d.recs[0].Value) || len(d.recs[0].Value) != defaultWarmValue {
		t.Errorf("default warm-up batch: %d records, value %q", len(d.recs), d.recs[0].Value)
	}
	if d := defaultWarmBatch(1 << 16); d.size > 1<<16/warmMaxFraction || len(d.recs) == 0 {
		t.Errorf("default warm-up batch for 64 KiB of memory: %d bytes, %d records", d.size, len(d.recs))
	}
}

func TestWarmBatchSampling(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.configOne("keep", 0)
	cfg.MemoryLimit = 16 << 20 // warm-up batches of at most 1 MiB
	p := b.load(t, cfg)
	if p.warmMax != 1<<20 {
		t.Fatalf("warmMax %d", p.warmMax)
	}
	start := p.warm.Load()
	batch := func(n, valueSize int) []Record {
		rs := make([]Record, n)
		for i := range rs {
			rs[i] = Record{Topic: "big", Value: bytes.Repeat([]byte("v"), valueSize)}
		}
		return rs
	}
	for _, step := range []struct {
		recs     []Record
		want     int // records in the warm-up batch after the call, 0: unchanged
		wantSize int
	}{
		{batch(10, 10), 0, 0},           // smaller than the default batch (29 kB)
		{batch(200, 200), 200, 0},       // larger (46 kB): sampled
		{batch(220, 200), 0, 0},         // not larger by a quarter
		{batch(300, 200), 300, 0},       // larger by a quarter
		{batch(10000, 200), 0, 1 << 20}, // above warmMax: its first records, up to 1 MiB
		{batch(20000, 200), 0, 0},       // warmMax reached: no more copies
	} {
		before := p.warm.Load()
		process(t, p, step.recs)
		w := p.warm.Load()
		switch {
		case step.want > 0 && len(w.recs) != step.want:
			t.Fatalf("after %d records: warm-up batch of %d records, want %d", len(step.recs), len(w.recs), step.want)
		case step.wantSize > 0 && (w.size > step.wantSize || w.size < step.wantSize-300):
			t.Fatalf("after %d records: warm-up batch of %d bytes, want about %d", len(step.recs), w.size, step.wantSize)
		case step.want == 0 && step.wantSize == 0 && w != before:
			t.Fatalf("after %d records: warm-up batch changed", len(step.recs))
		}
	}
	if p.warm.Load() == start || p.warm.Load().recs[0].Topic != "big" {
		t.Fatal("never sampled")
	}
}

// The problem warm-up solves: a fresh instance of a Go plugin, made to
// replace a discarded one, meets a 1,400-record batch (the size of one
// partition's batch in cmd/evproxy-bench) with the default 100 ms timeout.
// Before, its first call took 70-300 ms (memory growth, the guest's first
// GC) and timed out, again and again. Now it was warmed up with a batch of
// that shape: its memory does not grow during the call and it does not
// time out.
func TestFreshGoInstanceIsWarm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.load(t, b.exampleConfig(t, "enrich", 100*time.Millisecond))
	rs := jsonRecords(1400)
	process(t, p, rs) // the plugin learns the batch shape
	if w := p.warm.Load(); len(w.recs) != len(rs) {
		t.Fatalf("warm-up batch of %d records, want %d", len(w.recs), len(rs))
	}

	for round := range 3 {
		// Replace the instance the way a discard does: in the background.
		old := <-p.pool
		grown := old.mem.Size()
		p.discard(old)
		p.refs.tryAcquire() // replace's caller holds a reference
		p.replace()
		p.release()
		fresh := <-p.pool // the replacement, once warmed up
		if fresh == nil {
			t.Fatal("no replacement")
		}
		if size := fresh.mem.Size(); size < grown {
			t.Errorf("round %d: fresh instance has %d bytes of memory, a used one %d: not warmed up", round, size, grown)
		}
		before := fresh.mem.Size()
		p.pool <- fresh

		start := time.Now()
		vs := process(t, p, rs)
		took := time.Since(start)
		for i, v := range vs {
			if v.Action != Replace {
				t.Fatalf("round %d: record %d: %+v", round, i, v)
			}
		}
		inst := <-p.pool
		if inst != fresh || inst.mem.Size() != before {
			t.Errorf("round %d: the first call grew memory from %d to %d bytes (or replaced the instance)", round, before, inst.mem.Size())
		}
		p.pool <- inst
		t.Logf("round %d: first call %v", round, took)
	}
	b.checkErrors(t, "enrich", map[string]int{kindTimeout: 0, kindWarmup: 0})
}

// A discarded instance is replaced by a background goroutine: the call
// that discarded it returns without waiting for the replacement, and the
// next call gets it.
func TestReplacementOffRequestPath(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.load(t, b.configOne("behave", time.Minute))
	started, proceed := holdReplacements(p)
	instances := func() int { return int(testutil.ToFloat64(b.metrics.instances.WithLabelValues("behave"))) }

	// Returns while the replacement is held up.
	if got := process(t, p, recs("poison")); !reflect.DeepEqual(got, []Verdict{hostReject(ReasonTrap)}) {
		t.Fatalf("%+v", got)
	}
	<-started
	if n := instances(); n != 0 {
		t.Fatalf("%d instances while the replacement is being made, want 0", n)
	}
	// The next call waits for the replacement.
	errc := make(chan error, 1)
	go func() {
		vs, err := p.Process(context.Background(), "e", recs("drop"))
		if err == nil && !reflect.DeepEqual(vs, []Verdict{drop}) {
			err = fmt.Errorf("verdicts %+v", vs)
		}
		errc <- err
	}()
	close(proceed)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := instances(); n != 1 {
		t.Fatalf("%d instances, want 1", n)
	}

	// Bisection on a pool of one: each failed attempt's replacement is
	// made in the background and the next attempt waits for it.
	p.replaceHook = nil
	got := process(t, p, recs("a", "poison", "b", "drop"))
	if want := []Verdict{keep, hostReject(ReasonTrap), keep, drop}; !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v, want %+v", got, want)
	}
	p.replacing.Wait()
	if n := instances(); n != 1 {
		t.Fatalf("%d instances, want 1", n)
	}
}

// Close while a replacement is being made: the replacement stops and the
// plugin is finalized.
func TestCloseDuringReplacement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.open(t, b.configOne("behave", time.Minute))
	started, proceed := holdReplacements(p)
	process(t, p, recs("poison"))
	<-started
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	close(proceed)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(b.metrics.instances.WithLabelValues("behave")); n != 0 {
		t.Fatalf("%v instances after Close", n)
	}
}

// A plugin that fails its warm-up batch gets a cold instance instead, once
// per warm-up batch, with one warning; nothing is rejected.
func TestWarmupFailure(t *testing.T) {
	t.Parallel()
	for _, value := range []string{"poison", "loop"} {
		t.Run(value, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.load(t, b.configOne("behave", 20*time.Millisecond))
			p.warmupTimeout = 50 * time.Millisecond // a looping warm-up ends after it, not after the call timeout
			// Not synthetic: the real bytes make behave fail.
			size, _ := batchSize("e", recs(value))
			p.warmMax = 0
			p.warm.Store(&warmBatch{eventType: "e", recs: recs(value), size: size})
			for range 2 {
				freshInstance(t, p)
				if got := process(t, p, recs("a", "drop")); !reflect.DeepEqual(got, []Verdict{keep, drop}) {
					t.Fatalf("%+v", got)
				}
			}
			b.checkErrors(t, "behave", map[string]int{kindWarmup: 1, kindTrap: 0, kindTimeout: 0})
			if n := strings.Count(b.log.String(), "failed its warm-up batch"); n != 1 {
				t.Errorf("%d warnings, want 1:\n%s", n, b.log)
			}
		})
	}
	// The same when an instance is warmed up again for a larger batch:
	// the batch goes to another instance.
	t.Run("rewarm", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.load(t, b.configOne("behave", time.Minute))
		poison := recs("poison" + strings.Repeat(" ", 100_000))
		size, _ := batchSize("e", poison)
		p.warmMax = 0
		p.warm.Store(&warmBatch{eventType: "e", recs: poison, size: size})
		big := recs(strings.Repeat("a", 100_000), "drop")
		if got := process(t, p, big); !reflect.DeepEqual(got, []Verdict{keep, drop}) {
			t.Fatalf("%+v", got)
		}
		b.checkErrors(t, "behave", map[string]int{kindWarmup: 1, kindTrap: 0})
	})
}

// An instance meeting a batch larger by a quarter than anything it has
// processed, while the warm-up batch is larger too, is warmed up again
// with the new shape first (once).
func TestRewarm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.load(t, b.configOne("hostfuncs", time.Minute)) // logs "batch" once per call, warm-ups included
	batch := func(n int) []Record {
		rs := make([]Record, n)
		for i := range rs {
			rs[i] = Record{Topic: "t", Key: []byte("fr"), Value: bytes.Repeat([]byte("v"), 200)}
		}
		return rs
	}
	calls := func() (warmups, real int) {
		for _, l := range strings.Split(b.log.String(), "\n") {
			if strings.Contains(l, `"message":"batch"`) {
				if strings.Contains(l, `"warmup":true`) {
					warmups++
				} else {
					real++
				}
			}
		}
		return
	}
	for i, step := range []struct {
		records           int
		warmups, realCall int // cumulative
	}{
		{0, 1, 0},   // Load: the default batch (29 kB)
		{50, 1, 1},  // smaller
		{300, 2, 2}, // 69 kB: warmed up with its shape first
		{300, 2, 3},
		{320, 2, 4}, // not larger by a quarter
		{100, 2, 5},
		{1000, 3, 6},
	} {
		if step.records > 0 {
			process(t, p, batch(step.records))
		}
		if w, r := calls(); w != step.warmups || r != step.realCall {
			t.Fatalf("step %d (%d records): %d warm-up and %d real calls, want %d and %d", i, step.records, w, r, step.warmups, step.realCall)
		}
	}
}
