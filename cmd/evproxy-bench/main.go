// Command evproxy-bench measures what evproxy costs a producer: throughput
// and latency through evproxy against the same producer writing directly to
// the broker, from one run, printed as a markdown table (docs/benchmarks.md).
//
//	go run ./cmd/evproxy-bench [-quick] [-records N] [-rounds N] [-rate N] [-duration D] [-plugins=false]
//	    [-outbox=false | -outbox-only] [-drain-duration D] [-drain-rate N]
//
// The broker is franz-go's kfake in this process with BlackholeProduce (it
// acknowledges without storing). evproxy is built from ./cmd/evproxy and runs
// as a separate process, so that its peak RSS (VmHWM) and CPU time can be
// read from /proc. The producer is franz-go's kgo.
//
// # Scenarios
//
// Throughput: -records records of -value-size bytes (JSON-like, compressible,
// keys from a small set) to a topic of -partitions partitions, with explicit
// linger and batch size, direct and through evproxy, uncompressed and lz4.
// The four runs of a round are interleaved (odd rounds reverse the order)
// and each figure is the median over -rounds rounds; ratios are medians of
// the per-round ratios, so both sides of a ratio come from the same round.
//
// Plugins (-plugins, on by default): the uncompressed throughput run
// through evproxy again with one plugin on every record, each with the
// per-call timeout (100ms) and without it ("0s"): header-c
// (plugins/examples/header-c, headers only) and the Go kit's enrich
// (plugins/examples/enrich, a JSON field). Their .wasm is used when it is
// newer than its sources, else built into a temporary directory; a plugin
// whose toolchain is missing is skipped. The runs follow the pass-through
// runs of their round, and each is compared with the round's pass-through
// and direct runs. evproxy's admin server reports the plugin's record and
// verdict counters; a run in which not every record was replaced by the
// plugin fails.
//
// Latency: -rate records per second for -duration with linger 0, paced by a
// ticker issuing small bursts; the latency of a record is the time from its
// Produce call to its promise. The added latency is evproxy minus direct.
//
// Outbox (-outbox, on by default; -outbox-only skips everything else): on
// the PostgreSQL at -outbox-db (loopback only), in a fresh schema per round
// that evproxy migrate creates and the round drops. Ack throughput:
// -outbox-records records of -outbox-value-size bytes over -outbox-keys keys
// through an evproxy whose only route has delivery = "outbox", with the
// relay running and publishing to kfake; then the relay drains what is
// left with no ingest. The baseline is pgx CopyFrom of as many rows with
// the same columns into the same table, -copy-conns connections,
// -copy-tx-rows rows per transaction, synchronous_commit on. Relay drain
// vs ingest: a steady load (-drain-rate, or 75% of the round's ack
// throughput) for -drain-duration, with evproxy's outbox counters and
// gauges sampled every second from its /metrics; drain ÷ ingest, the
// largest lag, and how soon the lag is gone after the load. CPU is split
// between this process, evproxy, PostgreSQL and the rest. When PostgreSQL
// does not answer, the outbox rows are skipped with a note.
//
// Progress goes to stderr, the tables to stdout. The exit status is non-zero
// only when the benchmark could not run; missed targets are reported as
// "fail" in the table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	records       int
	rounds        int
	rate          int
	duration      time.Duration
	partitions    int
	valueSize     int
	keys          int
	linger        time.Duration
	batchMaxBytes int
	maxBuffered   int
	runTimeout    time.Duration
	evproxyBin    string
	quick         bool
	// plugins are the plugin scenarios (-plugins: all of them).
	plugins []scenario
	// outbox are the outbox scenarios' settings (outbox.go).
	outbox outboxOptions
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "evproxy-bench: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("evproxy-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.records, "records", 5_000_000, "records per throughput run")
	fs.IntVar(&o.rounds, "rounds", 1, "rounds of every scenario; figures are medians over rounds")
	fs.IntVar(&o.rate, "rate", 50_000, "records per second in the latency runs")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each latency run")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of the benchmark topic")
	fs.IntVar(&o.valueSize, "value-size", 200, "record value size in bytes")
	fs.IntVar(&o.keys, "keys", 32, "distinct record keys")
	fs.DurationVar(&o.linger, "linger", 5*time.Millisecond, "producer linger in the throughput runs (latency runs use 0)")
	fs.IntVar(&o.batchMaxBytes, "batch-max-bytes", 1<<20, "producer batch size limit (ProducerBatchMaxBytes)")
	fs.IntVar(&o.maxBuffered, "max-buffered", 50_000, "producer buffer limit in records (MaxBufferedRecords)")
	fs.DurationVar(&o.runTimeout, "run-timeout", 15*time.Minute, "upper bound on any single run")
	fs.StringVar(&o.evproxyBin, "evproxy", "", "evproxy binary to run (default: build ./cmd/evproxy of the enclosing module)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: 200k records, 3s latency runs (explicit flags still win)")
	withPlugins := fs.Bool("plugins", true, "also run the plugin scenarios (header-c and Go enrich, with and without the per-call timeout)")
	ob := &o.outbox
	fs.BoolVar(&ob.enabled, "outbox", true, "also run the outbox scenarios (PostgreSQL at -outbox-db): ack throughput vs raw COPY, relay drain vs ingest")
	fs.BoolVar(&ob.only, "outbox-only", false, "run only the outbox scenarios")
	fs.StringVar(&ob.dbURL, "outbox-db", defaultOutboxDB, "PostgreSQL of the outbox scenarios, on a loopback address; each round creates and drops a schema evproxy_bench_*")
	fs.IntVar(&ob.records, "outbox-records", 200_000, "records of the outbox ack throughput run, and rows of the COPY baseline")
	fs.IntVar(&ob.valueSize, "outbox-value-size", 100, "record value size in bytes in the outbox scenarios")
	fs.IntVar(&ob.keys, "outbox-keys", 1000, "distinct record keys in the outbox scenarios")
	fs.DurationVar(&ob.steadyDur, "drain-duration", time.Minute, "length of the steady load of the relay drain scenario")
	fs.IntVar(&ob.steadyRate, "drain-rate", 0, "records/s of the steady load (0: 75% of the round's outbox ack throughput)")
	fs.IntVar(&ob.copyConns, "copy-conns", 4, "connections of the COPY baseline")
	fs.IntVar(&ob.copyTxRows, "copy-tx-rows", 1000, "rows per COPY transaction of the COPY baseline")
	fs.IntVar(&ob.batchSize, "outbox-batch-size", 0, "the relay's batch_size (0: evproxy's default)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *withPlugins && !ob.only {
		o.plugins = pluginScenarios()
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["records"] {
			o.records = 200_000
		}
		if !set["duration"] {
			o.duration = 3 * time.Second
		}
		if !set["drain-duration"] {
			ob.steadyDur = 5 * time.Second
		}
	}
	switch {
	case o.records < 1:
		return o, errors.New("-records must be at least 1")
	case o.rounds < 1:
		return o, errors.New("-rounds must be at least 1")
	case o.rate < 1:
		return o, errors.New("-rate must be at least 1")
	case o.duration <= 0:
		return o, errors.New("-duration must be positive")
	case o.partitions < 1:
		return o, errors.New("-partitions must be at least 1")
	case o.valueSize < 1:
		return o, errors.New("-value-size must be at least 1")
	case o.keys < 1:
		return o, errors.New("-keys must be at least 1")
	case o.linger < 0:
		return o, errors.New("-linger must not be negative")
	case o.batchMaxBytes < 1024:
		return o, errors.New("-batch-max-bytes must be at least 1024")
	case o.maxBuffered < 1:
		return o, errors.New("-max-buffered must be at least 1")
	case o.runTimeout <= 0:
		return o, errors.New("-run-timeout must be positive")
	case ob.only && !ob.enabled:
		return o, errors.New("-outbox-only needs -outbox")
	case ob.records < 1:
		return o, errors.New("-outbox-records must be at least 1")
	case ob.valueSize < 1:
		return o, errors.New("-outbox-value-size must be at least 1")
	case ob.keys < 1:
		return o, errors.New("-outbox-keys must be at least 1")
	case ob.steadyDur < time.Second:
		return o, errors.New("-drain-duration must be at least 1s")
	case ob.steadyRate < 0:
		return o, errors.New("-drain-rate must not be negative")
	case ob.copyConns < 1:
		return o, errors.New("-copy-conns must be at least 1")
	case ob.copyTxRows < 1:
		return o, errors.New("-copy-tx-rows must be at least 1")
	case ob.batchSize < 0 || ob.batchSize > 100_000:
		return o, errors.New("-outbox-batch-size must be between 0 and 100000")
	}
	return o, nil
}

