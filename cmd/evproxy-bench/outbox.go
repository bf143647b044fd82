package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evproxy/evproxy/internal/outbox"
)

// defaultOutboxDB is the PostgreSQL of the outbox scenarios.
const defaultOutboxDB = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Targets of the outbox scenarios (docs/benchmarks.md).
const (
	// Outbox ack throughput through evproxy over a raw pgx COPY of the
	// same rows into the same table.
	targetOutboxVsCopy = 0.60
	// Relay drain rate over ingest rate during the steady load, judged at
	// the table's precision (two decimals): in a steady state the relay
	// cannot publish more than was written, so a relay that keeps up
	// measures 1.00 give or take the lag's jitter, one that falls behind
	// measures less and its lag grows. The lag must also drain within
	// settleTimeout after the load.
	targetDrainRatio = 1.00
)

const (
	// steadyShare is the steady load's rate as a share of the round's
	// measured ack throughput, unless -drain-rate is given.
	steadyShare = 0.75
	// settleTimeout is how soon after the steady load the lag must be
	// gone for it to count as bounded.
	settleTimeout = 10 * time.Second
	// drainTimeout bounds every wait for the relay to publish a backlog.
	drainTimeout = 3 * time.Minute
	// outboxRoute is the route of the outbox scenarios.
	outboxRoute = `route "bench" {
  topics   = ["bench*"]
  delivery = "outbox"
}
`
)

// outboxOptions are the settings of the outbox scenarios.
type outboxOptions struct {
	enabled    bool
	only       bool // skip every other scenario
	dbURL      string
	records    int // records of the ack throughput run and of the COPY
	valueSize  int
	keys       int
	steadyDur  time.Duration // -drain-duration
	steadyRate int           // -drain-rate; 0: steadyShare of the ack throughput
	copyConns  int
	copyTxRows int
	batchSize  int // the relay's batch_size; 0: evproxy's default
}

// outboxRound is one round of the outbox scenarios: the COPY baseline, the
// ack throughput through evproxy with the relay draining what is left
// afterwards, and the steady load.
type outboxRound struct {
	schema   string
	copy     copyRun
	ack      ackRun
	steady   steadyRun
	proxyRSS int64 // evproxy's peak RSS over the round
}

// copyRun is the raw COPY baseline.
type copyRun struct {
	rows       int
	txs        int
	rowsPerSec float64
	txAvg      time.Duration // mean duration of one COPY transaction
	use        usage
}

// ackRun is the outbox ack throughput run and the drain that follows it.
type ackRun struct {
	rows           int
	rowsPerSec     float64
	rttP50, rttP99 time.Duration // produce request round trips
	requests       int64
	commits        float64 // group commits of the writer during the run
	commitAvg      time.Duration
	published      float64 // rows the relay published during the run
	use            usage
	// backlog is what was committed but not yet published when the last
	// record was acknowledged; the relay then drained it at drainRate
	// with no ingest, in drainTime.
	backlog   int64
	undrained int64 // what was left of it after drainTimeout
	drainRate float64
	drainTime time.Duration
	drainUse  usage
	relay     relayStats // the relay during the drain
}

// steadyRun is the fixed-rate load with the lag sampled every second.
type steadyRun struct {
	rate        int     // requested records/s
	offered     float64 // records/s actually offered
	sent        int
	window      time.Duration // the part of the load the rates are measured over
	ingest      float64       // rows/s committed in the window
	drain       float64       // rows/s published in the window
	p50, p99    time.Duration // record latency: Produce to acknowledgement
	maxLag      int64         // rows committed and not yet published, largest sample
	maxOldest   float64       // evproxy_outbox_oldest_pending_seconds, largest sample
	endLag      int64         // at the end of the load
	drained     bool          // the lag was gone within settleTimeout of the load's end
	drainedIn   time.Duration // from the load's end until the lag was gone (or the wait gave up)
	finalLag    int64         // the lag when the wait gave up, 0 when it was gone
	startLag    int64         // the lag when the load started (left from the ack run)
	lagSeries   []int64       // lag at every one-second sample
	use         usage
	relay       relayStats // the relay during the load
	commitAvg   time.Duration
	rowsPerCmt  float64
	commitCount float64
}

