package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/outbox/outboxsqlite"
)

// TestWriterKeepsKeyOrderAcrossShards: writes spread over shards commit in
// parallel, but the rows of each key get ids in Write order, and every
// Write's done runs once after its rows are committed.
func TestWriterKeepsKeyOrderAcrossShards(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := outboxsqlite.Open(ctx, filepath.Join(t.TempDir(), "o.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w := outbox.NewWriter(st, outbox.WriterConfig{Shards: 4, MaxBatchRows: 50})
	const writes, perWrite, keys = 200, 7, 13
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls := map[int]int{}
	for i := range writes {
		msgs := make([]*outbox.Message, perWrite)
		for j := range msgs {
			n := i*perWrite + j
			msgs[j] = &outbox.Message{EventID: fmt.Sprint(n), Topic: "t", Partition: -1, Key: []byte(fmt.Sprintf("k%d", n%keys)), Value: []byte(fmt.Sprint(n)), Processed: true}
		}
		wg.Add(1)
		w.Write(msgs, func(err error) {
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
			mu.Lock()
			calls[i]++
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	w.Close()
	for i := range writes {
		if calls[i] != 1 {
			t.Fatalf("write %d: done called %d times", i, calls[i])
		}
	}
	rows, err := st.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Now: time.Now().Add(time.Hour), Limit: writes * perWrite})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != writes*perWrite {
		t.Fatalf("%d rows, want %d", len(rows), writes*perWrite)
	}
	last := map[string]int{}
	for _, r := range rows { // id order
		var n int
		fmt.Sscan(string(r.Value), &n)
		if prev, ok := last[string(r.Key)]; ok && n < prev {
			t.Fatalf("key %s: record %d has a higher id than %d", r.Key, prev, n)
		}
		last[string(r.Key)] = n
	}
	if w2 := outbox.NewWriter(st, outbox.WriterConfig{}); true {
		w2.Close()
		done := make(chan error, 1)
		w2.Write([]*outbox.Message{{EventID: "x", Topic: "t"}}, func(err error) { done <- err })
		if err := <-done; err != outbox.ErrClosed {
			t.Fatalf("write after Close: %v, want ErrClosed", err)
		}
	}
}
