// Package app assembles a running evproxy from its configuration: the
// embedded development broker when asked for, the upstream client, the
// Kafka listener and the admin server, and tears them down in order.
//
// # Shutdown order
//
// Stop closes the Kafka listener and lets connections finish the requests
// they already read (answers included), bounded by proxy.shutdown_timeout;
// then lets the outbox writer commit what it holds and stops the relay and
// the store; then stops watching plugin files and closes the plugins and
// their runtime,
// then closes the upstream client, then the embedded broker, then the admin
// server, so /metrics and /readyz stay up while producers drain.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/evproxy/evproxy/internal/admin"
	"github.com/evproxy/evproxy/internal/config"
	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/plugins"
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

	pluginMetrics *plugins.Metrics

	embedded *kfake.Cluster
	up       *upstream.Client
	proxy    *proxy.Server
	admin    *admin.Server

	runtime   *plugins.Runtime
	plugins   *plugins.Set
	processor *pipeline.Processor
	watchStop context.CancelFunc
	watchDone chan struct{}

	outbox *outboxParts
}

// New checks what can be checked without side effects and returns an App
// that is not started.
func New(cfg *config.Config, log zerolog.Logger) (*App, error) {
	routes := make([]pipeline.Route, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		routes = append(routes, pipeline.Route{
			Name: r.Name, Topics: r.Topics, Delivery: pipeline.Delivery(r.Delivery),
			EventTypes: r.EventTypes, EventTypeFrom: r.EventTypeFrom, Plugins: r.Plugins,
			OnReject: pipeline.OnReject(r.OnReject), Priority: r.Priority,
		})
	}
	router, err := pipeline.NewRouter(routes)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{cfg: cfg, log: log, registry: reg, metrics: proxy.NewMetrics(reg), router: router}
	a.processor = &pipeline.Processor{
		Router:     router,
		DeadLetter: pipeline.DeadLetter{Enabled: cfg.DeadLetter.Enabled, TopicSuffix: cfg.DeadLetter.TopicSuffix},
	}
	return a, nil
}

// pluginConfigs turns the plugin blocks into runtime configurations.
func (a *App) pluginConfigs(cfg *config.Config, m *plugins.Metrics) []plugins.Config {
	out := make([]plugins.Config, 0, len(cfg.Plugins))
	for _, p := range cfg.Plugins {
		out = append(out, plugins.Config{
			Name: p.Name, Path: p.Path, Config: p.Config, MemoryLimit: p.MemoryLimit,
			Timeout: p.Timeout, Tables: p.Tables,
			Logger:  a.log.With().Str("component", "plugin").Logger(),
			Metrics: m,
		})
	}
	return out
}

// startPlugins compiles and pre-warms every plugin and starts watching their
// files for changes.
func (a *App) startPlugins(ctx context.Context) error {
	if len(a.cfg.Plugins) == 0 {
		return nil
	}
	// Compiled plugins are cached on disk so restarts skip compilation.
	var cacheDir string
	if dir, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "evproxy", "wazero")
	}
	rt, err := plugins.NewRuntime(ctx, plugins.RuntimeConfig{CacheDir: cacheDir})
	if err != nil {
		return fmt.Errorf("app: plugin runtime: %w", err)
	}
	a.runtime = rt
	a.pluginMetrics = plugins.NewMetrics(a.registry)
	set, err := plugins.NewSet(rt, a.pluginConfigs(a.cfg, a.pluginMetrics))
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.plugins = set
	a.processor.Plugins = pipeline.Loaded(set)
	wctx, cancel := context.WithCancel(a.log.WithContext(context.Background()))
	a.watchStop, a.watchDone = cancel, make(chan struct{})
	go func() {
		defer close(a.watchDone)
		if err := set.Watch(wctx); err != nil && wctx.Err() == nil {
			a.log.Error().Err(err).Msg("plugin file watching stopped")
		}
	}()
	a.log.Info().Int("plugins", len(a.cfg.Plugins)).Msg("plugins loaded")
	return nil
}

// Reload re-reads the configuration file's plugin blocks and reloads the
// plugins (SIGHUP). In-flight batches finish on the old versions. Other
// configuration changes need a restart.
func (a *App) Reload(ctx context.Context, cfg *config.Config) error {
	if a.plugins == nil {
		return errors.New("app: no plugins to reload (plugins added to the configuration need a restart)")
	}
	if err := a.plugins.Reload(ctx, a.pluginConfigs(cfg, a.pluginMetrics)); err != nil {
		return fmt.Errorf("app: reload plugins: %w", err)
	}
	a.log.Info().Msg("plugins reloaded")
	return nil
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
	if err := a.startPlugins(ctx); err != nil {
		return err
	}
	if err := a.startOutbox(ctx, brokers); err != nil {
		return err
	}
	ready := map[string]admin.Check{"kafka": a.up.Ping}
	var writer proxy.OutboxWriter
	if a.outbox != nil {
		ready["outbox"] = a.outbox.ping
		writer = a.outbox.writer
	}
	if a.cfg.Admin.Listen != "" {
		a.admin = admin.New(admin.Config{
			Listen:   a.cfg.Admin.Listen,
			Gatherer: a.registry,
			Ready:    ready,
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
		Pipeline:        a.processor,
		Upstream:        a.up,
		Outbox:          writer,
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
	if a.outbox != nil {
		a.outbox.stop()
	}
	if a.watchStop != nil {
		a.watchStop()
		<-a.watchDone
	}
	if a.plugins != nil {
		if err := a.plugins.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if a.runtime != nil {
		if err := a.runtime.Close(ctx); err != nil {
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
