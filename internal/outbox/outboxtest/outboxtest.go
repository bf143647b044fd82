package outboxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evproxy/evproxy/internal/outbox"
)

// Exercise runs the conformance suite. newStore returns a fresh, migrated,
// empty store for one subtest and arranges its cleanup (t.Cleanup); it is
// called from parallel subtests.
func Exercise(t *testing.T, newStore func(t *testing.T) outbox.Store) {
	t.Helper()
	s := &suite{newStore: newStore}

	t.Run("Store", s.testStore)
	t.Run("Migrate", s.testMigrate)
	t.Run("InsertMany", s.testInsertMany)
	t.Run("ClaimBatch", s.testClaimBatch)
	t.Run("Complete", s.testComplete)
	t.Run("Stats", s.testStats)
	t.Run("NextDue", s.testNextDue)
	t.Run("Lanes", s.testLanes)
	t.Run("DeadLetter", s.testDeadLetter)
}

type suite struct {
	newStore func(t *testing.T) outbox.Store
}

// base is a millisecond time the tests build their times on; rows given
// explicit times around it never depend on the database clock.
func base() time.Time { return time.Now().Truncate(time.Millisecond) }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) testStore(t *testing.T) {
	t.Parallel()
	st := s.newStore(t)
	ctx := ctxFor(t)
	if n := st.Name(); n != "postgres" && n != "sqlite" {
		t.Errorf("Name() = %q, want postgres or sqlite", n)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if !st.SupportsListenNotify() {
		err := st.Listen(ctx, func() {})
		if !errors.Is(err, outbox.ErrNotSupported) {
			t.Errorf("Listen without notifications = %v, want ErrNotSupported", err)
		}
	}
}

func (s *suite) testMigrate(t *testing.T) {
	t.Parallel()
	st := s.newStore(t)
	ctx := ctxFor(t)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate %d: %v", i, err)
		}
	}
	// The store still works and holds nothing.
	now := base()
	if rows := claim(t, st, now, nil, 100); len(rows) != 0 {
		t.Fatalf("fresh store has %d rows", len(rows))
	}
	insert(t, st, 1, msg("a", "t", "k", now))
	if rows := claim(t, st, now, nil, 100); len(rows) != 1 {
		t.Fatalf("claimed %d rows, want 1", len(rows))
	}
}

// msg is a message due at deliverAt (ms-precision time), with a string key
// ("" is a nil key).
func msg(id, topic, key string, deliverAt time.Time) *outbox.Message {
	m := &outbox.Message{EventID: id, Topic: topic, Partition: -1, Value: []byte("v-" + id), DeliverAt: deliverAt}
	if key != "" {
		m.Key = []byte(key)
	}
	return m
}

func insert(t *testing.T, st outbox.Executor, wantNew int, msgs ...*outbox.Message) {
	t.Helper()
	n, err := st.OutboxInsertMany(ctxFor(t), &outbox.OutboxInsertManyParams{Messages: msgs})
	if err != nil {
		t.Fatalf("OutboxInsertMany: %v", err)
	}
	if n != wantNew {
		t.Fatalf("OutboxInsertMany = %d new, want %d", n, wantNew)
	}
}

func claim(t *testing.T, st outbox.Executor, now time.Time, lanes []int32, limit int) []*outbox.Row {
	t.Helper()
	rows, err := st.OutboxClaimBatch(ctxFor(t), &outbox.OutboxClaimBatchParams{Lanes: lanes, Now: now, Limit: limit})
	if err != nil {
		t.Fatalf("OutboxClaimBatch: %v", err)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].ID <= rows[i-1].ID {
			t.Fatalf("claimed rows not in id order: %d after %d", rows[i].ID, rows[i-1].ID)
		}
	}
	return rows
}

func complete(t *testing.T, st outbox.Executor, p *outbox.OutboxCompleteParams) {
	t.Helper()
	if err := st.OutboxComplete(ctxFor(t), p); err != nil {
		t.Fatalf("OutboxComplete: %v", err)
	}
}

func eventIDs(rows []*outbox.Row) []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.EventID
	}
	return ids
}

func byEventID(t *testing.T, rows []*outbox.Row) map[string]*outbox.Row {
	t.Helper()
	m := make(map[string]*outbox.Row, len(rows))
	for _, r := range rows {
		m[r.EventID] = r
	}
	return m
}

// diffMessage describes how got differs from want, or returns "".
func diffMessage(got, want *outbox.Message) string {
	var d []string
	add := func(f string, g, w any) { d = append(d, fmt.Sprintf("%s = %v, want %v", f, g, w)) }
	if got.EventID != want.EventID {
		add("EventID", got.EventID, want.EventID)
	}
	if got.Topic != want.Topic {
		add("Topic", got.Topic, want.Topic)
	}
	if got.Partition != want.Partition {
		add("Partition", got.Partition, want.Partition)
	}
	if !bytesEqual(got.Key, want.Key) {
		add("Key", showBytes(got.Key), showBytes(want.Key))
	}
	if !bytesEqual(got.Value, want.Value) {
		add("Value", showBytes(got.Value), showBytes(want.Value))
	}
	if !headersEqual(got.Headers, want.Headers) {
		add("Headers", showHeaders(got.Headers), showHeaders(want.Headers))
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		add("Timestamp", got.Timestamp, want.Timestamp)
	}
	if !got.DeliverAt.Equal(want.DeliverAt) {
		add("DeliverAt", got.DeliverAt, want.DeliverAt)
	}
	if got.Priority != want.Priority {
		add("Priority", got.Priority, want.Priority)
	}
	if got.Processed != want.Processed {
		add("Processed", got.Processed, want.Processed)
	}
	return strings.Join(d, "; ")
}

