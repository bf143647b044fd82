package upstream

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Side records are records evproxy itself produces to topics other than the
// one a producer wrote to: records a plugin routed or fanned out, and dead
// letters. They go through a franz-go producer (idempotent, acks=all) that
// partitions by key like the Java client, since they have no partition of
// their own.

// sideProducer lazily creates the kgo producer for side records.
type sideProducer struct {
	once sync.Once
	cl   *kgo.Client
	err  error
}

// ProduceRecords produces recs to their topics, in order per topic and
// key, and calls done once with the first error (nil when every record was
// acknowledged). done runs on a franz-go goroutine and must not block.
// Topics are auto-created where the cluster allows it.
func (c *Client) ProduceRecords(ctx context.Context, recs []*kgo.Record, done func(error)) {
	c.side.once.Do(func() {
		c.side.cl, c.side.err = kgo.NewClient(
			kgo.SeedBrokers(c.cfg.Brokers...),
			kgo.ClientID(c.cfg.ClientID+"-side"),
			kgo.AllowAutoTopicCreation(),
			kgo.ProducerLinger(0),
			// No RecordDeliveryTimeout: franz-go measures it from the
			// record's timestamp, the producer's, which may be old (a
			// replayed stream, a skewed clock): such records would
			// time out before being sent. The context bounds them.
		)
	})
	if c.side.err != nil {
		done(c.side.err)
		return
	}
	if c.side.cl == nil { // Close ran first
		done(errClientClosed)
		return
	}
	if len(recs) == 0 {
		done(nil)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ProduceTimeout)
	userDone := done
	done = func(err error) {
		cancel()
		userDone(err)
	}
	var (
		remaining = atomic.Int32{}
		mu        sync.Mutex
		first     error
	)
	remaining.Store(int32(len(recs)))
	for _, r := range recs {
		c.side.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			if remaining.Add(-1) == 0 {
				mu.Lock()
				err := first
				mu.Unlock()
				done(err)
			}
		})
	}
}

func (s *sideProducer) close() {
	if s.cl != nil {
		s.cl.Close()
	}
}
