package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const topic = "bench"

// brokerMaxMessageBytes is kfake's message.max.bytes: the largest batch the
// broker accepts.
const brokerMaxMessageBytes = 16 << 20

// workload holds pre-generated record keys and values, so that generating
// them costs the producer nothing during a run.
type workload struct {
	keys   [][]byte
	values [][]byte
}

// valuePool is how many distinct values a workload holds: enough that a
// batch rarely repeats a whole value, which would flatter compression.
const valuePool = 1 << 16

var (
	eventTypes = []string{"page_view", "add_to_cart", "checkout", "login", "search", "click", "purchase", "logout"}
	pages      = []string{"/", "/products", "/products/item", "/cart", "/checkout", "/account", "/search", "/help"}
	words      = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"}
)

// newWorkload generates JSON events of exactly size bytes: field names and
// enumerations repeat, ids and numbers are random, as in real event
// streams. Every value of 2 bytes or more is a valid JSON object (the
// plugin scenarios parse them): the fields that fit, then a "note" string
// of words filling the rest (or spaces before the closing brace when not
// even an empty note fits).
func newWorkload(size, nkeys int) *workload {
	rng := rand.New(rand.NewPCG(1, 2))
	w := &workload{keys: make([][]byte, nkeys), values: make([][]byte, valuePool)}
	for i := range w.keys {
		w.keys[i] = fmt.Appendf(nil, "customer-%04d", i)
	}
	ts := int64(1_750_000_000_000)
	for i := range w.values {
		ts += rng.Int64N(50)
		fields := [][]byte{
			fmt.Appendf(nil, `"id":"%016x"`, rng.Uint64()),
			fmt.Appendf(nil, `"type":%q`, eventTypes[rng.IntN(len(eventTypes))]),
			fmt.Appendf(nil, `"user":"u%07d"`, rng.IntN(10_000_000)),
			fmt.Appendf(nil, `"session":"%012x"`, rng.Uint64()>>16),
			fmt.Appendf(nil, `"ts":%d`, ts),
			fmt.Appendf(nil, `"page":%q`, pages[rng.IntN(len(pages))]),
			fmt.Appendf(nil, `"amount":%d.%02d`, rng.IntN(1000), rng.IntN(100)),
			fmt.Appendf(nil, `"ok":%t`, rng.IntN(10) > 0),
		}
		w.values[i] = jsonValue(rng, size, fields)
	}
	return w
}

// jsonValue builds a JSON object of exactly size bytes from the fields that
// fit, in order, and a "note" of random words; sizes below 2 get "0".
func jsonValue(rng *rand.Rand, size int, fields [][]byte) []byte {
	if size < 2 {
		return []byte("0"[:size])
	}
	v := make([]byte, 0, size)
	v = append(v, '{')
	sep := func() int { // bytes a comma before the next member takes
		if len(v) > 1 {
			return 1
		}
		return 0
	}
	for _, f := range fields {
		if len(v)+sep()+len(f)+1 > size {
			break
		}
		if sep() == 1 {
			v = append(v, ',')
		}
		v = append(v, f...)
	}
	const note = `"note":"`
	if room := size - len(v) - sep() - len(note) - 2; room >= 0 { // 2: `"}`
		if sep() == 1 {
			v = append(v, ',')
		}
		v = append(v, note...)
		end := len(v) + room
		for len(v) < end {
			v = append(v, words[rng.IntN(len(words))]...)
			v = append(v, ' ')
		}
		v = append(v[:end], `"}`...)
		return v
	}
	for len(v) < size-1 {
		v = append(v, ' ')
	}
	return append(v, '}')
}

// record returns the i-th record of a run.
func (w *workload) record(i int) *kgo.Record {
	// A multiplicative hash spreads consecutive records over the pools.
	h := uint64(i) * 0x9E3779B97F4A7C15
	return &kgo.Record{
		Key:   w.keys[(h>>40)%uint64(len(w.keys))],
		Value: w.values[(h>>16)%uint64(len(w.values))],
	}
}

// target is where a run's producer connects: a fresh broker, and an evproxy
// in front of it for the evproxy scenarios.
type target struct {
	broker *kfake.Cluster
	proxy  *proxyProc // nil when direct
	addr   string
	// pg makes meters measure PostgreSQL's CPU time apart from the
	// other processes' (the outbox scenarios).
	pg bool
}

// startTarget starts a fresh broker and, when viaProxy, an evproxy in front
// of it running plugin on every record (nil: pass-through).
func (b *bench) startTarget(ctx context.Context, viaProxy bool, plugin *proxyPlugin) (*target, error) {
	c, err := b.startBroker()
	if err != nil {
		return nil, err
	}
	t := &target{broker: c, addr: c.ListenAddrs()[0]}
	if viaProxy {
		if t.proxy, err = startProxy(ctx, b.bin, b.tmp, t.addr, plugin); err != nil {
			c.Close()
			return nil, err
		}
		t.addr = t.proxy.addr
	}
	return t, nil
}

