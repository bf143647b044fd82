package outboxpgx

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evproxy/evproxy/internal/outbox"
)

// benchMessages are n messages over keys keys, with ids from prefix.
func benchMessages(prefix string, n, keys int) []*outbox.Message {
	msgs := make([]*outbox.Message, n)
	value := make([]byte, 200)
	for i := range msgs {
		msgs[i] = &outbox.Message{
			EventID:   fmt.Sprintf("%s-%d", prefix, i),
			Topic:     "orders",
			Partition: -1,
			Key:       fmt.Appendf(nil, "key-%d", i%keys),
			Value:     value,
			Headers:   []outbox.Header{{Key: "ce_type", Value: []byte("order.created")}},
			Timestamp: time.Now(),
			Processed: true,
		}
	}
	return msgs
}

// copyMessages writes msgs with COPY: the baseline for OutboxInsertMany.
func copyMessages(ctx context.Context, s *Store, msgs []*outbox.Message) (int64, error) {
	return s.pool.CopyFrom(ctx, pgx.Identifier{s.schema, "outbox"},
		[]string{"ce_id", "topic", "partition", "key", "value", "headers", "ts", "priority", "processed"},
		pgx.CopyFromSlice(len(msgs), func(i int) ([]any, error) {
			m := msgs[i]
			return []any{m.EventID, m.Topic, m.Partition, m.Key, m.Value, outbox.EncodeHeaders(m.Headers), tstz(m.Timestamp), m.Priority, m.Processed}, nil
		}))
}

// BenchmarkInsertMany inserts 500-row batches with OutboxInsertMany and,
// as a baseline, with COPY; rows/s is the figure to compare. The
// NoSyncCommit variants turn synchronous_commit off for the session, so
// the WAL flush of each commit (which dominates on a slow disk) is left
// out.
func BenchmarkInsertMany(b *testing.B) {
	const batch = 500
	for _, sync := range []bool{true, false} {
		for _, mode := range []string{"InsertMany", "CopyFrom"} {
			name := mode
			if !sync {
				name += "/NoSyncCommit"
			}
			b.Run(name, func(b *testing.B) { benchInsert(b, mode, sync, batch) })
		}
	}
}

func benchInsert(b *testing.B, mode string, sync bool, batch int) {
	u := testDatabaseURL()
	if !sync {
		u = noSyncCommitURL(b, u)
	}
	s := newTestStoreURL(b, u, testSchemaName(b))
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	batches := make([][]*outbox.Message, 0, 64)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if len(batches) == 0 {
			for range 64 {
				batches = append(batches, benchMessages(fmt.Sprint(mode, n), batch, 100))
				n++
			}
		}
		msgs := batches[len(batches)-1]
		batches = batches[:len(batches)-1]
		b.StartTimer()
		var err error
		if mode == "InsertMany" {
			var got int
			got, err = s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: msgs})
			if got != batch && err == nil {
				err = fmt.Errorf("inserted %d", got)
			}
		} else {
			_, err = copyMessages(ctx, s, msgs)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkClaimBatch claims 500-row batches (without completing them:
// every claim sees the same table) from 100k pending rows over 1,000 keys,
// and from 10k rows of one key.
func BenchmarkClaimBatch(b *testing.B) {
	half := make([]int32, 32)
	for i := range half {
		half[i] = int32(2 * i)
	}
	cases := []struct {
		name       string
		rows, keys int
		lanes      []int32
	}{
		{"100kRows1000Keys", 100_000, 1000, nil},
		{"100kRows1000KeysHalfLanes", 100_000, 1000, half},
		{"10kRows1Key", 10_000, 1, nil},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := newMigratedStore(b)
			ctx := context.Background()
			for i := 0; i < tc.rows; i += 10_000 {
				if _, err := copyMessages(ctx, s, benchMessages(fmt.Sprint("r", i), 10_000, tc.keys)); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := s.pool.Exec(ctx, "VACUUM ANALYZE "+s.schema+".outbox"); err != nil {
				b.Fatal(err)
			}
			now := time.Now().Add(time.Minute)
			b.ResetTimer()
			for b.Loop() {
				rows, err := s.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Lanes: tc.lanes, Now: now, Limit: 500})
				if err != nil {
					b.Fatal(err)
				}
				if len(rows) == 0 {
					b.Fatal("claimed nothing")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/claim")
		})
	}
}
