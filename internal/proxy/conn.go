package proxy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/batchcodec"
)

// pending is one request whose answer the connection owes, in request
// order.
type pending struct {
	corr    int32
	key     int16
	version int16
	start   time.Time
	// answer builds the response once the work is done; a nil response
	// means none is sent (acks=0 produce).
	answer func() kmsg.Response
	// frame is the request's buffer, recycled once the answer is built,
	// with the buffers its re-encoded batches were written to (bufs): the
	// upstream is done with a request's batches once it is answered.
	frame *[]byte
	bufs  []*[]byte
	ready bool // guarded by clientConn.wmu
}

// clientConn is one producer connection.
type clientConn struct {
	s   *Server
	nc  net.Conn
	log zerolog.Logger
	// slots bounds the requests in progress (MaxInflight).
	slots chan struct{}

	// Answers are written by whichever goroutine completes the request
	// at the head of pend (flat combining): the reader for instant
	// answers, the upstream's reader for produce answers. No goroutine
	// waits in between.
	wmu     sync.Mutex
	pend    []*pending
	writing bool
	broken  bool // a write failed; answers are built but not written
	wbuf    []byte
	idle    *sync.Cond // signalled when pend empties (on wmu)
	// raw allows non-blocking writes on TCP connections.
	raw syscall.RawConn

	// decoder serves the outbox path; only the reader goroutine uses it.
	decoder batchcodec.Decoder

	stopping atomic.Bool
	closed   atomic.Bool
}

func newClientConn(s *Server, nc net.Conn) *clientConn {
	var raw syscall.RawConn
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		raw, _ = tc.SyscallConn()
	}
	cc := &clientConn{
		raw:   raw,
		s:     s,
		nc:    nc,
		log:   s.log.With().Str("client", nc.RemoteAddr().String()).Logger(),
		slots: make(chan struct{}, s.cfg.MaxInflight),
	}
	cc.idle = sync.NewCond(&cc.wmu)
	return cc
}

// stopReading makes the reader stop after the request it is reading; what
// was already read is still answered.
func (cc *clientConn) stopReading() {
	cc.stopping.Store(true)
	_ = cc.nc.SetReadDeadline(time.Now())
}

// errClose is a reason to close the connection, logged once.
type errClose struct{ reason string }

func (e *errClose) Error() string { return e.reason }

func closeErr(format string, args ...any) error {
	return &errClose{reason: fmt.Sprintf(format, args...)}
}

func (cc *clientConn) serve() {
	if m := cc.s.m; m != nil {
		m.connections.Inc()
		defer m.connections.Dec()
	}
	err := cc.readLoop()
	// Answer everything already read before closing.
	cc.wmu.Lock()
	for len(cc.pend) > 0 {
		cc.idle.Wait()
	}
	cc.wmu.Unlock()
	cc.closed.Store(true)
	cc.nc.Close()
	var ce *errClose
	switch {
	case err == nil, errors.Is(err, io.EOF):
		cc.log.Debug().Msg("connection closed by client")
	case errors.As(err, &ce):
		cc.log.Warn().Str("reason", ce.reason).Msg("closing connection")
		if m := cc.s.m; m != nil {
			m.protocolErrors.Inc()
		}
	case cc.stopping.Load():
		cc.log.Debug().Msg("connection closed for shutdown")
	case errors.Is(err, os.ErrDeadlineExceeded):
		cc.log.Info().Dur("idle_timeout", cc.s.cfg.IdleTimeout).Msg("closing idle connection")
	default:
		cc.log.Debug().Err(err).Msg("connection closed")
	}
}

// frameClasses pools request buffers by power-of-two size, from 64 KiB to
// 64 MiB, so large produce requests do not allocate (and zero) a fresh
// buffer each time. Larger frames are allocated and left to the GC.
const (
	minFrameClass = 16 // 64 KiB
	maxFrameClass = 26 // 64 MiB
)

type framePools [maxFrameClass - minFrameClass + 1]sync.Pool

func frameClass(n int) int {
	c := minFrameClass
	for 1<<c < n {
		c++
	}
	return c
}

