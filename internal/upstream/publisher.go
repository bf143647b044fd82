package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Brokers  []string
	ClientID string
	// BreakerFailures failed publishes in a row open the circuit breaker;
	// BreakerTimeout later it lets one probe publish through (half-open).
	BreakerFailures int
	BreakerTimeout  time.Duration
	// OnStateChange is called when the breaker changes state ("closed",
	// "open", "half-open").
	OnStateChange func(from, to string)
	// Opts are extra franz-go options (tests).
	Opts []kgo.Opt
}

// Publisher produces records for the outbox relay with franz-go
// (idempotent, acks=all, topics auto-created where the cluster allows it)
// behind a circuit breaker for the upstream cluster. A record keeps its
// Partition when it is set (>= 0); others are partitioned by key like the
// Java client.
type Publisher struct {
	opts []kgo.Opt
	mu   sync.Mutex // guards cl against Close during reset
	cl   *kgo.Client
	br   *gobreaker.CircuitBreaker[struct{}]
}

// publishRetries is how often franz-go retries a record before failing it
// back to the relay.
const publishRetries = 3

// ErrUpstreamDown wraps a publish that failed as a whole because the
// upstream cluster could not be reached.
var ErrUpstreamDown = errors.New("upstream: Kafka unreachable")

// NewPublisher connects a publisher (lazily: no broker needs to be up).
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = 3
	}
	if cfg.BreakerTimeout <= 0 {
		cfg.BreakerTimeout = 5 * time.Second
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(0),
		// No RecordDeliveryTimeout: franz-go measures it from the
		// record's timestamp, which for an outbox row is when it was
		// produced, possibly long ago: every old row would time out at
		// once. Publish's context bounds the wait instead.
		kgo.RecordPartitioner(keepPartitioner{kgo.StickyKeyPartitioner(nil)}),
		// A few quick retries absorb transient broker errors; after
		// them the record fails back to the relay, whose retry policy
		// (backoff, max_retries, dead letter) takes over.
		kgo.RecordRetries(publishRetries),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		// franz-go refreshes metadata before retrying a refused batch,
		// at most every MetadataMinAge (default 5s): too slow for the
		// quick retries above to finish within a publish timeout.
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	opts = append(opts, cfg.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream: publisher: %w", err)
	}
	fails := uint32(cfg.BreakerFailures)
	br := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "kafka",
		MaxRequests: 1,
		Timeout:     cfg.BreakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= fails },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if cfg.OnStateChange != nil {
				cfg.OnStateChange(from.String(), to.String())
			}
		},
		// Only whole-cluster failures count against the breaker.
		IsSuccessful: func(err error) bool { return !errors.Is(err, ErrUpstreamDown) },
	})
	return &Publisher{opts: opts, cl: cl, br: br}, nil
}

// Available reports whether the breaker lets publishes through (closed, or
// half-open for a probe).
func (p *Publisher) Available() bool { return p.br.State() != gobreaker.StateOpen }

// BreakerState is "closed", "open" or "half-open".
func (p *Publisher) BreakerState() string { return p.br.State().String() }

// Publish produces recs and waits for all of them. It returns each
// record's error, or, when nothing was delivered because the cluster is
// unreachable or the breaker is open, a single error wrapping
// ErrUpstreamDown or gobreaker's ErrOpenState.
func (p *Publisher) Publish(ctx context.Context, recs []*kgo.Record) ([]error, error) {
	var errs []error
	_, err := p.br.Execute(func() (struct{}, error) {
		errs = p.produce(ctx, recs)
		down := 0
		var first error
		for _, e := range errs {
			if e != nil && !isBrokerAnswer(e) {
				down++
				if first == nil {
					first = e
				}
			}
		}
		if down == len(recs) && down > 0 && !p.reachable() {
			return struct{}{}, fmt.Errorf("%w: %w", ErrUpstreamDown, first)
		}
		return struct{}{}, nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

func (p *Publisher) produce(ctx context.Context, recs []*kgo.Record) []error {
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	wg.Add(len(recs))
	p.mu.Lock()
	cl := p.cl
	p.mu.Unlock()
	for i, r := range recs {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// franz-go keeps retrying records it could not send (broker
		// unreachable) past their context and delivery timeout, and
		// AbortBufferedRecords does not fail them either. Closing the
		// client does: the relay then owns the records again, and they
		// cannot be produced later behind records claimed after them.
		// A new client replaces it.
		p.reset()
		select {
		case <-done:
			for i, e := range errs {
				if errors.Is(e, kgo.ErrClientClosed) {
					errs[i] = ctx.Err() // what happened, not how we stopped it
				}
			}
		case <-time.After(10 * time.Second):
			// Callbacks still pending: errs is not safe to read.
			out := make([]error, len(recs))
			for i := range out {
				out[i] = fmt.Errorf("%w: %w", ErrUpstreamDown, ctx.Err())
			}
			return out
		}
	}
	return errs
}

// reachable asks the cluster for its metadata: when every record of a
// publish failed without a broker's answer (timeouts), that tells an
// outage (the breaker's business) from records the cluster keeps refusing
// with retriable errors (each record's attempt, with the relay's backoff).
func (p *Publisher) reachable() bool {
	p.mu.Lock()
	cl := p.cl
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	_, err := req.RequestWith(ctx, cl)
	return err == nil
}

// isBrokerAnswer reports whether err is an error a broker answered (the
// cluster is up) rather than a timeout or connection failure.
func isBrokerAnswer(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) && !errors.Is(err, kgo.ErrRecordTimeout)
}

// reset closes the client, failing its buffered records, and replaces it.
func (p *Publisher) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.cl
	if cl, err := kgo.NewClient(p.opts...); err == nil {
		p.cl = cl
	}
	go old.Close()
}

// Close closes the client; Publish waits for its records, so nothing is
// buffered unless a Publish is running.
func (p *Publisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cl.Close()
}

// keepPartitioner keeps a record's partition when it has one, and else
// partitions by key.
type keepPartitioner struct{ byKey kgo.Partitioner }

func (k keepPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return keepTopicPartitioner{k.byKey.ForTopic(topic)}
}

type keepTopicPartitioner struct{ byKey kgo.TopicPartitioner }

func (k keepTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || k.byKey.RequiresConsistency(r)
}

func (k keepTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 && int(r.Partition) < n {
		return int(r.Partition)
	}
	return k.byKey.Partition(r, n)
}
