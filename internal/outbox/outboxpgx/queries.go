package outboxpgx

import "strings"

// The SQL of the store, all of it. {{schema}} is replaced with the schema
// name by newQueries; migrations are in migration/main.

// rowSize is the bytes of an outbox row c that a claim's byte bound
// counts: its key, value and encoded headers.
const rowSize = `(coalesce(octet_length(c.key), 0) + coalesce(octet_length(c.value), 0) + coalesce(octet_length(c.headers), 0))::bigint`

// claimEligible is the filter of a claimable outbox row c ($1 lanes, NULL
// for all; $2 now): in the lanes, due, and not behind an earlier row of
// its (topic, key) that waits for a retry and blocks (a probe of
// outbox_blocking_retry_idx). The claim's candidates and its fallback
// share it.
const claimEligible = `($1::smallint[] IS NULL OR c.lane = ANY($1::smallint[]))
	AND c.deliver_at <= $2 AND c.next_attempt_at <= $2
	AND (c.key IS NULL OR NOT EXISTS (
		SELECT 1 FROM {{schema}}.outbox w
		WHERE w.topic = c.topic AND w.key = c.key AND w.id < c.id
			AND w.key IS NOT NULL AND w.blocks AND w.next_attempt_at > '-infinity'
			AND w.next_attempt_at > $2 AND w.deliver_at <= $2))`

// rowColumns are the outbox columns scanRow reads, in order.
const rowColumns = `o.id, o.ce_id, o.topic, o.partition, o.key, o.value, o.headers, o.ts,
	o.deliver_at, o.priority, o.processed, o.lane, o.attempts, o.last_error, o.created_at`

// deadLetterColumns are the dead_letter columns scanDeadLetter reads.
const deadLetterColumns = `d.id, d.ce_id, d.topic, d.partition, d.key, d.value, d.headers, d.ts,
	d.priority, d.processed, d.attempts, d.stage, d.reason, d.plugin, d.failed_at, d.published`

