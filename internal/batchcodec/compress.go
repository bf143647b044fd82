package batchcodec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// xerialMagic starts snappy-java's stream framing (SnappyOutputStream, what
// the Java producer writes); a version and a compatible version, int32 each,
// follow it, then chunks of an int32 length and one snappy block.
var xerialMagic = []byte("\x82SNAPPY\x00")

const xerialHeaderLen = 16

// zstdMinWindow is the smallest limit the zstd decoder is given. The
// decoder refuses frames whose window exceeds its limit, and the window
// says nothing about the output size: the Java producer streams with the
// window of its level for an unknown size (2 MiB at the default level 3, 8
// MiB at level 19). DecodeAll uses the output as its window, so a larger
// window costs no memory; the output is checked against the caller's limit
// after decoding.
const zstdMinWindow = 8 << 20

// decompress decodes the records section src of a batch compressed with
// codec into d.buf, failing past limit bytes.
func (d *Decoder) decompress(codec int16, src []byte, limit int) ([]byte, error) {
	limit = min(max(limit, 0), math.MaxInt-1) // limit+1 must not overflow
	var (
		out []byte
		err error
	)
	switch codec {
	case codecGzip:
		out, err = d.gunzip(src, limit)
	case codecSnappy:
		out, err = unsnappy(d.buf[:0], src, limit)
	case codecLZ4:
		out, err = unlz4(d.buf[:0], src, limit)
	case codecZstd:
		out, err = d.unzstd(src, limit)
	}
	if err == nil && len(out) > limit {
		err = errLimit(codecNames[codec], limit)
	}
	if err != nil {
		// Errors of ours name the codec already; the libraries' do not.
		if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupportedCodec) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, codecNames[codec], err)
	}
	if cap(out) > cap(d.buf) {
		d.buf = out[:0] // keep the grown buffer; on failure the old one stays
	}
	return out, nil
}

func errLimit(codec string, limit int) error {
	return fmt.Errorf("%w: %s: records decompress to more than %d bytes", ErrTooLarge, codec, limit)
}

func (d *Decoder) gunzip(src []byte, limit int) ([]byte, error) {
	d.src.Reset(src)
	if d.gz == nil {
		d.gz = new(gzip.Reader)
	}
	if err := d.gz.Reset(&d.src); err != nil {
		return nil, err
	}
	out, err := readLimited(d.buf[:0], d.gz, "gzip", limit, 4*len(src))
	d.src.Reset(nil)
	return out, err
}

// readLimited appends r's bytes to out until EOF, failing with ErrTooLarge
// past limit bytes in all. hint sizes a first buffer when out has none.
func readLimited(out []byte, r io.Reader, codec string, limit, hint int) ([]byte, error) {
	if cap(out) == 0 {
		out = make([]byte, 0, min(max(hint, 512), limit+1))
	}
	for {
		end := min(cap(out), limit+1) // reading one byte past limit tells "too large" from "exactly limit"
		if len(out) == end {
			if end > limit {
				return nil, errLimit(codec, limit)
			}
			out = slices.Grow(out, min(len(out), limit+1-len(out)))
			end = min(cap(out), limit+1)
		}
		n, err := r.Read(out[len(out):end])
		out = out[:len(out)+n]
		if err == io.EOF {
			if len(out) > limit {
				return nil, errLimit(codec, limit)
			}
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// unsnappy appends the decoding of src to out: xerial framed (the Java
// producer) or one raw block (franz-go, librdkafka, Sarama), telling them
// apart as snappy-java's SnappyInputStream does, by the magic.
func unsnappy(out, src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderLen || !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(out, src, limit)
	}
	// Sum the chunks' decoded lengths first, touching a few bytes of
	// each, so that out grows once and the limit is checked up front.
	total := 0
	for b, at := src[xerialHeaderLen:], xerialHeaderLen; len(b) > 0; {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: snappy: xerial chunk length at byte %d truncated", ErrCorrupt, at)
		}
		n := int(int32(binary.BigEndian.Uint32(b)))
		if n < 0 || n > len(b)-4 {
			return nil, fmt.Errorf("%w: snappy: xerial chunk length %d at byte %d, %d bytes left", ErrCorrupt, n, at, len(b)-4)
		}
		l, err := s2.DecodedLen(b[4 : 4+n])
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: xerial chunk at byte %d: %w", ErrCorrupt, at, err)
		}
		if l > limit-len(out)-total {
			return nil, errLimit("snappy", limit)
		}
		total += l
		b, at = b[4+n:], at+4+n
	}
	out = slices.Grow(out, total)
	for b := src[xerialHeaderLen:]; len(b) > 0; {
		n := int(binary.BigEndian.Uint32(b))
		var err error
		if out, err = snappyBlock(out, b[4:4+n], limit); err != nil {
			return nil, err
		}
		b = b[4+n:]
	}
	return out, nil
}

