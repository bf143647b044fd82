package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evproxy/evproxy/internal/config"
)

// TestQuickRun runs the whole benchmark with tiny numbers so that the tool
// keeps working: every row is printed and every ratio is positive. It
// checks no performance figure. Of the plugin scenarios it runs one,
// header-c with the timeout, when its .wasm exists or can be built. The
// outbox scenarios run when PostgreSQL answers at -outbox-db's default
// address; otherwise the table must say they were skipped.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds evproxy and runs it as a process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	o, err := parseFlags([]string{"-quick", "-records", "20000", "-rate", "10000", "-duration", "1s",
		"-outbox-records", "5000", "-drain-duration", "2s"}, &log)
	if err != nil {
		t.Fatal(err)
	}
	plug := scenario{proxy: true, codec: "none", plugin: "header-c"}
	o.plugins = []scenario{plug}
	rep, err := runOptions(ctx, o, &out, &log)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, log.String())
	}
	table := out.String()
	for _, row := range []string{
		"| direct | none |", "| evproxy | none |", "| direct | lz4 |", "| evproxy | lz4 |",
		"| direct | ", "| evproxy | ", "| added (evproxy − direct) |",
		"| throughput via evproxy, none", "| throughput via evproxy, lz4",
		"| added latency p50", "| added latency p99", "| evproxy peak RSS",
	} {
		if !strings.Contains(table, "\n"+row) {
			t.Errorf("no row starting %q in:\n%s", row, table)
		}
	}
	for _, codec := range codecs {
		if r := rep.ratio(codec); !(r > 0) {
			t.Errorf("ratio for %s = %v, want > 0", codec, r)
		}
		for _, via := range []bool{false, true} {
			sc := scenario{proxy: via, codec: codec}
			if runs := rep.thr[sc]; len(runs) != 1 || !(runs[0].recsPerSec > 0) || runs[0].requests == 0 {
				t.Errorf("%s: runs %+v, want one with records/s > 0 and requests", sc, runs)
			}
		}
	}
	for _, runs := range [][]latencyRun{rep.latDirect, rep.latProxy} {
		if len(runs) != 1 || runs[0].sent == 0 || runs[0].requests == 0 || runs[0].p50 <= 0 || runs[0].p99 < runs[0].p50 {
			t.Errorf("latency runs %+v, want one with records, requests and 0 < p50 <= p99", runs)
		}
	}
	if rep.peakRSS() <= 0 {
		t.Errorf("evproxy peak RSS %d, want > 0", rep.peakRSS())
	}
	if why, skipped := rep.pluginSkipped["header-c"]; skipped {
		t.Logf("plugin scenario skipped: %s", why)
		if !strings.Contains(table, "| header-only plugin (header-c) ≥ 0.80× pass-through (timeout 100ms): skipped, ") {
			t.Errorf("no skipped target row for header-c in:\n%s", table)
		}
	} else {
		runs := rep.thr[plug]
		if len(runs) != 1 || !(runs[0].recsPerSec > 0) || runs[0].plugin.replaced < 20000 || runs[0].plugin.calls == 0 {
			t.Errorf("%s: runs %+v, want one with records/s > 0 and 20000 records replaced by the plugin", plug, runs)
		}
		for _, row := range []string{
			"| evproxy, no plugin (pass-through) | none |", "| evproxy + header-c (timeout 100ms) | none |",
			"| header-only plugin (header-c) ≥ 0.80× pass-through (timeout 100ms) |",
		} {
			if !strings.Contains(table, "\n"+row) {
				t.Errorf("no row starting %q in:\n%s", row, table)
			}
		}
		if r := rep.ratioOf(plug, passThrough); !(r > 0) {
			t.Errorf("plugin ratio = %v, want > 0", r)
		}
	}
	checkOutboxRows(t, rep, table)
	if t.Failed() {
		t.Logf("progress:\n%s", log.String())
	}
}

// checkOutboxRows checks the outbox rows of a quick run: present with
// positive figures, or skipped with a note.
func checkOutboxRows(t *testing.T, rep *report, table string) {
	t.Helper()
	if rep.outboxErr != nil {
		t.Errorf("outbox scenarios failed: %v", rep.outboxErr)
		return
	}
	if rep.outboxSkipped != "" {
		t.Logf("outbox scenarios skipped: %s", rep.outboxSkipped)
		if !strings.Contains(table, "\nSkipped: ") || !strings.Contains(table, "| outbox ack throughput ≥ 0.60× raw pgx COPY: skipped, ") {
			t.Errorf("no skip note for the outbox rows in:\n%s", table)
		}
		return
	}
	for _, row := range []string{
		"| raw pgx COPY (4 connections, 1000-row transactions) |", "| evproxy, outbox route (relay running) |",
		"| relay draining the ", "| outbox ack throughput ≥ 0.60× raw pgx COPY |", "| relay drain ÷ ingest ≥ 1.00 over 2s",
	} {
		if !strings.Contains(table, "\n"+row) {
			t.Errorf("no row starting %q in:\n%s", row, table)
		}
	}
	if len(rep.outbox) != 1 {
		t.Fatalf("%d outbox rounds, want 1", len(rep.outbox))
	}
	x := rep.outbox[0]
	if !(x.copy.rowsPerSec > 0) || !(x.ack.rowsPerSec > 0) || x.ack.rows != 5000 || x.ack.commits < 1 {
		t.Errorf("outbox round: COPY %+v, ack %+v; want positive rates and 5000 rows committed", x.copy, x.ack)
	}
	if x.steady.sent == 0 || !(x.steady.ingest > 0) || !(x.steady.drain > 0) || x.steady.p50 <= 0 {
		t.Errorf("steady load %+v: want records sent, positive rates and latencies", x.steady)
	}
	if r := rep.copyRatio(); !(r > 0) {
		t.Errorf("outbox / COPY ratio = %v, want > 0", r)
	}
	// The schema was dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rep.opt.outbox.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", x.schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s: %d left (err %v), want dropped", x.schema, n, err)
	}
}

