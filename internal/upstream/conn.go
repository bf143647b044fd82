package upstream

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxProduceVersion is the newest Produce version we send upstream. v13
// addresses topics by id only; names are what we have.
const maxProduceVersion = 12

// maxInflight bounds the produce requests awaiting an answer on one broker
// connection; a sender blocks (back-pressure) when it is reached.
const maxInflight = 256

// brokerConn is a pipelined produce connection to one broker.
type brokerConn struct {
	c       *Client
	id      int32
	addr    string
	conn    net.Conn
	version int16
	format  *kmsg.RequestFormatter

	mu       sync.Mutex // serializes numbering and queueing
	corr     int32
	queued   []*produceFrame // encoded requests awaiting a write, in order
	spare    []*produceFrame
	flushing bool       // a sender is writing queued frames
	flushed  *sync.Cond // signalled when flushing ends (on mu)

	inflight chan *inflight
	done     chan struct{} // closed by close
	closing  atomic.Bool
	dead     atomic.Bool // closed and every in-flight batch failed
	closeMu  sync.Mutex
	closeErr error
	readerWG sync.WaitGroup
}

type inflight struct {
	corr    int32
	batches []*Batch
	p       *Produce
	start   time.Time
	bytes   int
}

// dialBroker connects to a broker and learns its Produce version range.
func dialBroker(ctx context.Context, c *Client, id int32, addr string) (*brokerConn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upstream: dial broker %d at %s: %w", id, addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	bc := &brokerConn{
		c:        c,
		id:       id,
		addr:     addr,
		conn:     conn,
		format:   kmsg.NewRequestFormatter(kmsg.FormatterClientID(c.cfg.ClientID)),
		inflight: make(chan *inflight, maxInflight),
		done:     make(chan struct{}),
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	v, err := bc.negotiate()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("upstream: broker %d at %s: %w", id, addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	bc.version = v
	bc.flushed = sync.NewCond(&bc.mu)
	bc.readerWG.Add(1)
	go bc.readLoop()
	c.log.Debug().Int32("broker", id).Str("addr", addr).Int16("produce_version", v).Msg("upstream produce connection open")
	return bc, nil
}

// negotiate sends ApiVersions v0 and picks the Produce version.
func (bc *brokerConn) negotiate() (int16, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	bc.corr++
	if _, err := bc.conn.Write(bc.format.AppendRequest(nil, req, bc.corr)); err != nil {
		return 0, fmt.Errorf("api versions: %w", err)
	}
	body, err := readResponse(bc.conn, bc.corr, nil)
	if err != nil {
		return 0, fmt.Errorf("api versions: %w", err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		return 0, fmt.Errorf("api versions: decode: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, fmt.Errorf("api versions: %w", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 0 {
			if k.MaxVersion < 3 {
				return 0, fmt.Errorf("broker supports Produce up to v%d; evproxy needs v3 (Kafka 0.11) or newer", k.MaxVersion)
			}
			return min(k.MaxVersion, maxProduceVersion), nil
		}
	}
	return 0, errors.New("broker does not support Produce")
}

// readResponse reads one response frame and checks its correlation id. It
// returns the body after the v0 response header, reusing buf.
func readResponse(r io.Reader, corr int32, buf []byte) ([]byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr[:]))
	if size < 4 || size > 1<<30 {
		return nil, fmt.Errorf("invalid response size %d", size)
	}
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		return nil, fmt.Errorf("response correlation id %d, expected %d", got, corr)
	}
	n := int(size) - 4
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func (bc *brokerConn) isDead() bool { return bc.dead.Load() }

