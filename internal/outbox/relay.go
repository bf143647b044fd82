package outbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Publisher produces records to Kafka (internal/upstream.Publisher).
type Publisher interface {
	// Publish produces recs and waits for every one. It returns one error
	// per record (nil: acknowledged), or a non-nil error alone when
	// nothing was attempted or the upstream as a whole failed (an outage,
	// or the circuit breaker is open): such failures never count as
	// attempts of the records.
	Publish(ctx context.Context, recs []*kgo.Record) ([]error, error)
	// Available reports false while the upstream is known to be down
	// (circuit breaker open): the relay then claims nothing.
	Available() bool
}

// RetryPolicy is a route's retry policy.
type RetryPolicy struct {
	MaxRetries    int
	RetryDelay    time.Duration
	BackoffFactor float64
	MaxRetryDelay time.Duration
	// Strict makes a record waiting for a retry hold back later records of
	// its (topic, key) (route ordering = "strict").
	Strict bool
}

// Delay is the backoff before the retry that follows attempt n (1-based):
// RetryDelay*BackoffFactor^(n-1), at most MaxRetryDelay, minus up to 20%
// jitter so that records failing together do not retry in lockstep.
func (p RetryPolicy) Delay(n int32) time.Duration {
	d := float64(p.RetryDelay) * math.Pow(max(p.BackoffFactor, 1), float64(max(n-1, 0)))
	if d > float64(p.MaxRetryDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(p.MaxRetryDelay)
	}
	return time.Duration(d * (1 - 0.2*rand.Float64()))
}

// Rejection is a record plugins rejected at relay time.
type Rejection struct {
	Reason, Plugin string
	// Drop discards the record instead of dead-lettering it.
	Drop bool
}

// RowOutcome is what plugins made of one row an application wrote.
type RowOutcome struct {
	// Publish are the records to publish in the row's place (none: the
	// row was dropped or rejected).
	Publish []Message
	// Rejected is set when a plugin rejected the row.
	Rejected *Rejection
}

// RowProcessor runs the plugin chains on rows applications wrote
// (Message.Processed false), once, at relay time.
type RowProcessor interface {
	ProcessRows(ctx context.Context, rows []*Row) ([]RowOutcome, error)
}

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Owner names this relay in lane leases; unique per process.
	Owner string
	// BatchSize is the most rows a worker claims and publishes at once
	// (default 2000).
	BatchSize int
	// BatchBytes bounds a claim's keys, values and headers too (default
	// 16 MiB): a claim stops after the row that reaches it, and always
	// takes at least one row.
	BatchBytes int64
	// Workers relay disjoint sets of the held lanes in parallel (default
	// 4); a key's lane belongs to one worker.
	Workers int
	// PollInterval is how often the relay looks for due rows unprompted.
	PollInterval time.Duration
	// LeaseTTL is the lane lease duration; leases are renewed every third
	// of it.
	LeaseTTL time.Duration
	// PublishTimeout bounds one publish.
	PublishTimeout time.Duration
	// Retention is how long dead letters are kept (0: forever).
	Retention time.Duration
	// DeadLetterTopics produces dead letters to "<topic><DeadLetterSuffix>".
	DeadLetterTopics bool
	DeadLetterSuffix string
	// Policy gives the retry policy of a topic's route.
	Policy func(topic string) RetryPolicy
	// Processor runs plugins on rows applications wrote; nil publishes
	// them as they are.
	Processor RowProcessor
	// SingleProcess skips lane leasing: the store is used by one process
	// only (the embedded store).
	SingleProcess bool
	Logger        zerolog.Logger
	Metrics       *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Relay publishes outbox rows to Kafka: it leases lanes, claims due rows
// in order, publishes them, and records the outcome (sent, retry later, or
// dead letter).
type Relay struct {
	store Store
	pub   Publisher
	cfg   RelayConfig
	// wakes has one channel per worker.
	wakes []chan struct{}
	// renewNow asks the lease loop to renew at once.
	renewNow chan struct{}
	// roundMu: rounds hold it shared, lease renewal exclusively.
	roundMu sync.RWMutex
	deadMu  sync.Mutex
	lanes   atomic.Pointer[[]int32] // held lanes; nil before the first lease
	// leasedAt is when the lanes were last renewed (UnixNano).
	leasedAt atomic.Int64
	// stats of the last round, for tests and status.
	published, deadLettered atomic.Int64
	stopOnce                sync.Once
}

