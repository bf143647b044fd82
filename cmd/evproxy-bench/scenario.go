package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// bench runs the scenarios.
type bench struct {
	opt  options
	bin  string // evproxy binary
	tmp  string // scratch directory (configs)
	log  io.Writer
	work *workload
	// outboxWork are the records of the outbox scenarios.
	outboxWork *workload

	// The plugin scenarios: those to run (their .wasm is in
	// pluginPaths) and the plugins skipped, with the reason.
	plugins       []scenario
	pluginPaths   map[string]string
	pluginSkipped map[string]string
}

var codecs = []string{"none", "lz4"}

var errRunTimeout = errors.New("run took longer than -run-timeout")

// throughputRun is one throughput measurement.
type throughputRun struct {
	recsPerSec  float64
	wirePerSec  float64 // request bytes written by the producer per second
	rttP50      time.Duration
	rttP99      time.Duration
	requests    int64
	avgRequest  float64 // bytes per request
	proxyRSS    int64   // evproxy peak RSS (0 when direct)
	use         usage
	recordCount int
	plugin      pluginCounters // the plugin's counters during the measurement
}

// latencyRun is one fixed-rate latency measurement.
type latencyRun struct {
	p50, p99, p999 time.Duration
	sent           int
	requests       int64   // produce requests the producer sent
	achieved       float64 // records per second actually offered
	proxyRSS       int64
	use            usage
}

// runAll runs every round of every scenario, interleaved.
func (b *bench) runAll(ctx context.Context) (*report, error) {
	rep := &report{opt: b.opt, start: time.Now(), plugins: b.plugins, pluginSkipped: b.pluginSkipped}
	rep.thr = map[scenario][]throughputRun{}
	if !b.opt.outbox.only {
		if err := b.runRounds(ctx, rep); err != nil {
			return nil, err
		}
	}
	if b.opt.outbox.enabled {
		settings, warning, err := checkOutboxDB(ctx, b.opt.outbox.dbURL)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// pgx's connect errors list every address tried, one a line.
			rep.outboxSkipped = strings.Join(strings.Fields(err.Error()), " ")
			fmt.Fprintf(b.log, "outbox: skipping its rows: %v\n", err)
		} else {
			rep.pgSettings, rep.pgWarning = settings, warning
			if warning != "" {
				fmt.Fprintf(b.log, "outbox: %s\n", warning)
			}
			rep.outbox, rep.outboxErr = b.outboxRounds(ctx)
			if rep.outboxErr != nil && ctx.Err() != nil {
				return nil, rep.outboxErr
			}
		}
	}
	rep.end = time.Now()
	return rep, nil
}

// runRounds runs every round of the throughput, plugin and latency
// scenarios, interleaved.
func (b *bench) runRounds(ctx context.Context, rep *report) error {
	for round := range b.opt.rounds {
		// Odd rounds run evproxy first, so neither side always runs
		// on a warmer machine.
		order := []bool{false, true}
		if round%2 == 1 {
			order = []bool{true, false}
		}
		for _, codec := range codecs {
			// The plugin runs follow the pass-through runs they are
			// compared with (and precede them in odd rounds).
			group := []scenario{{proxy: false, codec: codec}, {proxy: true, codec: codec}}
			if codec == "none" {
				group = append(group, b.plugins...)
			}
			if round%2 == 1 {
				slices.Reverse(group)
			}
			for _, sc := range group {
				r, err := b.throughput(ctx, sc)
				if err != nil {
					return fmt.Errorf("round %d, throughput %s: %w", round+1, sc, err)
				}
				note := ""
				if sc.plugin != "" {
					note = fmt.Sprintf("; plugin: %d records in %d calls, %d replaced, %d errors (%d timeouts), %.2f µs/record in calls",
						r.plugin.records, r.plugin.calls, r.plugin.replaced, r.plugin.errors, r.plugin.timeouts, r.plugin.perRecord())
				}
				fmt.Fprintf(b.log, "round %d/%d  throughput  %-16s %12s rec/s  %7.1f MB/s on the wire  %6d requests of %7.1f KiB  p50 %s p99 %s%s%s\n",
					round+1, b.opt.rounds, sc, fmtCount(r.recsPerSec), r.wirePerSec/1e6, r.requests,
					r.avgRequest/1024, fmtDur(r.rttP50), fmtDur(r.rttP99), cpuNote(r.use, sc.proxy, r.proxyRSS), note)
				rep.thr[sc] = append(rep.thr[sc], r)
			}
		}
		for _, via := range order {
			r, err := b.latency(ctx, via)
			if err != nil {
				return fmt.Errorf("round %d, latency %s: %w", round+1, pathName(via), err)
			}
			fmt.Fprintf(b.log, "round %d/%d  latency     %-16s %12s rec/s offered    %8d requests of %5.1f records  record p50 %s p99 %s p99.9 %s%s\n",
				round+1, b.opt.rounds, pathName(via), fmtCount(r.achieved), r.requests, float64(r.sent)/max(float64(r.requests), 1), fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.p999), cpuNote(r.use, via, r.proxyRSS))
			if via {
				rep.latProxy = append(rep.latProxy, r)
			} else {
				rep.latDirect = append(rep.latDirect, r)
			}
		}
	}
	return nil
}

