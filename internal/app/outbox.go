package app

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/evproxy/evproxy/internal/config"
	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/outbox/outboxpgx"
	"github.com/evproxy/evproxy/internal/outbox/outboxsqlite"
	"github.com/evproxy/evproxy/internal/upstream"
)

// OpenStore opens the outbox store an outbox block names, without
// migrating it.
func OpenStore(ctx context.Context, cfg config.OutboxConfig) (outbox.Store, error) {
	if p, ok := strings.CutPrefix(cfg.DatabaseURL, "sqlite:"); ok {
		s, err := outboxsqlite.Open(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("app: outbox store: %w", err)
		}
		return s, nil
	}
	s, err := outboxpgx.New(ctx, cfg.DatabaseURL, outboxpgx.WithSchema(cfg.Schema))
	if err != nil {
		return nil, fmt.Errorf("app: outbox store: %w", err)
	}
	return s, nil
}

// outboxParts are the running pieces of the outbox.
type outboxParts struct {
	store     outbox.Store
	writer    *outbox.Writer
	relay     *outbox.Relay
	publisher *upstream.Publisher
	cancel    context.CancelFunc
	done      sync.WaitGroup
	ready     chan struct{} // closed once migrations ran
}

// startOutbox opens and migrates the store, and starts the writer and the
// relay. A database that is down at start does not stop evproxy: direct
// routes serve, outbox routes answer retriable errors, /readyz reports it,
// and migration is retried until it succeeds.
func (a *App) startOutbox(ctx context.Context, brokers []string) error {
	oc := a.cfg.Outbox
	if !oc.Enabled {
		return nil
	}
	store, err := OpenStore(ctx, oc)
	if err != nil {
		return err
	}
	o := &outboxParts{store: store, ready: make(chan struct{})}
	a.outbox = o
	log := a.log.With().Str("component", "outbox").Str("store", store.Name()).Logger()
	m := outbox.NewMetrics(a.registry)
	breaker := prometheus.NewGauge(prometheus.GaugeOpts{Name: "evproxy_outbox_breaker_state", Help: "Circuit breaker of the relay's upstream cluster: 0 closed, 1 half-open, 2 open."})
	transitions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "evproxy_outbox_breaker_transitions_total", Help: "Circuit breaker state changes of the relay's upstream cluster, by new state."}, []string{"to"})
	a.registry.MustRegister(breaker, transitions)
	for _, st := range []string{"open", "half-open", "closed"} {
		transitions.WithLabelValues(st) // present from the start, at 0
	}
	o.publisher, err = upstream.NewPublisher(upstream.PublisherConfig{
		Brokers: brokers, ClientID: a.cfg.Kafka.ClientID + "-relay",
		BreakerFailures: oc.BreakerFailures, BreakerTimeout: oc.BreakerTimeout,
		OnStateChange: func(from, to string) {
			breaker.Set(map[string]float64{"closed": 0, "half-open": 1, "open": 2}[to])
			transitions.WithLabelValues(to).Inc()
			log.Warn().Str("from", from).Str("to", to).Msg("outbox relay circuit breaker changed state")
		},
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	policies := make(map[string]outbox.RetryPolicy, len(a.cfg.Routes))
	for _, r := range a.cfg.Routes {
		policies[r.Name] = retryPolicy(r.Retry, r.Ordering)
	}
	def := retryPolicy(oc.Retry, config.OrderingStrict)
	o.relay = outbox.NewRelay(store, o.publisher, outbox.RelayConfig{
		Owner:            owner(),
		BatchSize:        oc.BatchSize,
		BatchBytes:       oc.BatchBytes,
		Workers:          oc.RelayWorkers,
		PollInterval:     oc.PollInterval,
		LeaseTTL:         oc.LeaseTTL,
		PublishTimeout:   oc.PublishTimeout,
		Retention:        oc.Retention,
		DeadLetterTopics: a.cfg.DeadLetter.Enabled,
		DeadLetterSuffix: a.cfg.DeadLetter.TopicSuffix,
		Policy: func(topic string) outbox.RetryPolicy {
			if rt := a.router.Outbox(topic); rt != nil {
				if p, ok := policies[rt.Name]; ok {
					return p
				}
			}
			return def
		},
		Processor:     a.rowProcessor(),
		SingleProcess: store.Name() == "sqlite",
		Logger:        log,
		Metrics:       m,
	})
	o.writer = outbox.NewWriter(store, outbox.WriterConfig{
		// A commit that times out is ambiguous (it may have committed):
		// the producer retries and the records are written twice. Give
		// commits time; the producer's own request timeout still bounds
		// what it waits for.
		MaxBatchRows: 5000, Timeout: 30 * time.Second, Committed: o.relay.Wake, Metrics: m,
	})
	rctx, cancel := context.WithCancel(log.WithContext(context.Background()))
	o.cancel = cancel
	o.done.Add(1)
	firstTry := make(chan struct{})
	go func() {
		defer o.done.Done()
		if !a.migrate(rctx, store, log, firstTry) {
			return
		}
		close(o.ready)
		_ = o.relay.Run(rctx)
	}()
	// The listener opens after the first migration attempt, so that the
	// first produce does not race the schema when the database is up.
	select {
	case <-firstTry:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// migrate applies the store's migrations, retrying until it succeeds or
// ctx ends. firstTry is closed after the first attempt.
func (a *App) migrate(ctx context.Context, store outbox.Store, log zerolog.Logger, firstTry chan struct{}) bool {
	delay := 500 * time.Millisecond
	defer func() {
		select {
		case <-firstTry:
		default:
			close(firstTry)
		}
	}()
	for {
		err := store.Migrate(ctx)
		if err == nil {
			log.Info().Msg("outbox store ready")
			return true
		}
		select {
		case <-firstTry:
		default:
			close(firstTry)
		}
		log.Error().Err(err).Dur("retry_in", delay).Msg("outbox store: cannot migrate; outbox routes answer retriable errors until it works")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// stopOutbox commits what producers already sent, then stops the relay
// and closes the store.
func (o *outboxParts) stop() {
	if o.writer != nil {
		o.writer.Close()
	}
	if o.cancel != nil {
		o.cancel()
	}
	o.done.Wait()
	if o.publisher != nil {
		o.publisher.Close()
	}
	o.store.Close()
}

// ping is the /readyz check of the outbox store.
func (o *outboxParts) ping(ctx context.Context) error {
	select {
	case <-o.ready:
	default:
		return fmt.Errorf("outbox store not migrated yet")
	}
	return o.store.Ping(ctx)
}

// retryPolicy converts a route's retry configuration.
func retryPolicy(r config.RetryPolicy, ordering string) outbox.RetryPolicy {
	return outbox.RetryPolicy{
		MaxRetries: r.MaxRetries, RetryDelay: r.RetryDelay, BackoffFactor: r.BackoffFactor,
		MaxRetryDelay: r.MaxRetryDelay, Strict: ordering != config.OrderingRelaxed,
	}
}

// owner names this process in lane leases.
func owner() string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}
