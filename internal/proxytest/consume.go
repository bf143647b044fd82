package proxytest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Consume reads exactly n records of topic from the cluster at addr (the
// upstream, to see what arrived), waiting up to timeout for them, then for
// 300ms more to check that no others follow. It fails the test otherwise.
func Consume(t testing.TB, addr, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: read %d of %d records in %s", topic, len(out), n, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	extra, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	for extra.Err() == nil {
		cl.PollFetches(extra).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != n {
		t.Fatalf("topic %s: %d records, want exactly %d", topic, len(out), n)
	}
	return out
}

// Header returns the last value of header name of r, and whether r has it.
func Header(r *kgo.Record, name string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == name {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}
