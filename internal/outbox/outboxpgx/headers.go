package outboxpgx

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/evproxy/evproxy/internal/outbox"
)

// encodeHeaders is the headers column: repeated [int32 BE name length]
// [name][int32 BE value length, -1 for null][value]; nil for no headers.
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
			b = binary.BigEndian.AppendUint32(b, 0xffffffff) // -1
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

var errHeaders = errors.New("malformed headers column")

// decodeHeaders reverses encodeHeaders; empty or nil is no headers (nil).
// Values are copies, never aliases of b.
func decodeHeaders(b []byte) ([]outbox.Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var hs []outbox.Header
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: truncated name length", errHeaders)
		}
		nl := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if nl < 0 || int(nl) > len(b) {
			return nil, fmt.Errorf("%w: name length %d", errHeaders, nl)
		}
		h := outbox.Header{Key: string(b[:nl])}
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
