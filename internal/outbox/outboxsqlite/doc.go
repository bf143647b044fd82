// Package outboxsqlite is the embedded outbox store: one SQLite database
// file, through the pure-Go driver modernc.org/sqlite, so that outbox
// routes work with no PostgreSQL installed (`make run` with the shipped
// config). It implements outbox.Store with the logical schema of
// outboxpgx.
//
// # Single process
//
// The store is for one evproxy process. Open takes an exclusive lock on
// the file <path>.lock (flock on Unix, LockFileEx on Windows) and holds it
// until Close; a second Open of the same database, from another process
// or this one, fails with "outboxsqlite: <path> is in use by another
// evproxy process" (errors.Is ErrInUse). The operating system drops the
// lock when the process dies, however it dies. Several evproxy processes
// sharing one outbox need outboxpgx. Within the process, writes are
// serialised (one write transaction at a time) and reads run beside them
// (WAL mode). Lanes are leased in the lane table all the same, so the
// relay behaves as it does on PostgreSQL.
//
// # Durability
//
// The database is in WAL mode with synchronous=FULL (and F_FULLFSYNC where
// the platform has it): every commit, such as the OutboxInsertMany that
// precedes a producer's acknowledgement, is written and fsynced to the WAL
// before the call returns. A committed record therefore survives kill -9
// of evproxy (TestKillSafety) and an operating-system crash or power loss,
// as far as the disk honours fsync. The WAL and the -shm file belong to
// the database: copy or remove the three files together.
//
// # Schema
//
// Migrations are embedded (migration/main/NNN_name.up.sql and .down.sql,
// GetMigrationFS) and recorded in the migration table by Migrate. The
// tables (outbox, lane, dead_letter) and their semantics are those of
// outboxpgx, as the conformance suite outboxtest pins them down; SQLite
// differs in representation only:
//
//   - Times are Unix milliseconds (INTEGER), truncated. A zero Timestamp is
//     NULL; a zero DeliverAt is stored as the time of the insert.
//   - ids are AUTOINCREMENT, so never reused, in the outbox and in
//     dead_letter (a dead letter gets an id of its own; a replayed one a
//     new outbox id).
//   - A null key or value is NULL and an empty one a zero-length blob; they
//     read back as nil and as a non-nil empty slice.
//   - Headers are one blob of repeated [int32 big-endian name length]
//     [name][int32 big-endian value length, -1 for a null value][value]
//     (outbox.EncodeHeaders, as in outboxpgx); no headers is NULL.
//   - An empty EventID is stored as NULL, so such messages are never
//     deduplicated (outboxpgx's ce_id is NOT NULL).
//   - A row's lane is computed in Go with outbox.LaneOf, as outboxpgx's
//     generated column computes it: the first four bytes of md5(topic +
//     lowercase hex of key), big endian, modulo outbox.Lanes.
//   - blocks and next_attempt_at are 0 until a retry sets them.
//
// Claims are one statement (a CTE over the (priority, id) index with
// NOT EXISTS probes of the few rows retried with blocks set); all SQL is
// in queries.go.
//
// A Tx (Store.Begin) runs the Executor methods inside one transaction of
// the caller's.
package outboxsqlite