func (s steadyRun) ratio() float64 {
	if s.ingest <= 0 {
		return 0
	}
	return s.drain / s.ingest
}

// relayStats are the relay's rounds over an interval, from its histograms.
type relayStats struct {
	rounds          float64       // publish calls
	rowsPerRound    float64       // rows published per round
	claim, publish  time.Duration // mean time per round
	claimsPerRounds float64       // claims per publishing round (empty claims included)
	// round is the mean time between rounds where the relay ran back to
	// back (its workers run rounds in parallel); 0 when unknown.
	round time.Duration
}

// outboxMetrics are evproxy's outbox metrics at one moment (sums over
// labels).
type outboxMetrics struct {
	at                       time.Time
	written, published       float64
	retried, dead            float64
	pending, oldest          float64 // gauges, refreshed every second by evproxy
	commitSum, commitCount   float64
	claimSum, claimCount     float64
	publishSum, publishCount float64
	hasWritten, hasPublished bool
}

// lag is the rows committed by the proxy and not yet published, from the
// counters (exact at the moment of the scrape, unlike the pending gauge).
func (m outboxMetrics) lag() int64 { return max(int64(m.written-m.published), 0) }

// commits is the writer's commits between a and m, and their mean time.
func (m outboxMetrics) commitsSince(a outboxMetrics) (float64, time.Duration) {
	n := m.commitCount - a.commitCount
	if n <= 0 {
		return 0, 0
	}
	return n, time.Duration((m.commitSum - a.commitSum) / n * float64(time.Second))
}

// relaySince is the relay's work between a and m.
func (m outboxMetrics) relaySince(a outboxMetrics) relayStats {
	var r relayStats
	r.rounds = m.publishCount - a.publishCount
	if r.rounds <= 0 {
		return r
	}
	claims := m.claimCount - a.claimCount
	r.rowsPerRound = (m.published - a.published) / r.rounds
	r.publish = time.Duration((m.publishSum - a.publishSum) / r.rounds * float64(time.Second))
	if claims > 0 {
		r.claim = time.Duration((m.claimSum - a.claimSum) / claims * float64(time.Second))
		r.claimsPerRounds = claims / r.rounds
	}
	return r
}

func (r relayStats) String() string {
	if r.rounds <= 0 {
		return "relay: no rounds"
	}
	s := fmt.Sprintf("relay: %.0f rounds of %.0f rows, claim %s, publish %s per round, %.2f claims per round",
		r.rounds, r.rowsPerRound, fmtDur(r.claim), fmtDur(r.publish), r.claimsPerRounds)
	if r.round > 0 {
		s += fmt.Sprintf("; one round every %s, so claims and publishes kept %.1f relay workers busy on average",
			fmtDur(r.round), r.busyWorkers())
	}
	return s
}

// busyWorkers is how many of the relay's workers (which run rounds in
// parallel) were claiming or publishing on average, when rounds ran back
// to back.
func (r relayStats) busyWorkers() float64 {
	if r.round <= 0 {
		return 0
	}
	return (r.claim.Seconds()*r.claimsPerRounds + r.publish.Seconds()) / r.round.Seconds()
}

// scrapeOutbox reads evproxy's outbox metrics from its admin server.
func scrapeOutbox(ctx context.Context, addr string) (outboxMetrics, error) {
	var m outboxMetrics
	err := readMetrics(ctx, addr, func(r io.Reader) (err error) {
		m, err = parseOutboxMetrics(r)
		return err
	})
	if err != nil {
		return m, err
	}
	if !m.hasWritten || !m.hasPublished {
		return m, errors.New("evproxy metrics have no evproxy_outbox_written_total or evproxy_outbox_published_total (outbox not configured?)")
	}
	m.at = time.Now()
	return m, nil
}