func (fp *framePools) get(n int) *[]byte {
	c := frameClass(n)
	if c > maxFrameClass {
		b := make([]byte, n)
		return &b
	}
	if bp, ok := fp[c-minFrameClass].Get().(*[]byte); ok {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<c)
	return &b
}

func (fp *framePools) put(bp *[]byte) {
	if bp == nil {
		return
	}
	c := frameClass(cap(*bp))
	if 1<<c == cap(*bp) && c <= maxFrameClass {
		fp[c-minFrameClass].Put(bp)
	}
}

func (cc *clientConn) readLoop() error {
	r := bufio.NewReaderSize(cc.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if cc.stopping.Load() {
			return nil
		}
		if d := cc.s.cfg.IdleTimeout; d > 0 {
			_ = cc.nc.SetReadDeadline(time.Now().Add(d))
		}
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return closeErr("truncated frame: connection ended inside the size prefix")
			}
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 10 {
			return closeErr("frame size %d is smaller than a request header", size)
		}
		if size > cc.s.cfg.MaxRequestBytes {
			return closeErr("frame of %d bytes exceeds max_request_bytes (%d)", size, cc.s.cfg.MaxRequestBytes)
		}
		// A frame that started must arrive; the idle timeout no longer
		// applies, a generous read deadline does.
		_ = cc.nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
		frame := cc.s.frames.get(int(size))
		if _, err := io.ReadFull(r, *frame); err != nil {
			cc.s.frames.put(frame)
			if cc.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return closeErr("truncated frame: %d bytes announced: %v", size, err)
		}
		cc.slots <- struct{}{} // released when the answer is built
		if err := cc.handle(*frame, frame); err != nil {
			<-cc.slots
			cc.s.frames.put(frame)
			return err
		}
	}
}

