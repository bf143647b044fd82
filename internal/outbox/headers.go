package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EncodeHeaders is the headers column of both stores (a PostgreSQL bytea,
// a SQLite BLOB): for each header in order, [int32 big-endian name
// length][name][int32 big-endian value length, -1 for a null
// value][value]. No headers (nil or empty) encodes to nil, stored as NULL.
// outboxpgx's publish function writes the same format in SQL.
func EncodeHeaders(hs []Header) []byte {
	if len(hs) == 0 {
		return nil
	}
	b := make([]byte, 0, encodedHeadersLen(hs))
	for _, h := range hs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Key)))
		b = append(b, h.Key...)
		if h.Value == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff) // -1
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

// encodedHeadersLen is len(EncodeHeaders(hs)), without encoding.
func encodedHeadersLen(hs []Header) int {
	n := 0
	for _, h := range hs {
		n += 8 + len(h.Key) + len(h.Value)
	}
	return n
}

// errHeaders is wrapped by every DecodeHeaders error.
var errHeaders = errors.New("outbox: malformed headers column")

// DecodeHeaders reverses EncodeHeaders. Empty or nil b is no headers
// (nil). A null value decodes to nil and a non-null empty one to an
// empty, non-nil slice; values are copies, never aliases of b. A valid
// column is canonical: it encodes back to the same bytes.
func DecodeHeaders(b []byte) ([]Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var hs []Header
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: truncated name length", errHeaders)
		}
		nl := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if nl < 0 || int(nl) > len(b) {
			return nil, fmt.Errorf("%w: name length %d", errHeaders, nl)
		}
		h := Header{Key: string(b[:nl])}
		b = b[nl:]
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: truncated value length", errHeaders)
		}
		vl := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		switch {
		case vl == -1:
		case vl < -1 || int(vl) > len(b):
			return nil, fmt.Errorf("%w: value length %d", errHeaders, vl)
		default:
			h.Value = append(make([]byte, 0, vl), b[:vl]...)
			b = b[vl:]
		}
		hs = append(hs, h)
	}
	return hs, nil
}
