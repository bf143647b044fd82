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
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pending is one request whose answer the writer owes, in request order.
type pending struct {
	corr    int32
	key     int16
	version int16
	start   time.Time
	// done, when non-nil, is closed once the work behind the answer ends.
	done <-chan struct{}
	// answer builds the response once done is closed; a nil response
	// means none is sent (acks=0 produce).
	answer func() kmsg.Response
	// frame is the request's buffer, recycled once the answer is built.
	frame *[]byte
}

// clientConn is one producer connection.
type clientConn struct {
	s     *Server
	nc    net.Conn
	log   zerolog.Logger
	queue chan *pending

	stopping atomic.Bool
	closed   atomic.Bool
}

func newClientConn(s *Server, nc net.Conn) *clientConn {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &clientConn{
		s:     s,
		nc:    nc,
		log:   s.log.With().Str("client", nc.RemoteAddr().String()).Logger(),
		queue: make(chan *pending, s.cfg.MaxInflight),
	}
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
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cc.writeLoop()
	}()
	err := cc.readLoop()
	close(cc.queue)
	wg.Wait()
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
		p, err := cc.handle(*frame)
		if err != nil {
			cc.s.frames.put(frame)
			return err
		}
		p.frame = frame
		cc.queue <- p
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

// handle decodes one request frame and starts its work.
func (cc *clientConn) handle(frame []byte) (*pending, error) {
	h, req, err := decodeRequest(frame)
	if err != nil {
		return nil, err
	}
	p := &pending{corr: h.corr, key: h.key, version: h.version, start: time.Now()}
	if m := cc.s.m; m != nil {
		m.request(h.key, h.version)
	}
	if req == nil {
		// KIP-511: answer in v0 so the client can read our range.
		resp := cc.s.apiVersions(0)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		p.answer = func() kmsg.Response { return resp }
		return p, nil
	}
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		return cc.produce(p, r)
	case *kmsg.MetadataRequest:
		return cc.metadata(p, r), nil
	case *kmsg.FetchRequest:
		return cc.fetch(p, r), nil
	case *kmsg.ListOffsetsRequest:
		return cc.listOffsets(p, r), nil
	case *kmsg.FindCoordinatorRequest:
		resp := cc.s.findCoordinator(r)
		p.answer = func() kmsg.Response { return resp }
		return p, nil
	case *kmsg.ApiVersionsRequest:
		resp := cc.s.apiVersions(r.Version)
		p.answer = func() kmsg.Response { return resp }
		return p, nil
	case *kmsg.InitProducerIDRequest:
		resp := cc.s.initProducerID(r, cc.log)
		p.answer = func() kmsg.Response { return resp }
		return p, nil
	}
	return nil, closeErr("api key %d has no handler", h.key)
}

// writeLoop answers requests in order. Answers that are ready back to back
// share one write; the buffer is flushed before waiting on unfinished work
// and whenever nothing else is queued.
func (cc *clientConn) writeLoop() {
	w := bufio.NewWriterSize(cc.nc, 64<<10)
	var buf []byte
	broken := false
	flush := func() {
		if !broken && w.Buffered() > 0 {
			if err := w.Flush(); err != nil {
				cc.fail(err)
				broken = true
			}
		}
	}
	for p := range cc.queue {
		if p.done != nil {
			select {
			case <-p.done:
			default:
				flush()
				<-p.done
			}
		}
		resp := p.answer()
		cc.s.frames.put(p.frame)
		if m := cc.s.m; m != nil {
			m.latency(p.key, time.Since(p.start))
		}
		if resp != nil && !broken {
			if p.key != 18 { // ApiVersions handlers pick their version (KIP-511)
				resp.SetVersion(p.version)
			}
			buf = appendResponse(buf[:0], p.corr, resp)
			if _, err := w.Write(buf); err != nil {
				cc.fail(err)
				broken = true
			}
			if cap(buf) > 1<<20 {
				buf = nil
			}
		}
		if len(cc.queue) == 0 {
			flush()
		}
	}
	flush()
}

// fail handles a write error: the connection is unusable, so close it to
// unblock the reader; queued work still completes and is accounted for.
func (cc *clientConn) fail(err error) {
	cc.log.Debug().Err(err).Msg("write failed")
	_ = cc.nc.Close()
}
