package plugins

import (
	"context"
	"testing"
)

// freshInstance replaces the instance of a plugin with a pool of one by a
// fresh one, made and warmed up as a replacement is.
func freshInstance(tb testing.TB, p *Plugin) {
	tb.Helper()
	p.discard(<-p.pool)
	inst, err := p.newWarmInstance(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	p.pool <- inst
}

// holdReplacements holds up p's replacements of discarded instances: each
// one, once started, sends on started and waits until proceed is closed.
func holdReplacements(p *Plugin) (started <-chan struct{}, proceed chan struct{}) {
	s, proceed := make(chan struct{}, 1), make(chan struct{})
	p.replaceHook = func() {
		s <- struct{}{}
		<-proceed
	}
	return s, proceed
}

// setWarmup sets how new instances of p are warmed up from now on: "cold"
// (not at all), "default" (as Load does), "one" (one record of the shape
// of recs[0]) or "sampled" (with the shape of recs). Processed batches no
// longer change it.
func setWarmup(p *Plugin, mode string, recs []Record) {
	p.warmMax = 0
	switch mode {
	case "one":
		p.warm.Store(newWarmBatch("order.created", recs[:1]))
	case "cold":
		w := newWarmBatch("x", recs[:1])
		w.failed.Store(true)
		p.warm.Store(w)
	case "sampled":
		p.warm.Store(newWarmBatch("order.created", recs))
	}
}