// bytesEqual is bytes.Equal that keeps nil apart from empty.
func bytesEqual(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func headersEqual(a, b []outbox.Header) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytesEqual(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func showBytes(b []byte) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", b)
}

func showHeaders(hs []outbox.Header) string {
	if hs == nil {
		return "nil"
	}
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Key + ":" + showBytes(h.Value)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (s *suite) testInsertMany(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		now := base()
		msgs := []*outbox.Message{
			{
				EventID: "full", Topic: "orders", Partition: -1,
				Key: []byte("k1"), Value: []byte(`{"a":1}`),
				Headers: []outbox.Header{
					{Key: "ce_type", Value: []byte("order.created")},
					{Key: "dup", Value: []byte("1")},
					{Key: "null", Value: nil},
					{Key: "empty", Value: []byte{}},
					{Key: "dup", Value: []byte("2")},
					{Key: "", Value: []byte("nameless")},
					{Key: "bin", Value: []byte{0, 1, 2, 0xff}},
				},
				Timestamp: now.Add(-time.Hour),
				DeliverAt: now.Add(-time.Minute),
				Priority:  7,
				Processed: true,
			},
			{EventID: "nulls", Topic: "orders", Partition: 3, DeliverAt: now.Add(-time.Minute)},
			{EventID: "empties", Topic: "orders", Partition: 0, Key: []byte{}, Value: []byte{}, Headers: []outbox.Header{}, DeliverAt: now.Add(-time.Minute), Priority: -2},
			{EventID: "bin", Topic: "bin", Partition: 2147483647, Key: []byte{0, 0xff, 0x80}, Value: []byte{0}, DeliverAt: now.Add(-time.Minute), Priority: 2147483647},
		}
		insert(t, st, len(msgs), msgs...)
		rows := claim(t, st, now, nil, 100)
		if got, want := eventIDs(rows), []string{"full", "nulls", "empties", "bin"}; !slices.Equal(got, want) {
			t.Fatalf("claimed %v, want %v (input order)", got, want)
		}
		want := []outbox.Message{*msgs[0], *msgs[1], *msgs[2], *msgs[3]}
		want[2].Headers = nil // no headers read back as nil
		for i, r := range rows {
			if d := diffMessage(&r.Message, &want[i]); d != "" {
				t.Errorf("row %s: %s", r.EventID, d)
			}
			if wl := outbox.LaneOf(r.Topic, r.Key); r.Lane != wl {
				t.Errorf("row %s: Lane = %d, want %d", r.EventID, r.Lane, wl)
			}
			if r.Attempts != 0 || r.LastError != "" {
				t.Errorf("row %s: Attempts, LastError = %d, %q; want 0, \"\"", r.EventID, r.Attempts, r.LastError)
			}
			if r.CreatedAt.IsZero() || r.ID <= 0 {
				t.Errorf("row %s: ID %d, CreatedAt %v", r.EventID, r.ID, r.CreatedAt)
			}
		}
	})

	t.Run("TimePrecision", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		now := base()
		m := &outbox.Message{
			EventID: "e", Topic: "t", Partition: -1,
			Timestamp: now.Add(-time.Hour + 1500*time.Microsecond),
			DeliverAt: now.Add(-time.Minute + 999*time.Microsecond),
		}
		insert(t, st, 1, m)
		rows := claim(t, st, now, nil, 10)
		if len(rows) != 1 {
			t.Fatalf("claimed %d rows", len(rows))
		}
		if want := now.Add(-time.Hour + time.Millisecond); !rows[0].Timestamp.Equal(want) {
			t.Errorf("Timestamp = %v, want %v (truncated to ms)", rows[0].Timestamp, want)
		}
		if want := now.Add(-time.Minute); !rows[0].DeliverAt.Equal(want) {
			t.Errorf("DeliverAt = %v, want %v (truncated to ms)", rows[0].DeliverAt, want)
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		before := time.Now()
		insert(t, st, 1, &outbox.Message{EventID: "e", Topic: "t", Partition: -1})
		after := time.Now()
		rows := claim(t, st, after.Add(time.Minute), nil, 10)
		if len(rows) != 1 {
			t.Fatalf("claimed %d rows", len(rows))
		}
		r := rows[0]
		if !r.Timestamp.IsZero() {
			t.Errorf("zero Timestamp read back as %v", r.Timestamp)
		}
		// Zero DeliverAt is the database's now; allow for clock
		// granularity.
		if r.DeliverAt.Before(before.Add(-time.Second)) || r.DeliverAt.After(after.Add(time.Second)) {
			t.Errorf("zero DeliverAt stored as %v, want within [%v, %v]", r.DeliverAt, before, after)
		}
		if r.CreatedAt.Before(before.Add(-time.Second)) || r.CreatedAt.After(after.Add(time.Second)) {
			t.Errorf("CreatedAt %v, want within [%v, %v]", r.CreatedAt, before, after)
		}
		if r.Headers != nil || r.Key != nil || r.Value != nil {
			t.Errorf("nil fields read back as %v, %v, %v", r.Headers, r.Key, r.Value)
		}
	})

	t.Run("DuplicateEventID", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		now := base().Add(-time.Minute)
		first := msg("a", "t", "k", now)
		first.Value = []byte("first")
		second := msg("a", "t", "k", now)
		second.Value = []byte("second")
		insert(t, st, 2, first, msg("b", "t", "k", now), second)
		insert(t, st, 1, msg("b", "t", "k", now), msg("c", "t", "k", now), msg("a", "t", "k", now))
		insert(t, st, 0, msg("c", "t", "k", now))
		insert(t, st, 0)
		rows := claim(t, st, base(), nil, 100)
		if got, want := eventIDs(rows), []string{"a", "b", "c"}; !slices.Equal(got, want) {
			t.Fatalf("claimed %v, want %v", got, want)
		}
		if string(rows[0].Value) != "first" {
			t.Errorf("duplicate within a call: value %q, want the first", rows[0].Value)
		}
	})

	t.Run("ManyRows", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		now := base()
		const n = 2000
		msgs := make([]*outbox.Message, n)
		want := make([]string, n)
		for i := range msgs {
			// Descending ids as strings so that id order is not
			// EventID order.
			want[i] = fmt.Sprintf("e%05d", n-i)
			msgs[i] = msg(want[i], "t", fmt.Sprint("k", i%7), now.Add(-time.Minute))
		}
		insert(t, st, n, msgs...)
		if got := eventIDs(claim(t, st, now, nil, n)); !slices.Equal(got, want) {
			t.Fatalf("claimed rows not in input order")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		ctx := ctxFor(t)
		now := base().Add(-time.Minute)
		const workers, n = 4, 100
		counts := make([]int, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Overlapping halves, each in ascending order (inserts
				// of one EventID in different orders may deadlock on
				// PostgreSQL, which is retriable but not what this
				// tests).
				var msgs []*outbox.Message
				start := w * (n / 2) / (workers - 1)
				for j := start; j < start+n/2; j++ {
					msgs = append(msgs, msg(fmt.Sprint("e", j), "t", fmt.Sprint("k", j), now))
				}
				counts[w], errs[w] = st.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: msgs})
			}()
		}
		wg.Wait()
		total := 0
		for w := range workers {
			if errs[w] != nil {
				t.Fatalf("worker %d: %v", w, errs[w])
			}
			total += counts[w]
		}
		if total != n {
			t.Errorf("new rows counted %d times, want %d", total, n)
		}
		if rows := claim(t, st, base(), nil, 1000); len(rows) != n {
			t.Errorf("outbox holds %d rows, want %d", len(rows), n)
		}
	})
}