// NewRelay returns a relay over store publishing with pub.
func NewRelay(store Store, pub Publisher, cfg RelayConfig) *Relay {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 2000
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 16 << 20
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.Policy == nil {
		cfg.Policy = func(string) RetryPolicy {
			return RetryPolicy{MaxRetries: 5, RetryDelay: time.Second, BackoffFactor: 2, MaxRetryDelay: 5 * time.Minute, Strict: true}
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner == "" {
		cfg.Owner = "evproxy-" + strconv.FormatInt(rand.Int64(), 36)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	r := &Relay{store: store, pub: pub, cfg: cfg, wakes: make([]chan struct{}, cfg.Workers), renewNow: make(chan struct{}, 1)}
	for i := range r.wakes {
		r.wakes[i] = make(chan struct{}, 1)
	}
	return r
}

// Wake makes the relay look for rows now: evproxy calls it after
// committing rows itself. It never blocks.
func (r *Relay) Wake() {
	for _, w := range r.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Published reports how many records the relay published (not counting
// dead letters) since it started.
func (r *Relay) Published() int64 { return r.published.Load() }

// Run relays until ctx ends. It returns nil then; errors of single rounds
// are logged and retried.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.cfg.SingleProcess {
		all := make([]int32, Lanes)
		for i := range all {
			all[i] = int32(i)
		}
		r.lanes.Store(&all)
		r.leasedAt.Store(time.Now().UnixNano())
		r.cfg.Metrics.setLanes(len(all))
	} else {
		// The first lease before any round.
		r.renewLanes(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.leaseLoop(ctx)
		}()
	}
	if r.store.SupportsListenNotify() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.store.Listen(ctx, r.Wake); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Error().Err(err).Msg("outbox: listening for application writes stopped; relying on poll_interval")
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.housekeeping(ctx)
	}()
	var workers sync.WaitGroup
	for i := range r.wakes {
		workers.Add(1)
		go func() {
			defer workers.Done()
			r.work(ctx, i)
		}()
	}
	workers.Wait()
	r.releaseLanes()
	return nil
}

// work is one relay worker: it relays the held lanes l with
// l % workers == i, one round at a time, until ctx ends. A (topic, key) is
// in one lane, so in one worker: workers never race on a key's order.
func (r *Relay) work(ctx context.Context, i int) {
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		r.roundMu.RLock()
		more, err := r.round(ctx, i)
		r.roundMu.RUnlock()
		if ctx.Err() != nil {
			return
		}
		wait := time.Duration(0)
		switch {
		case errors.Is(err, errLeaseStale):
			// Renew first (the lease loop does it now), then go on.
			select {
			case r.renewNow <- struct{}{}:
			default:
			}
			wait = 100 * time.Millisecond
		case errors.Is(err, errUnavailable):
			// The breaker is open: look again shortly, it half-opens by
			// itself after breaker_timeout.
			wait = min(r.cfg.PollInterval, 100*time.Millisecond)
		case err != nil:
			r.cfg.Logger.Warn().Err(err).Int("worker", i).Msg("outbox relay round failed; retrying")
			wait = min(r.cfg.PollInterval, time.Second)
		case !more:
			wait = r.cfg.PollInterval
		}
		if wait == 0 {
			continue
		}
		poll.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-r.wakes[i]:
		case <-poll.C:
		}
	}
}

// leaseLoop renews the lane leases every third of their TTL, or at once
// when a worker found them too old. Renewal waits for running rounds and
// holds new ones back (roundMu): a lane this relay gives up (to a
// newcomer) has no claimed row in flight, so the new owner cannot publish
// it a second time.
func (r *Relay) leaseLoop(ctx context.Context) {
	t := time.NewTimer(r.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.renewNow:
			if time.Since(time.Unix(0, r.leasedAt.Load())) < time.Second {
				continue // renewed just now: the database may be struggling
			}
		}
		r.roundMu.Lock()
		r.renewLanes(ctx)
		r.roundMu.Unlock()
		r.Wake()
		t.Reset(r.cfg.LeaseTTL / 3)
	}
}

// errLeaseStale is a round skipped because the lane leases are too old to
// cover a publish; the next loop renews them first.
var errLeaseStale = errors.New("outbox: lane leases too old for a publish")

// errUnavailable is a round skipped because the upstream is down.
var errUnavailable = errors.New("outbox: upstream unavailable (circuit breaker open)")

