package outboxsqlite

import (
	"strconv"
	"strings"
	"time"
)

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