// claimRow is a row of a claim scenario.
type claimRow struct {
	topic    string // "" is "t"
	key      string // "" is a nil key; "<empty>" the empty key
	priority int32
	future   bool // DeliverAt an hour after now
	size     int  // > 0: the value is size bytes minus the key's
}

// claimRetry is a Complete(Retry) applied to row index i before claiming.
type claimRetry struct {
	i      int
	in     time.Duration // NextAttemptAt - now
	blocks bool
}

func (s *suite) testClaimBatch(t *testing.T) {
	cases := []struct {
		name     string
		rows     []claimRow
		retry    []claimRetry
		limit    int
		maxBytes int64 // OutboxClaimBatchParams.MaxBytes
		want     []int // row indexes, in order
	}{
		{
			name:  "IDOrder",
			rows:  []claimRow{{priority: 3}, {key: "a"}, {priority: -1}, {key: "b", priority: 9}},
			limit: 10,
			want:  []int{0, 1, 2, 3},
		},
		{
			name:  "Limit",
			rows:  []claimRow{{key: "a"}, {key: "b"}, {key: "c"}, {key: "d"}},
			limit: 2,
			want:  []int{0, 1},
		},
		{
			name:  "PriorityWhenLimitCuts",
			rows:  []claimRow{{key: "a", priority: 5}, {key: "b"}, {key: "c", priority: 3}, {key: "d"}},
			limit: 2,
			want:  []int{1, 3},
		},
		{
			name:  "PriorityWhenLimitCuts3",
			rows:  []claimRow{{key: "a", priority: 5}, {key: "b"}, {key: "c", priority: 3}, {key: "d"}},
			limit: 3,
			want:  []int{1, 2, 3},
		},
		{
			name:  "FutureExcludedAndDoesNotHoldBack",
			rows:  []claimRow{{key: "k", future: true}, {key: "k"}, {future: true}},
			limit: 10,
			want:  []int{1},
		},
		{
			name:  "ScheduledInTheMiddle",
			rows:  []claimRow{{key: "k"}, {key: "k", future: true}, {key: "k"}},
			limit: 10,
			want:  []int{0, 2},
		},
		{
			name:  "PriorityNeverReordersKey",
			rows:  []claimRow{{key: "k", priority: 5}, {key: "k", priority: 0}},
			limit: 1,
			want:  []int{0}, // not row 1 alone: fall back to id order
		},
		{
			name:  "PriorityNeverReordersKeyWholeKey",
			rows:  []claimRow{{key: "k", priority: 5}, {key: "k", priority: 0}},
			limit: 2,
			want:  []int{0, 1},
		},
		{
			name:  "HeldBackCandidatesExcludeTheirSuccessors",
			rows:  []claimRow{{key: "k", priority: 5}, {key: "k"}, {key: "k"}, {key: "l"}},
			limit: 3,
			want:  []int{3},
		},
		{
			name:  "FallbackOnlyWhenNothingLeft",
			rows:  []claimRow{{key: "k", priority: 5}, {key: "k"}, {key: "l", priority: 1}},
			limit: 2,
			want:  []int{2},
		},
		{
			name:  "FallbackByID",
			rows:  []claimRow{{key: "k", priority: 5}, {key: "k"}, {key: "l", priority: 1}},
			limit: 1,
			want:  []int{0},
		},
		{
			name:  "NullKeysIndependent",
			rows:  []claimRow{{priority: 5}, {priority: 0}},
			limit: 1,
			want:  []int{1},
		},
		{
			name:  "NullKeyRetryDoesNotBlock",
			rows:  []claimRow{{}, {}},
			retry: []claimRetry{{i: 0, in: time.Hour, blocks: true}},
			limit: 10,
			want:  []int{1},
		},
		{
			name:  "EmptyKeyIsAKey",
			rows:  []claimRow{{key: "<empty>", priority: 5}, {key: "<empty>"}, {}},
			limit: 2,
			want:  []int{2},
		},
		{
			name:  "EmptyKeyIsAKeyFallback",
			rows:  []claimRow{{key: "<empty>", priority: 5}, {key: "<empty>"}},
			limit: 1,
			want:  []int{0},
		},
		{
			name:  "BackoffExcluded",
			rows:  []claimRow{{key: "a"}, {key: "b"}},
			retry: []claimRetry{{i: 0, in: time.Millisecond, blocks: false}},
			limit: 10,
			want:  []int{1},
		},
		{
			name:  "RetryDueAtItsTime",
			rows:  []claimRow{{key: "a"}, {key: "a"}},
			retry: []claimRetry{{i: 0, in: 0, blocks: true}},
			limit: 10,
			want:  []int{0, 1},
		},
		{
			name:  "BlockingRetryHoldsKeyBack",
			rows:  []claimRow{{key: "k"}, {key: "k"}, {key: "k"}, {key: "l"}, {key: "k", topic: "u"}},
			retry: []claimRetry{{i: 0, in: time.Hour, blocks: true}},
			limit: 10,
			want:  []int{3, 4},
		},
		{
			name:  "BlockingRetryDoesNotStarveOthers",
			rows:  []claimRow{{key: "k"}, {key: "k"}, {key: "k"}, {key: "l", priority: 1}},
			retry: []claimRetry{{i: 0, in: time.Hour, blocks: true}},
			limit: 2,
			want:  []int{3},
		},
		{
			name:  "BlockedRowsTakeNoCandidateSlots",
			rows:  []claimRow{{key: "k"}, {key: "k"}, {key: "k"}, {key: "l", priority: 1}, {key: "m", priority: 2}},
			retry: []claimRetry{{i: 0, in: time.Hour, blocks: true}},
			limit: 3,
			want:  []int{3, 4},
		},
		{
			name:  "NonBlockingRetryLetsKeyPass",
			rows:  []claimRow{{key: "k"}, {key: "k"}, {key: "k"}},
			retry: []claimRetry{{i: 0, in: time.Hour, blocks: false}},
			limit: 10,
			want:  []int{1, 2},
		},
		{
			name:  "BlockingRetryInTheMiddle",
			rows:  []claimRow{{key: "k"}, {key: "k"}, {key: "k"}},
			retry: []claimRetry{{i: 1, in: time.Hour, blocks: true}},
			limit: 10,
			want:  []int{0},
		},
		{
			name:     "BytesBound",
			rows:     []claimRow{{key: "a", size: 100}, {key: "b", size: 100}, {key: "c", size: 100}, {key: "d", size: 100}},
			limit:    10,
			maxBytes: 250, // rows start at 0, 100, 200, 300 bytes
			want:     []int{0, 1, 2},
		},
		{
			name:     "BytesBoundAlwaysOneRow",
			rows:     []claimRow{{key: "a", size: 1000}, {key: "b", size: 10}},
			limit:    10,
			maxBytes: 10,
			want:     []int{0},
		},
		{
			name:     "BytesBoundCutRowHoldsKeyBack",
			rows:     []claimRow{{key: "k", priority: 5, size: 100}, {key: "l", size: 100}, {key: "k", size: 100}},
			limit:    10,
			maxBytes: 150, // candidates r1, r2; r0 (priority 5) is cut and fences r2
			want:     []int{1},
		},
		{
			name:     "BytesBoundFallback",
			rows:     []claimRow{{key: "k", priority: 5, size: 100}, {key: "k", size: 100}},
			limit:    10,
			maxBytes: 50, // candidate r1 is fenced by r0: by id, r0 alone
			want:     []int{0},
		},
		{
			name:  "NonBlockingThenBlocking",
			rows:  []claimRow{{key: "k"}, {key: "k"}, {key: "k"}, {key: "k"}},
			retry: []claimRetry{{i: 0, in: time.Hour, blocks: false}, {i: 2, in: time.Hour, blocks: true}},
			limit: 10,
			want:  []int{1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := s.newStore(t)
			now := base()
			msgs := make([]*outbox.Message, len(tc.rows))
			for i, r := range tc.rows {
				topic := r.topic
				if topic == "" {
					topic = "t"
				}
				m := msg(fmt.Sprint("r", i), topic, r.key, now.Add(-time.Minute))
				if r.key == "<empty>" {
					m.Key = []byte{}
				}
				m.Priority = r.priority
				if r.size > 0 {
					m.Value = make([]byte, r.size-len(m.Key))
				}
				if r.future {
					m.DeliverAt = now.Add(time.Hour)
				}
				msgs[i] = m
			}
			insert(t, st, len(msgs), msgs...)
			if len(tc.retry) > 0 {
				ids := byEventID(t, claim(t, st, now.Add(2*time.Hour), nil, 1000))
				p := &outbox.OutboxCompleteParams{}
				for _, r := range tc.retry {
					p.Retry = append(p.Retry, outbox.OutboxRetry{
						ID: ids[fmt.Sprint("r", r.i)].ID, Attempts: 1,
						NextAttemptAt: now.Add(r.in), Error: "boom", Blocks: r.blocks,
					})
				}
				complete(t, st, p)
			}
			want := make([]string, len(tc.want))
			for i, j := range tc.want {
				want[i] = fmt.Sprint("r", j)
			}
			claimOnce := func() []string {
				rows, err := st.OutboxClaimBatch(ctxFor(t), &outbox.OutboxClaimBatchParams{Now: now, Limit: tc.limit, MaxBytes: tc.maxBytes})
				if err != nil {
					t.Fatalf("OutboxClaimBatch: %v", err)
				}
				return eventIDs(rows)
			}
			got := claimOnce()
			if !slices.Equal(got, want) {
				t.Fatalf("claimed %v, want %v", got, want)
			}
			// A claim changes nothing.
			if again := claimOnce(); !slices.Equal(again, got) {
				t.Fatalf("second claim %v, first %v", again, got)
			}
		})
	}

	t.Run("Lanes", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		now := base()
		var msgs []*outbox.Message
		lanesOf := map[string]int32{}
		for i := range 200 {
			m := msg(fmt.Sprint("e", i), "t", fmt.Sprint("k", i), now.Add(-time.Minute))
			lanesOf[m.EventID] = outbox.LaneOf(m.Topic, m.Key)
			msgs = append(msgs, m)
		}
		insert(t, st, len(msgs), msgs...)
		all := claim(t, st, now, nil, 1000)
		if len(all) != len(msgs) {
			t.Fatalf("nil lanes claimed %d rows, want %d", len(all), len(msgs))
		}
		for _, lanes := range [][]int32{{}, {0}, {5, 17, 63}, {lanesOf["e0"]}} {
			var want []string
			for _, m := range msgs {
				if slices.Contains(lanes, lanesOf[m.EventID]) {
					want = append(want, m.EventID)
				}
			}
			got := claim(t, st, now, lanes, 1000)
			if !slices.Equal(eventIDs(got), want) {
				t.Errorf("lanes %v: claimed %v, want %v", lanes, eventIDs(got), want)
			}
			for _, r := range got {
				if !slices.Contains(lanes, r.Lane) {
					t.Errorf("lanes %v: row of lane %d", lanes, r.Lane)
				}
			}
		}
	})
}

