package outboxsqlite

import (
	"strconv"
	"strings"

	"github.com/evproxy/evproxy/internal/outbox"
)

// Every SQL statement of the store. Parameters are numbered (?1, ?2, …);
// times are Unix milliseconds; list parameters are JSON arrays read with
// json_each. Nullable blob columns are selected together with "IS NULL"
// because the driver reads a zero-length blob as a nil slice.

const (
	// rowColumns are the outbox columns scanned by scanRow.
	rowColumns = `o.id, o.ce_id, o.topic, o.partition, o.key, o.key IS NULL, o.value, o.value IS NULL,
	o.headers, o.ts, o.deliver_at, o.priority, o.processed, o.attempts, o.last_error, o.created_at, o.lane`

	// deadColumns are the dead_letter columns scanned by scanDead.
	deadColumns = `d.id, d.ce_id, d.topic, d.partition, d.key, d.key IS NULL, d.value, d.value IS NULL,
	d.headers, d.ts, d.priority, d.processed, d.attempts, d.stage, d.reason, d.plugin,
	d.failed_at, d.published`

	qMigrationTable = `CREATE TABLE IF NOT EXISTS migration (
	line       TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (line, version)
) STRICT`
	qMigrationVersions = `SELECT version FROM migration WHERE line = ?1`
	qMigrationInsert   = `INSERT INTO migration (line, version, name, created_at) VALUES (?1, ?2, ?3, ?4)`
	qMigrationDelete   = `DELETE FROM migration WHERE line = ?1 AND version = ?2`

	qInsert = `INSERT INTO outbox (ce_id, topic, partition, key, value, headers, ts, deliver_at,
	priority, processed, created_at, lane)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
ON CONFLICT (ce_id) DO NOTHING`

	// rowSize is the bytes of an outbox row o that a claim's byte bound
	// counts: its key, value and encoded headers.
	rowSize = `(coalesce(length(o.key), 0) + coalesce(length(o.value), 0) + coalesce(length(o.headers), 0))`

	// claimDue is the filter of a claimable row o: in the lanes (?1, NULL
	// for every lane), due at ?2, and not behind an earlier row of its
	// (topic, key) that blocks it while waiting for a retry.
	claimDue = `(?1 IS NULL OR o.lane IN (SELECT value FROM json_each(?1)))
	AND o.deliver_at <= ?2 AND o.next_attempt_at <= ?2
	AND (o.key IS NULL OR NOT EXISTS (
		SELECT 1 FROM outbox b INDEXED BY outbox_blocking
		WHERE b.blocks = 1 AND b.topic = o.topic AND b.key = o.key AND b.id < o.id
			AND b.next_attempt_at > ?2 AND b.deliver_at <= ?2))`

	// qClaim takes the ?3 claimable rows with the lowest (priority, id),
	// cut after the first row starting at or past ?4 bytes when ?4 > 0
	// (cand), then drops every row with an earlier due row of its (topic,
	// key) outside cand (a lower-priority row ahead of it in its key, cut
	// by the limit): keys finds, per key, the first such row. If that
	// drops every row, it takes the first ?3 claimable rows by id instead,
	// which drops none. The result is in id order.
	qClaim = `WITH cand AS MATERIALIZED (
	SELECT s.id, s.topic, s.key FROM (
		SELECT l.*, sum(l.size) OVER (ORDER BY l.priority, l.id ROWS UNBOUNDED PRECEDING) - l.size AS before
		FROM (
			SELECT o.id, o.topic, o.key, o.priority, ` + rowSize + ` AS size FROM outbox o INDEXED BY outbox_claim
			WHERE ` + claimDue + `
			ORDER BY o.priority, o.id
			LIMIT ?3) l
	) s
	WHERE ?4 <= 0 OR s.before < ?4
), keys AS MATERIALIZED (
	SELECT c.topic, c.key, (
		SELECT e.id FROM outbox e INDEXED BY outbox_topic_key
		WHERE e.topic = c.topic AND e.key = c.key
			AND e.deliver_at <= ?2 AND e.next_attempt_at <= ?2
			AND e.id NOT IN (SELECT id FROM cand)
		ORDER BY e.id LIMIT 1
	) AS cut
	FROM (SELECT DISTINCT topic, key FROM cand WHERE key IS NOT NULL) c
), picked AS MATERIALIZED (
	SELECT c.id FROM cand c
	WHERE c.key IS NULL OR NOT EXISTS (
		SELECT 1 FROM keys k WHERE k.topic = c.topic AND k.key = c.key AND k.cut < c.id)
), chosen AS (
	SELECT id FROM picked
	UNION ALL
	SELECT f.id FROM (
		SELECT l.id, sum(l.size) OVER (ORDER BY l.id ROWS UNBOUNDED PRECEDING) - l.size AS before
		FROM (
			SELECT o.id, ` + rowSize + ` AS size FROM outbox o
			WHERE ` + claimDue + `
			ORDER BY o.id
			LIMIT CASE WHEN EXISTS (SELECT 1 FROM picked) THEN 0 ELSE ?3 END) l
	) f
	WHERE ?4 <= 0 OR f.before < ?4
)
SELECT ` + rowColumns + `
FROM outbox o
WHERE o.id IN (SELECT id FROM chosen)
ORDER BY o.id`

	qDelete = `DELETE FROM outbox WHERE id = ?1`
	qRetry  = `UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4, blocks = ?5 WHERE id = ?1`
	qDead   = `INSERT INTO dead_letter (ce_id, topic, partition, key, value, headers, ts,
	priority, processed, attempts, created_at, stage, reason, plugin, failed_at)
SELECT ce_id, topic, partition, key, value, headers, ts,
	priority, processed, ?2, created_at, ?3, ?4, ?5, ?6
FROM outbox WHERE id = ?1`

	qStats = `SELECT topic,
	count(*) FILTER (WHERE deliver_at <= ?1),
	count(*) FILTER (WHERE deliver_at > ?1),
	min(created_at) FILTER (WHERE deliver_at <= ?1),
	count(*) FILTER (WHERE attempts > 0)
FROM outbox GROUP BY topic ORDER BY topic`
	qStatsDead = `SELECT count(*), count(*) FILTER (WHERE published = 0) FROM dead_letter`

	// qNextDue is the earliest due time of a row not behind a row of its
	// key retried with blocks set (that one counts instead).
	qNextDue = `SELECT max(o.deliver_at, o.next_attempt_at) FROM outbox o INDEXED BY outbox_due
WHERE o.key IS NULL OR NOT EXISTS (
	SELECT 1 FROM outbox b INDEXED BY outbox_blocking
	WHERE b.blocks = 1 AND b.topic = o.topic AND b.key = o.key AND b.id < o.id)
ORDER BY max(o.deliver_at, o.next_attempt_at)
LIMIT 1`

	qLaneRenew = `UPDATE lane SET expires_at = ?2 WHERE owner = ?1`
	qLaneCount = `SELECT count(*) FROM lane WHERE owner = ?1`
	// qLaneShed frees the owner's ?2 highest lanes.
	qLaneShed = `UPDATE lane SET owner = NULL, expires_at = 0
WHERE lane IN (SELECT lane FROM lane WHERE owner = ?1 ORDER BY lane DESC LIMIT ?2)`
	// qLaneTake gives the owner the ?4 lowest lanes free or expired at ?3,
	// leased until ?2.
	qLaneTake = `UPDATE lane SET owner = ?1, expires_at = ?2
WHERE lane IN (
	SELECT lane FROM lane
	WHERE owner IS NULL OR (owner <> ?1 AND expires_at <= ?3)
	ORDER BY lane LIMIT ?4)`
	qLaneHeld    = `SELECT lane FROM lane WHERE owner = ?1 ORDER BY lane`
	qLaneRelease = `UPDATE lane SET owner = NULL, expires_at = 0
WHERE owner = ?1 AND (?2 IS NULL OR lane IN (SELECT value FROM json_each(?2)))`
	qLaneOwners = `SELECT count(*) FROM (
	SELECT owner FROM relay WHERE owner <> ?1 AND seen_until > ?2
	UNION
	SELECT owner FROM lane WHERE owner IS NOT NULL AND owner <> ?1 AND expires_at > ?2)`
	// qRelayBeat records ?1 as a live relay until ?2 and forgets relays
	// not seen since ?3.
	qRelayBeat = `INSERT INTO relay (owner, seen_until) VALUES (?1, ?2)
ON CONFLICT (owner) DO UPDATE SET seen_until = excluded.seen_until`
	qRelayForget = `DELETE FROM relay WHERE seen_until < ?1`
	qRelayGone   = `DELETE FROM relay WHERE owner = ?1`

	// deadColumnsReplay are what DeadLetterReplay reads of a dead letter.
	deadColumnsReplay = `d.id, d.topic, d.key`

	qDeadMarkPublished = `UPDATE dead_letter SET published = 1 WHERE id IN (SELECT value FROM json_each(?1))`

	// qDeadReplay copies dead letter ?1 back into the outbox as a new row
	// of lane ?3 with no attempts, due and created at ?2; it inserts
	// nothing if the outbox holds the event id again.
	qDeadReplay = `INSERT INTO outbox (ce_id, topic, partition, key, value, headers, ts, deliver_at,
	priority, processed, created_at, lane)
SELECT ce_id, topic, partition, key, value, headers, ts, ?2,
	priority, processed, ?2, ?3
FROM dead_letter WHERE id = ?1
ON CONFLICT (ce_id) DO NOTHING`
	qDeadDelete       = `DELETE FROM dead_letter WHERE id = ?1`
	qDeadDeleteBefore = `DELETE FROM dead_letter WHERE failed_at < ?1`
)

