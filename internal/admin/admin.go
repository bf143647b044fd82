// Package admin serves evproxy's operator HTTP endpoints: /metrics
// (Prometheus), /healthz (the process is up) and /readyz (the upstream
// cluster answers).
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check is a readiness probe: nil when the dependency is usable.
type Check func(ctx context.Context) error

// Config configures a Server.
type Config struct {
	// Listen is the HTTP address, host:port.
	Listen string
	// Gatherer provides /metrics.
	Gatherer prometheus.Gatherer
	// Ready maps a dependency name to its probe; /readyz is 200 only when
	// every probe passes.
	Ready map[string]Check
	// Logger receives server events.
	Logger zerolog.Logger
}

// Server is the admin HTTP server.
type Server struct {
	cfg  Config
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	once sync.Once
}

// New returns a server that is not yet listening.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// readyz runs every probe with a short deadline and reports each result.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	type result struct {
		name string
		err  error
	}
	results := make([]result, 0, len(s.cfg.Ready))
	for name, check := range s.cfg.Ready {
		results = append(results, result{name, check(ctx)})
	}
	status := http.StatusOK
	for _, res := range results {
		if res.err != nil {
			status = http.StatusServiceUnavailable
		}
	}
	w.WriteHeader(status)
	for _, res := range results {
		if res.err != nil {
			fmt.Fprintf(w, "%s: not ready: %v\n", res.name, res.err)
		} else {
			fmt.Fprintf(w, "%s: ok\n", res.name)
		}
	}
}

// Start binds the listener and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error().Err(err).Msg("admin server stopped")
		}
	}()
	s.cfg.Logger.Info().Str("listen", ln.Addr().String()).Msg("admin server started")
	return nil
}

// Addr is the address the server listens on (valid after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop shuts the server down, waiting for open requests until ctx ends;
// then it closes the connections still open (a scrape still being
// answered, or a client that connected and sent nothing: net/http waits
// up to 5 s for those) and logs how it ended. Only a failure to close is
// an error. Safe to call twice or before Start.
func (s *Server) Stop(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	var err error
	s.once.Do(func() {
		if serr := s.srv.Shutdown(ctx); serr != nil {
			s.cfg.Logger.Warn().Err(serr).Msg("admin server: connections still open at shutdown; closing them")
			err = s.srv.Close()
		}
		<-s.done
	})
	if err != nil {
		return fmt.Errorf("admin: stop: %w", err)
	}
	return nil
}
