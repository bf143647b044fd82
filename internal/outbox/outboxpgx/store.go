package outboxpgx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evproxy/evproxy/internal/outbox"
)

// DefaultSchema is the schema of the outbox tables unless WithSchema says
// otherwise. Applications call DefaultSchema + ".publish(...)".
const DefaultSchema = "evproxy"

// Option configures New.
type Option func(*options)

type options struct {
	schema string
}

// WithSchema puts the outbox in the given schema instead of "evproxy" (for
// tests, or two outboxes in one database). The name must be a lower-case
// identifier of at most 56 bytes ([a-z_][a-z0-9_]*), so that the
// notification channel "<schema>_outbox" is an identifier too; New
// rejects others.
func WithSchema(name string) Option {
	return func(o *options) { o.schema = name }
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,55}$`)

// Store is the PostgreSQL outbox store: an outbox.Store over a pgx pool.
// It is safe for concurrent use.
type Store struct {
	executor
	pool   *pgxpool.Pool
	schema string
	maint  maintenance
}

var _ outbox.Store = (*Store)(nil)

// New connects a pool to the database at url (a PostgreSQL URL or
// key=value string, including pool_* settings). It does not connect yet,
// so it succeeds while the database is down; Ping checks reachability. It
// does not migrate: call Migrate.
func New(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{schema: DefaultSchema}
	for _, opt := range opts {
		opt(&o)
	}
	if !schemaName.MatchString(o.schema) {
		return nil, fmt.Errorf("outboxpgx: schema name %q is not a lower-case identifier of at most 56 bytes", o.schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("outboxpgx: parse database url: %w", err)
	}
	// The outbox is a queue table: it fills and drains faster than
	// autovacuum refreshes its statistics, and with stale statistics the
	// planner prefers a sequential scan plus sort over the claim index
	// (measured: 400 ms instead of 25 ms per claim at 100k pending rows).
	// And the claim query's cost estimate crosses jit_above_cost, where
	// JIT compilation took 2.5 s per claim on a 2-core machine. Neither
	// helps any query here, so both are off for evproxy's connections.
	// pgx prepares statements; after five runs PostgreSQL may switch to a
	// generic plan built while the table was nearly empty (estimated 1
	// row), which joined the claim's key probes in a nested loop: claims
	// went from 10 ms to 500 ms for the life of the connection. Custom
	// plans are always planned with the current parameters.
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	cfg.ConnConfig.RuntimeParams["enable_seqscan"] = "off"
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	if !strings.Contains(url, "pool_max_conns") {
		// The writer commits on 4 connections at once, the relay and
		// the commands need theirs: more than pgxpool's default of 4.
		cfg.MaxConns = 10
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrapErr("connect", err)
	}
	// No ping: New succeeds while the database is down, so evproxy can
	// start, serve direct routes and answer retriable errors on outbox
	// routes until it is back. Ping and Migrate report reachability.
	return &Store{
		executor: executor{db: pool, q: newQueries(o.schema)},
		pool:     pool,
		schema:   o.schema,
	}, nil
}

// Schema is the schema of the store's tables.
func (s *Store) Schema() string { return s.schema }

// Pool is the store's connection pool, for callers that begin their own
// transactions (see Tx).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Tx returns an Executor running its queries in tx, the caller's
// transaction: what it writes commits or rolls back with tx. Every method
// is one statement, so each is all or nothing within tx too. The Executor
// must not be used after tx ends.
func (s *Store) Tx(tx pgx.Tx) outbox.Executor {
	return &executor{db: tx, q: s.q}
}

// Name is "postgres".
func (s *Store) Name() string { return "postgres" }

// SupportsListenNotify is true: publish() notifies.
func (s *Store) SupportsListenNotify() bool { return true }

// Ping checks the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	return wrapErr("ping", s.pool.Ping(ctx))
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() { s.pool.Close() }

// dbtx is what executor needs of a pool or a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// executor implements outbox.Executor over a pool or a transaction.
type executor struct {
	db dbtx
	q  *queries
}

var _ outbox.Executor = (*executor)(nil)

// ms truncates t to the millisecond: the precision the stores keep.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

// tstz is t as a timestamptz parameter, NULL when zero.
func tstz(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: ms(t), Valid: true}
}

// OutboxInsertMany inserts the messages in one statement; see
// outbox.Executor. It does not notify listeners (the relay inserting rows
// knows of them).
func (e *executor) OutboxInsertMany(ctx context.Context, p *outbox.OutboxInsertManyParams) (int, error) {
	n := len(p.Messages)
	if n == 0 {
		return 0, nil
	}
	var (
		ceIDs      = make([]string, n)
		topics     = make([]string, n)
		partitions = make([]int32, n)
		keys       = make([][]byte, n)
		values     = make([][]byte, n)
		headers    = make([][]byte, n)
		tss        = make([]pgtype.Timestamptz, n)
		deliverAts = make([]pgtype.Timestamptz, n)
		priorities = make([]int32, n)
		processed  = make([]bool, n)
	)
	generated := true
	for _, m := range p.Messages {
		generated = generated && m.Generated && m.EventID != ""
	}
	if generated {
		return e.copyMany(ctx, p.Messages)
	}
	for i, m := range p.Messages {
		ceIDs[i], topics[i], partitions[i] = m.EventID, m.Topic, m.Partition
		keys[i], values[i], headers[i] = m.Key, m.Value, outbox.EncodeHeaders(m.Headers)
		tss[i], deliverAts[i] = tstz(m.Timestamp), tstz(m.DeliverAt)
		priorities[i], processed[i] = m.Priority, m.Processed
	}
	tag, err := e.db.Exec(ctx, e.q.insertMany,
		ceIDs, topics, partitions, keys, values, headers, tss, deliverAts, priorities, processed)
	if err != nil {
		return 0, wrapErr("insert many", err)
	}
	return int(tag.RowsAffected()), nil
}

// copyMany inserts messages whose event ids were all just generated (no
// duplicate check needed) with COPY, in order: one statement, so atomic,
// and about twice as fast as the INSERT ... ON CONFLICT of the general
// case on this table.
func (e *executor) copyMany(ctx context.Context, msgs []*outbox.Message) (int, error) {
	now := time.Now()
	src := pgx.CopyFromSlice(len(msgs), func(i int) ([]any, error) {
		m := msgs[i]
		at := m.DeliverAt
		if at.IsZero() {
			at = now
		}
		return []any{m.EventID, m.Topic, m.Partition, m.Key, m.Value, outbox.EncodeHeaders(m.Headers),
			tstz(m.Timestamp), tstz(at), m.Priority, m.Processed}, nil
	})
	n, err := e.db.CopyFrom(ctx, pgx.Identifier{e.q.schema, "outbox"},
		[]string{"ce_id", "topic", "partition", "key", "value", "headers", "ts", "deliver_at", "priority", "processed"}, src)
	if err != nil {
		return 0, wrapErr("insert many (copy)", err)
	}
	return int(n), nil
}

// OutboxClaimBatch returns the next rows to publish; see outbox.Executor
// and the rules in outboxtest. It locks nothing: lanes keep relays apart.
func (e *executor) OutboxClaimBatch(ctx context.Context, p *outbox.OutboxClaimBatchParams) ([]*outbox.Row, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	rows, err := e.db.Query(ctx, e.q.claimBatch, lanesParam(p.Lanes), p.Now, p.Limit, p.MaxBytes)
	if err != nil {
		return nil, wrapErr("claim batch", err)
	}
	out, err := pgx.CollectRows(rows, scanRow)
	if err != nil {
		return nil, wrapErr("claim batch", err)
	}
	return out, nil
}

// lanesParam is lanes as a smallint[] parameter: nil (NULL) stays nil, an
// empty list is an empty array.
func lanesParam(lanes []int32) []int16 {
	if lanes == nil {
		return nil
	}
	out := make([]int16, len(lanes))
	for i, l := range lanes {
		out[i] = int16(l)
	}
	return out
}

func scanRow(row pgx.CollectableRow) (*outbox.Row, error) {
	var (
		r         outbox.Row
		headers   []byte
		ts        pgtype.Timestamptz
		lane      int16
		lastError pgtype.Text
	)
	err := row.Scan(&r.ID, &r.EventID, &r.Topic, &r.Partition, &r.Key, &r.Value, &headers, &ts,
		&r.DeliverAt, &r.Priority, &r.Processed, &lane, &r.Attempts, &lastError, &r.CreatedAt)
	if err != nil {
		return nil, err
	}
	if r.Headers, err = outbox.DecodeHeaders(headers); err != nil {
		return nil, fmt.Errorf("row %d: %w", r.ID, err)
	}
	if ts.Valid {
		r.Timestamp = ts.Time
	}
	r.Lane, r.LastError = int32(lane), lastError.String
	return &r, nil
}

// OutboxComplete applies the outcome in one statement; see
// outbox.Executor. A row listed in more than one group gets the first
// outcome of sent, retry and dead that lists it, except that dead wins
// over retry (as if applied in that order).
func (e *executor) OutboxComplete(ctx context.Context, p *outbox.OutboxCompleteParams) error {
	if len(p.Sent) == 0 && len(p.Retry) == 0 && len(p.Dead) == 0 {
		return nil
	}
	sent := make(map[int64]bool, len(p.Sent))
	for _, id := range p.Sent {
		sent[id] = true
	}
	dead := make(map[int64]bool, len(p.Dead))
	var (
		dIDs, rIDs               []int64
		dAttempts, rAttempts     []int32
		dStages, dReasons, dPlug []string
		dFailedAt, rNext         []time.Time
		rErrors                  []string
		rBlocks                  []bool
	)
	for _, d := range p.Dead {
		if sent[d.ID] {
			continue
		}
		dead[d.ID] = true
		dIDs = append(dIDs, d.ID)
		dAttempts = append(dAttempts, d.Attempts)
		dStages = append(dStages, d.Stage)
		dReasons = append(dReasons, d.Reason)
		dPlug = append(dPlug, d.Plugin)
		dFailedAt = append(dFailedAt, ms(d.FailedAt))
	}
	for _, r := range p.Retry {
		if sent[r.ID] || dead[r.ID] {
			continue
		}
		rIDs = append(rIDs, r.ID)
		rAttempts = append(rAttempts, r.Attempts)
		rNext = append(rNext, ms(r.NextAttemptAt))
		rErrors = append(rErrors, r.Error)
		rBlocks = append(rBlocks, r.Blocks)
	}
	sentIDs := p.Sent
	if sentIDs == nil {
		sentIDs = []int64{}
	}
	_, err := e.db.Exec(ctx, e.q.complete,
		sentIDs,
		orEmpty(rIDs), orEmpty(rAttempts), orEmpty(rNext), orEmpty(rErrors), orEmpty(rBlocks),
		orEmpty(dIDs), orEmpty(dAttempts), orEmpty(dStages), orEmpty(dReasons), orEmpty(dPlug), orEmpty(dFailedAt))
	return wrapErr("complete", err)
}

// orEmpty makes a nil slice an empty array parameter rather than NULL.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// OutboxStats summarises the outbox at now; see outbox.Executor and
// outboxtest for the exact counts.
func (e *executor) OutboxStats(ctx context.Context, now time.Time) (*outbox.Stats, error) {
	rows, err := e.db.Query(ctx, e.q.statsTopics, now)
	if err != nil {
		return nil, wrapErr("stats", err)
	}
	topics, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outbox.TopicStats, error) {
		var (
			ts     outbox.TopicStats
			oldest pgtype.Timestamptz
		)
		err := row.Scan(&ts.Topic, &ts.Pending, &ts.Scheduled, &oldest, &ts.Retrying)
		ts.Oldest = oldest.Time
		return ts, err
	})
	if err != nil {
		return nil, wrapErr("stats", err)
	}
	st := &outbox.Stats{Topics: topics}
	if err := e.db.QueryRow(ctx, e.q.statsDeadLetters).Scan(&st.DeadLetters, &st.DeadUnpublished); err != nil {
		return nil, wrapErr("stats", err)
	}
	return st, nil
}

// OutboxNextDue is the earliest time a row becomes due; see outboxtest
// for rows behind a blocking retry.
func (e *executor) OutboxNextDue(ctx context.Context) (time.Time, bool, error) {
	var t time.Time
	err := e.db.QueryRow(ctx, e.q.nextDue).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, wrapErr("next due", err)
	}
	return t, true, nil
}

// LaneAcquire renews, trims and takes lane leases in one statement on the
// database clock; see outboxtest.
func (e *executor) LaneAcquire(ctx context.Context, p *outbox.LaneAcquireParams) ([]int32, error) {
	rows, err := e.db.Query(ctx, e.q.laneAcquire, p.Owner, p.TTL.Microseconds(), p.Max)
	if err != nil {
		return nil, wrapErr("lane acquire", err)
	}
	lanes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (int32, error) {
		var l int16
		err := row.Scan(&l)
		return int32(l), err
	})
	if err != nil {
		return nil, wrapErr("lane acquire", err)
	}
	return lanes, nil
}

// LaneRelease gives up the owner's lanes (nil: all of them).
func (e *executor) LaneRelease(ctx context.Context, p *outbox.LaneReleaseParams) error {
	_, err := e.db.Exec(ctx, e.q.laneRelease, p.Owner, lanesParam(p.Lanes))
	return wrapErr("lane release", err)
}

// LaneOwners counts owners other than owner with a live lease.
func (e *executor) LaneOwners(ctx context.Context, owner string) (int, error) {
	var n int
	if err := e.db.QueryRow(ctx, e.q.laneOwners, owner).Scan(&n); err != nil {
		return 0, wrapErr("lane owners", err)
	}
	return n, nil
}

// deadLetterArgs are the parameters of deadLetterFilter.
func deadLetterArgs(p *outbox.DeadLetterListParams) []any {
	var ids []int64
	if len(p.IDs) > 0 {
		ids = p.IDs
	}
	var limit *int64
	if p.Limit > 0 {
		l := int64(p.Limit)
		limit = &l
	}
	return []any{ids, p.Topic, tstz(p.Since), tstz(p.Until), p.Unpublished, limit}
}

// DeadLetterList returns the selected dead letters in id order.
func (e *executor) DeadLetterList(ctx context.Context, p *outbox.DeadLetterListParams) ([]*outbox.DeadLetter, error) {
	rows, err := e.db.Query(ctx, e.q.deadLetterList, deadLetterArgs(p)...)
	if err != nil {
		return nil, wrapErr("dead letter list", err)
	}
	out, err := pgx.CollectRows(rows, scanDeadLetter)
	if err != nil {
		return nil, wrapErr("dead letter list", err)
	}
	return out, nil
}

func scanDeadLetter(row pgx.CollectableRow) (*outbox.DeadLetter, error) {
	var (
		d       outbox.DeadLetter
		headers []byte
		ts      pgtype.Timestamptz
		plugin  pgtype.Text
	)
	err := row.Scan(&d.ID, &d.EventID, &d.Topic, &d.Partition, &d.Key, &d.Value, &headers, &ts,
		&d.Priority, &d.Processed, &d.Attempts, &d.Stage, &d.Reason, &plugin, &d.FailedAt, &d.Published)
	if err != nil {
		return nil, err
	}
	if d.Headers, err = outbox.DecodeHeaders(headers); err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", d.ID, err)
	}
	if ts.Valid {
		d.Timestamp = ts.Time
	}
	d.Plugin = plugin.String
	return &d, nil
}

// DeadLetterMarkPublished marks dead letters as on the dead-letter topic.
func (e *executor) DeadLetterMarkPublished(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := e.db.Exec(ctx, e.q.deadLetterMarkPublished, ids)
	return wrapErr("dead letter mark published", err)
}

// DeadLetterReplay moves the selected dead letters back into the outbox in
// one statement; see outboxtest.
func (e *executor) DeadLetterReplay(ctx context.Context, p *outbox.DeadLetterListParams) (int, error) {
	var n int
	if err := e.db.QueryRow(ctx, e.q.deadLetterReplay, deadLetterArgs(p)...).Scan(&n); err != nil {
		return 0, wrapErr("dead letter replay", err)
	}
	return n, nil
}

// DeadLetterDeleteBefore deletes dead letters that failed before t.
func (e *executor) DeadLetterDeleteBefore(ctx context.Context, t time.Time) (int, error) {
	tag, err := e.db.Exec(ctx, e.q.deadLetterDeleteBefore, ms(t))
	if err != nil {
		return 0, wrapErr("dead letter delete before", err)
	}
	return int(tag.RowsAffected()), nil
}

// wrapErr adds the operation to err and, when err means the database could
// not be reached or the statement may simply be retried, wraps
// outbox.ErrUnavailable too. nil stays nil.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return fmt.Errorf("outboxpgx: %s: %w: %w", op, outbox.ErrUnavailable, err)
	}
	return fmt.Errorf("outboxpgx: %s: %w", op, err)
}

// unavailable reports whether err is a failure to reach or keep the
// database rather than a fault of the statement. The caller's own
// cancellation is not.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08": // connection exception
			return true
		}
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
			"53300",          // too_many_connections
			"40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return pgconn.SafeToRetry(err) ||
		errors.As(err, &connectErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed)
}
