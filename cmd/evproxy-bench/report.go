package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Targets (docs/benchmarks.md).
const (
	targetRatioNone   = 0.92
	targetRatioLZ4    = 0.95
	targetAddedP50    = 100 * time.Microsecond
	targetAddedP99    = 400 * time.Microsecond
	targetPeakRSSByte = 150 << 20
)

// busyMachine is the CPU use of other processes, in cores, above which a
// run's figures are flagged as unreliable.
const busyMachine = 0.25

// scenario is one throughput configuration.
type scenario struct {
	proxy     bool
	codec     string
	plugin    string // plugin run on every record ("" for none; evproxy only)
	noTimeout bool   // the plugin runs with timeout = "0s"
}

func (s scenario) String() string { return s.path() + ", " + s.codec }

// path is the row's name.
func (s scenario) path() string {
	if s.plugin == "" {
		return pathName(s.proxy)
	}
	label := s.plugin
	if p := specByName(s.plugin); p != nil {
		label = p.label
	}
	if s.noTimeout {
		return "evproxy + " + label + " (no timeout)"
	}
	return fmt.Sprintf("evproxy + %s (timeout %s)", label, pluginTimeout)
}

func pathName(proxy bool) string {
	if proxy {
		return "evproxy"
	}
	return "direct"
}

// report holds every run's results.
type report struct {
	opt           options
	start, end    time.Time
	thr           map[scenario][]throughputRun
	latDirect     []latencyRun
	latProxy      []latencyRun
	plugins       []scenario        // the plugin scenarios that ran
	pluginSkipped map[string]string // plugins whose scenarios were skipped, and why

	outbox        []outboxRound // the outbox scenarios' rounds that completed
	outboxSkipped string        // why the outbox scenarios did not run
	outboxErr     error         // why they stopped
	pgSettings    string        // the database's version and durability settings
	pgWarning     string        // settings of the database that skew the figures
}

// passThrough and direct are the runs the plugin scenarios compare with.
var (
	passThrough = scenario{proxy: true, codec: "none"}
	directNone  = scenario{proxy: false, codec: "none"}
)

// ratio is the median over rounds of evproxy's throughput over direct's,
// for codec.
func (r *report) ratio(codec string) float64 {
	return r.ratioOf(scenario{proxy: true, codec: codec}, scenario{proxy: false, codec: codec})
}

// ratioOf is the median over rounds of sc's throughput over base's; both
// sides of each ratio come from the same round.
func (r *report) ratioOf(sc, base scenario) float64 {
	p, d := r.thr[sc], r.thr[base]
	var rs []float64
	for i := range min(len(d), len(p)) {
		rs = append(rs, p[i].recsPerSec/d[i].recsPerSec)
	}
	return median(rs)
}

// added is the median over rounds of evproxy's latency percentile minus
// direct's.
func (r *report) added(q func(latencyRun) time.Duration) time.Duration {
	var ds []time.Duration
	for i := range min(len(r.latDirect), len(r.latProxy)) {
		ds = append(ds, q(r.latProxy[i])-q(r.latDirect[i]))
	}
	return median(ds)
}

// peakRSS is evproxy's largest peak RSS over every run without plugins.
func (r *report) peakRSS() int64 {
	var m int64
	for sc, runs := range r.thr {
		if sc.proxy && sc.plugin == "" {
			for _, x := range runs {
				m = max(m, x.proxyRSS)
			}
		}
	}
	for _, x := range r.latProxy {
		m = max(m, x.proxyRSS)
	}
	return m
}

// goal is one pass/fail line.
type goal struct {
	name     string
	measured string
	pass     bool
}

func (r *report) goals() []goal {
	p50 := r.added(func(l latencyRun) time.Duration { return l.p50 })
	p99 := r.added(func(l latencyRun) time.Duration { return l.p99 })
	rn, rl := r.ratio("none"), r.ratio("lz4")
	rss := r.peakRSS()
	return []goal{
		{fmt.Sprintf("throughput via evproxy, none ≥ %.2f× direct", targetRatioNone), fmtRatio(rn), rn >= targetRatioNone},
		{fmt.Sprintf("throughput via evproxy, lz4 ≥ %.2f× direct", targetRatioLZ4), fmtRatio(rl), rl >= targetRatioLZ4},
		{"added latency p50 ≤ " + fmtAdded(targetAddedP50), fmtAdded(p50), p50 <= targetAddedP50},
		{"added latency p99 ≤ " + fmtAdded(targetAddedP99), fmtAdded(p99), p99 <= targetAddedP99},
		{fmt.Sprintf("evproxy peak RSS ≤ %d MB", targetPeakRSSByte>>20), fmtMB(rss) + " (largest of the runs without plugins)", rss > 0 && rss <= targetPeakRSSByte},
	}
}