func TestOutboxConfig(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{0, 2000} {
		src := outboxConfigText("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", defaultOutboxDB, "evproxy_bench_0123abcd", batch)
		cfg, err := config.Parse(src, "bench.hcl")
		if err != nil {
			t.Fatalf("config: %v\n%s", err, src)
		}
		if !cfg.Outbox.Enabled || cfg.Outbox.DatabaseURL != defaultOutboxDB || cfg.Outbox.Schema != "evproxy_bench_0123abcd" {
			t.Errorf("outbox block %+v\n%s", cfg.Outbox, src)
		}
		if batch > 0 && cfg.Outbox.BatchSize != batch {
			t.Errorf("batch_size %d, want %d", cfg.Outbox.BatchSize, batch)
		}
		if len(cfg.Routes) != 1 || cfg.Routes[0].Delivery != "outbox" || !slices.Equal(cfg.Routes[0].Topics, []string{"bench*"}) || cfg.Admin.Listen != "127.0.0.1:2" {
			t.Errorf("routes %+v, admin %q\n%s", cfg.Routes, cfg.Admin.Listen, src)
		}
	}
}

func TestParseOutboxMetrics(t *testing.T) {
	t.Parallel()
	const text = `# HELP evproxy_outbox_written_total Records committed to the outbox by the proxy.
# TYPE evproxy_outbox_written_total counter
evproxy_outbox_written_total 2.5e+06
evproxy_outbox_published_total 2.4e+06
evproxy_outbox_pending{topic="bench"} 90000
evproxy_outbox_pending{topic="other"} 10000
evproxy_outbox_oldest_pending_seconds 1.5
evproxy_outbox_commit_seconds_bucket{le="0.01"} 3
evproxy_outbox_commit_seconds_sum 2
evproxy_outbox_commit_seconds_count 100
evproxy_outbox_claim_seconds_sum 1
evproxy_outbox_claim_seconds_count 50
evproxy_outbox_publish_seconds_sum 0.5
evproxy_outbox_publish_seconds_count 40
evproxy_outbox_breaker_transitions_total{to="open"} 0
evproxy_records_total{topic="bench"} 7
`
	m, err := parseOutboxMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := outboxMetrics{written: 2_500_000, published: 2_400_000, pending: 100_000, oldest: 1.5, commitSum: 2, commitCount: 100,
		claimSum: 1, claimCount: 50, publishSum: 0.5, publishCount: 40, hasWritten: true, hasPublished: true}
	if m != want {
		t.Errorf("metrics %+v, want %+v", m, want)
	}
	if m.lag() != 100_000 {
		t.Errorf("lag %d, want 100000", m.lag())
	}
	n, avg := m.commitsSince(outboxMetrics{})
	if n != 100 || avg != 20*time.Millisecond {
		t.Errorf("commits %v of %v, want 100 of 20ms", n, avg)
	}
	r := m.relaySince(outboxMetrics{published: 2_380_000})
	if r.rounds != 40 || r.rowsPerRound != 500 || r.claim != 20*time.Millisecond || r.publish != 12500*time.Microsecond || r.claimsPerRounds != 1.25 {
		t.Errorf("relay %+v", r)
	}
	// Rounds every 10 ms from workers in parallel: 1.25 claims of 20 ms
	// and a 12.5 ms publish per round keep 3.75 workers busy.
	r.round = 10 * time.Millisecond
	if got := r.busyWorkers(); math.Abs(got-3.75) > 1e-9 {
		t.Errorf("busy workers %v, want 3.75", got)
	}
	if s := r.String(); !strings.Contains(s, "one round every 10") || !strings.Contains(s, "kept 3.8 relay workers busy") {
		t.Errorf("relay summary %q", s)
	}
}

func TestLoopbackHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "localhost": true, "127.0.0.2": true, "/var/run/postgresql": true,
		"10.0.0.1": false, "db.example.com": false, "0.0.0.0": false, "": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
	if _, _, err := checkOutboxDB(context.Background(), "postgres://postgres@db.example.com:5432/test"); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("checkOutboxDB of a remote host: %v, want a loopback error", err)
	}
}

