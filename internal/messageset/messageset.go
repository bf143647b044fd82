package messageset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
)

// Errors returned by ToRecordBatch, always wrapped with the position and
// reason; compare with errors.Is.
var (
	// ErrCorrupt means the message set cannot be read: a CRC mismatch, an
	// impossible or truncated length, a magic other than 0 or 1, an unknown
	// codec, a compressed message inside a compressed message, an inner
	// magic that differs from its wrapper's, or compressed data that does
	// not decompress. The proxy answers CORRUPT_MESSAGE.
	ErrCorrupt = errors.New("corrupt message set")
	// ErrEmpty means the message set holds no message.
	ErrEmpty = errors.New("empty message set")
	// ErrTooLarge means compressed messages decompress to more than the
	// caller's limit, or the batch would not fit a v2 record batch. The
	// proxy answers MESSAGE_TOO_LARGE.
	ErrTooLarge = errors.New("message set too large")
)

// Legacy attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
)

// Legacy codecs.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
)

const (
	// logOverhead is the offset and messageSize fields before a message.
	logOverhead = 12
	// minMessage0 is crc, magic, attributes, key length, value length.
	minMessage0 = 4 + 1 + 1 + 4 + 4
	// minMessage1 adds the timestamp.
	minMessage1 = minMessage0 + 8

	// batchHeaderLen is the fixed part of a v2 record batch.
	batchHeaderLen = 61
	// v2 batch field offsets.
	offBatchLength = 8
	offLeaderEpoch = 12
	offMagic       = 16
	offCRC         = 17
	offAttributes  = 21
	offLastDelta   = 23
	offBaseTime    = 27
	offMaxTime     = 35
	offProducerID  = 43
	offEpoch       = 51
	offSequence    = 53
	offCount       = 57
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ToRecordBatch converts set, a legacy message set (magic 0 or 1 messages,
// compressed wrappers included), into one uncompressed v2 record batch and
// returns it with its record count. nowMillis is the timestamp given to
// magic 0 messages. maxBytes caps the total size that compressed wrappers
// decompress to (a guard against decompression bombs); uncompressed messages
// do not count against it. The result does not alias set.
//
// See the package documentation for what is kept and what is dropped.
func ToRecordBatch(set []byte, nowMillis int64, maxBytes int) (batch []byte, records int, err error) {
	if len(set) == 0 {
		return nil, 0, ErrEmpty
	}
	c := converter{now: nowMillis, budget: maxBytes}
	// v2 records are no larger than the legacy messages they come from
	// for typical timestamps; decompressed data grows the buffer as needed.
	c.out = make([]byte, batchHeaderLen, batchHeaderLen+len(set))
	if err := c.readSet(set, nil); err != nil {
		return nil, 0, err
	}
	if c.n == 0 {
		return nil, 0, ErrEmpty // unreachable: wrappers must hold messages
	}
	if len(c.out)-logOverhead > math.MaxInt32 {
		return nil, 0, fmt.Errorf("%w: record batch of %d bytes", ErrTooLarge, len(c.out))
	}
	c.finish()
	return c.out, c.n, nil
}

// converter appends records to a v2 batch while it walks a message set.
type converter struct {
	now    int64
	budget int // decompressed bytes still allowed
	out    []byte
	n      int   // records written
	base   int64 // first record's timestamp
	max    int64 // largest timestamp
}

// wrapper describes the compressed message whose inner set is being read.
type wrapper struct {
	magic     int8
	timestamp int64
	logAppend bool
}

// message is one decoded legacy message.
type message struct {
	magic      int8
	attributes int8
	timestamp  int64
	key, value []byte // nil when null
}

// readSet appends a record for every message of set. w is nil for the
// top-level set and the wrapper for an inner set.
func (c *converter) readSet(set []byte, w *wrapper) error {
	for pos := 0; pos < len(set); {
		m, size, err := readMessage(set[pos:])
		if err != nil {
			return where(w, pos, err)
		}
		codec := m.attributes & attrCodecMask
		switch {
		case w != nil && m.magic != w.magic:
			err = fmt.Errorf("%w: inner magic %d in a magic %d wrapper", ErrCorrupt, m.magic, w.magic)
		case w != nil && codec != codecNone:
			err = fmt.Errorf("%w: compressed message (codec %d) inside a compressed message", ErrCorrupt, codec)
		case codec != codecNone:
			err = c.readWrapper(m, codec)
		default:
			c.appendRecord(c.timestamp(m, w), m.key, m.value)
		}
		if err != nil {
			return where(w, pos, err)
		}
		pos += size
	}
	return nil
}

// readWrapper decompresses the wrapper message m and reads its inner set.
func (c *converter) readWrapper(m message, codec int8) error {
	if m.value == nil {
		return fmt.Errorf("%w: compressed message with a null value", ErrCorrupt)
	}
	inner, err := decompress(codec, m.magic, m.value, c.budget)
	if err != nil {
		return err
	}
	c.budget -= len(inner)
	if len(inner) == 0 {
		return fmt.Errorf("%w: compressed message holds no messages", ErrCorrupt)
	}
	// Grow once for the whole inner set rather than record by record.
	if need := len(c.out) + len(inner); need > cap(c.out) {
		grown := make([]byte, len(c.out), need+need/4)
		copy(grown, c.out)
		c.out = grown
	}
	return c.readSet(inner, &wrapper{
		magic:     m.magic,
		timestamp: m.timestamp,
		logAppend: m.magic == 1 && m.attributes&attrLogAppendTime != 0,
	})
}

// timestamp is the record timestamp of message m inside wrapper w (nil at
// top level).
func (c *converter) timestamp(m message, w *wrapper) int64 {
	switch {
	case m.magic == 0:
		return c.now
	case w != nil && w.logAppend:
		return w.timestamp
	default:
		return m.timestamp
	}
}

// where adds the position of the message to err; the outer set adds the
// wrapper's.
func where(w *wrapper, pos int, err error) error {
	if w == nil {
		return fmt.Errorf("message at byte %d: %w", pos, err)
	}
	return fmt.Errorf("inner message at byte %d: %w", pos, err)
}

// readMessage decodes the message at the start of b and returns it with its
// total size, log overhead included. Key and value alias b.
func readMessage(b []byte) (m message, size int, err error) {
	if len(b) < logOverhead {
		return m, 0, fmt.Errorf("%w: truncated message set: %d bytes left, a message header needs %d", ErrCorrupt, len(b), logOverhead)
	}
	msgSize := int32(binary.BigEndian.Uint32(b[8:]))
	if msgSize < 0 {
		return m, 0, fmt.Errorf("%w: negative message size %d", ErrCorrupt, msgSize)
	}
	if int(msgSize) > len(b)-logOverhead {
		return m, 0, fmt.Errorf("%w: truncated message set: message size %d, %d bytes left", ErrCorrupt, msgSize, len(b)-logOverhead)
	}
	msg := b[logOverhead : logOverhead+int(msgSize)]
	if len(msg) < 5 {
		return m, 0, fmt.Errorf("%w: message size %d is below the minimum %d", ErrCorrupt, msgSize, minMessage0)
	}
	m.magic = int8(msg[4])
	minSize := minMessage0
	switch m.magic {
	case 0:
	case 1:
		minSize = minMessage1
	default:
		return m, 0, fmt.Errorf("%w: unknown magic %d (want 0 or 1)", ErrCorrupt, m.magic)
	}
	if len(msg) < minSize {
		return m, 0, fmt.Errorf("%w: message size %d is below the magic %d minimum %d", ErrCorrupt, msgSize, m.magic, minSize)
	}
	if stored, got := binary.BigEndian.Uint32(msg), crc32.ChecksumIEEE(msg[4:]); stored != got {
		return m, 0, fmt.Errorf("%w: CRC mismatch: stored %08x, computed %08x", ErrCorrupt, stored, got)
	}
	m.attributes = int8(msg[5])
	if codec := m.attributes & attrCodecMask; codec > codecLZ4 {
		return m, 0, fmt.Errorf("%w: unknown codec %d", ErrCorrupt, codec)
	}
	rest := msg[6:]
	if m.magic == 1 {
		m.timestamp = int64(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
	}
	if m.key, rest, err = readBytes(rest, "key"); err != nil {
		return m, 0, err
	}
	if m.value, rest, err = readBytes(rest, "value"); err != nil {
		return m, 0, err
	}
	if len(rest) != 0 {
		return m, 0, fmt.Errorf("%w: %d bytes after the value", ErrCorrupt, len(rest))
	}
	return m, logOverhead + int(msgSize), nil
}

// readBytes reads an int32-length-prefixed byte string; -1 is null (nil).
// A present string is never nil, even when empty.
func readBytes(b []byte, what string) (v, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: %s length past the message end", ErrCorrupt, what)
	}
	n := int32(binary.BigEndian.Uint32(b))
	b = b[4:]
	switch {
	case n == -1:
		return nil, b, nil
	case n < -1:
		return nil, nil, fmt.Errorf("%w: %s length %d", ErrCorrupt, what, n)
	case int(n) > len(b):
		return nil, nil, fmt.Errorf("%w: %s length %d, %d bytes left in the message", ErrCorrupt, what, n, len(b))
	}
	return b[:n:n], b[n:], nil
}

// appendRecord appends one v2 record (no headers) to the batch.
func (c *converter) appendRecord(ts int64, key, value []byte) {
	if c.n == 0 {
		c.base, c.max = ts, ts
	} else if ts > c.max {
		c.max = ts
	}
	// Wraps for extreme timestamps; base+delta wraps back, as in Kafka.
	delta := ts - c.base
	body := 1 + varintLen(delta) + varintLen(int64(c.n)) +
		bytesLen(key) + bytesLen(value) + 1
	out := c.out
	out = binary.AppendVarint(out, int64(body))
	out = append(out, 0) // attributes
	out = binary.AppendVarint(out, delta)
	out = binary.AppendVarint(out, int64(c.n))
	out = appendBytes(out, key)
	out = appendBytes(out, value)
	out = append(out, 0) // header count
	c.out = out
	c.n++
}

// finish fills in the batch header and CRC.
func (c *converter) finish() {
	b := c.out
	binary.BigEndian.PutUint64(b, 0) // base offset
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-logOverhead))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], math.MaxUint32) // -1
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], 0)
	binary.BigEndian.PutUint32(b[offLastDelta:], uint32(c.n-1))
	binary.BigEndian.PutUint64(b[offBaseTime:], uint64(c.base))
	binary.BigEndian.PutUint64(b[offMaxTime:], uint64(c.max))
	binary.BigEndian.PutUint64(b[offProducerID:], math.MaxUint64) // -1
	binary.BigEndian.PutUint16(b[offEpoch:], math.MaxUint16)      // -1
	binary.BigEndian.PutUint32(b[offSequence:], math.MaxUint32)   // -1
	binary.BigEndian.PutUint32(b[offCount:], uint32(c.n))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// varintLen is the size of x as a zigzag varint.
func varintLen(x int64) int {
	ux := uint64(x)<<1 ^ uint64(x>>63)
	return (bits.Len64(ux|1) + 6) / 7
}

// bytesLen is the encoded size of a varint-length-prefixed byte string.
func bytesLen(b []byte) int {
	if b == nil {
		return 1 // varint -1
	}
	return varintLen(int64(len(b))) + len(b)
}

// appendBytes appends b with a varint length prefix, -1 for nil.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