// pluginGoals are the plugin targets, judged on the rows with the timeout
// on; skipped reports the plugins that did not run.
func (r *report) pluginGoals() (goals []goal, skipped []string) {
	for _, p := range pluginSpecs {
		name := fmt.Sprintf("%s ≥ %.2f× pass-through (timeout %s)", p.goal, p.target, pluginTimeout)
		sc := scenario{proxy: true, codec: "none", plugin: p.name}
		if len(r.thr[sc]) == 0 {
			if why, ok := r.pluginSkipped[p.name]; ok {
				skipped = append(skipped, name+": skipped, "+firstLine(why))
			}
			continue
		}
		rt := r.ratioOf(sc, passThrough)
		goals = append(goals, goal{name, fmtRatio(rt), rt >= p.target})
	}
	return goals, skipped
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "**fail**"
}

// write prints the report as markdown.
func (r *report) write(w io.Writer) {
	o := r.opt
	fmt.Fprintf(w, "evproxy-bench, %s, %s %s/%s, %d CPUs (GOMAXPROCS %d); producer and kfake in one process, evproxy in another; %d round(s), medians.\n",
		r.start.UTC().Format("2006-01-02 15:04 UTC"), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), o.rounds)
	med, hi := r.others()
	fmt.Fprintf(w, "Other processes used %.2f cores during a median run (%.2f at most); \"cores\" columns split the machine's CPU between this process (producer and kfake), evproxy and the rest.\n", med, hi)
	if hi > busyMachine {
		fmt.Fprintf(w, "**The machine was busy (other processes above %.2f cores in some runs): ratios are unreliable; rerun on a quiet machine or with more -rounds.**\n", busyMachine)
	}
	fmt.Fprintln(w)

	if !o.outbox.only {
		r.writeProxy(w)
	}
	r.writeOutbox(w)

	fmt.Fprintln(w, "\n### Targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | result |")
	fmt.Fprintln(w, "|---|--:|---|")
	var goals []goal
	var skipped []string
	if !o.outbox.only {
		goals, skipped = r.pluginGoals()
		goals = append(r.goals(), goals...)
	}
	og, oskip := r.outboxGoals()
	goals, skipped = append(goals, og...), append(skipped, oskip...)
	for _, t := range goals {
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.name, t.measured, passFail(t.pass))
	}
	for _, s := range skipped {
		fmt.Fprintf(w, "| %s | – | – |\n", s)
	}
	fmt.Fprintf(w, "\nTotal run time %s.\n", r.end.Sub(r.start).Round(time.Second))
}

