package outboxsqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/evproxy/evproxy/internal/outbox"
)

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// executor implements outbox.Executor for a Store (each method its own
// statement or transaction) and for a Tx (everything in the caller's).
type executor struct {
	// read runs the single-statement reads.
	read querier
	// write runs fn in a write transaction: a new one, or the caller's.
	write func(ctx context.Context, fn func(querier) error) error
	// stmts are the Store's prepared statements; tx is the caller's
	// transaction, if any.
	stmts *stmtCache
	tx    *sql.Tx
}

// queryPrepared runs a prepared read (one of the hot ones).
func (e executor) queryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := e.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	if e.tx != nil {
		st = e.tx.StmtContext(ctx, st)
	}
	return st.QueryContext(ctx, args...)
}

// OutboxInsertMany inserts the messages in order in one transaction, with
// one prepared statement, and reports how many were new: a message whose
// EventID the outbox holds (or an earlier message of the batch had) is
// skipped. An empty EventID is stored as NULL and never deduplicated; a
// zero DeliverAt is stored as the time of the insert.
func (e executor) OutboxInsertMany(ctx context.Context, p *outbox.OutboxInsertManyParams) (int, error) {
	if len(p.Messages) == 0 {
		return 0, nil
	}
	now := time.Now().UnixMilli()
	n := 0
	err := e.write(ctx, func(q querier) error {
		st, err := q.PrepareContext(ctx, qInsert)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, m := range p.Messages {
			deliverAt := now
			if !m.DeliverAt.IsZero() {
				deliverAt = millis(m.DeliverAt)
			}
			res, err := st.ExecContext(ctx,
				nullString(m.EventID), m.Topic, int64(m.Partition), blob(m.Key), blob(m.Value),
				blob(outbox.EncodeHeaders(m.Headers)), nullMillis(m.Timestamp), deliverAt,
				int64(m.Priority), boolInt(m.Processed), now, int64(outbox.LaneOf(m.Topic, m.Key)))
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	if err != nil {
		return 0, wrapErr("insert", err)
	}
	return n, nil
}

// OutboxClaimBatch returns up to Limit claimable rows of the lanes (all
// lanes if Lanes is nil) in id order, as documented on outbox.Executor and
// pinned down by outboxtest: due at Now (zero: the current time), chosen
// by lowest (priority, id); never a row behind an earlier row of its
// (topic, key) that is due and not returned with it, or that waits for a
// retry with Blocks. A claim changes nothing: the lane lease is what keeps
// other relays away.
func (e executor) OutboxClaimBatch(ctx context.Context, p *outbox.OutboxClaimBatchParams) ([]*outbox.Row, error) {
	if p.Limit <= 0 || (p.Lanes != nil && len(p.Lanes) == 0) {
		return nil, nil
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	var lanes any
	if p.Lanes != nil {
		lanes = jsonInts(p.Lanes)
	}
	rows, err := e.queryPrepared(ctx, qClaim, lanes, now.UnixMilli(), p.Limit, p.MaxBytes)
	if err != nil {
		return nil, wrapErr("claim", err)
	}
	defer rows.Close()
	var out []*outbox.Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, wrapErr("claim", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("claim", err)
	}
	return out, nil
}

// scanRow scans rowColumns.
func scanRow(rows *sql.Rows) (*outbox.Row, error) {
	var (
		r                         outbox.Row
		ceID                      sql.NullString
		key, value, headers       []byte
		keyNull, valueNull        bool
		ts                        sql.NullInt64
		partition, priority, lane int64
		attempts                  int64
		deliverAt, createdAt      int64
		processed                 bool
	)
	if err := rows.Scan(&r.ID, &ceID, &r.Topic, &partition, &key, &keyNull, &value, &valueNull,
		&headers, &ts, &deliverAt, &priority, &processed, &attempts, &r.LastError, &createdAt, &lane); err != nil {
		return nil, err
	}
	hs, err := outbox.DecodeHeaders(headers)
	if err != nil {
		return nil, fmt.Errorf("row %d: %w", r.ID, err)
	}
	r.EventID = ceID.String
	r.Partition = int32(partition)
	r.Key = unblob(key, keyNull)
	r.Value = unblob(value, valueNull)
	r.Headers = hs
	if ts.Valid {
		r.Timestamp = time.UnixMilli(ts.Int64)
	}
	r.DeliverAt = time.UnixMilli(deliverAt)
	r.Priority = int32(priority)
	r.Processed = processed
	r.Attempts = int32(attempts)
	r.CreatedAt = time.UnixMilli(createdAt)
	r.Lane = int32(lane)
	return &r, nil
}

// OutboxComplete deletes the sent rows, schedules the retries and moves the
// dead rows to dead_letter, in one transaction. Ids no longer in the outbox
// are ignored.
func (e executor) OutboxComplete(ctx context.Context, p *outbox.OutboxCompleteParams) error {
	if len(p.Sent) == 0 && len(p.Retry) == 0 && len(p.Dead) == 0 {
		return nil
	}
	err := e.write(ctx, func(q querier) error {
		del, err := q.PrepareContext(ctx, qDelete)
		if err != nil {
			return err
		}
		defer del.Close()
		for _, id := range p.Sent {
			if _, err := del.ExecContext(ctx, id); err != nil {
				return err
			}
		}
		for _, r := range p.Retry {
			if _, err := q.ExecContext(ctx, qRetry, r.ID, int64(r.Attempts), millis(r.NextAttemptAt),
				r.Error, boolInt(r.Blocks)); err != nil {
				return err
			}
		}
		for _, d := range p.Dead {
			failedAt := d.FailedAt
			if failedAt.IsZero() {
				failedAt = time.Now()
			}
			if _, err := q.ExecContext(ctx, qDead, d.ID, int64(d.Attempts), d.Stage, d.Reason, d.Plugin,
				failedAt.UnixMilli()); err != nil {
				return err
			}
			if _, err := del.ExecContext(ctx, d.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapErr("complete", err)
}

// OutboxStats summarises the outbox at now (zero: the current time).
func (e executor) OutboxStats(ctx context.Context, now time.Time) (*outbox.Stats, error) {
	if now.IsZero() {
		now = time.Now()
	}
	st := &outbox.Stats{}
	rows, err := e.read.QueryContext(ctx, qStats, now.UnixMilli())
	if err != nil {
		return nil, wrapErr("stats", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ts outbox.TopicStats
		var oldest sql.NullInt64
		if err := rows.Scan(&ts.Topic, &ts.Pending, &ts.Scheduled, &oldest, &ts.Retrying); err != nil {
			return nil, wrapErr("stats", err)
		}
		if oldest.Valid {
			ts.Oldest = time.UnixMilli(oldest.Int64)
		}
		st.Topics = append(st.Topics, ts)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("stats", err)
	}
	if err := e.read.QueryRowContext(ctx, qStatsDead).Scan(&st.DeadLetters, &st.DeadUnpublished); err != nil {
		return nil, wrapErr("stats", err)
	}
	return st, nil
}

// OutboxNextDue is the earliest time a row of the outbox becomes due (its
// DeliverAt or its retry time, whichever is later; possibly past), leaving
// out rows behind a row of their key retried with Blocks (they become due
// with it), and false if the outbox is empty.
func (e executor) OutboxNextDue(ctx context.Context) (time.Time, bool, error) {
	var due int64
	err := e.read.QueryRowContext(ctx, qNextDue).Scan(&due)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, wrapErr("next due", err)
	}
	return time.UnixMilli(due), true, nil
}

// LaneAcquire renews every lease of Owner to now+TTL, frees Owner's lanes
// beyond Max (highest first) and takes free or expired lanes (lowest
// first) until Owner holds Max, in one transaction. It returns the lanes
// Owner holds, in ascending order.
func (e executor) LaneAcquire(ctx context.Context, p *outbox.LaneAcquireParams) ([]int32, error) {
	if p.Owner == "" {
		return nil, fmt.Errorf("outboxsqlite: lane acquire: empty owner")
	}
	if p.TTL <= 0 {
		return nil, fmt.Errorf("outboxsqlite: lane acquire: TTL %v is not positive", p.TTL)
	}
	want := min(max(p.Max, 0), outbox.Lanes)
	now := time.Now()
	exp := now.Add(p.TTL).UnixMilli()
	var held []int32
	err := e.write(ctx, func(q querier) error {
		held = held[:0]
		if _, err := q.ExecContext(ctx, qRelayBeat, p.Owner, exp); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, qRelayForget, now.Add(-time.Hour).UnixMilli()); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, qLaneRenew, p.Owner, exp); err != nil {
			return err
		}
		var n int
		if err := q.QueryRowContext(ctx, qLaneCount, p.Owner).Scan(&n); err != nil {
			return err
		}
		switch {
		case n > want:
			if _, err := q.ExecContext(ctx, qLaneShed, p.Owner, n-want); err != nil {
				return err
			}
		case n < want:
			if _, err := q.ExecContext(ctx, qLaneTake, p.Owner, exp, now.UnixMilli(), want-n); err != nil {
				return err
			}
		}
		rows, err := q.QueryContext(ctx, qLaneHeld, p.Owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l int32
			if err := rows.Scan(&l); err != nil {
				return err
			}
			held = append(held, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr("lane acquire", err)
	}
	return held, nil
}

// LaneRelease frees Owner's leases of Lanes (nil: all of them).
func (e executor) LaneRelease(ctx context.Context, p *outbox.LaneReleaseParams) error {
	var lanes any
	if p.Lanes != nil {
		lanes = jsonInts(p.Lanes)
	}
	err := e.write(ctx, func(q querier) error {
		if p.Lanes == nil {
			if _, err := q.ExecContext(ctx, qRelayGone, p.Owner); err != nil {
				return err
			}
		}
		_, err := q.ExecContext(ctx, qLaneRelease, p.Owner, lanes)
		return err
	})
	return wrapErr("lane release", err)
}

// LaneOwners counts the live relays other than owner: those whose last
// LaneAcquire is within its TTL, or that hold an unexpired lease.
func (e executor) LaneOwners(ctx context.Context, owner string) (int, error) {
	var n int
	err := e.read.QueryRowContext(ctx, qLaneOwners, owner, time.Now().UnixMilli()).Scan(&n)
	if err != nil {
		return 0, wrapErr("lane owners", err)
	}
	return n, nil
}

// DeadLetterList returns the dead letters the filter selects, in id order.
func (e executor) DeadLetterList(ctx context.Context, p *outbox.DeadLetterListParams) ([]*outbox.DeadLetter, error) {
	query, args := deadQuery(deadColumns, p)
	rows, err := e.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrapErr("dead letter list", err)
	}
	defer rows.Close()
	var out []*outbox.DeadLetter
	for rows.Next() {
		d, err := scanDead(rows)
		if err != nil {
			return nil, wrapErr("dead letter list", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("dead letter list", err)
	}
	return out, nil
}

// scanDead scans deadColumns.
func scanDead(rows *sql.Rows) (*outbox.DeadLetter, error) {
	var (
		d                    outbox.DeadLetter
		ceID                 sql.NullString
		key, value, headers  []byte
		keyNull, valueNull   bool
		ts                   sql.NullInt64
		partition, priority  int64
		attempts             int64
		failedAt             int64
		processed, published bool
	)
	if err := rows.Scan(&d.ID, &ceID, &d.Topic, &partition, &key, &keyNull, &value, &valueNull,
		&headers, &ts, &priority, &processed, &attempts, &d.Stage, &d.Reason, &d.Plugin,
		&failedAt, &published); err != nil {
		return nil, err
	}
	hs, err := outbox.DecodeHeaders(headers)
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", d.ID, err)
	}
	d.EventID = ceID.String
	d.Partition = int32(partition)
	d.Key = unblob(key, keyNull)
	d.Value = unblob(value, valueNull)
	d.Headers = hs
	if ts.Valid {
		d.Timestamp = time.UnixMilli(ts.Int64)
	}
	d.Priority = int32(priority)
	d.Processed = processed
	d.Attempts = int32(attempts)
	d.FailedAt = time.UnixMilli(failedAt)
	d.Published = published
	return &d, nil
}

// DeadLetterMarkPublished records that the dead letters reached the
// dead-letter topic.
func (e executor) DeadLetterMarkPublished(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := e.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, qDeadMarkPublished, jsonInts(ids))
		return err
	})
	return wrapErr("dead letter mark published", err)
}

// DeadLetterReplay removes the selected dead letters and puts them back
// into the outbox, in id order, as new rows (new ids, after every row
// there) due now with no attempts, in one transaction, and reports how
// many it removed. A dead letter whose event id the outbox holds again is
// removed and counted, and the outbox row stays as it is.
func (e executor) DeadLetterReplay(ctx context.Context, p *outbox.DeadLetterListParams) (int, error) {
	type sel struct {
		id    int64
		topic string
		key   []byte
	}
	n := 0
	err := e.write(ctx, func(q querier) error {
		n = 0
		query, args := deadQuery(deadColumnsReplay, p)
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		var dls []sel
		for rows.Next() {
			var d sel
			if err := rows.Scan(&d.id, &d.topic, &d.key); err != nil {
				rows.Close()
				return err
			}
			dls = append(dls, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		now := time.Now().UnixMilli()
		for _, d := range dls {
			if _, err := q.ExecContext(ctx, qDeadReplay, d.id, now, int64(outbox.LaneOf(d.topic, d.key))); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, qDeadDelete, d.id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, wrapErr("dead letter replay", err)
	}
	return n, nil
}

// DeadLetterDeleteBefore deletes the dead letters that failed before t.
func (e executor) DeadLetterDeleteBefore(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := e.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, qDeadDeleteBefore, t.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, wrapErr("dead letter delete", err)
	}
	return int(n), nil
}