// parseOutboxMetrics parses the Prometheus text format for the outbox
// metrics, summing series over their labels.
func parseOutboxMetrics(r io.Reader) (outboxMetrics, error) {
	var m outboxMetrics
	err := scanMetrics(r, "evproxy_outbox_", nil, func(name, _ string, v float64) {
		switch name {
		case "evproxy_outbox_written_total":
			m.written += v
			m.hasWritten = true
		case "evproxy_outbox_published_total":
			m.published += v
			m.hasPublished = true
		case "evproxy_outbox_retried_total":
			m.retried += v
		case "evproxy_outbox_dead_lettered_total":
			m.dead += v
		case "evproxy_outbox_pending":
			m.pending += v
		case "evproxy_outbox_oldest_pending_seconds":
			m.oldest = v
		case "evproxy_outbox_commit_seconds_sum":
			m.commitSum += v
		case "evproxy_outbox_commit_seconds_count":
			m.commitCount += v
		case "evproxy_outbox_claim_seconds_sum":
			m.claimSum += v
		case "evproxy_outbox_claim_seconds_count":
			m.claimCount += v
		case "evproxy_outbox_publish_seconds_sum":
			m.publishSum += v
		case "evproxy_outbox_publish_seconds_count":
			m.publishCount += v
		}
	})
	return m, err
}

// outboxConfigText is the configuration of an evproxy listening on addr
// whose only route, for the benchmark topic, has outbox delivery into
// schema of the database at dbURL.
func outboxConfigText(addr, admin, broker, dbURL, schema string, batchSize int) []byte {
	b := fmt.Appendf(nil, proxyConfig, addr, admin, broker)
	b = fmt.Appendf(b, "outbox {\n  database_url = %q\n  schema       = %q\n", dbURL, schema)
	if batchSize > 0 {
		b = fmt.Appendf(b, "  batch_size   = %d\n", batchSize)
	}
	b = append(b, "}\n"...)
	return append(b, outboxRoute...)
}

