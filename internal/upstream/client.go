package upstream

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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Config configures a Client.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// ClientID is sent in every request header. Defaults to "evproxy".
	ClientID string
	// RequestTimeout bounds control requests (metadata, producer ids).
	// Defaults to 30s.
	RequestTimeout time.Duration
	// ProduceTimeout is the produce request timeout sent to the broker and
	// the longest a forwarded batch waits for its answer. Defaults to 30s.
	ProduceTimeout time.Duration
	// MetadataMaxAge is how long cached partition leaders are trusted
	// before a produce refreshes them. Defaults to 30s.
	MetadataMaxAge time.Duration
	// Logger receives connection and producer-id events.
	Logger zerolog.Logger
	// Hooks, if non-nil, observes forwarded requests (metrics).
	Hooks Hooks
}

// Hooks observes the client. Implementations must be fast and safe for
// concurrent use.
type Hooks interface {
	// OnProduceDone is called once per forwarded broker request with the
	// number of batches and bytes it carried, how long the broker took, and
	// the error if the whole request failed.
	OnProduceDone(batches, bytes int, took time.Duration, err error)
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.ClientID == "" {
		out.ClientID = "evproxy"
	}
	if out.RequestTimeout <= 0 {
		out.RequestTimeout = 30 * time.Second
	}
	if out.ProduceTimeout <= 0 {
		out.ProduceTimeout = 30 * time.Second
	}
	if out.MetadataMaxAge <= 0 {
		out.MetadataMaxAge = 30 * time.Second
	}
	return out
}

// Client is a connection to the upstream Kafka cluster. It is safe for
// concurrent use.
type Client struct {
	cfg Config
	log zerolog.Logger
	cl  *kgo.Client

	mu      sync.Mutex
	closed  bool
	topics  map[string]*topicMeta
	brokers map[int32]brokerAddr
	conns   map[int32]*brokerConn

	// seqMu guards the idempotent producer state. Lock order: brokerConn.mu,
	// then seqMu.
	seqMu    sync.Mutex
	pid      int64
	epoch    int16
	pidGen   uint64 // bumps on every producer id change
	seqs     map[topicPartition]*seqState
	pidReset bool // a new producer id is needed before the next batch

	// failures is the failure epoch (FailureEpoch); lastFail holds, per
	// partition, the epoch of its latest failed batch (guarded by seqMu).
	failures atomic.Uint64
	lastFail map[topicPartition]uint64

	side sideProducer
}

type topicPartition struct {
	topic     string
	partition int32
}

type brokerAddr struct {
	host string
	port int32
}

type topicMeta struct {
	fetched time.Time
	err     int16
	leaders []int32     // by partition; immutable once stored
	stale   atomic.Bool // set by markStale, read without c.mu
}

// seqState numbers the batches of one partition.
type seqState struct {
	next int32
	gen  uint32
	// lastErr is the error that started the current generation; batches
	// of older generations that fail because of it report it.
	lastErr error
}

// New creates a client. It does not contact the cluster; use Ping for that.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("upstream: no seed brokers configured")
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.RequestTimeoutOverhead(cfg.RequestTimeout),
		kgo.RetryTimeout(cfg.RequestTimeout),
		kgo.MetadataMinAge(time.Second),
		kgo.MaxVersions(kgoVersions()),
	)
	if err != nil {
		return nil, fmt.Errorf("upstream: create kafka client: %w", err)
	}
	return &Client{
		cfg:      cfg,
		log:      cfg.Logger,
		cl:       cl,
		topics:   make(map[string]*topicMeta),
		brokers:  make(map[int32]brokerAddr),
		conns:    make(map[int32]*brokerConn),
		pid:      -1,
		seqs:     make(map[topicPartition]*seqState),
		lastFail: make(map[topicPartition]uint64),
	}, nil
}

// Close closes every connection. Batches still in flight fail.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	conns := c.conns
	c.conns = map[int32]*brokerConn{}
	c.mu.Unlock()
	for _, bc := range conns {
		bc.close(errClientClosed)
	}
	c.side.once.Do(func() {}) // no side producer after Close
	c.side.close()
	c.cl.Close()
}

var errClientClosed = errors.New("upstream: client closed")

// Ping checks that a broker of the cluster answers.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	if err := c.cl.Ping(ctx); err != nil {
		return fmt.Errorf("upstream: ping: %w", err)
	}
	return nil
}

// Metadata asks the cluster for metadata of topics (nil means all topics),
// letting the broker create missing topics when autoCreate is set. The
// answer also refreshes the client's leader cache.
func (c *Client) Metadata(ctx context.Context, topics []string, autoCreate bool) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = autoCreate
	if topics != nil {
		req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(topics))
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return nil, fmt.Errorf("upstream: metadata: %w", err)
	}
	c.learn(resp)
	return resp, nil
}

