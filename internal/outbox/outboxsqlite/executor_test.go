package outboxsqlite

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/evproxy/evproxy/internal/outbox"
)

// TestNullAndEmptyStored checks the columns themselves: a nil key, value
// or headers is NULL, an empty key or value a zero-length blob.
func TestNullAndEmptyStored(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := ctxFor(t)
	insertN(t, s, 2,
		&outbox.Message{EventID: "nil", Topic: "t", Partition: -1},
		&outbox.Message{EventID: "empty", Topic: "t", Partition: -1, Key: []byte{}, Value: []byte{}, Headers: []outbox.Header{}},
	)
	cases := []struct{ id, key, value, headers string }{
		{"nil", "null", "null", "null"},
		{"empty", "blob", "blob", "null"},
	}
	for _, c := range cases {
		var key, value, headers string
		var keyLen, valueLen int
		err := s.db.QueryRowContext(ctx, `SELECT typeof(key), typeof(value), typeof(headers), coalesce(length(key), -1), coalesce(length(value), -1)
			FROM outbox WHERE ce_id = ?`, c.id).Scan(&key, &value, &headers, &keyLen, &valueLen)
		if err != nil {
			t.Fatal(err)
		}
		if key != c.key || value != c.value || headers != c.headers {
			t.Errorf("%s: stored key, value, headers as %s, %s, %s; want %s, %s, %s", c.id, key, value, headers, c.key, c.value, c.headers)
		}
		if c.key == "blob" && (keyLen != 0 || valueLen != 0) {
			t.Errorf("%s: lengths %d, %d", c.id, keyLen, valueLen)
		}
	}
	rows := claimAll(t, s)
	if r := rows[0]; r.Key != nil || r.Value != nil || r.Headers != nil {
		t.Errorf("nil row read back %#v", r.Message)
	}
	if r := rows[1]; r.Key == nil || len(r.Key) != 0 || r.Value == nil || len(r.Value) != 0 || r.Headers != nil {
		t.Errorf("empty row read back %#v", r.Message)
	}
}

// TestEmptyEventIDNotDeduplicated: an empty EventID is NULL, and NULLs
// never conflict.
func TestEmptyEventIDNotDeduplicated(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	insertN(t, s, 3, message("", "t", "k"), message("", "t", "k"), message("x", "t", "k"))
	insertN(t, s, 1, message("", "t", "k"), message("x", "t", "k"))
	if rows := claimAll(t, s); len(rows) != 4 || rows[0].EventID != "" {
		t.Fatalf("claimed %v", eventIDs(rows))
	}
}

// modelRow is a row of the claim model.
type modelRow struct {
	id               int64
	topic            string
	key              []byte
	priority         int32
	deliver, retryAt time.Time // retryAt zero: never retried
	blocks           bool
	lane             int32
}

func (r *modelRow) due(now time.Time) bool {
	return !r.deliver.After(now) && !r.retryAt.After(now)
}

// waitsBlocking: retried with Blocks and not due yet.
func (r *modelRow) waitsBlocking(now time.Time) bool {
	return !r.deliver.After(now) && r.blocks && r.retryAt.After(now)
}

func sameKey(a, b *modelRow) bool {
	return a.key != nil && b.key != nil && a.topic == b.topic && bytes.Equal(a.key, b.key)
}

// modelClaim is OutboxClaimBatch as the outboxtest package doc specifies
// it, on rows in id order.
func modelClaim(rows []*modelRow, lanes []int32, now time.Time, limit int) []int64 {
	var eligible []*modelRow
	for i, r := range rows {
		if !r.due(now) || (lanes != nil && !slices.Contains(lanes, r.lane)) {
			continue
		}
		held := false
		for _, e := range rows[:i] {
			if sameKey(e, r) && e.waitsBlocking(now) {
				held = true
			}
		}
		if !held {
			eligible = append(eligible, r)
		}
	}
	cand := slices.Clone(eligible)
	slices.SortStableFunc(cand, func(a, b *modelRow) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(a.id, b.id))
	})
	cand = cand[:min(limit, len(cand))]
	in := map[int64]bool{}
	for _, c := range cand {
		in[c.id] = true
	}
	var out []int64
	for _, c := range cand {
		ok := true
		for _, e := range rows {
			if e.id < c.id && sameKey(e, c) && (e.due(now) || e.waitsBlocking(now)) && !in[e.id] {
				ok = false
			}
		}
		if ok {
			out = append(out, c.id)
		}
	}
	if len(out) == 0 && len(cand) > 0 {
		for _, e := range eligible[:min(limit, len(eligible))] {
			out = append(out, e.id)
		}
	}
	slices.Sort(out)
	return out
}

// TestClaimMatchesModel compares OutboxClaimBatch with modelClaim on random
// outboxes: few keys (with nil and empty ones), mixed priorities,
// scheduled rows and blocking and relaxed retries, claimed at several
// times, limits and lane sets.
func TestClaimMatchesModel(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 7))
			s := newStore(t)
			ctx := ctxFor(t)
			base := time.Now().Truncate(time.Millisecond)
			keys := [][]byte{nil, {}, []byte("a"), []byte("b"), []byte("c")}
			n := 5 + rng.IntN(30)
			msgs := make([]*outbox.Message, n)
			model := make([]*modelRow, n)
			for i := range msgs {
				m := &outbox.Message{
					EventID:   fmt.Sprint("r", i),
					Topic:     []string{"t", "u"}[rng.IntN(2)],
					Partition: -1,
					Key:       keys[rng.IntN(len(keys))],
					Priority:  int32(rng.IntN(3)),
					DeliverAt: base.Add(time.Duration(rng.IntN(5)-3) * time.Minute),
				}
				msgs[i] = m
				model[i] = &modelRow{topic: m.Topic, key: m.Key, priority: m.Priority, deliver: m.DeliverAt, lane: outbox.LaneOf(m.Topic, m.Key)}
			}
			insertN(t, s, n, msgs...)
			rows := claimAll(t, s)
			for i, r := range rows {
				model[i].id = r.ID
			}
			var retries []outbox.OutboxRetry
			for _, r := range model {
				if rng.IntN(3) == 0 {
					r.retryAt = base.Add(time.Duration(rng.IntN(5)-2) * time.Minute)
					r.blocks = rng.IntN(2) == 0
					retries = append(retries, outbox.OutboxRetry{ID: r.id, Attempts: 1, NextAttemptAt: r.retryAt, Error: "e", Blocks: r.blocks})
				}
			}
			if err := s.OutboxComplete(ctx, &outbox.OutboxCompleteParams{Retry: retries}); err != nil {
				t.Fatal(err)
			}
			laneSets := [][]int32{nil, {}, {model[0].lane}, {outbox.LaneOf("t", []byte("a")), outbox.LaneOf("u", nil), outbox.LaneOf("t", nil)}}
			for _, dt := range []time.Duration{-4 * time.Minute, -time.Minute, 0, time.Minute, 3 * time.Minute} {
				now := base.Add(dt)
				for _, limit := range []int{1, 2, 3, 5, 100} {
					for _, lanes := range laneSets {
						got, err := s.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Lanes: lanes, Now: now, Limit: limit})
						if err != nil {
							t.Fatal(err)
						}
						var ids []int64
						for _, r := range got {
							ids = append(ids, r.ID)
						}
						if want := modelClaim(model, lanes, now, limit); !slices.Equal(ids, want) {
							t.Fatalf("now %v, limit %d, lanes %v: claimed %v, model %v", dt, limit, lanes, ids, want)
						}
					}
				}
			}
		})
	}
}
