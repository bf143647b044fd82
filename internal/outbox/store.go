package outbox

import (
	"context"
	"errors"
	"time"
)

// Lanes is the number of ordering lanes. A row's lane is a hash of its topic
// and key, so every row of one (topic, key) is in the same lane; a lane is
// relayed by one evproxy process at a time (leased), in id order. It is part
// of the schema: changing it needs a migration.
const Lanes = 64

// Header is a record header. A nil Value is a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Message is a record to put in the outbox.
type Message struct {
	// EventID is the record's ce_id: unique in the outbox, so a second
	// insert of the same event is absorbed.
	EventID string
	// Generated means EventID was just made with NewEventID: it cannot be
	// in the outbox yet, so a store may skip the duplicate check (the
	// PostgreSQL store then inserts with COPY).
	Generated bool
	Topic     string
	// Partition is the upstream partition, or -1 to partition by key.
	Partition int32
	Key       []byte // nil is a null key
	Value     []byte // nil is a null value
	Headers   []Header
	// Timestamp is the record timestamp (zero: the time of publishing).
	Timestamp time.Time
	// DeliverAt is the earliest time the record may be published (zero:
	// now).
	DeliverAt time.Time
	// Priority orders relaying between rows: lower first. It never
	// reorders rows of one (topic, key).
	Priority int32
	// Processed means evproxy already ran the route's plugins; rows
	// applications write (evproxy.publish) are not, and the relay runs
	// the plugins on them.
	Processed bool
}

// Row is a message in the outbox.
type Row struct {
	Message
	ID        int64
	Lane      int32
	Attempts  int32
	LastError string
	CreatedAt time.Time
}

// DeadLetter is a record that could not be published: kept in the
// dead-letter table (the source of truth, for `retention`) and produced to
// the dead-letter topic.
type DeadLetter struct {
	Message
	ID       int64
	Attempts int32
	// Stage is where it failed: "delivery", "plugin" or "validation".
	Stage    string
	Reason   string
	Plugin   string
	FailedAt time.Time
	// Published reports whether the record reached the dead-letter topic.
	Published bool
}

// TopicStats summarises one topic's pending rows.
type TopicStats struct {
	Topic string
	// Pending rows are due or waiting for a retry; Scheduled rows wait
	// for their deliver_at.
	Pending, Scheduled int64
	// Oldest is the creation time of the oldest pending row.
	Oldest time.Time
	// Retrying rows failed at least once.
	Retrying int64
}

// Stats is the state of the outbox.
type Stats struct {
	Topics []TopicStats
	// DeadLetters is the number of rows in the dead-letter table, and
	// DeadUnpublished of those not yet on the dead-letter topic.
	DeadLetters, DeadUnpublished int64
}

// OutboxInsertManyParams are the rows to insert, in order: ids follow it.
type OutboxInsertManyParams struct {
	Messages []*Message
}

// OutboxClaimBatchParams select the next rows to publish.
type OutboxClaimBatchParams struct {
	// Lanes are the lanes the caller owns; nil means every lane (a store
	// that only one process uses).
	Lanes []int32
	// Now is the time deliver_at and retry times compare to.
	Now   time.Time
	Limit int
	// MaxBytes, when positive, bounds the claim by size too: candidates
	// (in (priority, id) order) stop at the first row that starts at or
	// past MaxBytes of keys, values and headers, so a claim holds at most
	// MaxBytes plus one row, and always at least one row. Rows cut off
	// count as not claimed, so they hold back later rows of their key.
	MaxBytes int64
}

// OutboxRetry is a row that failed and is tried again later.
type OutboxRetry struct {
	ID            int64
	Attempts      int32
	NextAttemptAt time.Time
	Error         string
	// Blocks means later rows of the same (topic, key) wait for this one
	// (route ordering = "strict"); false lets them pass it ("relaxed").
	Blocks bool
}

// OutboxDead moves a row to the dead-letter table.
type OutboxDead struct {
	ID       int64
	Attempts int32
	Stage    string
	Reason   string
	Plugin   string
	FailedAt time.Time
}

// OutboxCompleteParams record the outcome of publishing a claimed batch, in
// one transaction.
type OutboxCompleteParams struct {
	Sent  []int64 // published: deleted
	Retry []OutboxRetry
	Dead  []OutboxDead
}