// checkOutboxDB reports why the outbox scenarios cannot run against dbURL:
// not a loopback address, or unreachable. It also returns the server's
// durability settings and a warning about settings that skew the figures,
// for the report.
func checkOutboxDB(ctx context.Context, dbURL string) (settings, warning string, err error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return "", "", fmt.Errorf("-outbox-db: %w", err)
	}
	if !loopbackHost(cfg.Host) {
		return "", "", fmt.Errorf("-outbox-db host %q is not a loopback address (the benchmark only connects to this machine)", cfg.Host)
	}
	for _, fb := range cfg.Fallbacks {
		if !loopbackHost(fb.Host) {
			return "", "", fmt.Errorf("-outbox-db fallback host %q is not a loopback address", fb.Host)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", "", fmt.Errorf("PostgreSQL unreachable (%s): %w", redactURL(dbURL), err)
	}
	defer conn.Close(context.Background())
	var version, syncCommit, fsync, autovacuum string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('synchronous_commit'),
		current_setting('fsync'), current_setting('autovacuum')`).Scan(&version, &syncCommit, &fsync, &autovacuum)
	if err != nil {
		return "", "", fmt.Errorf("PostgreSQL (%s): %w", redactURL(dbURL), err)
	}
	if autovacuum == "off" {
		warning = "autovacuum is off on this server: nothing ANALYZEs or vacuums the outbox table during the run, so the relay's " +
			"claim keeps the plan PostgreSQL cached for it first, good or bad, and deleted rows pile up (docs/benchmarks.md)."
	}
	return fmt.Sprintf("PostgreSQL %s, synchronous_commit %s, fsync %s, autovacuum %s", version, syncCommit, fsync, autovacuum), warning, nil
}

// loopbackHost reports whether host is a loopback address, localhost or a
// Unix socket directory.
func loopbackHost(host string) bool {
	if host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "(database URL)"
}

// outboxRounds runs the outbox scenarios for every round; an error ends
// them, and the rounds that completed are kept.
func (b *bench) outboxRounds(ctx context.Context) ([]outboxRound, error) {
	var out []outboxRound
	for round := range b.opt.rounds {
		r, err := b.outboxRound(ctx, round)
		if err != nil {
			return out, fmt.Errorf("round %d, outbox: %w", round+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// outboxRound runs one round in a fresh schema, dropped at the end: even
// rounds COPY first, odd rounds run evproxy first.
func (b *bench) outboxRound(ctx context.Context, round int) (res outboxRound, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, b.opt.runTimeout, errRunTimeout)
	defer cancel()
	o := b.opt.outbox
	res.schema = fmt.Sprintf("evproxy_bench_%08x", rand.Uint32())
	ports, err := freePorts(2)
	if err != nil {
		return res, fmt.Errorf("pick ports for evproxy: %w", err)
	}
	addr, admin := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	// The broker's address goes into the configuration, so it starts
	// first; the COPY runs while it idles.
	c, err := b.startBroker()
	if err != nil {
		return res, err
	}
	t := &target{broker: c, addr: c.ListenAddrs()[0], pg: true}
	brokerClosed := false
	defer func() {
		if !brokerClosed {
			c.Close()
		}
	}()
	cfgPath := filepath.Join(b.tmp, fmt.Sprintf("evproxy-outbox-%d.hcl", ports[0]))
	if err := os.WriteFile(cfgPath, outboxConfigText(addr, admin, t.addr, o.dbURL, res.schema, o.batchSize), 0o600); err != nil {
		return res, err
	}
	defer func() {
		if derr := dropSchema(o.dbURL, res.schema); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if err := b.migrateOutbox(ctx, cfgPath); err != nil {
		return res, err
	}
	fmt.Fprintf(b.log, "round %d/%d  outbox      schema %s created (evproxy migrate)\n", round+1, b.opt.rounds, res.schema)

	copyFirst := round%2 == 0
	if copyFirst {
		if res.copy, err = b.copyBaseline(ctx, res.schema, round); err != nil {
			return res, err
		}
	}
	p, err := launchProxy(ctx, b.bin, cfgPath, addr, admin, 30*time.Second)
	if err != nil {
		return res, err
	}
	t.proxy, t.addr = p, addr
	res.ack, res.steady, res.proxyRSS, err = b.outboxProxyRuns(ctx, t, round)
	brokerClosed = true // t.stop closed it
	if err != nil {
		return res, err
	}
	if !copyFirst {
		if err := truncateOutbox(ctx, o.dbURL, res.schema); err != nil {
			return res, err
		}
		if res.copy, err = b.copyBaseline(ctx, res.schema, round); err != nil {
			return res, err
		}
	}
	return res, nil
}

// migrateOutbox creates the schema with evproxy's own migrations.
func (b *bench) migrateOutbox(ctx context.Context, cfgPath string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, "migrate", "-c", cfgPath)
	cmd.SysProcAttr = childAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("evproxy migrate: %w\n%s", err, tail(string(out), 2000))
	}
	return nil
}

// dropSchema drops the benchmark's schema, whether or not the run was
// cancelled.
func dropSchema(dbURL, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}

// truncateOutbox empties the outbox table (evproxy must be stopped).
func truncateOutbox(ctx context.Context, dbURL, schema string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("truncate %s.outbox: %w", schema, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "TRUNCATE "+pgx.Identifier{schema, "outbox"}.Sanitize()); err != nil {
		return fmt.Errorf("truncate %s.outbox: %w", schema, err)
	}
	return nil
}

// copyColumns are the outbox columns evproxy's writer fills for a produced
// record (outboxpgx sqlInsertMany; deliver_at takes its default, now()).
var copyColumns = []string{"ce_id", "topic", "partition", "key", "value", "headers", "ts", "priority", "processed"}

// copyRows are n rows as evproxy writes the records of the benchmark's
// producer: a UUIDv7 ce_id, also as the only header, the workload's keys
// and values, priority 0, processed.
func copyRows(w *workload, n, partitions int) [][]any {
	rows := make([][]any, n)
	ts := time.Now().Truncate(time.Millisecond)
	for i := range rows {
		r := w.record(i)
		id := outbox.NewEventID()
		h := make([]byte, 0, 8+len(outbox.HeaderEventID)+len(id))
		h = binary.BigEndian.AppendUint32(h, uint32(len(outbox.HeaderEventID)))
		h = append(h, outbox.HeaderEventID...)
		h = binary.BigEndian.AppendUint32(h, uint32(len(id)))
		h = append(h, id...)
		rows[i] = []any{id, topic, int32(i % partitions), r.Key, r.Value, h, ts, int32(0), true}
	}
	return rows
}

// copyBaseline COPYs opt.outbox.records rows into schema's outbox table
// with copyConns connections, each COPY of copyTxRows rows its own
// transaction with synchronous_commit on, then empties the table again.
// Each connection first COPYs one transaction outside the measurement.
func (b *bench) copyBaseline(ctx context.Context, schema string, round int) (res copyRun, err error) {
	o := b.opt.outbox
	conns := make([]*pgx.Conn, o.copyConns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.Background())
			}
		}
	}()
	for i := range conns {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conns[i], err = pgx.Connect(cctx, o.dbURL)
		cancel()
		if err != nil {
			return res, fmt.Errorf("COPY baseline: connect: %w", err)
		}
		// Durable commits whatever the server's default.
		if _, err := conns[i].Exec(ctx, "SET synchronous_commit = on"); err != nil {
			return res, fmt.Errorf("COPY baseline: %w", err)
		}
	}
	table := pgx.Identifier{schema, "outbox"}
	warm := copyRows(b.outboxWork, o.copyConns*min(o.copyTxRows, o.records), b.opt.partitions)
	rows := copyRows(b.outboxWork, o.records, b.opt.partitions)
	copyChunk := func(c *pgx.Conn, rs [][]any) error {
		n, err := c.CopyFrom(ctx, table, copyColumns, pgx.CopyFromRows(rs))
		if err == nil && n != int64(len(rs)) {
			err = fmt.Errorf("COPY wrote %d of %d rows", n, len(rs))
		}
		return err
	}
	per := len(warm) / o.copyConns
	for i, c := range conns {
		if err := copyChunk(c, warm[i*per:(i+1)*per]); err != nil {
			return res, fmt.Errorf("COPY baseline warm-up: %w", err)
		}
	}

	res.rows = o.records
	res.txs = (o.records + o.copyTxRows - 1) / o.copyTxRows
	var (
		next    atomic.Int64
		txNanos atomic.Int64
		wg      sync.WaitGroup
		errs    = make([]error, len(conns))
	)
	m := (&target{pg: true}).meter()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= res.txs {
					return
				}
				lo, hi := k*o.copyTxRows, min((k+1)*o.copyTxRows, o.records)
				start := time.Now()
				if err := copyChunk(c, rows[lo:hi]); err != nil {
					errs[i] = err
					return
				}
				txNanos.Add(int64(time.Since(start)))
			}
		}()
	}
	wg.Wait()
	res.use = m.stop()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return res, fmt.Errorf("COPY baseline: %w", err)
	}
	var count int64
	if err := conns[0].QueryRow(ctx, "SELECT count(*) FROM "+table.Sanitize()).Scan(&count); err != nil {
		return res, fmt.Errorf("COPY baseline: count: %w", err)
	}
	if want := int64(len(warm) + len(rows)); count != want {
		return res, fmt.Errorf("COPY baseline: %d rows in the table, want %d", count, want)
	}
	if _, err := conns[0].Exec(ctx, "TRUNCATE "+table.Sanitize()); err != nil {
		return res, fmt.Errorf("COPY baseline: %w", err)
	}
	res.rowsPerSec = float64(res.rows) / res.use.elapsed.Seconds()
	res.txAvg = time.Duration(txNanos.Load() / int64(res.txs))
	fmt.Fprintf(b.log, "round %d/%d  outbox      %-28s %12s rows/s  %d transactions of %d rows on %d connections, %s each%s\n",
		round+1, b.opt.rounds, "raw pgx COPY", fmtCount(res.rowsPerSec), res.txs, o.copyTxRows, o.copyConns, fmtDur(res.txAvg),
		outboxCPUNote(res.use, false))
	return res, nil
}

// outboxProxyRuns runs, against the evproxy of t, the ack throughput run,
// the drain of its backlog and the steady load; then stops t.
func (b *bench) outboxProxyRuns(ctx context.Context, t *target, round int) (ack ackRun, st steadyRun, rss int64, err error) {
	ctx, stopWatch := t.watch(ctx)
	defer func() { rss, err = t.finish(ctx, stopWatch, err) }()
	admin := t.proxy.admin
	if err := waitOutboxReady(ctx, admin); err != nil {
		return ack, st, 0, err
	}
	hook := &e2eHook{}
	cl, err := b.newProducer(t.addr, "none", b.opt.linger, hook)
	if err != nil {
		return ack, st, 0, err
	}
	defer cl.Close()
	// Warm-up: connections, producer id, the store's pool, the relay's
	// lanes; then wait until the relay published it.
	if err := produceN(ctx, cl, b.outboxWork, min(20_000, max(b.opt.outbox.records/20, 100))); err != nil {
		return ack, st, 0, fmt.Errorf("warm-up: %w", err)
	}
	if _, err := waitDrained(ctx, admin, drainTimeout); err != nil {
		return ack, st, 0, fmt.Errorf("warm-up: %w", err)
	}

	if ack, err = b.outboxAck(ctx, t, cl, hook); err != nil {
		return ack, st, 0, err
	}
	fmt.Fprintf(b.log, "round %d/%d  outbox      %-28s %12s rows/s  %6d requests, request p50 %s p99 %s, %.0f commits of %.0f rows, %s each; relay published %s rows meanwhile%s\n",
		round+1, b.opt.rounds, "evproxy, outbox route", fmtCount(ack.rowsPerSec), ack.requests, fmtDur(ack.rttP50), fmtDur(ack.rttP99),
		ack.commits, float64(ack.rows)/max(ack.commits, 1), fmtDur(ack.commitAvg), fmtCount(ack.published),
		outboxCPUNote(ack.use, true))
	left := ""
	if ack.undrained > 0 {
		left = fmt.Sprintf(" (NOT drained: %s rows left)", fmtCount(float64(ack.undrained)))
	}
	fmt.Fprintf(b.log, "round %d/%d  outbox      %-28s %12s rows/s  backlog of %s rows drained in %s%s; %s%s\n",
		round+1, b.opt.rounds, "relay drain, no ingest", fmtCount(ack.drainRate), fmtCount(float64(ack.backlog)), ack.drainTime.Round(time.Millisecond),
		left, ack.relay, outboxCPUNote(ack.drainUse, true))

	rate := b.opt.outbox.steadyRate
	if rate == 0 {
		rate = max(int(steadyShare*ack.rowsPerSec)/100*100, 100)
	}
	if st, err = b.outboxSteady(ctx, t, cl, rate); err != nil {
		return ack, st, 0, err
	}
	drained := fmt.Sprintf("drained %s after the load", st.drainedIn.Round(time.Millisecond))
	switch {
	case st.finalLag > 0:
		drained = fmt.Sprintf("NOT drained: %d rows left %s after the load", st.finalLag, st.drainedIn.Round(time.Millisecond))
	case !st.drained:
		drained = fmt.Sprintf("NOT drained within %s of the load's end (after %s)", settleTimeout, st.drainedIn.Round(time.Millisecond))
	}
	fmt.Fprintf(b.log, "round %d/%d  outbox      %-28s %12s rec/s offered, ingest %s rows/s, drain %s rows/s (%.3f×) over %s; record p50 %s p99 %s; lag max %s rows, oldest pending max %.1f s, %s rows at the end, %s; %.0f commits of %.0f rows, %s each; %s%s\n",
		round+1, b.opt.rounds, "steady load", fmtCount(st.offered), fmtCount(st.ingest), fmtCount(st.drain), st.ratio(), st.window.Round(time.Millisecond),
		fmtDur(st.p50), fmtDur(st.p99), fmtCount(float64(st.maxLag)), st.maxOldest, fmtCount(float64(st.endLag)), drained,
		st.commitCount, st.rowsPerCmt, fmtDur(st.commitAvg), st.relay, outboxCPUNote(st.use, true))
	if st.startLag > 0 {
		fmt.Fprintf(b.log, "round %d/%d  outbox      the steady load started with %s rows left from the ack run\n", round+1, b.opt.rounds, fmtCount(float64(st.startLag)))
	}
	fmt.Fprintf(b.log, "round %d/%d  outbox      lag (rows) every second: %v\n", round+1, b.opt.rounds, st.lagSeries)
	return ack, st, 0, nil
}

// waitOutboxReady waits until evproxy's /readyz reports the outbox ready.
func waitOutboxReady(ctx context.Context, admin string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+admin+"/readyz", nil)
		if err != nil {
			cancel()
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
		} else {
			last = err.Error()
		}
		cancel()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("evproxy not ready after 30s: %s", last)
}

// errNotDrained is a backlog the relay did not publish within the time
// allowed.
var errNotDrained = errors.New("relay did not publish the backlog in time")

// waitDrained polls evproxy's counters until every committed row was
// published, for at most timeout; it returns the last scrape (taken when
// the lag was first seen at zero) or errNotDrained with the last scrape.
func waitDrained(ctx context.Context, admin string, timeout time.Duration) (outboxMetrics, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := scrapeOutbox(ctx, admin)
		if err != nil {
			return m, err
		}
		if m.lag() == 0 {
			return m, nil
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("%w: %d rows committed but not published after %s", errNotDrained, m.lag(), timeout)
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// produceN produces n records of w and waits for all of them.
func produceN(ctx context.Context, cl *kgo.Client, w *workload, n int) error {
	var f firstErr
	if err := produceAll(ctx, cl, w, n, &f); err != nil {
		return err
	}
	return f.acked(n)
}

// outboxAck produces opt.outbox.records records as fast as the producer
// goes, with the relay running, then measures the relay draining what it
// had not published yet.
func (b *bench) outboxAck(ctx context.Context, t *target, cl *kgo.Client, hook *e2eHook) (res ackRun, err error) {
	admin := t.proxy.admin
	n := b.opt.outbox.records
	before, err := scrapeOutbox(ctx, admin)
	if err != nil {
		return res, err
	}
	var f firstErr
	hook.recording.Store(true)
	m := t.meter()
	if err := produceAll(ctx, cl, b.outboxWork, n, &f); err != nil {
		return res, err
	}
	res.use = m.stop()
	hook.recording.Store(false)
	after, err := scrapeOutbox(ctx, admin)
	if err != nil {
		return res, err
	}
	if err := f.acked(n); err != nil {
		return res, err
	}
	if w := after.written - before.written; w != float64(n) {
		return res, fmt.Errorf("evproxy committed %.0f rows for %d acknowledged records", w, n)
	}
	res.rows = n
	res.rowsPerSec = float64(n) / res.use.elapsed.Seconds()
	res.commits, res.commitAvg = after.commitsSince(before)
	res.published = after.published - before.published
	hook.mu.Lock()
	res.requests = hook.requests
	sortDurations(hook.rtts)
	res.rttP50, res.rttP99 = percentile(hook.rtts, 0.50), percentile(hook.rtts, 0.99)
	hook.rtts, hook.requests, hook.written = nil, 0, 0
	hook.mu.Unlock()

	// The relay drains the backlog with nothing else to do.
	res.backlog = after.lag()
	dm := t.meter()
	// A relay too slow to drain it in drainTimeout is a result, not a
	// failure: the rate is what it published meanwhile, and the steady
	// load starts with the rest.
	end, err := waitDrained(ctx, admin, drainTimeout)
	res.drainUse = dm.stop()
	if err != nil && !errors.Is(err, errNotDrained) {
		return res, fmt.Errorf("drain after the ack run: %w", err)
	}
	res.undrained = end.lag()
	if res.backlog > 0 {
		res.drainTime = end.at.Sub(after.at)
		res.drainRate = (end.published - after.published) / max(res.drainTime.Seconds(), 1e-3)
		res.relay = end.relaySince(after)
		if res.relay.rounds > 0 {
			res.relay.round = time.Duration(float64(res.drainTime) / res.relay.rounds)
		}
	}
	return res, nil
}

// outboxSteady offers rate records per second for opt.outbox.steadyDur,
// sampling the relay's lag every second, then waits for the lag to drain.
func (b *bench) outboxSteady(ctx context.Context, t *target, cl *kgo.Client, rate int) (res steadyRun, err error) {
	admin := t.proxy.admin
	dur := b.opt.outbox.steadyDur
	res.rate = rate
	base, err := scrapeOutbox(ctx, admin)
	if err != nil {
		return res, err
	}
	res.startLag = base.lag()

	// Sample the counters and gauges every second until stopped.
	var (
		smu       sync.Mutex
		samples   []outboxMetrics
		scrapeErr error
	)
	stopSampling := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			s, err := scrapeOutbox(ctx, admin)
			smu.Lock()
			if err != nil {
				scrapeErr = err
			} else {
				samples = append(samples, s)
			}
			smu.Unlock()
		}
	}()
	stopSampler := func() {
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
		}
		wg.Wait()
	}
	defer stopSampler()

	pace := newPacer(rate, dur)
	defer pace.stop()
	m := t.meter()
	start, err := pace.offer(ctx, cl, b.outboxWork)
	if err != nil {
		return res, err
	}
	loadEnd := time.Now()
	res.use = m.stop()
	end, err := scrapeOutbox(ctx, admin)
	if err != nil {
		return res, err
	}
	if err := cl.Flush(ctx); err != nil {
		return res, fmt.Errorf("flush: %w", err)
	}
	if err := pace.f.error(); err != nil {
		return res, err
	}
	sent := pace.sent
	res.sent = sent
	res.offered = float64(sent) / loadEnd.Sub(start).Seconds()
	res.endLag = end.lag()

	// Wait for the lag to drain: within settleTimeout counts as bounded;
	// wait up to drainTimeout in all to say how long it took, and
	// report what is left after that.
	final, err := waitDrained(ctx, admin, drainTimeout)
	if err != nil && !errors.Is(err, errNotDrained) {
		return res, fmt.Errorf("after the steady load: %w", err)
	}
	stopSampler()
	res.finalLag = final.lag()
	res.drainedIn = max(final.at.Sub(loadEnd), 0)
	res.drained = res.finalLag == 0 && res.drainedIn <= settleTimeout
	if w := final.written - base.written; w != float64(sent) {
		return res, fmt.Errorf("evproxy committed %.0f rows for %d acknowledged records", w, sent)
	}

	lats, err := pace.latencies()
	if err != nil {
		return res, err
	}
	res.p50, res.p99 = percentile(lats, 0.50), percentile(lats, 0.99)

	smu.Lock()
	defer smu.Unlock()
	if scrapeErr != nil {
		return res, scrapeErr
	}
	// The window skips the ramp at the start (the first fifth, at most
	// 5 s) and ends with the load. The rates are least-squares slopes
	// of the cumulative counters over the samples in it, so that the
	// lag's jitter at the window's two ends weighs less than in a
	// difference of two samples.
	skip := min(5*time.Second, dur/5)
	var win []outboxMetrics
	for _, s := range samples {
		if s.at.Sub(start) >= skip && s.at.Before(end.at) {
			win = append(win, s)
		}
	}
	win = append(win, end)
	if len(win) < 3 {
		win = []outboxMetrics{base, end}
	}
	res.window = end.at.Sub(win[0].at)
	res.ingest = slope(win, func(m outboxMetrics) float64 { return m.written })
	res.drain = slope(win, func(m outboxMetrics) float64 { return m.published })
	res.maxLag = end.lag()
	for _, s := range samples {
		res.maxLag = max(res.maxLag, s.lag())
		res.maxOldest = max(res.maxOldest, s.oldest)
		if !s.at.After(loadEnd) {
			res.lagSeries = append(res.lagSeries, s.lag())
		}
	}
	res.relay = end.relaySince(base)
	res.commitCount, res.commitAvg = end.commitsSince(base)
	if res.commitCount > 0 {
		res.rowsPerCmt = (end.written - base.written) / res.commitCount
	}
	return res, nil
}

// outboxCPUNote is the CPU split of an outbox run, for the progress log.
func outboxCPUNote(u usage, proxy bool) string {
	s := fmt.Sprintf("  cores: bench %.2f", u.cores(u.self))
	if proxy {
		s += fmt.Sprintf(", evproxy %.2f", u.cores(u.proxy))
	}
	return s + fmt.Sprintf(", postgres %.2f, others %.2f", u.cores(u.pg), u.cores(u.other))
}

// slope is the least-squares slope of f over the samples' times, per
// second; 0 with fewer than two distinct times.
func slope(ms []outboxMetrics, f func(outboxMetrics) float64) float64 {
	if len(ms) < 2 {
		return 0
	}
	t0 := ms[0].at
	var n, sx, sy, sxx, sxy float64
	for _, m := range ms {
		x, y := m.at.Sub(t0).Seconds(), f(m)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	d := n*sxx - sx*sx
	if d <= 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
