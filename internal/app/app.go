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

	embedded *kfake.Cluster
	up       *upstream.Client
	proxy    *proxy.Server
	admin    *admin.Server
}

// New builds the components of cfg without starting them.
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
	m := proxy.NewMetrics(reg)
	up, err := upstream.New(upstream.Config{
		Brokers:        cfg.Kafka.Brokers,
		ClientID:       cfg.Kafka.ClientID,
		RequestTimeout: cfg.Kafka.RequestTimeout,
		ProduceTimeout: cfg.Kafka.ProduceTimeout,
		Logger:         log.With().Str("component", "upstream").Logger(),
		Hooks:          m,
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	srv, err := proxy.New(proxy.Config{
		Listen:          cfg.Proxy.Listen,
		Advertised:      cfg.Proxy.Advertised,
		MaxRequestBytes: cfg.Proxy.MaxRequestBytes,
		MaxInflight:     cfg.Proxy.MaxInflight,
		IdleTimeout:     cfg.Proxy.IdleTimeout,
		Router:          router,
		Upstream:        up,
		Logger:          log.With().Str("component", "proxy").Logger(),
		Metrics:         m,
	})
	if err != nil {
		up.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	a := &App{cfg: cfg, log: log, registry: reg, up: up, proxy: srv}
	if cfg.Admin.Listen != "" {
		a.admin = admin.New(admin.Config{
			Listen:   cfg.Admin.Listen,
			Gatherer: reg,
			Ready:    map[string]admin.Check{"kafka": up.Ping},
			Logger:   log.With().Str("component", "admin").Logger(),
		})
	}
	return a, nil
}

// Start starts every component; on error, what started is stopped again.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = a.Stop(stopCtx)
		}
	}()
	if a.cfg.Kafka.Embedded {
		addr := a.cfg.Kafka.Brokers[0]
		a.embedded, err = upstream.StartEmbedded(addr, a.cfg.Kafka.EmbeddedPartitions)
		if err != nil {
			return fmt.Errorf("app: %w", err)
		}
		a.log.Warn().Str("listen", addr).Msg("embedded development broker started: records live in memory only; use kafka { brokers = [...] } in production")
	}
	if a.admin != nil {
		if err := a.admin.Start(ctx); err != nil {
			return fmt.Errorf("app: %w", err)
		}
	}
	if err := a.up.Ping(ctx); err != nil {
		// Not fatal: producers get retriable errors and /readyz says
		// why until the cluster answers.
		a.log.Warn().Err(err).Strs("brokers", a.cfg.Kafka.Brokers).Msg("upstream kafka not reachable yet")
	}
	if err := a.proxy.Start(ctx); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
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
