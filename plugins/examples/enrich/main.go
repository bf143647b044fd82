// Command enrich is an evproxy plugin that stamps every record with where
// it came from and fills in missing CloudEvents metadata.
//
// Config: {"source": "checkout"}. For every record it
//
//   - sets header enriched-by to source (replacing any),
//   - sets header ce_id to a new UUIDv7 when ce_id is missing (absent,
//     null or empty),
//   - sets header ce_time to the current time in RFC 3339 (UTC,
//     milliseconds) when ce_time is missing,
//   - sets the top-level field "source" to source in values that are JSON
//     objects (other values are left as they are),
//
// and replaces the record with the result (REPLACE, one output).
package main

import (
	"crypto/rand"
	"errors"
	"time"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/jsonf"
)

type enrich struct {
	source    string
	sourceHdr []byte
	random    []byte // 10 random bytes per record of the batch
	arena     []byte // new values and header values of the current batch
}

func (e *enrich) Init(config []byte) error {
	seen := false
	it := jsonf.Members(config)
	for it.Next() {
		switch key := string(it.Key()); key {
		case "source":
			s, ok := jsonf.Unquote(it.Value())
			if !ok || len(s) == 0 {
				return errors.New(`config "source" must be a non-empty string`)
			}
			e.source, seen = string(s), true
		default:
			return errors.New(`unknown config key "` + key + `"`)
		}
	}
	if it.Err() != nil {
		return errors.New("config must be a JSON object")
	}
	if !seen {
		return errors.New(`config needs "source": the name to stamp records with`)
	}
	e.sourceHdr = []byte(e.source)
	return nil
}

func (e *enrich) Process(_ string, recs []evp.Record, out []evp.Verdict) {
	now := evp.NowMillis()
	// Slices of the arena stay valid after it grows (the old array lives on
	// while referenced); it is reused from the next batch on, when this
	// batch's verdicts have been encoded.
	e.arena = e.arena[:0]
	start := len(e.arena)
	e.arena = time.UnixMilli(now).UTC().AppendFormat(e.arena, "2006-01-02T15:04:05.000Z07:00")
	ceTime := e.arena[start:len(e.arena):len(e.arena)]

	if n := 10 * len(recs); cap(e.random) < n {
		e.random = make([]byte, n)
	}
	random := e.random[:10*len(recs)]
	rand.Read(random) // WASI random_get; never fails
	ids := 0

	for i := range recs {
		r := &recs[i]
		r.SetHeader("enriched-by", e.sourceHdr)
		if v, _ := r.Header("ce_id"); len(v) == 0 {
			start := len(e.arena)
			e.arena = appendUUIDv7(e.arena, now, random[10*i:10*i+10])
			r.SetHeader("ce_id", e.arena[start:len(e.arena):len(e.arena)])
			ids++
		}
		if v, _ := r.Header("ce_time"); len(v) == 0 {
			r.SetHeader("ce_time", ceTime)
		}
		start := len(e.arena)
		if arena, err := jsonf.AppendSetString(e.arena, r.Value, "source", e.source); err == nil {
			e.arena = arena
			r.Value = e.arena[start:len(e.arena):len(e.arena)]
		}
		out[i] = evp.Modified(*r)
	}
	if ids > 0 {
		evp.MetricAdd("ids_generated", int64(ids))
	}
}

const hexDigits = "0123456789abcdef"

// appendUUIDv7 appends a version 7 UUID (RFC 9562 §5.7): 48 bits of Unix
// milliseconds, then 74 random bits around the version and variant.
func appendUUIDv7(dst []byte, ms int64, random []byte) []byte {
	var u [16]byte
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6] = 0x70 | random[0]&0x0F
	u[7] = random[1]
	u[8] = 0x80 | random[2]&0x3F
	copy(u[9:], random[3:10])
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xF])
	}
	return dst
}

func init() { evp.Register(&enrich{}) }

func main() {}
