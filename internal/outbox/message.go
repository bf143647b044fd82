package outbox

import (
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Headers evproxy reads on outbox records.
const (
	// HeaderEventID is the CloudEvents id: the outbox's dedup key. Records
	// without one get a new UUIDv7.
	HeaderEventID = "ce_id"
	// HeaderDeliverAt delays publishing until the given time (RFC 3339 or
	// Unix milliseconds). evproxy strips it.
	HeaderDeliverAt = "evproxy.deliver-at"
)

// NewEventID returns a new event id: a UUIDv7, so ids sort by time.
func NewEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// Only when the system's random source fails.
		return uuid.NewString()
	}
	return id.String()
}

// ParseDeliverAt parses an evproxy.deliver-at header value: RFC 3339 (with
// or without fractional seconds) or Unix milliseconds.
func ParseDeliverAt(v []byte) (time.Time, error) {
	s := string(v)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return time.Time{}, fmt.Errorf("invalid %s %q: Unix milliseconds must not be negative", HeaderDeliverAt, s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid %s %q: use RFC 3339 (2026-11-29T10:00:00Z) or Unix milliseconds", HeaderDeliverAt, s)
	}
	return t, nil
}