func cpuNote(u usage, proxy bool, rss int64) string {
	s := fmt.Sprintf("  cores: bench %.2f", u.cores(u.self))
	if proxy {
		s += fmt.Sprintf(", evproxy %.2f", u.cores(u.proxy))
	}
	s += fmt.Sprintf(", others %.2f", u.cores(u.other))
	if proxy {
		s += fmt.Sprintf("; evproxy peak RSS %.1f MB", float64(rss)/(1<<20))
	}
	return s
}

// throughput produces opt.records records as fast as the producer goes.
func (b *bench) throughput(ctx context.Context, sc scenario) (res throughputRun, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, b.opt.runTimeout, errRunTimeout)
	defer cancel()
	var plug *proxyPlugin
	if sc.plugin != "" {
		plug = &proxyPlugin{name: sc.plugin, path: b.pluginPaths[sc.plugin], timeout: pluginTimeout}
		if sc.noTimeout {
			plug.timeout = 0
		}
	}
	t, err := b.startTarget(ctx, sc.proxy, plug)
	if err != nil {
		return res, err
	}
	ctx, stopWatch := t.watch(ctx)
	defer func() { res.proxyRSS, err = t.finish(ctx, stopWatch, err) }()
	hook := &e2eHook{}
	cl, err := b.newProducer(t.addr, sc.codec, b.opt.linger, hook)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	if err := b.warmUp(ctx, cl, min(20_000, max(b.opt.records/20, 100))); err != nil {
		return res, err
	}
	var before pluginCounters
	if plug != nil {
		if before, err = scrapePlugin(ctx, t.proxy.admin, plug.name); err != nil {
			return res, err
		}
	}

	var f firstErr
	hook.recording.Store(true)
	m := t.meter()
	if err := produceAll(ctx, cl, b.work, b.opt.records, &f); err != nil {
		return res, err
	}
	res.use = m.stop()
	elapsed := res.use.elapsed
	hook.recording.Store(false)
	if err := f.acked(b.opt.records); err != nil {
		return res, err
	}
	if plug != nil {
		// Every record must have gone through the plugin and come back
		// replaced (with its header), or the row measures something else.
		after, err := scrapePlugin(ctx, t.proxy.admin, plug.name)
		if err != nil {
			return res, err
		}
		res.plugin = after.sub(before)
		if res.plugin.replaced < int64(b.opt.records) {
			return res, fmt.Errorf("plugin %s replaced %d of the %d records (it saw %d records in %d calls, %d errors)",
				plug.name, res.plugin.replaced, b.opt.records, res.plugin.records, res.plugin.calls, res.plugin.errors)
		}
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	res.recordCount = b.opt.records
	res.recsPerSec = float64(b.opt.records) / elapsed.Seconds()
	res.wirePerSec = float64(hook.written) / elapsed.Seconds()
	res.requests = hook.requests
	res.avgRequest = float64(hook.written) / max(float64(hook.requests), 1)
	sortDurations(hook.rtts)
	res.rttP50, res.rttP99 = percentile(hook.rtts, 0.50), percentile(hook.rtts, 0.99)
	return res, nil
}

// latency offers opt.rate records per second for opt.duration with linger
// 0 and measures each record from Produce to its promise.
func (b *bench) latency(ctx context.Context, via bool) (res latencyRun, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, b.opt.runTimeout, errRunTimeout)
	defer cancel()
	t, err := b.startTarget(ctx, via, nil)
	if err != nil {
		return res, err
	}
	ctx, stopWatch := t.watch(ctx)
	defer func() { res.proxyRSS, err = t.finish(ctx, stopWatch, err) }()
	hook := &e2eHook{}
	cl, err := b.newProducer(t.addr, "none", 0, hook)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	if err := b.warmUp(ctx, cl, min(b.opt.rate, 5_000)); err != nil {
		return res, err
	}

	pace := newPacer(b.opt.rate, b.opt.duration)
	defer pace.stop()
	hook.recording.Store(true)
	m := t.meter()
	start, err := pace.offer(ctx, cl, b.work)
	if err != nil {
		return res, err
	}
	offered := time.Since(start)
	if err := cl.Flush(ctx); err != nil {
		return res, fmt.Errorf("flush: %w", err)
	}
	res.use = m.stop()
	if err := pace.f.error(); err != nil {
		return res, err
	}
	lats, err := pace.latencies()
	if err != nil {
		return res, err
	}
	hook.recording.Store(false)
	hook.mu.Lock()
	res.requests = hook.requests
	hook.mu.Unlock()
	res.sent = pace.sent
	res.achieved = float64(pace.sent) / offered.Seconds()
	res.p50, res.p99, res.p999 = percentile(lats, 0.50), percentile(lats, 0.99), percentile(lats, 0.999)
	return res, nil
}