// round claims and publishes one batch. It reports whether a full batch
// was claimed (so there may be more right away).
func (r *Relay) round(ctx context.Context, worker int) (bool, error) {
	held := r.lanes.Load()
	if held == nil {
		return false, nil
	}
	var mine []int32
	for _, l := range *held {
		if int(l)%len(r.wakes) == worker {
			mine = append(mine, l)
		}
	}
	if len(mine) == 0 {
		return false, nil
	}
	lanes := &mine
	if !r.pub.Available() {
		return false, errUnavailable
	}
	if !r.cfg.SingleProcess {
		// Never start a publish that could outlive the lease: another
		// replica could take the lanes and publish the rows again.
		if time.Since(time.Unix(0, r.leasedAt.Load()))+r.cfg.PublishTimeout+time.Second > r.cfg.LeaseTTL {
			return false, errLeaseStale
		}
	}
	m := r.cfg.Metrics
	start := time.Now()
	rows, err := r.store.OutboxClaimBatch(ctx, &OutboxClaimBatchParams{Lanes: *lanes, Now: r.cfg.Now(), Limit: r.cfg.BatchSize, MaxBytes: r.cfg.BatchBytes})
	if err != nil {
		return false, fmt.Errorf("outbox: claim batch: %w", err)
	}
	m.observeClaim(time.Since(start))
	if len(rows) == 0 {
		return false, nil
	}
	// Full: the claim stopped at a bound (rows or bytes), so more rows
	// may be waiting; claim again at once.
	full := len(rows) >= r.cfg.BatchSize || claimBytes(rows) >= r.cfg.BatchBytes

	// Plugins for rows applications wrote.
	outcomes := make([]RowOutcome, len(rows))
	var raw []*Row
	var rawIdx []int
	for i, row := range rows {
		if row.Processed || r.cfg.Processor == nil {
			outcomes[i] = RowOutcome{Publish: []Message{row.Message}}
			continue
		}
		raw = append(raw, row)
		rawIdx = append(rawIdx, i)
	}
	if len(raw) > 0 {
		res, err := r.cfg.Processor.ProcessRows(ctx, raw)
		if err != nil {
			return false, fmt.Errorf("outbox: run plugins: %w", err)
		}
		for j, i := range rawIdx {
			outcomes[i] = res[j]
		}
	}

	// One kgo record per output, remembering its row.
	var recs []*kgo.Record
	var recRow []int
	for i, oc := range outcomes {
		for k := range oc.Publish {
			recs = append(recs, toKgo(&oc.Publish[k]))
			recRow = append(recRow, i)
		}
	}
	var errs []error
	if len(recs) > 0 {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		start = time.Now()
		errs, err = r.pub.Publish(pctx, recs)
		cancel()
		m.observePublish(time.Since(start))
		if err != nil {
			// The upstream failed as a whole (or the breaker is open):
			// the rows stay as they are, no attempt is counted.
			return false, fmt.Errorf("outbox: publish: %w", err)
		}
	}
	rowErr := make([]error, len(rows))
	for k, e := range errs {
		if e != nil && rowErr[recRow[k]] == nil {
			rowErr[recRow[k]] = e
		}
	}
	r.isolate(ctx, outcomes, rowErr)

	now := r.cfg.Now()
	var done OutboxCompleteParams
	var published int
	for i, row := range rows {
		oc := outcomes[i]
		switch e := rowErr[i]; {
		case oc.Rejected != nil && oc.Rejected.Drop:
			done.Sent = append(done.Sent, row.ID)
			m.dropped()
		case oc.Rejected != nil:
			done.Dead = append(done.Dead, OutboxDead{ID: row.ID, Attempts: row.Attempts, Stage: "plugin", Reason: oc.Rejected.Reason, Plugin: oc.Rejected.Plugin, FailedAt: now})
		case e == nil:
			done.Sent = append(done.Sent, row.ID)
			published += len(oc.Publish)
		default:
			if errors.Is(e, context.DeadlineExceeded) {
				e = fmt.Errorf("not acknowledged within outbox.publish_timeout (%s): the cluster kept refusing the record with retriable errors or did not answer", r.cfg.PublishTimeout)
			}
			pol := r.cfg.Policy(row.Topic)
			attempts := row.Attempts + 1
			if !retriable(e) || int(attempts) > pol.MaxRetries {
				done.Dead = append(done.Dead, OutboxDead{ID: row.ID, Attempts: attempts, Stage: "delivery", Reason: e.Error(), FailedAt: now})
				r.cfg.Logger.Warn().Int64("id", row.ID).Str("topic", row.Topic).Int32("attempts", attempts).Err(e).Msg("outbox record dead-lettered")
				continue
			}
			done.Retry = append(done.Retry, OutboxRetry{ID: row.ID, Attempts: attempts, NextAttemptAt: now.Add(pol.Delay(attempts)), Error: e.Error(), Blocks: pol.Strict})
		}
	}
	if err := r.store.OutboxComplete(ctx, &done); err != nil {
		// The records were published but not marked: they are published
		// again next round (duplicates, never loss); ce_id lets consumers
		// de-duplicate.
		return false, fmt.Errorf("outbox: record publish outcome: %w", err)
	}
	r.published.Add(int64(published))
	m.outcome(published, len(done.Retry), len(done.Dead))
	if len(done.Dead) > 0 {
		r.deadLetters(ctx)
	}
	return full, nil
}