// deadQuery is the query of the dead letters (columns cols) that p
// selects, in id order, and its parameters. It names only the filters p
// sets, so that SQLite can use the matching index.
func deadQuery(cols string, p *outbox.DeadLetterListParams) (string, []any) {
	var sb strings.Builder
	var args []any
	sb.WriteString("SELECT " + cols + " FROM dead_letter d WHERE true")
	and := func(cond string, arg any) {
		args = append(args, arg)
		sb.WriteString(" AND " + strings.ReplaceAll(cond, "?", "?"+strconv.Itoa(len(args))))
	}
	if len(p.IDs) > 0 {
		and("d.id IN (SELECT value FROM json_each(?))", jsonInts(p.IDs))
	}
	if p.Topic != "" {
		and("d.topic = ?", p.Topic)
	}
	if !p.Since.IsZero() {
		and("d.failed_at >= ?", p.Since.UnixMilli())
	}
	if !p.Until.IsZero() {
		and("d.failed_at < ?", p.Until.UnixMilli())
	}
	if p.Unpublished {
		sb.WriteString(" AND d.published = 0")
	}
	sb.WriteString(" ORDER BY d.id")
	if p.Limit > 0 {
		args = append(args, int64(p.Limit))
		sb.WriteString(" LIMIT ?" + strconv.Itoa(len(args)))
	}
	return sb.String(), args
}