// run runs every scenario and writes the tables to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (*report, error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return nil, err
	}
	return runOptions(ctx, o, stdout, stderr)
}

// runOptions is run with the flags parsed.
func runOptions(ctx context.Context, o options, stdout, stderr io.Writer) (*report, error) {
	tmp, err := os.MkdirTemp("", "evproxy-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := o.evproxyBin
	if bin == "" {
		fmt.Fprintln(stderr, "building evproxy (./cmd/evproxy)...")
		if bin, err = buildEvproxy(ctx, tmp); err != nil {
			return nil, err
		}
	}
	b := &bench{opt: o, bin: bin, tmp: tmp, log: stderr}
	if !o.outbox.only {
		b.work = newWorkload(o.valueSize, o.keys)
	}
	if o.outbox.enabled {
		b.outboxWork = newWorkload(o.outbox.valueSize, o.outbox.keys)
	}
	if len(o.plugins) > 0 {
		b.pluginPaths, b.pluginSkipped = preparePlugins(ctx, o.plugins, tmp, stderr)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, sc := range o.plugins {
			if b.pluginPaths[sc.plugin] != "" {
				b.plugins = append(b.plugins, sc)
			}
		}
	}
	rep, err := b.runAll(ctx)
	if err != nil {
		return nil, err
	}
	rep.write(stdout)
	if rep.outboxErr != nil {
		// The other tables are printed; the outbox scenarios failed.
		return rep, rep.outboxErr
	}
	return rep, nil
}