// send numbers batches, writes them as one Produce request and queues the
// request for its answer. If the connection is dead or numbering fails, it
// fails the batches before returning and reports false.
func (bc *brokerConn) send(ctx context.Context, batches []*Batch, p *Produce) bool {
	fl := &inflight{batches: batches, p: p}
	bc.mu.Lock()
	if bc.closing.Load() {
		bc.mu.Unlock()
		bc.fail(fl, bc.err())
		return false
	}
	batches, err := bc.c.number(ctx, batches)
	if err != nil {
		bc.mu.Unlock()
		bc.c.log.Error().Err(err).Msg("cannot number batches for the upstream")
		bc.fail(fl, err)
		return false
	}
	if len(batches) == 0 { // all fenced
		bc.mu.Unlock()
		p.finish()
		return true
	}
	fl.batches = batches
	for _, b := range batches {
		fl.bytes += len(b.Data)
	}
	bc.corr++
	fl.corr = bc.corr
	f := framePool.Get().(*produceFrame)
	encodeProduce(f, bc.version, bc.corr, bc.c.cfg.ClientID, int32(bc.c.cfg.ProduceTimeout/time.Millisecond), batches)
	fl.start = time.Now()
	// Queue for the reader before writing so the reader always finds the
	// request an answer belongs to; both keep numbering order.
	select {
	case bc.inflight <- fl:
	case <-bc.done:
		bc.mu.Unlock()
		framePool.Put(f)
		bc.fail(fl, bc.err())
		return true // numbered: the outcome counts as unknown
	}
	bc.queued = append(bc.queued, f)
	if bc.flushing {
		// Another sender is writing; it takes our frame too.
		bc.mu.Unlock()
		return true
	}
	bc.flush()
	return true
}

// flush writes queued frames until none is left, with bc.mu held on entry
// and released on return. Whoever finds no flush running becomes the
// flusher (flat combining): frames queued meanwhile by other senders are
// written together in one writev, and no goroutine hand-off is needed.
func (bc *brokerConn) flush() {
	bc.flushing = true
	var bufs net.Buffers
	for len(bc.queued) > 0 && !bc.closing.Load() {
		frames := bc.queued
		bc.queued = bc.spare[:0]
		bc.mu.Unlock()
		bufs = bufs[:0]
		for _, f := range frames {
			bufs = append(bufs, f.bufs...)
		}
		_ = bc.conn.SetWriteDeadline(time.Now().Add(bc.c.cfg.ProduceTimeout))
		_, err := bufs.WriteTo(bc.conn)
		for i, f := range frames {
			framePool.Put(f)
			frames[i] = nil
		}
		bc.mu.Lock()
		bc.spare = frames[:0]
		if err != nil {
			bc.flushing = false
			bc.flushed.Broadcast()
			bc.mu.Unlock()
			bc.close(fmt.Errorf("upstream: write to broker %d: %w", bc.id, err))
			return
		}
	}
	for _, f := range bc.queued { // closing: nothing more is written
		framePool.Put(f)
	}
	bc.queued = bc.queued[:0]
	bc.flushing = false
	bc.flushed.Broadcast()
	bc.mu.Unlock()
}

// framePool recycles encoded request frames (their small meta buffers).
var framePool = sync.Pool{New: func() any { return new(produceFrame) }}

func (bc *brokerConn) err() error {
	bc.closeMu.Lock()
	defer bc.closeMu.Unlock()
	return bc.closeErr
}

// fail ends every batch of fl with err (a transport error: outcome unknown
// once numbered). The batches are failed before the producer id is reset,
// so nothing accepted before the failure is numbered under the new id.
func (bc *brokerConn) fail(fl *inflight, err error) {
	ke := asKafkaErr(err)
	if errors.Is(err, errClientClosed) {
		ke = kerr.RequestTimedOut
	}
	for _, b := range fl.batches {
		bc.c.failBatch(b, ke)
		bc.c.markStale(b.Topic)
	}
	if len(fl.batches) > 0 && fl.batches[0].pidGen != 0 {
		bc.c.resetProducerID(fl.batches[0].pidGen, err)
	}
	if h := bc.c.cfg.Hooks; h != nil {
		h.OnProduceDone(len(fl.batches), fl.bytes, time.Since(fl.start), err)
	}
	fl.p.finish()
}