func TestProxyConfig(t *testing.T) {
	t.Parallel()
	wasm := filepath.Join(t.TempDir(), "x.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, plug := range []*proxyPlugin{nil, {name: "x", path: wasm, timeout: pluginTimeout}, {name: "x", path: wasm}} {
		src := proxyConfigText("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", plug)
		if plug == nil {
			src = proxyConfigText("127.0.0.1:1", "", "127.0.0.1:3", nil)
		}
		cfg, err := config.Parse(src, "bench.hcl")
		if err != nil {
			t.Fatalf("config for %+v: %v\n%s", plug, err, src)
		}
		if len(cfg.Routes) != 1 {
			t.Fatalf("config for %+v: routes %+v", plug, cfg.Routes)
		}
		if plug == nil {
			if len(cfg.Plugins) != 0 || len(cfg.Routes[0].Plugins) != 0 || cfg.Admin.Listen != "" {
				t.Errorf("pass-through config has plugins or admin:\n%s", src)
			}
			continue
		}
		if len(cfg.Plugins) != 1 || cfg.Plugins[0].Timeout != plug.timeout || cfg.Plugins[0].Path != wasm ||
			!slices.Equal(cfg.Routes[0].Plugins, []string{"x"}) || cfg.Admin.Listen != "127.0.0.1:2" {
			t.Errorf("config for %+v: plugins %+v, route %+v, admin %q\n%s", plug, cfg.Plugins, cfg.Routes[0], cfg.Admin.Listen, src)
		}
		if got := string(cfg.Plugins[0].Config); got != `{"source":"bench"}` {
			t.Errorf("plugin config %s, want {\"source\":\"bench\"}", got)
		}
	}
}

func TestParsePluginCounters(t *testing.T) {
	t.Parallel()
	const text = `# HELP evproxy_plugin_calls_total Batches processed by each plugin.
# TYPE evproxy_plugin_calls_total counter
evproxy_plugin_calls_total{plugin="header-c"} 42
evproxy_plugin_calls_total{plugin="header-cc"} 1
evproxy_plugin_call_duration_seconds_bucket{plugin="header-c",le="0.001"} 40
evproxy_plugin_call_duration_seconds_sum{plugin="header-c"} 0.25
evproxy_plugin_call_duration_seconds_count{plugin="header-c"} 42
evproxy_plugin_errors_total{kind="init",plugin="header-c"} 0
evproxy_plugin_errors_total{kind="timeout",plugin="header-c"} 2
evproxy_plugin_records_total{plugin="header-c"} 1.2e+06
evproxy_plugin_verdicts_total{action="keep",plugin="header-c"} 5
evproxy_plugin_verdicts_total{action="replace",plugin="header-c"} 1.199995e+06
evproxy_records_total{plugin="header-c"} 7
`
	c, found, err := parsePluginCounters(strings.NewReader(text), "header-c")
	if err != nil || !found {
		t.Fatalf("parse: found %v, err %v", found, err)
	}
	want := pluginCounters{calls: 42, records: 1_200_000, replaced: 1_199_995, errors: 2, timeouts: 2, seconds: 0.25}
	if c != want {
		t.Errorf("counters %+v, want %+v", c, want)
	}
	if _, found, _ := parsePluginCounters(strings.NewReader(text), "enrich"); found {
		t.Error("found counters of a plugin that has none")
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0.11, 2}, {1, 10}, {0, 1}} {
		if got := percentile(d, tc.q); got != tc.want {
			t.Errorf("percentile(1..10, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := median([]float64{3, 1, 2, 10}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
}

func TestWorkloadValues(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 2, 3, 12, 20, 50, 169, 200, 1000} {
		w := newWorkload(size, 4)
		for i := range 1000 {
			r := w.record(i)
			if len(r.Value) != size {
				t.Fatalf("size %d: record %d has a %d-byte value", size, i, len(r.Value))
			}
			if len(r.Key) == 0 {
				t.Fatalf("size %d: record %d has no key", size, i)
			}
			if size < 2 {
				continue
			}
			// A JSON object, as the plugin scenarios need.
			var m map[string]any
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatalf("size %d: record %d is not a JSON object (%v): %s", size, i, err, r.Value)
			}
			if size >= 200 && len(m) != 9 {
				t.Fatalf("size %d: record %d has %d fields, want 9: %s", size, i, len(m), r.Value)
			}
		}
	}
}

func TestSlope(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	var ms []outboxMetrics
	for i := range 10 {
		jitter := float64(i%2) * 300 // the lag's jitter
		ms = append(ms, outboxMetrics{at: t0.Add(time.Duration(i) * time.Second), written: 1000 * float64(i), published: 1000*float64(i) - 500 - jitter})
	}
	w := slope(ms, func(m outboxMetrics) float64 { return m.written })
	p := slope(ms, func(m outboxMetrics) float64 { return m.published })
	if math.Abs(w-1000) > 1e-9 || math.Abs(p/w-1) > 0.01 {
		t.Errorf("slopes written %v, published %v; want 1000 and within 1%% of it", w, p)
	}
	if s := slope(ms[:1], func(m outboxMetrics) float64 { return m.written }); s != 0 {
		t.Errorf("slope of one sample = %v, want 0", s)
	}
}