// decodeRequest decodes a request frame: header, then the body at the
// header's version. A nil request with a nil error means an ApiVersions
// request above our range, to be answered per KIP-511.
func decodeRequest(frame []byte) (requestHeader, kmsg.Request, error) {
	h, body, err := parseHeader(frame)
	if err != nil {
		return h, nil, closeErr("bad request header: %v", err)
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil {
		return h, nil, closeErr("unknown api key %d", h.key)
	}
	api, ok := lookupAPI(h.key)
	if !ok {
		return h, nil, closeErr("api %s (key %d) is not implemented by evproxy; it proxies the produce path only", kmsg.NameForKey(h.key), h.key)
	}
	if h.key == 18 && (h.version > api.max || h.version < api.min) {
		return h, nil, nil
	}
	if h.version < api.min || h.version > api.max {
		return h, nil, closeErr("%s v%d is not supported (evproxy implements v%d-v%d)", kmsg.NameForKey(h.key), h.version, api.min, api.max)
	}
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return h, nil, closeErr("%s v%d: bad header tags: %v", kmsg.NameForKey(h.key), h.version, err)
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return h, nil, closeErr("%s v%d: request does not decode: %v", kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// handle decodes one request frame, queues its answer and starts its work.
// Once it returns nil, the request is answered (in order) whatever happens.
func (cc *clientConn) handle(frame []byte, buf *[]byte) error {
	h, req, err := decodeRequest(frame)
	if err != nil {
		return err
	}
	p := &pending{corr: h.corr, key: h.key, version: h.version, start: time.Now(), frame: buf}
	cc.wmu.Lock()
	cc.pend = append(cc.pend, p)
	cc.wmu.Unlock()
	cc.dispatch(p, h, req)
	return nil
}

// dispatch runs the handler of req. Handlers set p.answer and call
// cc.complete(p) when the answer can be built, now or later.
func (cc *clientConn) dispatch(p *pending, h requestHeader, req kmsg.Request) {
	if m := cc.s.m; m != nil {
		m.request(h.key, h.version)
	}
	var resp kmsg.Response
	switch r := req.(type) {
	case nil:
		// KIP-511: answer in v0 so the client can read our range.
		av := cc.s.apiVersions(0)
		av.ErrorCode = kerr.UnsupportedVersion.Code
		resp = av
	case *kmsg.ProduceRequest:
		cc.produce(p, r)
		return
	case *kmsg.MetadataRequest:
		cc.metadata(p, r)
		return
	case *kmsg.FetchRequest:
		cc.fetch(p, r)
		return
	case *kmsg.ListOffsetsRequest:
		cc.listOffsets(p, r)
		return
	case *kmsg.FindCoordinatorRequest:
		resp = cc.s.findCoordinator(r)
	case *kmsg.ApiVersionsRequest:
		resp = cc.s.apiVersions(r.Version)
	case *kmsg.InitProducerIDRequest:
		resp = cc.s.initProducerID(r, cc.log)
	}
	p.answer = func() kmsg.Response { return resp }
	cc.complete(p)
}

// async runs work in its own goroutine and then completes p.
func (cc *clientConn) async(p *pending, work func()) {
	go func() {
		work()
		cc.complete(p)
	}()
}

// complete marks p answerable. If no one is writing, the caller becomes the
// writer: it builds every answer that is ready at the head of the queue, in
// order, and writes them in one go. complete never blocks on the socket, so
// the upstream's reader can call it: what the client's socket does not take
// at once is written by a goroutine of its own (see writeOut).
func (cc *clientConn) complete(p *pending) {
	cc.wmu.Lock()
	p.ready = true
	if cc.writing {
		cc.wmu.Unlock()
		return
	}
	cc.writing = true
	cc.drainLocked()
}

// drainLocked writes ready answers until none is left. Called with wmu held
// and writing set; returns with wmu released.
func (cc *clientConn) drainLocked() {
	for {
		for len(cc.pend) > 0 && cc.pend[0].ready {
			head := cc.pend[0]
			cc.pend[0] = nil
			cc.pend = cc.pend[1:]
			resp := head.answer()
			cc.s.frames.put(head.frame)
			for _, b := range head.bufs {
				cc.s.frames.put(b)
			}
			<-cc.slots
			if m := cc.s.m; m != nil {
				m.latency(head.key, time.Since(head.start))
			}
			if resp == nil || cc.broken {
				continue
			}
			if head.key != 18 { // ApiVersions handlers pick their version (KIP-511)
				resp.SetVersion(head.version)
			}
			cc.wbuf = appendResponse(cc.wbuf, head.corr, resp)
		}
		if len(cc.pend) == 0 {
			cc.idle.Broadcast()
		}
		if len(cc.wbuf) == 0 {
			cc.writing = false
			cc.wmu.Unlock()
			return
		}
		buf := cc.wbuf
		cc.wbuf = nil
		cc.wmu.Unlock()
		n, err := cc.writeNow(buf)
		if err == nil && n < len(buf) {
			// The client is not reading fast enough: finish in a
			// goroutine that may block, still as the writer.
			go cc.writeOut(buf, n)
			return
		}
		cc.wmu.Lock()
		cc.wrote(buf, err)
	}
}

// writeOut blocks until buf[n:] is written, then carries on as the writer.
func (cc *clientConn) writeOut(buf []byte, n int) {
	_, err := cc.nc.Write(buf[n:])
	cc.wmu.Lock()
	cc.wrote(buf, err)
	cc.drainLocked()
}

// wrote records the outcome of writing buf and keeps it for reuse.
func (cc *clientConn) wrote(buf []byte, err error) {
	if err != nil && !cc.broken {
		cc.broken = true
		cc.fail(err)
	}
	if cap(buf) <= 1<<20 && cc.wbuf == nil {
		cc.wbuf = buf[:0]
	}
}

// writeNow writes what the socket takes without blocking. On connections
// that are not plain TCP it writes normally (blocking).
func (cc *clientConn) writeNow(b []byte) (int, error) {
	if cc.raw == nil {
		return cc.nc.Write(b)
	}
	n := 0
	var werr error
	err := cc.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if err != syscall.EAGAIN {
					werr = err
				}
				return true // full (EAGAIN) or failed: don't wait
			}
			n += m
		}
		return true
	})
	if err != nil {
		return n, err
	}
	return n, werr
}

// fail handles a write error: the connection is unusable, so close it to
// unblock the reader; queued work still completes and is accounted for.
func (cc *clientConn) fail(err error) {
	cc.log.Debug().Err(err).Msg("write failed")
	_ = cc.nc.Close()
}