func (s *suite) testComplete(t *testing.T) {
	t.Run("SentRetryDead", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		ctx := ctxFor(t)
		now := base()
		full := &outbox.Message{
			EventID: "dead", Topic: "orders", Partition: 4,
			Key: []byte("k"), Value: nil,
			Headers:   []outbox.Header{{Key: "a", Value: nil}, {Key: "a", Value: []byte{}}, {Key: "b", Value: []byte("x")}},
			Timestamp: now.Add(-time.Hour), DeliverAt: now.Add(-time.Minute),
			Priority: 3, Processed: true,
		}
		insert(t, st, 4,
			msg("sent", "t", "a", now.Add(-time.Minute)),
			msg("retry", "t", "b", now.Add(-time.Minute)),
			full,
			msg("keep", "t", "c", now.Add(-time.Minute)),
		)
		ids := byEventID(t, claim(t, st, now, nil, 10))
		complete(t, st, &outbox.OutboxCompleteParams{
			Sent: []int64{ids["sent"].ID, 1 << 40},
			Retry: []outbox.OutboxRetry{
				{ID: ids["retry"].ID, Attempts: 2, NextAttemptAt: now.Add(10*time.Second + 1500*time.Microsecond), Error: "timeout", Blocks: true},
				{ID: 1<<40 + 1, Attempts: 1, NextAttemptAt: now, Error: "x"},
			},
			Dead: []outbox.OutboxDead{
				{ID: ids["dead"].ID, Attempts: 3, Stage: "plugin", Reason: "boom", Plugin: "enrich", FailedAt: now.Add(-time.Second + 700*time.Microsecond)},
				{ID: 1<<40 + 2, Attempts: 1, Stage: "delivery", Reason: "unknown id", FailedAt: now},
			},
		})
		if got := eventIDs(claim(t, st, now, nil, 10)); !slices.Equal(got, []string{"keep"}) {
			t.Fatalf("claimed %v, want [keep]", got)
		}
		// Retry: excluded until its time (truncated to ms), then
		// claimed with attempts and error.
		later := now.Add(10*time.Second + time.Millisecond)
		if got := eventIDs(claim(t, st, later.Add(-time.Millisecond), nil, 10)); !slices.Equal(got, []string{"keep"}) {
			t.Fatalf("before retry time claimed %v, want [keep]", got)
		}
		rows := claim(t, st, later, nil, 10)
		if got := eventIDs(rows); !slices.Equal(got, []string{"retry", "keep"}) {
			t.Fatalf("at retry time claimed %v, want [retry keep]", got)
		}
		if r := rows[0]; r.Attempts != 2 || r.LastError != "timeout" {
			t.Errorf("retried row: Attempts %d, LastError %q; want 2, timeout", r.Attempts, r.LastError)
		}
		dls, err := st.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
		if err != nil {
			t.Fatalf("DeadLetterList: %v", err)
		}
		if len(dls) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dls))
		}
		d := dls[0]
		want := *full
		want.DeliverAt = time.Time{}
		if diff := diffMessage(&d.Message, &want); diff != "" {
			t.Errorf("dead letter: %s", diff)
		}
		if d.ID <= 0 || d.Attempts != 3 || d.Stage != "plugin" || d.Reason != "boom" || d.Plugin != "enrich" || d.Published {
			t.Errorf("dead letter = %+v", d)
		}
		if want := now.Add(-time.Second); !d.FailedAt.Equal(want) {
			t.Errorf("FailedAt = %v, want %v", d.FailedAt, want)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		complete(t, st, &outbox.OutboxCompleteParams{})
	})

	t.Run("RetryUpdatesAgain", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		now := base()
		insert(t, st, 2, msg("a", "t", "k", now.Add(-time.Minute)), msg("b", "t", "k", now.Add(-time.Minute)))
		ids := byEventID(t, claim(t, st, now, nil, 10))
		complete(t, st, &outbox.OutboxCompleteParams{Retry: []outbox.OutboxRetry{{ID: ids["a"].ID, Attempts: 1, NextAttemptAt: now.Add(time.Hour), Error: "one", Blocks: true}}})
		if got := claim(t, st, now, nil, 10); len(got) != 0 {
			t.Fatalf("claimed %v behind a blocking retry", eventIDs(got))
		}
		// Relaxed now: the key passes; the error and attempts change.
		complete(t, st, &outbox.OutboxCompleteParams{Retry: []outbox.OutboxRetry{{ID: ids["a"].ID, Attempts: 2, NextAttemptAt: now.Add(time.Hour), Error: "two", Blocks: false}}})
		if got := eventIDs(claim(t, st, now, nil, 10)); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("claimed %v, want [b]", got)
		}
		rows := claim(t, st, now.Add(time.Hour), nil, 10)
		if len(rows) != 2 || rows[0].Attempts != 2 || rows[0].LastError != "two" {
			t.Fatalf("rows after retry: %+v", rows)
		}
	})
}

