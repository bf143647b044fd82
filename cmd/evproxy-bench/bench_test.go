package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the whole benchmark with tiny numbers so that the tool
// keeps working: every row is printed and every ratio is positive. It
// checks no performance figure.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds evproxy and runs it as a process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	rep, err := run(ctx, []string{"-quick", "-records", "20000", "-rate", "10000", "-duration", "1s"}, &out, &log)
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
			sc := scenario{via, codec}
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
	if t.Failed() {
		t.Logf("progress:\n%s", log.String())
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
	for _, size := range []int{1, 2, 50, 200, 1000} {
		w := newWorkload(size, 4)
		for i := range 1000 {
			r := w.record(i)
			if len(r.Value) != size {
				t.Fatalf("size %d: record %d has a %d-byte value", size, i, len(r.Value))
			}
			if len(r.Key) == 0 {
				t.Fatalf("size %d: record %d has no key", size, i)
			}
		}
	}
}