// writeProxy prints the throughput, plugin and latency tables.
func (r *report) writeProxy(w io.Writer) {
	o := r.opt
	fmt.Fprintf(w, "### Throughput\n\n%s records of %d B, %d keys, %d partitions, linger %s, batch max %d KiB, acks=all, idempotent.\n\n",
		fmtCount(float64(o.records)), o.valueSize, o.keys, o.partitions, o.linger, o.batchMaxBytes>>10)
	fmt.Fprintln(w, "| path | compression | records/s | wire MB/s | vs direct | request p50 | request p99 | cores: bench / evproxy / others | evproxy CPU/record | evproxy peak RSS | target | result |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|")
	for _, codec := range codecs {
		for _, via := range []bool{false, true} {
			runs := r.thr[scenario{proxy: via, codec: codec}]
			rps := median(collect(runs, func(x throughputRun) float64 { return x.recsPerSec }))
			wire := median(collect(runs, func(x throughputRun) float64 { return x.wirePerSec }))
			p50 := median(collect(runs, func(x throughputRun) time.Duration { return x.rttP50 }))
			p99 := median(collect(runs, func(x throughputRun) time.Duration { return x.rttP99 }))
			ratio, perRec, rss, tgt, res := "1.00×", "–", "–", "", ""
			uses := collect(runs, func(x throughputRun) usage { return x.use })
			if via {
				rt := r.ratio(codec)
				want := targetRatioNone
				if codec == "lz4" {
					want = targetRatioLZ4
				}
				ratio, tgt, res = fmtRatio(rt), fmt.Sprintf("≥ %.2f×", want), passFail(rt >= want)
				perRec = fmt.Sprintf("%.2f µs", median(collect(runs, func(x throughputRun) float64 {
					return x.use.proxy.Seconds() / float64(x.recordCount) * 1e6
				})))
				rss = fmtMB(maxOf(collect(runs, func(x throughputRun) int64 { return x.proxyRSS })))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				pathName(via), codec, fmtCount(rps), wire/1e6, ratio, fmtDur(p50), fmtDur(p99), fmtCores(uses, via, false), perRec, rss, tgt, res)
		}
	}

	r.writePlugins(w)

	fmt.Fprintf(w, "\n### Latency at a fixed rate\n\n%s records/s for %s, linger 0, no compression; latency from Produce to the promise.\n\n",
		fmtCount(float64(o.rate)), o.duration)
	fmt.Fprintln(w, "| path | offered rec/s | p50 | p99 | p99.9 | cores: bench / evproxy / others | evproxy peak RSS | target | result |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|---|---|")
	for _, via := range []bool{false, true} {
		runs := r.latDirect
		if via {
			runs = r.latProxy
		}
		q := func(f func(latencyRun) time.Duration) string {
			return fmtDur(median(collect(runs, f)))
		}
		cpu, rss := fmtCores(collect(runs, func(x latencyRun) usage { return x.use }), via, false), "–"
		if via {
			rss = fmtMB(maxOf(collect(runs, func(x latencyRun) int64 { return x.proxyRSS })))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | | |\n", pathName(via),
			fmtCount(median(collect(runs, func(x latencyRun) float64 { return x.achieved }))),
			q(func(l latencyRun) time.Duration { return l.p50 }), q(func(l latencyRun) time.Duration { return l.p99 }),
			q(func(l latencyRun) time.Duration { return l.p999 }), cpu, rss)
	}
	a50 := r.added(func(l latencyRun) time.Duration { return l.p50 })
	a99 := r.added(func(l latencyRun) time.Duration { return l.p99 })
	a999 := r.added(func(l latencyRun) time.Duration { return l.p999 })
	fmt.Fprintf(w, "| added (evproxy − direct) | | %s | %s | %s | | | p50 ≤ %s, p99 ≤ %s | %s |\n",
		fmtAdded(a50), fmtAdded(a99), fmtAdded(a999), fmtAdded(targetAddedP50), fmtAdded(targetAddedP99),
		passFail(a50 <= targetAddedP50 && a99 <= targetAddedP99))
}