// learn stores broker addresses and partition leaders from a metadata answer.
func (c *Client) learn(resp *kmsg.MetadataResponse) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range resp.Brokers {
		addr := brokerAddr{b.Host, b.Port}
		if old, ok := c.brokers[b.NodeID]; ok && old != addr {
			if bc := c.conns[b.NodeID]; bc != nil {
				delete(c.conns, b.NodeID)
				go bc.close(fmt.Errorf("upstream: broker %d moved to %s", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))))
			}
		}
		c.brokers[b.NodeID] = addr
	}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		tm := &topicMeta{fetched: now, err: t.ErrorCode}
		if t.ErrorCode == 0 {
			tm.leaders = make([]int32, len(t.Partitions))
			for i := range tm.leaders {
				tm.leaders[i] = -1
			}
			for _, p := range t.Partitions {
				if p.Partition >= 0 && int(p.Partition) < len(tm.leaders) {
					if p.ErrorCode == 0 || p.ErrorCode == kerr.ReplicaNotAvailable.Code {
						tm.leaders[p.Partition] = p.Leader
					}
				}
			}
		}
		c.topics[*t.Topic] = tm
	}
}

// markStale makes the next produce to topic refresh its leaders.
func (c *Client) markStale(topic string) {
	c.mu.Lock()
	if tm := c.topics[topic]; tm != nil {
		tm.stale.Store(true)
	}
	c.mu.Unlock()
}

// leaders returns the cached partition leaders of topic, refreshing them when
// unknown, stale or older than MetadataMaxAge.
func (c *Client) leaders(ctx context.Context, topic string) (*topicMeta, error) {
	c.mu.Lock()
	tm := c.topics[topic]
	c.mu.Unlock()
	if tm != nil && !tm.stale.Load() && time.Since(tm.fetched) < c.cfg.MetadataMaxAge && tm.err == 0 {
		return tm, nil
	}
	if _, err := c.Metadata(ctx, []string{topic}, false); err != nil {
		if tm != nil && tm.err == 0 {
			return tm, nil // keep producing on what we knew
		}
		return nil, err
	}
	c.mu.Lock()
	tm = c.topics[topic]
	c.mu.Unlock()
	if tm == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	return tm, nil
}

// conn returns the produce connection to broker id, dialing it if needed.
func (c *Client) conn(ctx context.Context, id int32) (*brokerConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClientClosed
	}
	if bc := c.conns[id]; bc != nil && !bc.isDead() {
		c.mu.Unlock()
		return bc, nil
	}
	addr, ok := c.brokers[id]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("upstream: broker %d unknown: %w", id, kerr.NotLeaderForPartition)
	}
	bc, err := dialBroker(ctx, c, id, net.JoinHostPort(addr.host, strconv.Itoa(int(addr.port))))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		go bc.close(errClientClosed)
		return nil, errClientClosed
	}
	if old := c.conns[id]; old != nil && !old.isDead() {
		go bc.close(errors.New("upstream: duplicate connection"))
		return old, nil
	}
	c.conns[id] = bc
	return bc, nil
}

// producerID returns the upstream idempotent producer id, fetching a new
// one when none is held or a reset was requested. Must hold seqMu.
func (c *Client) ensureProducerIDLocked(ctx context.Context) error {
	if c.pid >= 0 && !c.pidReset {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	if c.pid >= 0 {
		// KIP-360: ask to bump our epoch; brokers without support
		// just hand out a new id.
		req.ProducerID = c.pid
		req.ProducerEpoch = c.epoch
	}
	resp, err := req.RequestWith(ctx, c.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil && c.pid >= 0 {
		// Retry as a brand new producer.
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err = req.RequestWith(ctx, c.cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
	}
	if err != nil {
		return fmt.Errorf("upstream: init producer id: %w", err)
	}
	c.log.Info().Int64("producer_id", resp.ProducerID).Int16("epoch", resp.ProducerEpoch).Msg("upstream idempotent producer id acquired")
	c.pid, c.epoch = resp.ProducerID, resp.ProducerEpoch
	if !c.pidReset {
		c.pidGen++ // first id; a reset already moved the generation
	}
	c.pidReset = false
	c.seqs = make(map[topicPartition]*seqState)
	return nil
}

// resetProducerID asks for a new producer id before the next batch because
// the outcome of a batch written under gen is unknown.
func (c *Client) resetProducerID(gen uint64, why error) {
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	if gen == c.pidGen && !c.pidReset {
		c.log.Warn().Err(why).Int64("producer_id", c.pid).Msg("upstream producer id reset after a batch with unknown outcome")
		c.pidReset = true
		c.pidGen++ // answers to batches numbered before now are stale
	}
}

// kgoVersions caps request versions kgo may pick where newer versions
// address topics by id: evproxy forwards by name.
func kgoVersions() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(1, maxFetchVersion)
	v.SetMaxKeyVersion(2, maxListOffsetsVersion)
	return v
}

func durationMillis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