// close closes the connection and fails what is in flight. The connection
// is marked dead only after every in-flight batch has failed, so a new
// connection cannot write a batch that would overtake one of them.
func (bc *brokerConn) close(err error) {
	if bc.closing.Swap(true) {
		return
	}
	bc.closeMu.Lock()
	bc.closeErr = err
	bc.closeMu.Unlock()
	ev := bc.c.log.Warn()
	if errors.Is(err, errClientClosed) {
		ev = bc.c.log.Debug()
	}
	ev.Err(err).Int32("broker", bc.id).Str("addr", bc.addr).Msg("upstream produce connection closed")
	close(bc.done)
	bc.conn.Close()
	bc.readerWG.Wait()
	// The reader has stopped; nothing else takes from inflight. Holding
	// mu keeps senders out until the connection is dead; a flush in
	// progress must end first, since the batches it writes belong to the
	// in-flight requests we are about to fail.
	bc.mu.Lock()
	defer bc.mu.Unlock()
	for bc.flushing {
		bc.flushed.Wait()
	}
	for {
		select {
		case fl := <-bc.inflight:
			bc.fail(fl, err)
		default:
			bc.dead.Store(true)
			return
		}
	}
}

// readLoop reads answers in order and settles their batches.
func (bc *brokerConn) readLoop() {
	defer bc.readerWG.Done()
	var buf []byte
	r := bufio.NewReaderSize(bc.conn, 64<<10)
	timeout := bc.c.cfg.ProduceTimeout + 5*time.Second
	for {
		var fl *inflight
		select {
		case fl = <-bc.inflight:
		case <-bc.done:
			return
		}
		_ = bc.conn.SetReadDeadline(fl.start.Add(timeout))
		body, err := readResponse(r, fl.corr, buf)
		if err != nil {
			bc.fail(fl, err)
			go bc.close(fmt.Errorf("upstream: read from broker %d: %w", bc.id, err))
			return
		}
		buf = body[:0]
		bc.complete(fl, body)
	}
}

// complete decodes a Produce answer and settles each batch of fl.
func (bc *brokerConn) complete(fl *inflight, body []byte) {
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = bc.version
	if resp.IsFlexible() {
		// Skip the response header's tagged fields.
		rest, err := skipTags(body)
		if err != nil {
			bc.fail(fl, err)
			go bc.close(err)
			return
		}
		body = rest
	}
	if err := resp.ReadFrom(body); err != nil {
		bc.fail(fl, fmt.Errorf("upstream: decode produce response: %w", err))
		go bc.close(err)
		return
	}
	for _, b := range fl.batches {
		code := kerr.UnknownServerError.Code
		found := false
		for i := range resp.Topics {
			t := &resp.Topics[i]
			if t.Topic != b.Topic {
				continue
			}
			for j := range t.Partitions {
				p := &t.Partitions[j]
				if p.Partition == b.Partition {
					code = p.ErrorCode
					b.BaseOffset = p.BaseOffset
					b.LogAppendTime = p.LogAppendTime
					b.LogStartOffset = p.LogStartOffset
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		bc.c.settle(b, code)
	}
	if h := bc.c.cfg.Hooks; h != nil {
		h.OnProduceDone(len(fl.batches), fl.bytes, time.Since(fl.start), nil)
	}
	fl.p.finish()
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	n, used := binary.Uvarint(b)
	if used <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[used:]
	for i := uint64(0); i < n; i++ {
		_, u1 := binary.Uvarint(b)
		if u1 <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[u1:]
		sz, u2 := binary.Uvarint(b)
		if u2 <= 0 || uint64(len(b)-u2) < sz {
			return nil, errors.New("bad tag size")
		}
		b = b[u2+int(sz):]
	}
	return b, nil
}
