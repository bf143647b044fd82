package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestHeader is the decoded header of a request frame.
type requestHeader struct {
	key      int16
	version  int16
	corr     int32
	clientID string
}

var errShortHeader = errors.New("request header truncated")

// parseHeader decodes the request header at the start of frame (the bytes
// after the size) and returns it with the request body. flexible says
// whether the header carries tagged fields (request header v2).
func parseHeader(frame []byte) (requestHeader, []byte, error) {
	var h requestHeader
	if len(frame) < 10 {
		return h, nil, errShortHeader
	}
	h.key = int16(binary.BigEndian.Uint16(frame))
	h.version = int16(binary.BigEndian.Uint16(frame[2:]))
	h.corr = int32(binary.BigEndian.Uint32(frame[4:]))
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if n > 0 {
		if int(n) > len(rest) {
			return h, nil, errShortHeader
		}
		h.clientID = string(rest[:n])
		rest = rest[n:]
	} else if n < -1 {
		return h, nil, fmt.Errorf("client id length %d", n)
	}
	return h, rest, nil
}

// skipTags skips a tagged-field section (flexible headers).
func skipTags(b []byte) ([]byte, error) {
	n, used := binary.Uvarint(b)
	if used <= 0 {
		return nil, errors.New("tagged fields truncated")
	}
	b = b[used:]
	for i := uint64(0); i < n; i++ {
		_, u1 := binary.Uvarint(b)
		if u1 <= 0 {
			return nil, errors.New("tag truncated")
		}
		b = b[u1:]
		sz, u2 := binary.Uvarint(b)
		if u2 <= 0 || uint64(len(b)-u2) < sz {
			return nil, errors.New("tag size out of range")
		}
		b = b[u2+int(sz):]
	}
	return b, nil
}

// appendResponse appends a whole response frame: size, correlation id,
// header tags when the response header is flexible, body.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	// ApiVersions answers always use response header v0 (KIP-511), so a
	// client that does not know our versions can read them.
	if resp.IsFlexible() && resp.Key() != 18 {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
