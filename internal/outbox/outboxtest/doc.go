// Package outboxtest is the conformance suite every outbox.Store passes
// (after River's riverdrivertest): outboxpgx and outboxsqlite run
// Exercise against a fresh, migrated store per subtest.
//
// The suite pins down behaviour the outbox.Executor docs leave open. A
// driver must match it exactly:
//
// # Values
//
//   - Times the caller gives (Message.Timestamp, Message.DeliverAt,
//     OutboxRetry.NextAttemptAt, OutboxDead.FailedAt) are kept to the
//     millisecond, truncated. Compare them with time.Time.Equal.
//   - A zero Timestamp reads back as the zero time; a zero DeliverAt is
//     stored as the database's current time.
//   - Key, Value and header values keep nil (null) apart from empty.
//     Headers keep their order and duplicate names; a message without
//     headers (nil or empty) reads back with nil Headers.
//   - Partition is stored as given (-1: partition by key).
//   - A dead letter keeps every message field except DeliverAt, which
//     reads back as zero.
//
// # Lanes
//
// A row's lane is outbox.LaneOf(topic, key): the first four bytes of
// md5(topic + lowercase hex of key), big endian, modulo outbox.Lanes. A nil
// key and an empty key hash alike (they are still different keys for
// ordering).
//
// # Inserting
//
// OutboxInsertMany gives ids in input order; a message whose EventID is in
// the outbox already, or earlier in the same call, is skipped (the first
// wins) and not counted.
//
// # Claiming
//
// At Now, a row is due when DeliverAt <= Now and its retry time (if it
// was retried) <= Now. A row blocks later rows of its (topic, key) when
// DeliverAt <= Now and it is due or it waits for a retry with Blocks set.
// Rows with a null key are never held back and hold nothing back. The
// empty key is a key like any other. OutboxClaimBatch returns, in id
// order:
//
//  1. Eligible rows are due rows of the given lanes (nil: all) with no
//     earlier row of their key waiting for a retry with Blocks set.
//  2. Candidates are the first Limit eligible rows by (Priority, ID).
//  3. The result is the candidates with no earlier blocking row of their
//     key outside the candidates.
//  4. If that is empty but there were candidates, the result is the first
//     Limit eligible rows by ID instead (so a claim always makes progress
//     when a row can be claimed).
//
// A claim changes nothing: claiming twice returns the same rows.
//
// # Completing
//
// OutboxComplete deletes Sent rows, updates Retry rows (attempts, retry
// time, last error, blocks) and moves Dead rows to the dead-letter table
// (Published false), in that order and in one transaction. Unknown ids are
// ignored.
//
// # Stats and NextDue
//
// OutboxStats lists topics with rows, by name: Pending counts rows with
// DeliverAt <= now (due or waiting for a retry), Scheduled those with
// DeliverAt > now, Retrying those with at least one attempt, and Oldest is
// the earliest CreatedAt of a pending row (zero if none).
//
// OutboxNextDue is the earliest max(DeliverAt, retry time) of a row with
// no earlier row of its key that was retried with Blocks set (such a row
// becomes due with its blocker, which counts instead); false when the
// outbox is empty. It may be in the past.
//
// # Lanes leases
//
// LaneAcquire renews the owner's leases, releases lanes beyond Max (the
// highest numbers first) and takes free or expired lanes (lowest numbers
// first) until the owner holds Max; it returns the held lanes in
// ascending order. Lease times come from the database clock.
//
// # Dead letters
//
// DeadLetterList filters on IDs, Topic, FailedAt in [Since, Until),
// Unpublished, and Limit, in id order. DeadLetterReplay selects the same
// way, removes the selected dead letters and inserts them into the outbox
// in id order with zero attempts and DeliverAt now, keeping EventID and
// the other message fields; it counts the removed dead letters (an
// EventID already back in the outbox is removed and counted, and the
// outbox row stays as it is). DeadLetterDeleteBefore deletes dead letters
// with FailedAt < t. Unknown ids are ignored everywhere.
package outboxtest