// writePlugins prints the plugin scenarios' table, if any ran or were
// skipped.
func (r *report) writePlugins(w io.Writer) {
	if len(r.plugins) == 0 && len(r.pluginSkipped) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Plugins\n\nOne plugin on every record (`route { plugins = [...] }`, `config = { source = \"bench\" }`), no compression, otherwise as above. "+
		"\"vs pass-through\" compares with the evproxy run without plugins (evproxy, none), \"vs direct\" with direct, none, from the same round. "+
		"Targets are judged with the per-call timeout on (%s, the default); the no-timeout rows (`timeout = \"0s\"`) show what wazero's interrupt checks cost. "+
		"\"plugin call time/record\" is the time evproxy spent in the plugin's Process calls (evproxy_plugin_call_duration_seconds: encoding, the guest, decoding, and retries after failures) per record. "+
		"\"plugin records\" is the plugin's own count (evproxy_plugin_records_total) during the measurement, with the calls that failed (sum over all runs); every record must come back replaced.\n\n", pluginTimeout)
	for _, p := range pluginSpecs {
		fmt.Fprintf(w, "- %s: %s.\n", p.label, p.what)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| path | compression | records/s | wire MB/s | vs pass-through | vs direct | request p50 | request p99 | cores: bench / evproxy / others | evproxy CPU/record | plugin call time/record | evproxy peak RSS | plugin records | target | result |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|")
	row := func(sc scenario, label, callTime, pluginRecs, tgt, res string) {
		runs := r.thr[sc]
		rps := median(collect(runs, func(x throughputRun) float64 { return x.recsPerSec }))
		wire := median(collect(runs, func(x throughputRun) float64 { return x.wirePerSec }))
		p50 := median(collect(runs, func(x throughputRun) time.Duration { return x.rttP50 }))
		p99 := median(collect(runs, func(x throughputRun) time.Duration { return x.rttP99 }))
		perRec := median(collect(runs, func(x throughputRun) float64 {
			return x.use.proxy.Seconds() / float64(x.recordCount) * 1e6
		}))
		fmt.Fprintf(w, "| %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %.2f µs | %s | %s | %s | %s | %s |\n",
			label, sc.codec, fmtCount(rps), wire/1e6, fmtRatio(r.ratioOf(sc, passThrough)), fmtRatio(r.ratioOf(sc, directNone)),
			fmtDur(p50), fmtDur(p99), fmtCores(collect(runs, func(x throughputRun) usage { return x.use }), true, false), perRec, callTime,
			fmtMB(maxOf(collect(runs, func(x throughputRun) int64 { return x.proxyRSS }))), pluginRecs, tgt, res)
	}
	row(passThrough, "evproxy, no plugin (pass-through)", "–", "–", "", "")
	for _, sc := range r.plugins {
		runs := r.thr[sc]
		recs := fmtCount(median(collect(runs, func(x throughputRun) float64 { return float64(x.plugin.records) })))
		errs := sumOf(collect(runs, func(x throughputRun) int64 { return x.plugin.errors }))
		timeouts := sumOf(collect(runs, func(x throughputRun) int64 { return x.plugin.timeouts }))
		switch {
		case errs > 0 && errs == timeouts:
			recs += fmt.Sprintf(" (%s timeouts)", fmtCount(float64(timeouts)))
		case errs > 0:
			recs += fmt.Sprintf(" (%s failed calls, %s of them timeouts)", fmtCount(float64(errs)), fmtCount(float64(timeouts)))
		}
		callTime := fmt.Sprintf("%.2f µs", median(collect(runs, func(x throughputRun) float64 { return x.plugin.perRecord() })))
		tgt, res := "", ""
		if p := specByName(sc.plugin); p != nil && !sc.noTimeout {
			rt := r.ratioOf(sc, passThrough)
			tgt, res = fmt.Sprintf("≥ %.2f× pass-through", p.target), passFail(rt >= p.target)
		}
		row(sc, sc.path(), callTime, recs, tgt, res)
	}
	for _, p := range pluginSpecs {
		if why, ok := r.pluginSkipped[p.name]; ok {
			fmt.Fprintf(w, "\nSkipped %s: %s\n", p.label, firstLine(why))
		}
	}
}

func sumOf(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// fmtCores is the median of each part of uses, in cores: this process,
// evproxy ("–" unless proxy), PostgreSQL when pg, and the other processes.
func fmtCores(uses []usage, proxy, pg bool) string {
	part := func(f func(usage) time.Duration) string {
		return fmt.Sprintf("%.2f", median(collect(uses, func(u usage) float64 { return u.cores(f(u)) })))
	}
	parts := []string{part(func(u usage) time.Duration { return u.self }), "–"}
	if proxy {
		parts[1] = part(func(u usage) time.Duration { return u.proxy })
	}
	if pg {
		parts = append(parts, part(func(u usage) time.Duration { return u.pg }))
	}
	parts = append(parts, part(func(u usage) time.Duration { return u.other }))
	return strings.Join(parts, " / ")
}

// others is the median and largest CPU use of other processes over every
// run, in cores.
func (r *report) others() (med, hi float64) {
	var cs []float64
	for _, runs := range r.thr {
		for _, x := range runs {
			cs = append(cs, x.use.cores(x.use.other))
		}
	}
	for _, x := range append(slices.Clone(r.latDirect), r.latProxy...) {
		cs = append(cs, x.use.cores(x.use.other))
	}
	for _, x := range r.outbox {
		for _, u := range []usage{x.copy.use, x.ack.use, x.steady.use} {
			cs = append(cs, u.cores(u.other))
		}
	}
	if len(cs) == 0 {
		return 0, 0
	}
	return median(cs), slices.Max(cs)
}

func collect[R, V any](runs []R, f func(R) V) []V {
	out := make([]V, 0, len(runs))
	for _, x := range runs {
		out = append(out, f(x))
	}
	return out
}

func maxOf(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}

// median of xs (the mean of the middle two for even lengths); 0 if empty.
func median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func sortDurations(d []time.Duration) { slices.Sort(d) }

// percentile returns the nearest-rank q quantile of sorted d; 0 if empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

func fmtAdded(d time.Duration) string {
	s := fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s
}

func fmtRatio(r float64) string { return fmt.Sprintf("%.2f×", r) }

func fmtMB(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
}