// LaneAcquireParams renew the caller's lane leases and take free or expired
// lanes, up to Max lanes in all.
type LaneAcquireParams struct {
	Owner string
	TTL   time.Duration
	Max   int
}

// LaneReleaseParams give up lanes (nil: every lane of Owner).
type LaneReleaseParams struct {
	Owner string
	Lanes []int32
}

// DeadLetterListParams filter dead letters; zero fields do not filter.
type DeadLetterListParams struct {
	IDs          []int64
	Topic        string
	Since, Until time.Time // on FailedAt; Until is exclusive
	// Unpublished selects only those not yet on the dead-letter topic.
	Unpublished bool
	Limit       int // 0: no limit
}

// Executor runs the outbox's queries. Every method is one statement or one
// transaction of its own, unless the Executor belongs to a caller's
// transaction (then the caller commits).
type Executor interface {
	// OutboxInsertMany inserts messages in order and reports how many were
	// new (a message whose EventID is already in the outbox is skipped).
	OutboxInsertMany(ctx context.Context, p *OutboxInsertManyParams) (int, error)
	// OutboxClaimBatch returns up to Limit due rows of the given lanes, in
	// id order, lowest priority number first, never a row that an earlier
	// pending row of the same (topic, key) must precede: a row waits for
	// every earlier row of its key that is due or blocking (see
	// OutboxRetry.Blocks). Rows scheduled for later (DeliverAt) do not
	// hold others back.
	OutboxClaimBatch(ctx context.Context, p *OutboxClaimBatchParams) ([]*Row, error)
	// OutboxComplete applies the outcome of a publish in one transaction.
	OutboxComplete(ctx context.Context, p *OutboxCompleteParams) error
	// OutboxStats summarises the outbox at now.
	OutboxStats(ctx context.Context, now time.Time) (*Stats, error)
	// OutboxNextDue is the earliest time a pending row becomes due, if any
	// row is pending.
	OutboxNextDue(ctx context.Context) (time.Time, bool, error)

	// LaneAcquire renews and takes lanes; it returns the lanes the owner
	// holds afterwards. It also records the owner as a live relay for
	// TTL, whether or not it got a lane.
	LaneAcquire(ctx context.Context, p *LaneAcquireParams) ([]int32, error)
	// LaneRelease gives up lanes; with nil Lanes the owner also stops
	// counting as a live relay.
	LaneRelease(ctx context.Context, p *LaneReleaseParams) error
	// LaneOwners counts the live relays other than owner: those that
	// called LaneAcquire within its TTL (holding lanes or not), so that
	// the others can compute their fair share and give lanes up to a
	// newcomer.
	LaneOwners(ctx context.Context, owner string) (int, error)

	// DeadLetterList returns dead letters in id order.
	DeadLetterList(ctx context.Context, p *DeadLetterListParams) ([]*DeadLetter, error)
	// DeadLetterMarkPublished records that dead letters reached the
	// dead-letter topic.
	DeadLetterMarkPublished(ctx context.Context, ids []int64) error
	// DeadLetterReplay moves the selected dead letters back into the
	// outbox with their attempts reset, and reports how many.
	DeadLetterReplay(ctx context.Context, p *DeadLetterListParams) (int, error)
	// DeadLetterDeleteBefore deletes dead letters that failed before t.
	DeadLetterDeleteBefore(ctx context.Context, t time.Time) (int, error)
}

// Store is an outbox database: PostgreSQL (outboxpgx) or the embedded
// SQLite store (outboxsqlite).
type Store interface {
	Executor
	// Name is "postgres" or "sqlite".
	Name() string
	// Migrate applies the embedded schema migrations; safe when several
	// processes start at once.
	Migrate(ctx context.Context) error
	// SupportsListenNotify reports whether Listen can be woken by
	// applications' writes.
	SupportsListenNotify() bool
	// Listen calls wake whenever an application commits rows with
	// evproxy.publish, until ctx ends. It returns ErrNotSupported when the
	// store has no notifications.
	Listen(ctx context.Context, wake func()) error
	// Ping checks the database is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close()
}

// Errors.
var (
	// ErrNotSupported is returned by Store.Listen on stores without
	// notifications.
	ErrNotSupported = errors.New("outbox: not supported by this store")
	// ErrUnavailable wraps a failure to reach the database: writes may be
	// retried.
	ErrUnavailable = errors.New("outbox: database unavailable")
)