// snappyBlock appends the decoding of one snappy block to out. It uses s2's
// decoder, as franz-go does: it decodes valid snappy exactly as snappy does
// and is about twice as fast as the strict snappy.DecodeStrict (3.5 against
// 6.5 µs for 24 KB of records). It also accepts S2's extensions, which
// snappy-java refuses; no producer writes them, and such a batch, forwarded
// unchanged, is refused by the broker as corrupt.
func snappyBlock(out, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > limit-len(out) {
		return nil, errLimit("snappy", limit)
	}
	out = slices.Grow(out, n)
	at := len(out)
	dec, err := s2.Decode(out[at:at+n], block) // decodes in place: the room is there
	if err != nil {
		return nil, err
	}
	if len(dec) != n {
		return nil, fmt.Errorf("%w: snappy: block decoded to %d bytes, its header says %d", ErrCorrupt, len(dec), n)
	}
	return out[:at+n], nil
}

func (d *Decoder) unzstd(src []byte, limit int) ([]byte, error) {
	mem := uint64(max(limit, zstdMinWindow))
	switch {
	case d.zstd == nil:
		zr, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1), // DecodeAll runs in the caller's goroutine
			zstd.WithDecoderMaxMemory(mem),
		)
		if err != nil {
			return nil, err
		}
		d.zstd, d.zstdMax = zr, mem
	case d.zstdMax != mem:
		if err := d.zstd.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(mem)); err != nil {
			return nil, err
		}
		d.zstdMax = mem
	}
	out, err := d.zstd.DecodeAll(src, d.buf[:0])
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, fmt.Errorf("%w: %w", errLimit("zstd", limit), err)
	}
	return out, err
}

// compress appends the compression of raw with codec (not none) to dst.
func (e *Encoder) compress(dst []byte, codec int16, raw []byte) ([]byte, error) {
	switch codec {
	case codecGzip:
		if e.gz == nil {
			gz, err := gzip.NewWriterLevel(&e.w, gzip.DefaultCompression)
			if err != nil {
				return dst, err
			}
			e.gz = gz
		} else {
			e.gz.Reset(&e.w)
		}
		e.w.b = dst
		_, err := e.gz.Write(raw)
		if err == nil {
			err = e.gz.Close()
		}
		dst, e.w.b = e.w.b, nil
		e.gz.Reset(io.Discard) // drop the reference to dst
		return dst, err
	case codecSnappy:
		// One raw block, as franz-go and librdkafka write it.
		// snappy-java reads input without the xerial magic as one
		// block, so Java consumers and brokers accept it.
		n := s2.MaxEncodedLen(len(raw))
		if n < 0 {
			return dst, fmt.Errorf("%w: %d bytes of records are too many for snappy", ErrTooLarge, len(raw))
		}
		dst = slices.Grow(dst, n)
		at := len(dst)
		enc := s2.EncodeSnappy(dst[at:at+n], raw) // in place: the room is there
		return dst[:at+len(enc)], nil
	case codecLZ4:
		if e.lz4 == nil {
			e.lz4 = new(lz4Compressor)
		}
		return e.lz4.appendFrame(dst, raw), nil
	case codecZstd:
		if e.zstd == nil {
			zw, err := zstd.NewWriter(nil,
				zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(zstdEncoderWindow),
			)
			if err != nil {
				return dst, err
			}
			e.zstd = zw
		}
		return e.zstd.EncodeAll(raw, dst), nil
	}
	return dst, fmt.Errorf("%w: codec %d", ErrUnsupportedCodec, codec)
}

// zstdEncoderWindow is the zstd window Encode uses, as franz-go does: it
// bounds the encoder's memory, and records rarely repeat each other from
// further away. Frames of records up to this size are single segment.
const zstdEncoderWindow = 64 << 10

// sliceWriter appends to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