func (s *suite) testStats(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		stats, err := st.OutboxStats(ctxFor(t), base())
		if err != nil {
			t.Fatalf("OutboxStats: %v", err)
		}
		if len(stats.Topics) != 0 || stats.DeadLetters != 0 || stats.DeadUnpublished != 0 {
			t.Fatalf("empty store stats %+v", stats)
		}
	})
	t.Run("Counts", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		ctx := ctxFor(t)
		now := base()
		past := now.Add(-time.Minute)
		insert(t, st, 7,
			msg("b1", "b", "k", past),
			msg("b2", "b", "k", past),
			msg("b3", "b", "", now.Add(time.Hour)),
			msg("a1", "a", "k", now.Add(time.Hour)),
			msg("c1", "c", "", past),
			msg("c2", "c", "", past),
			msg("b4", "b", "", now), // due exactly now
		)
		ids := byEventID(t, claim(t, st, now, nil, 100))
		complete(t, st, &outbox.OutboxCompleteParams{
			Retry: []outbox.OutboxRetry{{ID: ids["b2"].ID, Attempts: 1, NextAttemptAt: now.Add(time.Hour), Error: "e", Blocks: true}},
			Dead: []outbox.OutboxDead{
				{ID: ids["c1"].ID, Attempts: 1, Stage: "validation", Reason: "r", FailedAt: now},
				{ID: ids["c2"].ID, Attempts: 1, Stage: "validation", Reason: "r", FailedAt: now},
			},
		})
		dls, err := st.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
		if err != nil || len(dls) != 2 {
			t.Fatalf("DeadLetterList: %d, %v", len(dls), err)
		}
		if err := st.DeadLetterMarkPublished(ctx, []int64{dls[0].ID}); err != nil {
			t.Fatalf("DeadLetterMarkPublished: %v", err)
		}
		stats, err := st.OutboxStats(ctx, now)
		if err != nil {
			t.Fatalf("OutboxStats: %v", err)
		}
		oldest := ids["b1"].CreatedAt
		for _, id := range []string{"b2", "b4"} {
			if c := ids[id].CreatedAt; c.Before(oldest) {
				oldest = c
			}
		}
		want := []outbox.TopicStats{
			{Topic: "a", Pending: 0, Scheduled: 1, Retrying: 0},
			{Topic: "b", Pending: 3, Scheduled: 1, Retrying: 1, Oldest: oldest},
		}
		if len(stats.Topics) != len(want) {
			t.Fatalf("stats topics %+v, want %+v", stats.Topics, want)
		}
		for i, w := range want {
			g := stats.Topics[i]
			if g.Topic != w.Topic || g.Pending != w.Pending || g.Scheduled != w.Scheduled || g.Retrying != w.Retrying || !g.Oldest.Equal(w.Oldest) {
				t.Errorf("topic %d = %+v, want %+v", i, g, w)
			}
		}
		if stats.DeadLetters != 2 || stats.DeadUnpublished != 1 {
			t.Errorf("dead letters %d, unpublished %d; want 2, 1", stats.DeadLetters, stats.DeadUnpublished)
		}
	})
}