// startBroker starts a fresh kfake broker holding the benchmark topic,
// which acknowledges produce requests without storing them.
func (b *bench) startBroker() (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.BlackholeProduce(),
		kfake.SeedTopics(int32(b.opt.partitions), topic),
		// Enriching plugins make batches larger than the producer wrote
		// them (Go enrich: about 1.5 MiB from 1 MiB), past the default
		// limit of 1 MiB.
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(brokerMaxMessageBytes)}),
	)
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	return c, nil
}

// watch returns ctx cancelled if evproxy exits during the run, so that a
// crash ends the run at once instead of leaving the producer retrying.
// Call stop before stopping the target.
func (t *target) watch(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if t.proxy == nil {
		return ctx, func() { cancel(nil) }
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-t.proxy.exited:
			cancel(fmt.Errorf("evproxy exited during the run (%v):\n%s", t.proxy.err, t.proxy.stderr))
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { close(done) })
		cancel(nil)
	}
}

// usage is the CPU time used during a measurement, in three parts.
type usage struct {
	elapsed time.Duration
	self    time.Duration // this process: producer and kfake
	proxy   time.Duration // evproxy (0 when direct)
	pg      time.Duration // PostgreSQL (0 unless the target measures it)
	other   time.Duration // every other process of the machine
}

func (u usage) cores(d time.Duration) float64 {
	if u.elapsed <= 0 {
		return 0
	}
	return d.Seconds() / u.elapsed.Seconds()
}

// meter measures usage from its creation until stop. Figures it cannot
// read (no /proc) stay 0.
type meter struct {
	t                      *target
	start                  time.Time
	self, proxy, pg, total time.Duration
}

func (t *target) meter() *meter {
	m := &meter{t: t}
	m.self, m.proxy, m.pg, m.total = t.cpuNow()
	m.start = time.Now()
	return m
}

func (m *meter) stop() usage {
	elapsed := time.Since(m.start)
	self, proxy, pg, total := m.t.cpuNow()
	u := usage{elapsed: elapsed, self: self - m.self, proxy: proxy - m.proxy, pg: max(pg-m.pg, 0)}
	u.other = max(total-m.total-u.self-u.proxy-u.pg, 0)
	return u
}

// cpuNow reads this process's, evproxy's, PostgreSQL's (when t.pg) and
// the machine's CPU time.
func (t *target) cpuNow() (self, proxy, pg, total time.Duration) {
	self, _ = cpuTime(os.Getpid())
	if t.proxy != nil {
		proxy, _ = cpuTime(t.proxy.pid())
	}
	if t.pg {
		pg, _, _ = postgresCPU()
	}
	total, _ = machineBusy()
	return self, proxy, pg, total
}

