package messageset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"

	"github.com/evproxy/evproxy/internal/xxhash32"
)

// xerialMagic starts snappy-java's framing; a version and a compatible
// version (int32 each) follow it.
var xerialMagic = []byte("\x82SNAPPY\x00")

const xerialHeaderLen = 16

// decompress inflates the value of a wrapper message with the given codec
// and magic. The result is at most limit bytes; beyond that it fails with
// ErrTooLarge.
func decompress(codec, magic int8, value []byte, limit int) ([]byte, error) {
	var (
		out  []byte
		err  error
		name string
	)
	switch codec {
	case codecGzip:
		name = "gzip"
		out, err = gunzip(value, limit)
	case codecSnappy:
		name = "snappy"
		out, err = unsnappy(value, limit)
	case codecLZ4:
		name = "lz4"
		out, err = unlz4(value, magic, limit)
	default:
		return nil, fmt.Errorf("%w: unknown codec %d", ErrCorrupt, codec) // checked by readMessage
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt):
		return nil, fmt.Errorf("%s: %w", name, err)
	default:
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
}

func gunzip(value []byte, limit int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(value))
	if err != nil {
		return nil, err
	}
	return readLimited(zr, limit, 4*len(value))
}

// unsnappy decodes xerial-framed or plain snappy, as snappy-java's
// SnappyInputStream does: without the xerial magic, the value is one block.
func unsnappy(value []byte, limit int) ([]byte, error) {
	if len(value) < xerialHeaderLen || !bytes.HasPrefix(value, xerialMagic) {
		return snappyBlock(nil, value, limit)
	}
	var out []byte
	for b := value[xerialHeaderLen:]; len(b) > 0; {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: xerial chunk length truncated", ErrCorrupt)
		}
		n := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n < 0 || int(n) > len(b) {
			return nil, fmt.Errorf("%w: xerial chunk length %d, %d bytes left", ErrCorrupt, n, len(b))
		}
		var err error
		if out, err = snappyBlock(out, b[:n], limit); err != nil {
			return nil, err
		}
		b = b[n:]
	}
	return out, nil
}

// snappyBlock appends the decoding of one snappy block to out, keeping
// len(out) at most limit.
func snappyBlock(out, block []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > limit-len(out) {
		return nil, fmt.Errorf("%w: decompresses to more than the %d bytes left under the limit", ErrTooLarge, limit)
	}
	start := len(out)
	if cap(out)-start < n {
		grown := make([]byte, start, start+n+(start+n)/4)
		copy(grown, out)
		out = grown
	}
	out = out[:start+n]
	d, err := snappy.Decode(out[start:], block)
	if err != nil {
		return nil, err
	}
	if len(d) != n {
		return nil, fmt.Errorf("%w: snappy block decoded to %d bytes, header said %d", ErrCorrupt, len(d), n)
	}
	if n > 0 && &d[0] != &out[start] {
		copy(out[start:], d)
	}
	return out, nil
}

// unlz4 decodes an LZ4 frame. For magic 0 it first replaces the frame
// header checksum, which Kafka computed over the wrong bytes (KAFKA-3160)
// and never checks for magic 0.
func unlz4(value []byte, magic int8, limit int) ([]byte, error) {
	var src io.Reader = bytes.NewReader(value)
	if magic == 0 {
		src = fixLZ4HeaderChecksum(value)
	}
	return readLimited(lz4.NewReader(src), limit, 4*len(value))
}

// LZ4 frame header fields (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md).
const (
	lz4Magic         = 0x184D2204
	lz4FlagDictID    = 0x01
	lz4FlagContentSz = 0x08
)

// fixLZ4HeaderChecksum returns a reader of frame with the header checksum
// byte (HC) set to the one the LZ4 frame format defines: the second byte of
// the xxHash-32 of the frame descriptor (FLG through the optional dictionary
// id). Kafka's magic 0 producers hashed the magic number too. Anything that
// is not an LZ4 frame header is passed on untouched, for the decoder to
// reject. frame itself is not modified.
func fixLZ4HeaderChecksum(frame []byte) io.Reader {
	if len(frame) < 7 || binary.LittleEndian.Uint32(frame) != lz4Magic {
		return bytes.NewReader(frame)
	}
	flg := frame[4]
	hc := 6 // after magic, FLG, BD
	if flg&lz4FlagContentSz != 0 {
		hc += 8
	}
	if flg&lz4FlagDictID != 0 {
		hc += 4
	}
	if hc >= len(frame) {
		return bytes.NewReader(frame)
	}
	want := byte(xxh32(frame[4:hc]) >> 8)
	if frame[hc] == want {
		return bytes.NewReader(frame)
	}
	header := make([]byte, hc+1)
	copy(header, frame)
	header[hc] = want
	return io.MultiReader(bytes.NewReader(header), bytes.NewReader(frame[hc+1:]))
}

// readLimited reads r to EOF, failing with ErrTooLarge past limit bytes.
// hint sizes the first buffer.
func readLimited(r io.Reader, limit, hint int) ([]byte, error) {
	limit = max(limit, 0)
	hint = max(min(hint, limit), 512)
	n := int64(limit)
	if n < math.MaxInt64 {
		n++ // one byte more than allowed tells "too large" from "exactly at the limit"
	}
	out := make([]byte, 0, hint)
	lr := io.LimitReader(r, n)
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := lr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if len(out) > limit {
			return nil, fmt.Errorf("%w: decompresses to more than the %d bytes left under the limit", ErrTooLarge, limit)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// xxh32 is the LZ4 frame checksum.
func xxh32(b []byte) uint32 { return xxhash32.Sum(b) }