func (s *suite) testNextDue(t *testing.T) {
	type retry struct {
		i      int
		at     time.Duration
		blocks bool
	}
	cases := []struct {
		name    string
		deliver []time.Duration // per row (key "k" unless keys given), relative to now
		keys    []string
		retry   []retry
		want    time.Duration
		wantOK  bool
	}{
		{name: "Empty"},
		{name: "Scheduled", deliver: []time.Duration{2 * time.Hour, time.Hour}, keys: []string{"a", "b"}, want: time.Hour, wantOK: true},
		{name: "PastDue", deliver: []time.Duration{time.Hour, -time.Minute}, keys: []string{"a", "b"}, want: -time.Minute, wantOK: true},
		{name: "RetryTime", deliver: []time.Duration{-time.Minute, time.Hour}, keys: []string{"a", "b"}, retry: []retry{{0, 30 * time.Minute, false}}, want: 30 * time.Minute, wantOK: true},
		{name: "BehindBlockingRetry", deliver: []time.Duration{-time.Minute, -time.Minute, time.Hour}, keys: []string{"k", "k", "l"}, retry: []retry{{0, 30 * time.Minute, true}}, want: 30 * time.Minute, wantOK: true},
		{name: "BehindNonBlockingRetry", deliver: []time.Duration{-time.Minute, -2 * time.Minute}, keys: []string{"k", "k"}, retry: []retry{{0, 30 * time.Minute, false}}, want: -2 * time.Minute, wantOK: true},
		{name: "NullKeysNotBehind", deliver: []time.Duration{-time.Minute, -2 * time.Minute}, keys: []string{"", ""}, retry: []retry{{0, 30 * time.Minute, true}}, want: -2 * time.Minute, wantOK: true},
		{name: "OtherTopicNotBehind", deliver: []time.Duration{-time.Minute, -2 * time.Minute}, keys: []string{"k", "u:k"}, retry: []retry{{0, 30 * time.Minute, true}}, want: -2 * time.Minute, wantOK: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := s.newStore(t)
			now := base()
			var msgs []*outbox.Message
			for i, d := range tc.deliver {
				topic, key := "t", tc.keys[i]
				if k, ok := strings.CutPrefix(key, "u:"); ok {
					topic, key = "u", k
				}
				msgs = append(msgs, msg(fmt.Sprint("r", i), topic, key, now.Add(d)))
			}
			insert(t, st, len(msgs), msgs...)
			if len(tc.retry) > 0 {
				ids := byEventID(t, claim(t, st, now.Add(24*time.Hour), nil, 100))
				p := &outbox.OutboxCompleteParams{}
				for _, r := range tc.retry {
					p.Retry = append(p.Retry, outbox.OutboxRetry{ID: ids[fmt.Sprint("r", r.i)].ID, Attempts: 1, NextAttemptAt: now.Add(r.at), Error: "e", Blocks: r.blocks})
				}
				complete(t, st, p)
			}
			got, ok, err := st.OutboxNextDue(ctxFor(t))
			if err != nil {
				t.Fatalf("OutboxNextDue: %v", err)
			}
			if ok != tc.wantOK || (ok && !got.Equal(now.Add(tc.want))) {
				t.Fatalf("OutboxNextDue = %v, %v; want %v, %v", got, ok, now.Add(tc.want), tc.wantOK)
			}
		})
	}
}

func acquire(t *testing.T, st outbox.Executor, owner string, ttl time.Duration, max int) []int32 {
	t.Helper()
	lanes, err := st.LaneAcquire(ctxFor(t), &outbox.LaneAcquireParams{Owner: owner, TTL: ttl, Max: max})
	if err != nil {
		t.Fatalf("LaneAcquire(%s): %v", owner, err)
	}
	if !slices.IsSorted(lanes) {
		t.Fatalf("LaneAcquire(%s) = %v, not ascending", owner, lanes)
	}
	for _, l := range lanes {
		if l < 0 || l >= outbox.Lanes {
			t.Fatalf("LaneAcquire(%s) = %v: lane out of range", owner, lanes)
		}
	}
	return lanes
}

func owners(t *testing.T, st outbox.Executor, owner string) int {
	t.Helper()
	n, err := st.LaneOwners(ctxFor(t), owner)
	if err != nil {
		t.Fatalf("LaneOwners: %v", err)
	}
	return n
}

func release(t *testing.T, st outbox.Executor, owner string, lanes []int32) {
	t.Helper()
	if err := st.LaneRelease(ctxFor(t), &outbox.LaneReleaseParams{Owner: owner, Lanes: lanes}); err != nil {
		t.Fatalf("LaneRelease: %v", err)
	}
}