const (
	// $1: advisory lock key.
	sqlMigrateLock = `SELECT pg_advisory_xact_lock($1)`

	sqlMigrateSchema = `CREATE SCHEMA IF NOT EXISTS {{schema}}`

	sqlMigrateTable = `CREATE TABLE IF NOT EXISTS {{schema}}.migration (
	version    bigint      PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

	sqlMigrateVersions = `SELECT version FROM {{schema}}.migration ORDER BY version`

	// $1: version, $2: name.
	sqlMigrateRecord = `INSERT INTO {{schema}}.migration (version, name) VALUES ($1, $2)`

	// Arrays, one element per message, in input order: $1 ce_id, $2 topic,
	// $3 partition, $4 key, $5 value, $6 headers, $7 ts, $8 deliver_at
	// (NULL: now), $9 priority, $10 processed. Ids follow the input order
	// (ORDER BY ordinality); a ce_id already present, or earlier in the
	// arrays, is skipped.
	sqlInsertMany = `INSERT INTO {{schema}}.outbox
	(ce_id, topic, partition, key, value, headers, ts, deliver_at, priority, processed)
SELECT m.ce_id, m.topic, m.partition, m.key, m.value, m.headers, m.ts,
	coalesce(m.deliver_at, now()), m.priority, m.processed
FROM unnest($1::text[], $2::text[], $3::int[], $4::bytea[], $5::bytea[], $6::bytea[],
	$7::timestamptz[], $8::timestamptz[], $9::int[], $10::boolean[])
	WITH ORDINALITY AS m(ce_id, topic, partition, key, value, headers, ts, deliver_at, priority, processed, ord)
ORDER BY m.ord
ON CONFLICT (ce_id) DO NOTHING`

	// sqlClaimBatch: $1 lanes (NULL: all), $2 now, $3 limit, $4 most
	// bytes (0: no bound; cand stops at the first row starting at or past
	// it, keeping at least one, and the fallback likewise). The rules
	// are outboxtest's (package doc, "Claiming"):
	//
	// eligible: due rows of the lanes not behind a row of their key that
	// waits for a retry and blocks (probe of outbox_blocking_retry_idx,
	// which holds only retried blocking rows).
	//
	// cand: the first $3 eligible rows by (priority, id), read from
	// outbox_claim_idx; the scan stops after $3 eligible rows. It keeps
	// whole rows: the picked ones are returned from it, without a second
	// lookup by id.
	//
	// fence: for each key in cand, its first blocking row (due, or
	// waiting with blocks) that is not a candidate: candidates of the key
	// from there on wait. One ordered probe of outbox_key_idx per key
	// (not per row), bounded by the key's last candidate (a fence after
	// it changes nothing): it reads the key's earlier candidates and
	// stops at the fence. Usually (equal priorities) the candidates are
	// the lowest ids and the probe finds nothing below the bound. A
	// candidate held back by the fence holds back its successors too,
	// since the fence precedes them as well.
	//
	// The fence is skipped, by a gate PostgreSQL evaluates once, when it
	// is provably empty, as in steady traffic: no row was ever retried
	// with blocks (outbox_blocking_retry_idx is empty) and no row of the
	// table has a priority above the candidates' lowest. Then every row
	// of a candidate's lane that could fence has the candidates' one
	// priority; a due, unblocked one is eligible, so with an id below a
	// candidate's it is a candidate itself (cand is a prefix of the
	// eligible rows by (priority, id)), and rows of lower priority that
	// are not candidates are not due or wait without blocking: no fence.
	//
	// pick: the candidates before their key's fence.
	//
	// fallback: only when pick is empty though cand is not (e.g. a key
	// whose first row has priority 5 and the next 0, limit 1: the
	// candidate is the second, fenced by the first), the first $3
	// eligible rows by id. Those are never fenced: an earlier due row of
	// the key is eligible too (a blocking retry before it would be before
	// the later row as well) and has a lower id, so it is among them. So
	// a claim makes progress whenever a row is eligible. The gate is an
	// uncorrelated condition: PostgreSQL skips the scan when it is false.
	sqlClaimBatch = `WITH cand AS MATERIALIZED (
	SELECT s.* FROM (
		SELECT l.*, sum(l.size) OVER (ORDER BY l.priority, l.id ROWS UNBOUNDED PRECEDING) - l.size AS before
		FROM (
			SELECT c.*, ` + rowSize + ` AS size
			FROM {{schema}}.outbox c
			WHERE ` + claimEligible + `
			ORDER BY c.priority, c.id
			LIMIT $3) l
	) s
	WHERE $4::bigint <= 0 OR s.before < $4::bigint
), fence AS (
	SELECT k.topic, k.key, (
		SELECT b.id FROM {{schema}}.outbox b
		WHERE b.topic = k.topic AND b.key = k.key AND b.key IS NOT NULL AND b.id < k.last
			AND b.deliver_at <= $2 AND (b.next_attempt_at <= $2 OR b.blocks)
			AND b.id NOT IN (SELECT id FROM cand)
		ORDER BY b.id
		LIMIT 1) AS id
	FROM (SELECT topic, key, max(id) AS last FROM cand WHERE key IS NOT NULL GROUP BY topic, key) k
	WHERE EXISTS (
			SELECT 1 FROM {{schema}}.outbox r
			WHERE r.key IS NOT NULL AND r.blocks AND r.next_attempt_at > '-infinity')
		OR (SELECT max(priority) FROM {{schema}}.outbox) IS DISTINCT FROM (SELECT min(priority) FROM cand)
), pick AS (
	SELECT c.id
	FROM cand c LEFT JOIN fence f ON f.topic = c.topic AND f.key = c.key
	WHERE f.id IS NULL OR c.id < f.id
), fallback AS (
	SELECT f.id FROM (
		SELECT l.id, sum(l.size) OVER (ORDER BY l.id ROWS UNBOUNDED PRECEDING) - l.size AS before
		FROM (
			SELECT c.id, ` + rowSize + ` AS size
			FROM {{schema}}.outbox c
			WHERE NOT EXISTS (SELECT 1 FROM pick) AND EXISTS (SELECT 1 FROM cand)
				AND ` + claimEligible + `
			ORDER BY c.id
			LIMIT $3) l
	) f
	WHERE $4::bigint <= 0 OR f.before < $4::bigint
)
SELECT ` + rowColumns + `
FROM cand o
WHERE o.id IN (SELECT id FROM pick)
UNION ALL
SELECT ` + rowColumns + `
FROM {{schema}}.outbox o
WHERE o.id IN (SELECT id FROM fallback)
ORDER BY 1`

	// sqlComplete applies a publish outcome in one statement (so one
	// transaction): $1 sent ids; retries $2 id, $3 attempts,
	// $4 next_attempt_at, $5 error, $6 blocks; dead $7 id, $8 attempts,
	// $9 stage, $10 reason, $11 plugin, $12 failed_at. The caller removes
	// ids from later groups that an earlier one has (sent, retry, dead),
	// since a statement must not change a row twice.
	sqlComplete = `WITH sent AS (
	DELETE FROM {{schema}}.outbox o WHERE o.id = ANY($1::bigint[])
), retry AS (
	UPDATE {{schema}}.outbox o
	SET attempts = r.attempts, next_attempt_at = r.next_attempt_at, last_error = r.error, blocks = r.blocks
	FROM unnest($2::bigint[], $3::int[], $4::timestamptz[], $5::text[], $6::boolean[])
		AS r(id, attempts, next_attempt_at, error, blocks)
	WHERE o.id = r.id
), dead AS (
	DELETE FROM {{schema}}.outbox o
	USING unnest($7::bigint[], $8::int[], $9::text[], $10::text[], $11::text[], $12::timestamptz[])
		AS r(id, attempts, stage, reason, plugin, failed_at)
	WHERE o.id = r.id
	RETURNING o.id, o.ce_id, o.topic, o.partition, o.key, o.value, o.headers, o.ts, o.priority,
		o.processed, o.created_at, r.attempts, r.stage, r.reason, r.plugin, r.failed_at
)
INSERT INTO {{schema}}.dead_letter
	(ce_id, topic, partition, key, value, headers, ts, priority, processed, created_at,
	 attempts, stage, reason, plugin, failed_at, published)
SELECT ce_id, topic, partition, key, value, headers, ts, priority, processed, created_at,
	attempts, stage, reason, nullif(plugin, ''), failed_at, false
FROM dead
ORDER BY id`

	// $1: now. Topics with rows, by name.
	sqlStatsTopics = `SELECT topic,
	count(*) FILTER (WHERE deliver_at <= $1),
	count(*) FILTER (WHERE deliver_at > $1),
	min(created_at) FILTER (WHERE deliver_at <= $1),
	count(*) FILTER (WHERE attempts > 0)
FROM {{schema}}.outbox
GROUP BY topic
ORDER BY topic`

	sqlStatsDeadLetters = `SELECT count(*), count(*) FILTER (WHERE NOT published) FROM {{schema}}.dead_letter`

	// sqlNextDue: the earliest due time of a row not behind a retried
	// blocking row of its key (that one counts instead). Read in
	// outbox_due_idx order, so it stops at the first row not behind one.
	sqlNextDue = `SELECT greatest(o.deliver_at, o.next_attempt_at)
FROM {{schema}}.outbox o
WHERE o.key IS NULL OR NOT EXISTS (
	SELECT 1 FROM {{schema}}.outbox w
	WHERE w.topic = o.topic AND w.key = o.key AND w.id < o.id
		AND w.key IS NOT NULL AND w.blocks AND w.next_attempt_at > '-infinity')
ORDER BY greatest(o.deliver_at, o.next_attempt_at)
LIMIT 1`

	// sqlLaneAcquire: $1 owner, $2 ttl in microseconds, $3 max. On the
	// database clock: keep the owner's live leases up to $3 (the lowest
	// lanes), release the rest, and take free or expired lanes (lowest
	// first, skipping lanes another acquire has locked) up to $3; renew
	// every lane kept or taken. Returns the held lanes.
	sqlLaneAcquire = `WITH mine AS (
	SELECT l.lane FROM {{schema}}.lane l
	WHERE l.owner = $1 AND l.lease_until > now()
	ORDER BY l.lane
	FOR UPDATE
), keep AS (
	SELECT lane FROM mine ORDER BY lane LIMIT greatest($3::int, 0)
), take AS (
	SELECT l.lane FROM {{schema}}.lane l
	WHERE (l.owner IS NULL OR l.lease_until IS NULL OR l.lease_until <= now())
	ORDER BY l.lane
	LIMIT greatest($3::int - (SELECT count(*) FROM keep), 0)
	FOR UPDATE SKIP LOCKED
), renew AS (
	UPDATE {{schema}}.lane l
	SET owner = $1, lease_until = now() + $2::bigint * interval '1 microsecond'
	WHERE l.lane IN (SELECT lane FROM keep UNION ALL SELECT lane FROM take)
	RETURNING l.lane
), release AS (
	UPDATE {{schema}}.lane l
	SET owner = NULL, lease_until = NULL
	WHERE l.lane IN (SELECT lane FROM mine) AND l.lane NOT IN (SELECT lane FROM keep)
), beat AS (
	INSERT INTO {{schema}}.relay (owner, seen_until)
	VALUES ($1, now() + $2::bigint * interval '1 microsecond')
	ON CONFLICT (owner) DO UPDATE SET seen_until = excluded.seen_until
), forget AS (
	DELETE FROM {{schema}}.relay WHERE seen_until < now() - interval '1 hour'
)
SELECT lane FROM renew ORDER BY lane`

	// $1 owner, $2 lanes (NULL: all of the owner's).
	sqlLaneRelease = `WITH gone AS (
	DELETE FROM {{schema}}.relay WHERE owner = $1 AND $2::smallint[] IS NULL
)
UPDATE {{schema}}.lane
SET owner = NULL, lease_until = NULL
WHERE owner = $1 AND ($2::smallint[] IS NULL OR lane = ANY($2::smallint[]))`

	// $1 owner to leave out.
	sqlLaneOwners = `SELECT count(*) FROM (
	SELECT owner FROM {{schema}}.relay WHERE owner <> $1 AND seen_until > now()
	UNION
	SELECT owner FROM {{schema}}.lane WHERE owner IS NOT NULL AND owner <> $1 AND lease_until > now()
) o`

	// deadLetterFilter selects dead letters: $1 ids (NULL: all), $2 topic
	// ('': all), $3 since, $4 until (NULL: open), $5 unpublished only,
	// $6 limit (NULL: none). Used as "... FROM dead_letter d WHERE" + it.
	deadLetterFilter = `($1::bigint[] IS NULL OR d.id = ANY($1::bigint[]))
	AND ($2::text = '' OR d.topic = $2::text)
	AND ($3::timestamptz IS NULL OR d.failed_at >= $3::timestamptz)
	AND ($4::timestamptz IS NULL OR d.failed_at < $4::timestamptz)
	AND (NOT $5::boolean OR NOT d.published)
ORDER BY d.id
LIMIT $6::bigint`

	sqlDeadLetterList = `SELECT ` + deadLetterColumns + `
FROM {{schema}}.dead_letter d
WHERE ` + deadLetterFilter

	// sqlDeadLetterReplay moves the selected dead letters (filter as in
	// sqlDeadLetterList) back into the outbox in id order, attempts reset
	// and due now, and counts them; an event already in the outbox again
	// keeps its row there.
	sqlDeadLetterReplay = `WITH sel AS (
	SELECT d.id FROM {{schema}}.dead_letter d
	WHERE ` + deadLetterFilter + `
	FOR UPDATE
), moved AS (
	DELETE FROM {{schema}}.dead_letter d USING sel WHERE d.id = sel.id
	RETURNING d.id, d.ce_id, d.topic, d.partition, d.key, d.value, d.headers, d.ts, d.priority, d.processed
), ins AS (
	INSERT INTO {{schema}}.outbox (ce_id, topic, partition, key, value, headers, ts, priority, processed)
	SELECT ce_id, topic, partition, key, value, headers, ts, priority, processed
	FROM moved
	ORDER BY id
	ON CONFLICT (ce_id) DO NOTHING
)
SELECT count(*) FROM moved`

	// $1 ids.
	sqlDeadLetterMarkPublished = `UPDATE {{schema}}.dead_letter SET published = true
WHERE id = ANY($1::bigint[]) AND NOT published`

	// $1 time.
	sqlDeadLetterDeleteBefore = `DELETE FROM {{schema}}.dead_letter WHERE failed_at < $1`

	// The notification channel, for LISTEN (an identifier).
	sqlListen = `LISTEN "{{schema}}_outbox"`
)

// queries are the statements with the schema name filled in.
type queries struct {
	migrateLock, migrateSchema, migrateTable, migrateVersions, migrateRecord string

	schema                                          string
	insertMany, claimBatch, complete                string
	statsTopics, statsDeadLetters, nextDue          string
	laneAcquire, laneRelease, laneOwners            string
	deadLetterList, deadLetterReplay                string
	deadLetterMarkPublished, deadLetterDeleteBefore string
	listen                                          string
}

func newQueries(schema string) *queries {
	r := strings.NewReplacer("{{schema}}", schema)
	return &queries{
		schema:                  schema,
		migrateLock:             r.Replace(sqlMigrateLock),
		migrateSchema:           r.Replace(sqlMigrateSchema),
		migrateTable:            r.Replace(sqlMigrateTable),
		migrateVersions:         r.Replace(sqlMigrateVersions),
		migrateRecord:           r.Replace(sqlMigrateRecord),
		insertMany:              r.Replace(sqlInsertMany),
		claimBatch:              r.Replace(sqlClaimBatch),
		complete:                r.Replace(sqlComplete),
		statsTopics:             r.Replace(sqlStatsTopics),
		statsDeadLetters:        r.Replace(sqlStatsDeadLetters),
		nextDue:                 r.Replace(sqlNextDue),
		laneAcquire:             r.Replace(sqlLaneAcquire),
		laneRelease:             r.Replace(sqlLaneRelease),
		laneOwners:              r.Replace(sqlLaneOwners),
		deadLetterList:          r.Replace(sqlDeadLetterList),
		deadLetterReplay:        r.Replace(sqlDeadLetterReplay),
		deadLetterMarkPublished: r.Replace(sqlDeadLetterMarkPublished),
		deadLetterDeleteBefore:  r.Replace(sqlDeadLetterDeleteBefore),
		listen:                  r.Replace(sqlListen),
	}
}
