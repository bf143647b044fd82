// Package outboxpgx is the PostgreSQL outbox store (outbox.Store) on
// pgx/v5: the production store, shared by several evproxy processes.
//
// # Schema
//
// Migrate creates a schema (WithSchema, default "evproxy") holding:
//
//   - outbox: pending rows; lane is a generated column, a hash of topic and
//     key (outbox.LaneOf).
//   - lane: 64 lane leases (owner, lease_until).
//   - dead_letter: records that could not be published.
//   - migration: the applied migrations (version, name, applied_at).
//   - publish(topic, key, value, headers jsonb, deliver_at, priority): the
//     function applications call in their own transaction to put a record
//     into the outbox; it generates the ce_id (unless headers has a
//     "ce_id" string), encodes the headers and notifies listeners of the
//     channel "<schema>_outbox" at commit. key and value are bytea or text
//     (an untyped literal resolves to text; pass binary keys as $n::bytea).
//
// The migrations are embedded SQL files, migration/main/NNN_name.up.sql
// and .down.sql, with {{schema}} replaced by the schema name. Migrate
// applies the missing ones in one transaction under a transaction-level
// advisory lock, so evproxy processes starting at once do not race.
//
// The schema needs PostgreSQL 13 or later (gen_random_uuid without
// pgcrypto, autovacuum_vacuum_insert_scale_factor); it is tested on 15.
//
// # Queries
//
// All SQL is in queries.go. Every Executor method is one statement except
// OutboxClaimBatch's fallback (see there). Store.Tx runs the same methods
// inside a caller's transaction.
//
// # Errors
//
// Errors are wrapped with the operation ("outboxpgx: claim batch: ...").
// Failures to reach the database (dial errors, pool acquire failures,
// errors pgconn reports safe to retry, a server shutting down, a broken
// connection, a deadlock or serialization failure) also wrap
// outbox.ErrUnavailable.
package outboxpgx