func seq(from, to int32) []int32 {
	var s []int32
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func (s *suite) testLanes(t *testing.T) {
	t.Run("Split", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		if n := owners(t, st, "a"); n != 0 {
			t.Fatalf("LaneOwners on a fresh store = %d", n)
		}
		a := acquire(t, st, "a", time.Minute, 32)
		b := acquire(t, st, "b", time.Minute, 32)
		if !slices.Equal(a, seq(0, 32)) || !slices.Equal(b, seq(32, 64)) {
			t.Fatalf("a = %v, b = %v; want the lowest free lanes each", a, b)
		}
		// Renewal keeps the lanes; nothing more is free.
		if a2 := acquire(t, st, "a", time.Minute, 32); !slices.Equal(a2, a) {
			t.Fatalf("renewed a = %v, want %v", a2, a)
		}
		if b2 := acquire(t, st, "b", time.Minute, 64); !slices.Equal(b2, b) {
			t.Fatalf("b asking for 64 = %v, want %v", b2, b)
		}
		if c := acquire(t, st, "c", time.Minute, 32); len(c) != 0 {
			t.Fatalf("c got %v with every lane leased", c)
		}
		// c holds no lane but is a live relay: it counts.
		if n := owners(t, st, "a"); n != 2 {
			t.Errorf("LaneOwners(a) = %d, want 2 (b, and c without lanes)", n)
		}
		if n := owners(t, st, "c"); n != 2 {
			t.Errorf("LaneOwners(c) = %d, want 2", n)
		}
		// Release some, then all.
		release(t, st, "a", []int32{3, 5, 40}) // 40 is b's: untouched
		if got := acquire(t, st, "c", time.Minute, 32); !slices.Equal(got, []int32{3, 5}) {
			t.Fatalf("c after a released 3, 5 = %v", got)
		}
		release(t, st, "a", nil)
		if n := owners(t, st, "b"); n != 1 {
			t.Errorf("LaneOwners(b) after a left = %d, want 1 (c)", n)
		}
		if got := acquire(t, st, "b", time.Minute, 64); len(got) != 62 {
			t.Fatalf("b after a left holds %d lanes (%v), want 62", len(got), got)
		}
		if got := acquire(t, st, "c", time.Minute, 32); !slices.Equal(got, []int32{3, 5}) {
			t.Fatalf("c = %v, want [3 5]", got)
		}
	})

	t.Run("ReleaseExcess", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		if all := acquire(t, st, "a", time.Minute, 64); !slices.Equal(all, seq(0, 64)) {
			t.Fatalf("a alone = %v", all)
		}
		if got := acquire(t, st, "b", time.Minute, 32); len(got) != 0 {
			t.Fatalf("b got %v while a holds all", got)
		}
		// b holds nothing, but a must see it to compute its share.
		if n := owners(t, st, "a"); n != 1 {
			t.Fatalf("LaneOwners(a) = %d with b waiting for lanes, want 1", n)
		}
		// A second replica appeared: a shrinks to its share.
		if got := acquire(t, st, "a", time.Minute, 32); !slices.Equal(got, seq(0, 32)) {
			t.Fatalf("a shrunk to %v, want the lowest 32", got)
		}
		if got := acquire(t, st, "b", time.Minute, 32); !slices.Equal(got, seq(32, 64)) {
			t.Fatalf("b = %v", got)
		}
		if got := acquire(t, st, "a", time.Minute, 0); len(got) != 0 {
			t.Fatalf("a with Max 0 = %v", got)
		}
		if n := owners(t, st, "b"); n != 1 {
			t.Errorf("LaneOwners(b) = %d, want 1 (a is alive without lanes)", n)
		}
		release(t, st, "a", nil)
		if n := owners(t, st, "b"); n != 0 {
			t.Errorf("LaneOwners(b) = %d after a released everything, want 0", n)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		ctx := ctxFor(t)
		// Four owners of 16 lanes each acquire at once, again and
		// again. Nobody releases and nothing expires, so a lane one
		// owner ever held is never another's.
		const owners, rounds = 4, 10
		held := make([]map[int32]bool, owners)
		errs := make([]error, owners)
		var wg sync.WaitGroup
		for o := range owners {
			held[o] = map[int32]bool{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					lanes, err := st.LaneAcquire(ctx, &outbox.LaneAcquireParams{Owner: fmt.Sprint("o", o), TTL: time.Minute, Max: 16})
					if err != nil {
						errs[o] = err
						return
					}
					if len(lanes) > 16 {
						errs[o] = fmt.Errorf("holds %d lanes, Max 16", len(lanes))
						return
					}
					for _, l := range lanes {
						held[o][l] = true
					}
				}
			}()
		}
		wg.Wait()
		owner := map[int32]int{}
		for o := range owners {
			if errs[o] != nil {
				t.Fatalf("owner %d: %v", o, errs[o])
			}
			for l := range held[o] {
				if p, ok := owner[l]; ok {
					t.Fatalf("lane %d held by owners %d and %d", l, p, o)
				}
				owner[l] = o
			}
		}
		// Settled: each gets its 16.
		for o := range owners {
			if got := acquire(t, st, fmt.Sprint("o", o), time.Minute, 16); len(got) != 16 {
				t.Errorf("owner %d holds %v after settling", o, got)
			}
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		if got := acquire(t, st, "a", time.Millisecond, 64); len(got) != 64 {
			t.Fatalf("a = %v", got)
		}
		// Poll (the lease is on the database clock) until it expires.
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := acquire(t, st, "b", time.Minute, 64)
			if len(got) == 64 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("b holds %d lanes 10s after a's 1ms lease", len(got))
			}
		}
		if n := owners(t, st, "b"); n != 0 {
			t.Errorf("LaneOwners(b) = %d after a expired, want 0", n)
		}
		if n := owners(t, st, "a"); n != 1 {
			t.Errorf("LaneOwners(a) = %d, want 1", n)
		}
		// a's renewal finds nothing left to renew.
		if got := acquire(t, st, "a", time.Minute, 32); len(got) != 0 {
			t.Fatalf("a after expiry = %v", got)
		}
	})
}

// deadLetters makes n dead letters, FailedAt now+i minutes, topics "x"
// for even i and "y" for odd, published when i%3 == 0.
func deadLetters(t *testing.T, st outbox.Executor, now time.Time, n int) []*outbox.DeadLetter {
	t.Helper()
	ctx := ctxFor(t)
	var msgs []*outbox.Message
	for i := range n {
		topic := "x"
		if i%2 == 1 {
			topic = "y"
		}
		m := msg(fmt.Sprint("d", i), topic, fmt.Sprint("k", i), now.Add(-time.Hour))
		m.Headers = []outbox.Header{{Key: "h", Value: []byte(fmt.Sprint(i))}}
		m.Priority = int32(i)
		m.Timestamp = now.Add(-2 * time.Hour)
		m.Processed = i%2 == 0
		msgs = append(msgs, m)
	}
	insert(t, st, n, msgs...)
	rows := claim(t, st, now, nil, n)
	p := &outbox.OutboxCompleteParams{}
	for i, r := range rows {
		p.Dead = append(p.Dead, outbox.OutboxDead{ID: r.ID, Attempts: int32(i + 1), Stage: "delivery", Reason: fmt.Sprint("reason ", i), FailedAt: now.Add(time.Duration(i) * time.Minute)})
	}
	complete(t, st, p)
	dls, err := st.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
	if err != nil {
		t.Fatalf("DeadLetterList: %v", err)
	}
	if len(dls) != n {
		t.Fatalf("%d dead letters, want %d", len(dls), n)
	}
	var pub []int64
	for i, d := range dls {
		if d.EventID != fmt.Sprint("d", i) {
			t.Fatalf("dead letter %d is %s: not in id order", i, d.EventID)
		}
		want := *msgs[i]
		want.DeliverAt = time.Time{}
		if diff := diffMessage(&d.Message, &want); diff != "" {
			t.Errorf("dead letter %s: %s", d.EventID, diff)
		}
		if i%3 == 0 {
			pub = append(pub, d.ID)
		}
	}
	if err := st.DeadLetterMarkPublished(ctx, append(pub, 1<<40)); err != nil {
		t.Fatalf("DeadLetterMarkPublished: %v", err)
	}
	for _, i := range []int{0, 3, 6, 9} {
		if i < n {
			dls[i].Published = true
		}
	}
	return dls
}

func dlEventIDs(dls []*outbox.DeadLetter) []string {
	ids := make([]string, len(dls))
	for i, d := range dls {
		ids[i] = d.EventID
	}
	return ids
}

