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
// Migrations are embedded (migration/main/NNN_name.up.sql and .down.sql)
// and recorded in the migration table by Migrate. Times are Unix
// milliseconds; a zero time.Time is stored as 0 (deliver_at) or NULL (ts).
// ids are AUTOINCREMENT, so never reused. A null key or value is NULL and
// an empty one a zero-length blob, and they read back as nil and non-nil
// empty slices. An empty EventID is stored as NULL, so such messages are
// never deduplicated. Headers are one blob of repeated [int32 big-endian
// name length][name][int32 big-endian value length, -1 for a null
// value][value]. A row's lane is FNV-1a (32 bit) of topic, a zero byte and
// key, modulo outbox.Lanes. A dead letter keeps the id it had in the
// outbox; a replayed one gets a new id.
//
// A Tx (Store.Begin) runs the Executor methods inside one transaction of
// the caller's.
package outboxsqlite
