package outboxsqlite

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
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
