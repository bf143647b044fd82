package outboxsqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evproxy/evproxy/internal/outbox"
)

// benchBatch makes n messages with event ids prefix-0…, 1000 keys, a
// 100-byte value and two headers, like a produce request's records.
func benchBatch(prefix string, n int) []*outbox.Message {
	value := make([]byte, 100)
	msgs := make([]*outbox.Message, n)
	for i := range msgs {
		msgs[i] = &outbox.Message{
			EventID:   fmt.Sprintf("%s-%d", prefix, i),
			Topic:     "orders",
			Partition: -1,
			Key:       []byte(fmt.Sprintf("key-%d", i%1000)),
			Value:     value,
			Headers: []outbox.Header{
				{Key: "ce_type", Value: []byte("order.created")},
				{Key: "ce_id", Value: []byte(fmt.Sprintf("%s-%d", prefix, i))},
			},
		}
	}
	return msgs
}

// fill inserts rows messages in batches of 500.
func fill(b *testing.B, s *Store, rows int) {
	b.Helper()
	for i := 0; i < rows; i += 500 {
		msgs := benchBatch(fmt.Sprint("fill", i), min(500, rows-i))
		if _, err := s.OutboxInsertMany(ctxFor(b), &outbox.OutboxInsertManyParams{Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInsertMany commits 500-row batches, one transaction (one fsync)
// each: what the front door does for a burst of produce requests.
func BenchmarkInsertMany(b *testing.B) {
	s := newStore(b)
	ctx := context.Background() // benchmarks run longer than ctxFor allows
	const batch = 500
	batches := make([][]*outbox.Message, b.N)
	for i := range batches {
		batches[i] = benchBatch(fmt.Sprint("b", i), batch)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		n, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: batches[i]})
		if err != nil || n != batch {
			b.Fatalf("InsertMany = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkClaimBatch claims 500 rows from a backlog of 100,000 (1,000
// keys) without completing them (a claim changes nothing); Drain claims
// and deletes, as the relay does.
func BenchmarkClaimBatch(b *testing.B) {
	const backlog, limit = 100_000, 500
	s := newStore(b)
	fill(b, s, backlog)
	ctx := context.Background() // benchmarks run longer than ctxFor allows
	now := time.Now().Add(time.Minute)
	half := make([]int32, 0, outbox.Lanes/2)
	for l := int32(0); l < outbox.Lanes; l += 2 {
		half = append(half, l)
	}
	for _, bc := range []struct {
		name  string
		lanes []int32
	}{{"AllLanes", nil}, {"HalfTheLanes", half}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			rows := 0
			for range b.N {
				got, err := s.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Lanes: bc.lanes, Now: now, Limit: limit})
				if err != nil || len(got) != limit {
					b.Fatalf("claim = %d rows, %v", len(got), err)
				}
				rows += len(got)
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	b.Run("Drain", func(b *testing.B) {
		s := newStore(b)
		b.StopTimer()
		fill(b, s, b.N*limit)
		b.StartTimer()
		rows := 0
		for range b.N {
			got, err := s.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Now: now, Limit: limit})
			if err != nil || len(got) != limit {
				b.Fatalf("claim = %d rows, %v", len(got), err)
			}
			sent := make([]int64, len(got))
			for i, r := range got {
				sent[i] = r.ID
			}
			if err := s.OutboxComplete(ctx, &outbox.OutboxCompleteParams{Sent: sent}); err != nil {
				b.Fatal(err)
			}
			rows += len(got)
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	})
}
