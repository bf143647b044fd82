// Package app assembles a running evproxy from its configuration: the
// embedded development broker when asked for, the upstream client, the
// Kafka listener and the admin server, and tears them down in order.
//
// # Shutdown order
//
// Stop closes the Kafka listener and lets connections finish the requests
// they already read (answers included), bounded by proxy.shutdown_timeout;
// then closes the upstream client, then the embedded broker, then the admin
// server, so /metrics and /readyz stay up while producers drain.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/evproxy/evproxy/internal/admin"
	"github.com/evproxy/evproxy/internal/config"
	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/proxy"
	"github.com/evproxy/evproxy/internal/upstream"
)

// App is a configured evproxy.
type App struct {
	cfg      *config.Config
	log      zerolog.Logger
	registry *prometheus.Registry
	metrics  *proxy.Metrics
	router   *pipeline.Router

	embedded *kfake.Cluster
	up       *upstream.Client
	proxy    *proxy.Server
	admin    *admin.Server
}

// New checks what can be checked without side effects and returns an App
// that is not started.
func New(cfg *config.Config, log zerolog.Logger) (*App, error) {
	routes := make([]pipeline.Route, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		routes = append(routes, pipeline.Route{Name: r.Name, Topics: r.Topics, Delivery: pipeline.Delivery(r.Delivery)})
	}
	router, err := pipeline.NewRouter(routes)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &App{cfg: cfg, log: log, registry: reg, metrics: proxy.NewMetrics(reg), router: router}, nil
}

// Start starts every component in order: embedded broker, upstream client,
// admin server, Kafka listener. On error, what started is stopped again.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = a.Stop(stopCtx)
		}
	}()
	brokers := a.cfg.Kafka.Brokers
	if a.cfg.Kafka.Embedded {
		a.embedded, err = upstream.StartEmbedded(brokers[0], a.cfg.Kafka.EmbeddedPartitions)
		if err != nil {
			return fmt.Errorf("app: %w", err)
		}
		brokers = a.embedded.ListenAddrs() // the real port when configured as :0
		a.log.Warn().Strs("listen", brokers).Msg("embedded development broker started: records live in memory only; use kafka { brokers = [...] } in production")
	}
	a.up, err = upstream.New(upstream.Config{
		Brokers:        brokers,
		ClientID:       a.cfg.Kafka.ClientID,
		RequestTimeout: a.cfg.Kafka.RequestTimeout,
		ProduceTimeout: a.cfg.Kafka.ProduceTimeout,
		Logger:         a.log.With().Str("component", "upstream").Logger(),
		Hooks:          a.metrics,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if err := a.up.Ping(ctx); err != nil {
		// Not fatal: producers get retriable errors and /readyz says
		// why until the cluster answers.
		a.log.Warn().Err(err).Strs("brokers", brokers).Msg("upstream kafka not reachable yet")
	}
	if a.cfg.Admin.Listen != "" {
		a.admin = admin.New(admin.Config{
			Listen:   a.cfg.Admin.Listen,
			Gatherer: a.registry,
			Ready:    map[string]admin.Check{"kafka": a.up.Ping},
			Logger:   a.log.With().Str("component", "admin").Logger(),
		})
		if err := a.admin.Start(ctx); err != nil {
			a.admin = nil
			return fmt.Errorf("app: %w", err)
		}
	}
	a.proxy, err = proxy.New(proxy.Config{
		Listen:          a.cfg.Proxy.Listen,
		Advertised:      a.cfg.Proxy.Advertised,
		MaxRequestBytes: a.cfg.Proxy.MaxRequestBytes,
		MaxInflight:     a.cfg.Proxy.MaxInflight,
		IdleTimeout:     a.cfg.Proxy.IdleTimeout,
		Router:          a.router,
		Upstream:        a.up,
		Logger:          a.log.With().Str("component", "proxy").Logger(),
		Metrics:         a.metrics,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if err := a.proxy.Start(ctx); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
}

// UpstreamBrokers are the brokers evproxy forwards to (after Start): the
// embedded broker's real address when it runs.
func (a *App) UpstreamBrokers() []string {
	if a.embedded != nil {
		return a.embedded.ListenAddrs()
	}
	return a.cfg.Kafka.Brokers
}

// ProxyAddr is the Kafka listener's address (after Start).
func (a *App) ProxyAddr() string { return a.proxy.Addr() }

// AdminAddr is the admin server's address (after Start), or "".
func (a *App) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr()
}

// Stop shuts down in the documented order. ctx bounds the wait for in-flight
// produce requests.
func (a *App) Stop(ctx context.Context) error {
	var errs []error
	if a.proxy != nil {
		if err := a.proxy.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if a.up != nil {
		a.up.Close()
	}
	if a.embedded != nil {
		a.embedded.Close()
	}
	if a.admin != nil {
		adminCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.admin.Stop(adminCtx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