func (s *suite) testDeadLetter(t *testing.T) {
	t.Run("List", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		ctx := ctxFor(t)
		now := base()
		all := deadLetters(t, st, now, 8)
		cases := []struct {
			name string
			p    outbox.DeadLetterListParams
			want []string
		}{
			{"All", outbox.DeadLetterListParams{}, []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"}},
			{"IDs", outbox.DeadLetterListParams{IDs: []int64{all[5].ID, all[1].ID, 1 << 40}}, []string{"d1", "d5"}},
			{"Topic", outbox.DeadLetterListParams{Topic: "y"}, []string{"d1", "d3", "d5", "d7"}},
			{"Since", outbox.DeadLetterListParams{Since: now.Add(5 * time.Minute)}, []string{"d5", "d6", "d7"}},
			{"Until", outbox.DeadLetterListParams{Until: now.Add(2 * time.Minute)}, []string{"d0", "d1"}},
			{"SinceUntil", outbox.DeadLetterListParams{Since: now.Add(2 * time.Minute), Until: now.Add(4*time.Minute + time.Millisecond)}, []string{"d2", "d3", "d4"}},
			{"Unpublished", outbox.DeadLetterListParams{Unpublished: true}, []string{"d1", "d2", "d4", "d5", "d7"}},
			{"Limit", outbox.DeadLetterListParams{Limit: 3}, []string{"d0", "d1", "d2"}},
			{"Combined", outbox.DeadLetterListParams{Topic: "x", Unpublished: true, Since: now.Add(time.Minute), Limit: 1}, []string{"d2"}},
			{"EmptyIDs", outbox.DeadLetterListParams{IDs: []int64{}}, []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"}},
		}
		for _, tc := range cases {
			got, err := st.DeadLetterList(ctx, &tc.p)
			if err != nil {
				t.Fatalf("%s: DeadLetterList: %v", tc.name, err)
			}
			if !slices.Equal(dlEventIDs(got), tc.want) {
				t.Errorf("%s: listed %v, want %v", tc.name, dlEventIDs(got), tc.want)
			}
		}
		got, err := st.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range got {
			w := all[i]
			if diff := diffMessage(&d.Message, &w.Message); diff != "" {
				t.Errorf("%s: %s", d.EventID, diff)
			}
			if d.ID != w.ID || d.Attempts != int32(i+1) || d.Stage != "delivery" || d.Reason != fmt.Sprint("reason ", i) || d.Plugin != "" || !d.FailedAt.Equal(now.Add(time.Duration(i)*time.Minute)) || d.Published != w.Published {
				t.Errorf("dead letter %d = %+v, want %+v", i, d, w)
			}
		}
	})

	t.Run("Replay", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		ctx := ctxFor(t)
		now := base()
		all := deadLetters(t, st, now, 6)
		n, err := st.DeadLetterReplay(ctx, &outbox.DeadLetterListParams{IDs: []int64{all[4].ID, all[1].ID, 1 << 40}})
		if err != nil || n != 2 {
			t.Fatalf("DeadLetterReplay = %d, %v; want 2", n, err)
		}
		left, err := st.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if got := dlEventIDs(left); !slices.Equal(got, []string{"d0", "d2", "d3", "d5"}) {
			t.Fatalf("dead letters left %v", got)
		}
		before := time.Now()
		rows := claim(t, st, now.Add(time.Hour), nil, 10)
		if got := eventIDs(rows); !slices.Equal(got, []string{"d1", "d4"}) {
			t.Fatalf("outbox after replay %v, want [d1 d4]", got)
		}
		for _, r := range rows {
			w := all[1]
			if r.EventID == "d4" {
				w = all[4]
			}
			want := w.Message
			want.DeliverAt = r.DeliverAt // now
			if diff := diffMessage(&r.Message, &want); diff != "" {
				t.Errorf("replayed %s: %s", r.EventID, diff)
			}
			if r.DeliverAt.After(before.Add(time.Second)) || r.DeliverAt.Before(now.Add(-time.Second)) {
				t.Errorf("replayed %s: DeliverAt %v, want about now", r.EventID, r.DeliverAt)
			}
			if r.Attempts != 0 || r.LastError != "" || r.Lane != outbox.LaneOf(r.Topic, r.Key) {
				t.Errorf("replayed %s: %+v", r.EventID, r)
			}
		}

		// Filters select as in DeadLetterList; an EventID already
		// back in the outbox is removed and counted.
		insert(t, st, 1, msg("d3", "elsewhere", "", now))
		n, err = st.DeadLetterReplay(ctx, &outbox.DeadLetterListParams{Topic: "y", Limit: 5})
		if err != nil || n != 2 {
			t.Fatalf("DeadLetterReplay(topic y) = %d, %v; want 2", n, err)
		}
		rows = claim(t, st, now.Add(time.Hour), nil, 10)
		if got := eventIDs(rows); !slices.Equal(got, []string{"d1", "d4", "d3", "d5"}) {
			t.Fatalf("outbox after second replay %v", got)
		}
		if rows[2].Topic != "elsewhere" {
			t.Errorf("replay overwrote the outbox row of d3: %+v", rows[2])
		}
		n, err = st.DeadLetterReplay(ctx, &outbox.DeadLetterListParams{Unpublished: true})
		if err != nil || n != 1 {
			t.Fatalf("DeadLetterReplay(unpublished) = %d, %v; want 1 (d2)", n, err)
		}
		n, err = st.DeadLetterReplay(ctx, &outbox.DeadLetterListParams{IDs: []int64{all[1].ID}})
		if err != nil || n != 0 {
			t.Fatalf("DeadLetterReplay(gone) = %d, %v; want 0", n, err)
		}
		left, err = st.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if got := dlEventIDs(left); !slices.Equal(got, []string{"d0"}) {
			t.Fatalf("dead letters left %v, want [d0]", got)
		}
	})

	t.Run("DeleteBefore", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		ctx := ctxFor(t)
		now := base()
		deadLetters(t, st, now, 5)
		n, err := st.DeadLetterDeleteBefore(ctx, now.Add(2*time.Minute))
		if err != nil || n != 2 {
			t.Fatalf("DeadLetterDeleteBefore = %d, %v; want 2", n, err)
		}
		n, err = st.DeadLetterDeleteBefore(ctx, now.Add(2*time.Minute))
		if err != nil || n != 0 {
			t.Fatalf("second DeadLetterDeleteBefore = %d, %v; want 0", n, err)
		}
		left, err := st.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if got := dlEventIDs(left); !slices.Equal(got, []string{"d2", "d3", "d4"}) {
			t.Fatalf("left %v", got)
		}
	})

	t.Run("MarkPublished", func(t *testing.T) {
		t.Parallel()
		st := s.newStore(t)
		ctx := ctxFor(t)
		all := deadLetters(t, st, base(), 3)
		if err := st.DeadLetterMarkPublished(ctx, nil); err != nil {
			t.Fatalf("DeadLetterMarkPublished(nil): %v", err)
		}
		if err := st.DeadLetterMarkPublished(ctx, []int64{all[1].ID, all[0].ID}); err != nil {
			t.Fatal(err)
		}
		got, err := st.DeadLetterList(ctx, &outbox.DeadLetterListParams{Unpublished: true})
		if err != nil {
			t.Fatal(err)
		}
		if ids := dlEventIDs(got); !slices.Equal(ids, []string{"d2"}) {
			t.Fatalf("unpublished %v, want [d2]", ids)
		}
	})
}
