package outboxsqlite

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/evproxy/evproxy/internal/outbox"
)

// laneOf is the lane of a (topic, key): the first four bytes of
// md5(topic + lowercase hex of key), big endian, modulo outbox.Lanes, as
// outboxpgx computes it (outboxtest.Lane). A null and an empty key hash
// alike; that only puts them in the same lane.
func laneOf(topic string, key []byte) int32 {
	buf := make([]byte, len(topic)+hex.EncodedLen(len(key)))
	n := copy(buf, topic)
	hex.Encode(buf[n:], key)
	sum := md5.Sum(buf)
	return int32(binary.BigEndian.Uint32(sum[:4]) % outbox.Lanes)
}

// encodeHeaders is the headers column: repeated [int32 BE name length]
// [name][int32 BE value length, -1 for a null value][value]. No headers is
// NULL.
func encodeHeaders(hs []outbox.Header) []byte {
	if len(hs) == 0 {
		return nil
	}
	n := 0
	for _, h := range hs {
		n += 8 + len(h.Key) + len(h.Value)
	}
	b := make([]byte, 0, n)
	for _, h := range hs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Key)))
		b = append(b, h.Key...)
		if h.Value == nil {
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // -1
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

var errBadHeaders = errors.New("outboxsqlite: malformed headers column")

// decodeHeaders reverses encodeHeaders. A non-null empty value decodes to
// an empty, non-nil slice.
func decodeHeaders(b []byte) ([]outbox.Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var hs []outbox.Header
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errBadHeaders
		}
		n := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n < 0 || int(n) > len(b) {
			return nil, errBadHeaders
		}
		var h outbox.Header
		h.Key = string(b[:n])
		b = b[n:]
		if len(b) < 4 {
			return nil, errBadHeaders
		}
		n = int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		switch {
		case n == -1:
		case n < 0 || int(n) > len(b):
			return nil, errBadHeaders
		default:
			h.Value = append(make([]byte, 0, n), b[:n]...)
			b = b[n:]
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// millis is a time as stored: Unix milliseconds, truncated.
func millis(t time.Time) int64 { return t.UnixMilli() }

// nullMillis is a nullable time column: the zero time is NULL.
func nullMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// nullString is a nullable text column: "" is NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// blob is a nullable blob parameter. The driver binds a nil slice as NULL
// and a non-nil empty one as a zero-length blob.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// unblob restores a blob column. The driver reads a zero-length blob as a
// nil slice, so queries select "col IS NULL" beside every nullable blob.
func unblob(b []byte, isNull bool) []byte {
	if isNull {
		return nil
	}
	if b == nil {
		return []byte{}
	}
	return b
}

// jsonInts is a list parameter for json_each: "[1,2,3]".
func jsonInts[T int32 | int64](xs []T) string {
	var sb strings.Builder
	sb.Grow(2 + 8*len(xs))
	sb.WriteByte('[')
	for i, x := range xs {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatInt(int64(x), 10))
	}
	sb.WriteByte(']')
	return sb.String()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