// isolate re-publishes, one row at a time and in order, the rows that
// failed with a non-retriable error when several did: a broker refuses a
// whole batch for one record (MESSAGE_TOO_LARGE, INVALID_RECORD), and only
// the record that fails alone is dead-lettered.
func (r *Relay) isolate(ctx context.Context, outcomes []RowOutcome, rowErr []error) {
	var suspects []int
	for i, e := range rowErr {
		if e != nil && !retriable(e) {
			suspects = append(suspects, i)
		}
	}
	if len(suspects) < 2 {
		return
	}
	for _, i := range suspects {
		recs := make([]*kgo.Record, len(outcomes[i].Publish))
		for k := range recs {
			recs[k] = toKgo(&outcomes[i].Publish[k])
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		errs, err := r.pub.Publish(pctx, recs)
		cancel()
		if err != nil {
			rowErr[i] = err // retriable: tried again later
			continue
		}
		rowErr[i] = nil
		for _, e := range errs {
			if e != nil {
				rowErr[i] = e
				break
			}
		}
	}
}

// retriable reports whether a record's publish error may succeed later.
// Non-retriable Kafka errors (record too large, authorization, invalid
// record) dead-letter the record at once.
func retriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return true
}

// deadLetters produces unpublished dead letters to their dead-letter
// topics and marks them published.
func (r *Relay) deadLetters(ctx context.Context) {
	if !r.cfg.DeadLetterTopics {
		return
	}
	// One at a time (workers and housekeeping call it): two would list and
	// produce the same dead letters.
	if !r.deadMu.TryLock() {
		return
	}
	defer r.deadMu.Unlock()
	dls, err := r.store.DeadLetterList(ctx, &DeadLetterListParams{Unpublished: true, Limit: r.cfg.BatchSize})
	if err != nil {
		r.cfg.Logger.Warn().Err(err).Msg("outbox: list dead letters")
		return
	}
	if len(dls) == 0 {
		return
	}
	recs := make([]*kgo.Record, len(dls))
	for i, dl := range dls {
		recs[i] = deadLetterRecord(dl, r.cfg.DeadLetterSuffix)
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	errs, err := r.pub.Publish(pctx, recs)
	cancel()
	if err != nil {
		r.cfg.Logger.Warn().Err(err).Msg("outbox: publish dead letters; retrying later")
		return
	}
	var ids []int64
	for i, e := range errs {
		if e != nil {
			r.cfg.Logger.Warn().Err(e).Int64("dead_letter_id", dls[i].ID).Str("topic", recs[i].Topic).Msg("outbox: dead letter not published to its topic; kept in the dead-letter table, retrying later")
			continue
		}
		ids = append(ids, dls[i].ID)
	}
	if len(ids) > 0 {
		if err := r.store.DeadLetterMarkPublished(ctx, ids); err != nil {
			r.cfg.Logger.Warn().Err(err).Msg("outbox: mark dead letters published")
		}
	}
	r.deadLettered.Add(int64(len(ids)))
}

// deadLetterRecord is the dead-letter topic record of dl (DESIGN §6).
func deadLetterRecord(dl *DeadLetter, suffix string) *kgo.Record {
	rec := toKgo(&dl.Message)
	rec.Topic = dl.Topic + suffix
	rec.Partition = -1
	stage := dl.Stage
	if stage == "" {
		stage = "delivery"
	}
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: "evproxy.error.stage", Value: []byte(stage)},
		kgo.RecordHeader{Key: "evproxy.error.reason", Value: []byte(dl.Reason)},
		kgo.RecordHeader{Key: "evproxy.error.plugin", Value: []byte(dl.Plugin)},
		kgo.RecordHeader{Key: "evproxy.original.topic", Value: []byte(dl.Topic)},
		kgo.RecordHeader{Key: "evproxy.original.partition", Value: []byte(strconv.Itoa(int(dl.Partition)))},
		kgo.RecordHeader{Key: "evproxy.attempts", Value: []byte(strconv.Itoa(int(dl.Attempts)))},
		kgo.RecordHeader{Key: "evproxy.failed.at", Value: []byte(dl.FailedAt.UTC().Format(time.RFC3339Nano))},
		kgo.RecordHeader{Key: "evproxy.dead_letter.id", Value: []byte(strconv.FormatInt(dl.ID, 10))},
	)
	return rec
}

