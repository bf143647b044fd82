package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/proxytest"
)

// produceKeyed sends n records over keys keys through evproxy with an
// idempotent franz-go producer and returns once all are acknowledged.
func produceKeyed(t *testing.T, addr, topic string, n, keys int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(4096), // many small requests
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := 0; i < n; i++ {
		wg.Add(1)
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%keys)), Value: []byte(fmt.Sprint(i))}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// readAll returns every record of topic upstream, waiting for at least n.
func readAll(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	// Anything beyond n (duplicates) arrives in the same fetches or
	// shortly after; drain briefly.
	dctx, dcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer dcancel()
	for dctx.Err() == nil {
		cl.PollFetches(dctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// checkKeyOrder fails if, per key, records appear out of send order, and
// returns how many duplicates there were.
func checkKeyOrder(t *testing.T, recs []*kgo.Record, n int) (dups int) {
	t.Helper()
	seen := map[int]bool{}
	last := map[string]int{}
	for _, r := range recs {
		var i int
		fmt.Sscan(string(r.Value), &i)
		if seen[i] {
			dups++
			continue
		}
		seen[i] = true
		k := string(r.Key)
		if prev, ok := last[k]; ok && i < prev {
			t.Fatalf("key %s: record %d after %d", k, i, prev)
		}
		last[k] = i
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records upstream, sent %d", len(seen), n)
	}
	return dups
}

// A broker that refuses batches with a retriable error (leader moved) must
// cost nothing: the producer retries, every record lands once, in order.
func TestRetriableUpstreamErrorKeepsOrderAndNoDuplicates(t *testing.T) {
	t.Parallel()
	s := proxytest.Start(t, nil)
	if err := s.Upstream.CreateTopic("notleader", 3, nil); err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	s.Upstream.ControlKey(0, func(kr kmsg.Request) (kmsg.Response, error, bool) {
		if refused.Add(1) > 5 {
			return nil, nil, false
		}
		s.Upstream.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	const n = 2000
	produceKeyed(t, s.ProxyAddr, "notleader", n, 10)
	recs := readAll(t, s.UpstreamAddr, "notleader", n)
	if dups := checkKeyOrder(t, recs, n); dups != 0 {
		t.Fatalf("%d duplicates after retriable refusals; want none", dups)
	}
	if refused.Load() < 5 {
		t.Fatalf("only %d produce requests were refused; the test did not exercise retries", refused.Load())
	}
}

// When the upstream connection breaks mid-stream the outcome of what was in
// flight is unknown: nothing may be lost and per-key order must hold;
// duplicates are allowed (and reported).
func TestUpstreamConnectionLossLosesNothing(t *testing.T) {
	t.Parallel()
	s := proxytest.Start(t, nil)
	if err := s.Upstream.CreateTopic("connloss", 3, nil); err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int32
	s.Upstream.ControlKey(0, func(kmsg.Request) (kmsg.Response, error, bool) {
		// evproxy coalesces client batches into few upstream requests
		// (8 in one CI run for these 3000 records): drop early ones.
		switch seen.Add(1) {
		case 2, 4:
			s.Upstream.KeepControl()
			return nil, errors.New("injected connection drop"), true
		case 20:
			return nil, nil, false // done injecting; the control is dropped after this
		}
		s.Upstream.KeepControl()
		return nil, nil, false
	})
	const n = 3000
	produceKeyed(t, s.ProxyAddr, "connloss", n, 10)
	recs := readAll(t, s.UpstreamAddr, "connloss", n)
	dups := checkKeyOrder(t, recs, n)
	t.Logf("%d records, %d duplicates after 2 upstream connection drops", n, dups)
	if seen.Load() < 4 {
		t.Fatalf("only %d produce requests seen; the drops were not exercised", seen.Load())
	}
}
