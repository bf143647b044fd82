package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/upstream"
)

// Upstream is what the proxy needs from the Kafka cluster it fronts.
type Upstream interface {
	// Metadata returns the cluster's metadata for topics (nil: all),
	// creating missing topics when autoCreate is set.
	Metadata(ctx context.Context, topics []string, autoCreate bool) (*kmsg.MetadataResponse, error)
	// Send forwards batches; results arrive on p.Done.
	Send(ctx context.Context, p *upstream.Produce)
	// FailureEpoch is read before checking a request's sequences and
	// stored in each batch (upstream.Batch.Epoch).
	FailureEpoch() uint64
	// Fetch forwards a sessionless fetch to the partition leaders.
	Fetch(ctx context.Context, req *kmsg.FetchRequest) *kmsg.FetchResponse
	// ListOffsets forwards a ListOffsets request to the partition leaders.
	ListOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error)
	// ProduceRecords produces records to other topics (routed, fanned
	// out, dead letters) and calls done once with the first error.
	ProduceRecords(ctx context.Context, recs []*kgo.Record, done func(error))
}

// Config configures a Server.
type Config struct {
	// Listen is the TCP address to accept producers on.
	Listen string
	// Advertised is the host:port returned in Metadata. Defaults to the
	// listener's address.
	Advertised string
	// NodeID is the broker id evproxy presents. Defaults to 0.
	NodeID int32
	// MaxRequestBytes is the largest request frame accepted. Defaults to
	// 100 MiB.
	MaxRequestBytes int32
	// MaxInflight is how many pipelined requests of one connection may be
	// in progress. Defaults to 32.
	MaxInflight int
	// IdleTimeout closes connections idle this long; 0 disables.
	IdleTimeout time.Duration
	// Router maps topics to routes. Required.
	Router *pipeline.Router
	// Pipeline runs plugin chains for routes that have them; nil when no
	// route has plugins or event-type filters.
	Pipeline *pipeline.Processor
	// Upstream receives produced batches. Required.
	Upstream Upstream
	// Outbox commits the records of outbox routes; nil when no outbox is
	// configured.
	Outbox OutboxWriter
	// Logger receives connection and request events.
	Logger zerolog.Logger
	// Metrics, if non-nil, is updated as requests are served.
	Metrics *Metrics
}

// Server is the Kafka wire server.
type Server struct {
	cfg       Config
	log       zerolog.Logger
	m         *Metrics
	producers *producers
	frames    framePools
	codecs    sync.Pool // of *codecs, for the plugin path
	advHost   string
	advPort   int32

	ln      net.Listener
	started atomic.Bool
	stopped atomic.Bool

	// ctx is cancelled on hard stop; in-flight upstream work uses it.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[*clientConn]struct{}
	wg    sync.WaitGroup // accept loop and connections
}

// New validates cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Router == nil || cfg.Upstream == nil {
		return nil, errors.New("proxy: Router and Upstream are required")
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 100 << 20
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 32
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		m:         cfg.Metrics,
		producers: newProducers(time.Now()),
		conns:     make(map[*clientConn]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start listens and begins accepting connections. It returns once the
// listener is bound.
func (s *Server) Start(ctx context.Context) error {
	if s.started.Swap(true) {
		return errors.New("proxy: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("proxy: listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	adv := s.cfg.Advertised
	if adv == "" {
		adv = ln.Addr().String()
	}
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		ln.Close()
		return fmt.Errorf("proxy: advertised address %q: %w", adv, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		ln.Close()
		return fmt.Errorf("proxy: advertised port %q: %w", port, err)
	}
	if p == 0 { // listening on :0 in tests: advertise the real port
		_, lp, _ := net.SplitHostPort(ln.Addr().String())
		p, _ = strconv.Atoi(lp)
	}
	s.advHost, s.advPort = host, int32(p)
	s.wg.Add(1)
	go s.acceptLoop()
	s.log.Info().Str("listen", ln.Addr().String()).Str("advertised", net.JoinHostPort(host, strconv.Itoa(p))).Msg("kafka listener started")
	return nil
}

// Addr is the address the server listens on (valid after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.stopped.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn().Err(err).Dur("retry_in", delay).Msg("accept failed")
				time.Sleep(delay)
				continue
			}
			s.log.Error().Err(err).Msg("accept failed; listener stopped")
			return
		}
		delay = 0
		cc := newClientConn(s, nc)
		s.mu.Lock()
		if s.stopped.Load() {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[cc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			cc.serve()
			s.mu.Lock()
			delete(s.conns, cc)
			s.mu.Unlock()
		}()
	}
}

// Stop stops accepting, lets each connection finish the requests it already
// read (their answers are written), then closes the connections. If ctx ends
// first, remaining work is abandoned and connections are closed at once.
// Stop is safe to call twice or before Start.
func (s *Server) Stop(ctx context.Context) error {
	if !s.started.Load() || s.stopped.Swap(true) {
		return nil
	}
	s.ln.Close()
	s.mu.Lock()
	for cc := range s.conns {
		cc.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for cc := range s.conns {
			cc.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return fmt.Errorf("proxy: stop: %w", ctx.Err())
	}
}