// toKgo converts a message to a franz-go record; it makes sure the record
// carries ce_id.
func toKgo(m *Message) *kgo.Record {
	rec := &kgo.Record{Topic: m.Topic, Partition: m.Partition, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	rec.Headers = make([]kgo.RecordHeader, 0, len(m.Headers)+1)
	hasID := false
	for _, h := range m.Headers {
		if h.Key == "ce_id" {
			hasID = true
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if !hasID && m.EventID != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "ce_id", Value: []byte(m.EventID)})
	}
	return rec
}

func (r *Relay) renewLanes(ctx context.Context) {
	others, err := r.store.LaneOwners(ctx, r.cfg.Owner)
	if err != nil {
		r.cfg.Logger.Warn().Err(err).Msg("outbox: count relay replicas")
		r.expireLanes()
		return
	}
	share := (Lanes + others) / (others + 1) // ceil(Lanes / replicas)
	held, err := r.store.LaneAcquire(ctx, &LaneAcquireParams{Owner: r.cfg.Owner, TTL: r.cfg.LeaseTTL, Max: share})
	if err != nil {
		r.cfg.Logger.Warn().Err(err).Msg("outbox: renew lane leases")
		r.expireLanes()
		return
	}
	r.lanes.Store(&held)
	r.leasedAt.Store(time.Now().UnixNano())
	r.cfg.Metrics.setLanes(len(held))
}

// expireLanes stops claiming once the last successful renewal is older
// than the lease minus one publish: another replica may own the lanes then.
func (r *Relay) expireLanes() {
	if time.Since(time.Unix(0, r.leasedAt.Load())) > r.cfg.LeaseTTL-r.cfg.PublishTimeout {
		empty := []int32{}
		r.lanes.Store(&empty)
		r.cfg.Metrics.setLanes(0)
	}
}

func (r *Relay) releaseLanes() {
	if r.cfg.SingleProcess {
		return
	}
	r.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.store.LaneRelease(ctx, &LaneReleaseParams{Owner: r.cfg.Owner}); err != nil {
			r.cfg.Logger.Warn().Err(err).Msg("outbox: release lanes (they expire by themselves)")
		}
	})
}

// maintainer is a store that needs periodic table maintenance
// (outboxpgx.Store.OutboxMaintain: VACUUM when autovacuum is off).
type maintainer interface {
	OutboxMaintain(ctx context.Context) error
}

// maintainEvery is how often the relay asks the store for maintenance.
const maintainEvery = 10 * time.Second

// housekeeping retries unpublished dead letters, deletes expired ones and
// refreshes the pending gauges, and
// maintains the table (maintainer).
func (r *Relay) housekeeping(ctx context.Context) {
	t := time.NewTicker(max(r.cfg.PollInterval, time.Second))
	defer t.Stop()
	var lastPurge, lastMaintain time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.deadLetters(ctx)
		if r.cfg.Retention > 0 && time.Since(lastPurge) > time.Minute {
			lastPurge = time.Now()
			if n, err := r.store.DeadLetterDeleteBefore(ctx, r.cfg.Now().Add(-r.cfg.Retention)); err != nil {
				r.cfg.Logger.Warn().Err(err).Msg("outbox: delete expired dead letters")
			} else if n > 0 {
				r.cfg.Logger.Info().Int("deleted", n).Msg("outbox: deleted dead letters past retention")
			}
		}
		if m, ok := r.store.(maintainer); ok && time.Since(lastMaintain) >= maintainEvery {
			lastMaintain = time.Now()
			if err := m.OutboxMaintain(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn().Err(err).Msg("outbox: table maintenance")
			}
		}
		if r.cfg.Metrics != nil {
			if st, err := r.store.OutboxStats(ctx, r.cfg.Now()); err == nil {
				r.cfg.Metrics.setStats(st, r.cfg.Now())
			}
		}
	}
}

// claimBytes is what a claim's byte bound counts of rows: keys, values and
// headers as EncodeHeaders stores them.
func claimBytes(rows []*Row) int64 {
	var n int64
	for _, r := range rows {
		n += int64(len(r.Key) + len(r.Value) + encodedHeadersLen(r.Headers))
	}
	return n
}