// finish ends a run on t: it calls stopWatch (from t.watch, which returned
// ctx) and stops t. It returns evproxy's peak RSS and the run's outcome:
// err, else the error of stopping t; an err of a run cut short (evproxy
// exited, or the run timed out) also says why.
func (t *target) finish(ctx context.Context, stopWatch context.CancelFunc, err error) (int64, error) {
	cause := context.Cause(ctx) // why the run was cut short, if it was
	stopWatch()
	rss, serr := t.stop()
	switch {
	case err == nil:
		err = serr
	case cause != nil && !errors.Is(err, cause):
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return rss, err
}

// stop stops evproxy, then the broker, and returns evproxy's peak RSS (0
// when direct).
func (t *target) stop() (int64, error) {
	var rss int64
	var err error
	if t.proxy != nil {
		rss, err = peakRSS(t.proxy.pid())
		if err != nil {
			err = fmt.Errorf("read evproxy peak RSS: %w", err)
		}
		if serr := t.proxy.stop(); serr != nil {
			err = serr
		}
	}
	t.broker.Close()
	return rss, err
}

// e2eHook collects produce request round trips (HookBrokerE2E) and bytes
// written while recording is on.
type e2eHook struct {
	recording atomic.Bool
	mu        sync.Mutex
	rtts      []time.Duration
	written   int64
	requests  int64
}

var _ kgo.HookBrokerE2E = (*e2eHook)(nil)

func (h *e2eHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != 0 || !h.recording.Load() || e2e.Err() != nil {
		return
	}
	h.mu.Lock()
	h.rtts = append(h.rtts, e2e.DurationE2E())
	h.written += int64(e2e.BytesWritten)
	h.requests++
	h.mu.Unlock()
}

// firstErr is a shared promise that counts completed records and keeps the
// first error.
type firstErr struct {
	done atomic.Int64
	once sync.Once
	err  atomic.Pointer[error]
}

func (f *firstErr) promise(r *kgo.Record, err error) {
	if err != nil {
		f.once.Do(func() {
			e := fmt.Errorf("produce to partition %d: %w", r.Partition, err)
			f.err.Store(&e)
		})
		return
	}
	f.done.Add(1)
}

func (f *firstErr) error() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// acked returns the first error, or an error if not exactly n records
// were acknowledged.
func (f *firstErr) acked(n int) error {
	if err := f.error(); err != nil {
		return err
	}
	if got := f.done.Load(); got != int64(n) {
		return fmt.Errorf("%d of %d records acknowledged", got, n)
	}
	return nil
}

// produceAll produces records 0 to n-1 of w as fast as the producer goes,
// stopping early once a record failed or ctx is done, and flushes; f
// counts the acknowledgements and keeps the first error.
func produceAll(ctx context.Context, cl *kgo.Client, w *workload, n int, f *firstErr) error {
	for i := 0; i < n && f.error() == nil && ctx.Err() == nil; i++ {
		cl.Produce(ctx, w.record(i), f.promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// pacer offers records at a fixed rate for a duration, paced by a 1 ms
// ticker, and measures each record from Produce to its acknowledgement.
type pacer struct {
	rate   int           // records per second
	dur    time.Duration // how long to offer them
	total  int           // records to offer: rate for dur
	ticker *time.Ticker
	sent   int
	f      firstErr

	mu   sync.Mutex
	lats []time.Duration
}

// newPacer returns a pacer of rate records per second for dur, its ticker
// running; stop it when done.
func newPacer(rate int, dur time.Duration) *pacer {
	total := max(int(float64(rate)*dur.Seconds()), 1)
	return &pacer{rate: rate, dur: dur, total: total, lats: make([]time.Duration, 0, total), ticker: time.NewTicker(time.Millisecond)}
}

func (p *pacer) stop() { p.ticker.Stop() }

func (p *pacer) promise(r *kgo.Record, err error) {
	if err != nil {
		p.f.promise(r, err)
		return
	}
	d := time.Since(r.Timestamp)
	p.mu.Lock()
	p.lats = append(p.lats, d)
	p.mu.Unlock()
}

// offer produces records of w to cl from now on, at the pacer's rate,
// until it offered them all, a record failed, or the duration and some
// slack passed. It returns when it started.
func (p *pacer) offer(ctx context.Context, cl *kgo.Client, w *workload) (time.Time, error) {
	// Every tick issues the records due since the start: bursts of
	// rate/1000 records, more after a late tick, at most 10ms worth.
	maxBurst := max(p.rate/100, 1)
	start := time.Now()
	// Stop offering at duration plus slack even if the producer fell
	// behind; the achieved rate shows it.
	deadline := start.Add(p.dur + p.dur/10 + 100*time.Millisecond)
	for p.sent < p.total && p.f.error() == nil {
		select {
		case <-ctx.Done():
			return start, ctx.Err()
		case <-p.ticker.C:
		}
		now := time.Now()
		if now.After(deadline) {
			break
		}
		due := min(int(float64(p.rate)*now.Sub(start).Seconds()), p.total)
		for n := min(due-p.sent, maxBurst); n > 0; n-- {
			r := w.record(p.sent)
			r.Timestamp = time.Now()
			cl.Produce(ctx, r, p.promise)
			p.sent++
		}
	}
	return start, nil
}

// latencies returns the latencies of the records offered, sorted, or an
// error if not every one of them was acknowledged. Call it after flushing.
func (p *pacer) latencies() ([]time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lats) != p.sent {
		return nil, fmt.Errorf("%d of %d records acknowledged", len(p.lats), p.sent)
	}
	sortDurations(p.lats)
	return p.lats, nil
}

// newProducer returns a kgo producer for the benchmark topic at addr.
func (b *bench) newProducer(addr, codec string, linger time.Duration, hook *e2eHook) (*kgo.Client, error) {
	var c kgo.CompressionCodec
	switch codec {
	case "none":
		c = kgo.NoCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	default:
		return nil, fmt.Errorf("unknown compression %q", codec)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("evproxy-bench"),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchMaxBytes(int32(b.opt.batchMaxBytes)),
		kgo.ProducerBatchCompression(c),
		kgo.MaxBufferedRecords(b.opt.maxBuffered),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
	if hook != nil {
		opts = append(opts, kgo.WithHooks(hook))
	}
	return kgo.NewClient(opts...)
}

// warmUp connects the producer (metadata, producer id, evproxy's upstream
// connection) and produces n records outside the measurement.
func (b *bench) warmUp(ctx context.Context, cl *kgo.Client, n int) error {
	var f firstErr
	for i := range n {
		cl.Produce(ctx, b.work.record(i), f.promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("warm-up flush: %w", err)
	}
	if err := f.error(); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

func fmtCount(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}
