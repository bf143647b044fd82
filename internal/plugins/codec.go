package plugins

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// This file holds the two buffer formats of docs/plugin-abi.md §3: the
// input batch the host writes (encodeBatch) and the verdicts the guest
// returns (decodeVerdicts). Both are little-endian and length-prefixed.

// maxBatchSize is the largest input batch the host encodes: lengths and
// pointers are i32 on the guest side.
const maxBatchSize = math.MaxInt32

// batchSize returns the encoded size of an input batch (§3.1), or false if
// it does not fit in maxBatchSize.
func batchSize(eventType string, recs []Record) (int, bool) {
	n := 4 + 4 + len(eventType)
	for i := range recs {
		r := &recs[i]
		// topic, partition, timestamp, key, value, header count
		n += 4 + len(r.Topic) + 4 + 8 + 4 + len(r.Key) + 4 + len(r.Value) + 4
		for j := range r.Headers {
			n += 4 + len(r.Headers[j].Key) + 4 + len(r.Headers[j].Value)
		}
		if n > maxBatchSize {
			return 0, false
		}
	}
	return n, n <= maxBatchSize
}

// encodeBatch writes the input batch into dst, which must be exactly
// batchSize bytes long (it is usually a view of guest memory, so the batch
// is encoded in place, without an intermediate buffer).
func encodeBatch(dst []byte, eventType string, recs []Record) {
	le := binary.LittleEndian
	le.PutUint32(dst, uint32(len(recs)))
	off := putStr(dst, 4, eventType)
	for i := range recs {
		r := &recs[i]
		off = putStr(dst, off, r.Topic)
		le.PutUint32(dst[off:], uint32(r.Partition))
		le.PutUint64(dst[off+4:], uint64(r.Timestamp))
		off = putNBytes(dst, off+12, r.Key)
		off = putNBytes(dst, off, r.Value)
		le.PutUint32(dst[off:], uint32(len(r.Headers)))
		off += 4
		for j := range r.Headers {
			off = putStr(dst, off, r.Headers[j].Key)
			off = putNBytes(dst, off, r.Headers[j].Value)
		}
	}
}

func putStr(dst []byte, off int, s string) int {
	binary.LittleEndian.PutUint32(dst[off:], uint32(len(s)))
	return off + 4 + copy(dst[off+4:], s)
}

func putNBytes(dst []byte, off int, b []byte) int {
	if b == nil {
		binary.LittleEndian.PutUint32(dst[off:], math.MaxUint32) // i32 -1: null
		return off + 4
	}
	binary.LittleEndian.PutUint32(dst[off:], uint32(len(b)))
	return off + 4 + copy(dst[off+4:], b)
}

// errMalformed is wrapped by every decodeVerdicts error.
var errMalformed = errors.New("malformed verdicts")

// Field bits of a REPLACE output (§3.2).
const (
	fieldTopic   = 1 << 0
	fieldKey     = 1 << 1
	fieldValue   = 1 << 2
	fieldHeaders = 1 << 3
	fieldsAll    = fieldTopic | fieldKey | fieldValue | fieldHeaders
)

// decodeVerdicts decodes the guest's output (§3.2) into out, which must
// hold exactly count verdicts, overwriting every element.
//
// src may be a view of guest memory: it is validated completely first,
// without allocating or keeping any of it, and then, only if a verdict
// carries bytes (a REJECT reason or a REPLACE output), copied once into a
// Go buffer that the decoded Reasons, Topics, Keys, Values and Headers
// share (strings point into it too; the byte slices are capped so appending
// to one never overwrites another). Outputs and Headers each get one
// backing array per call, taken from b when it is not nil (see Buffers). A
// REPLACE with no outputs decodes as Drop, as the spec says they are the
// same; headers set to none decode as HeadersSet with nil Headers.
func decodeVerdicts(src []byte, count int, out []Verdict, b *Buffers) error {
	if len(out) != count {
		return fmt.Errorf("%w: %d verdicts for %d records", errMalformed, len(out), count)
	}
	nOutputs, nHeaders, err := validateVerdicts(src, count)
	if err != nil {
		return err
	}
	if len(src) == 4+count { // only 1-byte verdicts: KEEP and DROP
		for i := range out {
			out[i] = Verdict{Action: Action(src[4+i])}
		}
		return nil
	}
	if b == nil {
		b = &Buffers{}
	}
	buf := b.takeBytes(len(src))
	copy(buf, src)
	var outputs []Output
	if nOutputs > 0 {
		outputs = b.takeOutputs(nOutputs)
	}
	var headers []Header
	if nHeaders > 0 {
		headers = b.takeHeaders(nHeaders)
	}
	d := decoder{b: buf, off: 4}
	for i := range out {
		a := Action(d.u8())
		switch a {
		case Keep, Drop:
			out[i] = Verdict{Action: a}
		case Reject:
			code := int32(d.u32())
			out[i] = Verdict{Action: Reject, Code: code, Reason: d.str()}
		case Replace:
			n := int(d.u32())
			if n == 0 {
				out[i] = Verdict{Action: Drop}
				continue
			}
			os := outputs[:n:n]
			outputs = outputs[n:]
			for j := range os {
				o := &os[j]
				fields := d.u8()
				if fields&fieldTopic != 0 {
					o.Topic, o.TopicSet = d.str(), true
				}
				if fields&fieldKey != 0 {
					o.Key, o.KeySet = d.nbytes(), true
				}
				if fields&fieldValue != 0 {
					o.Value, o.ValueSet = d.nbytes(), true
				}
				if fields&fieldHeaders != 0 {
					o.HeadersSet = true
					if hc := int(d.u32()); hc > 0 { // else Headers stays nil
						o.Headers = headers[:hc:hc]
						headers = headers[hc:]
						for k := range o.Headers {
							o.Headers[k] = Header{Key: d.str(), Value: d.nbytes()}
						}
					}
				}
			}
			out[i] = Verdict{Action: Replace, Outputs: os}
		}
	}
	return nil
}

// validateVerdicts checks the whole output buffer and counts the REPLACE
// outputs and headers in it. It never allocates: counts are checked
// against the bytes left before they are used.
func validateVerdicts(b []byte, count int) (nOutputs, nHeaders int, err error) {
	v := validator{b: b}
	if n, ok := v.u32(); !ok {
		return 0, 0, v.fail("verdict count")
	} else if uint64(n) != uint64(count) {
		return 0, 0, fmt.Errorf("%w: %d verdicts for %d records", errMalformed, n, count)
	}
	for i := 0; i < count; i++ {
		a, ok := v.u8()
		if !ok {
			return 0, 0, v.failAt(i, "action")
		}
		switch Action(a) {
		case Keep, Drop:
		case Reject:
			if _, ok := v.u32(); !ok {
				return 0, 0, v.failAt(i, "reject code")
			}
			if !v.str() {
				return 0, 0, v.failAt(i, "reject reason")
			}
		case Replace:
			n, ok := v.u32()
			if !ok {
				return 0, 0, v.failAt(i, "output count")
			}
			if uint64(n) > uint64(v.left()) { // each output takes at least 1 byte
				return 0, 0, v.failAt(i, "output count")
			}
			nOutputs += int(n)
			for range n {
				fields, ok := v.u8()
				if !ok {
					return 0, 0, v.failAt(i, "output fields")
				}
				if fields&^fieldsAll != 0 {
					return 0, 0, fmt.Errorf("%w: verdict %d: unknown output field bits %#x", errMalformed, i, fields&^fieldsAll)
				}
				if fields&fieldTopic != 0 && !v.str() {
					return 0, 0, v.failAt(i, "output topic")
				}
				if fields&fieldKey != 0 && !v.nbytes() {
					return 0, 0, v.failAt(i, "output key")
				}
				if fields&fieldValue != 0 && !v.nbytes() {
					return 0, 0, v.failAt(i, "output value")
				}
				if fields&fieldHeaders != 0 {
					hc, ok := v.u32()
					if !ok || uint64(hc) > uint64(v.left()/8) { // each header takes at least 8 bytes
						return 0, 0, v.failAt(i, "output header count")
					}
					nHeaders += int(hc)
					for range hc {
						if !v.str() || !v.nbytes() {
							return 0, 0, v.failAt(i, "output header")
						}
					}
				}
			}
		default:
			return 0, 0, fmt.Errorf("%w: verdict %d: unknown action %d", errMalformed, i, a)
		}
	}
	if v.left() != 0 {
		return 0, 0, fmt.Errorf("%w: %d trailing bytes", errMalformed, v.left())
	}
	return nOutputs, nHeaders, nil
}

// validator reads a buffer with bounds checks and no allocation.
type validator struct {
	b   []byte
	off int
}

func (v *validator) left() int { return len(v.b) - v.off }

func (v *validator) u8() (byte, bool) {
	if v.left() < 1 {
		return 0, false
	}
	v.off++
	return v.b[v.off-1], true
}

func (v *validator) u32() (uint32, bool) {
	if v.left() < 4 {
		return 0, false
	}
	v.off += 4
	return binary.LittleEndian.Uint32(v.b[v.off-4:]), true
}

func (v *validator) str() bool {
	n, ok := v.u32()
	if !ok || uint64(n) > uint64(v.left()) {
		return false
	}
	v.off += int(n)
	return true
}

func (v *validator) nbytes() bool {
	n, ok := v.u32()
	if !ok {
		return false
	}
	if n == math.MaxUint32 { // -1: null
		return true
	}
	if n > math.MaxInt32 || uint64(n) > uint64(v.left()) {
		return false
	}
	v.off += int(n)
	return true
}

func (v *validator) fail(what string) error {
	return fmt.Errorf("%w: %s past the end (%d bytes)", errMalformed, what, len(v.b))
}

func (v *validator) failAt(i int, what string) error {
	return fmt.Errorf("%w: verdict %d: %s past the end or invalid (offset %d of %d)", errMalformed, i, what, v.off, len(v.b))
}

// decoder reads a buffer validateVerdicts accepted. The buffer is owned by
// the decoded verdicts, so strings point into it.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) u8() byte {
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) u32() uint32 {
	d.off += 4
	return binary.LittleEndian.Uint32(d.b[d.off-4:])
}

func (d *decoder) str() string {
	n := int(d.u32())
	if n == 0 {
		return ""
	}
	s := unsafe.String(&d.b[d.off], n)
	d.off += n
	return s
}

func (d *decoder) nbytes() []byte {
	n := d.u32()
	if n == math.MaxUint32 {
		return nil
	}
	end := d.off + int(n)
	b := d.b[d.off:end:end]
	d.off = end
	return b
}

// Buffers is reusable memory for the verdicts of Process calls
// (Plugin.ProcessWith): the verdicts, their outputs and headers, and the
// copy of the guest's output their bytes and strings point into. Each call
// takes fresh room from it, so the verdicts of several calls stay valid
// together until Reset, which makes all the memory reusable: after Reset,
// no verdict (nor any string or byte slice in one) taken from it may be
// used. The zero value is ready to use; a Buffers is not safe for
// concurrent use.
type Buffers struct {
	verdicts []Verdict
	bytes    []byte
	outputs  []Output
	headers  []Header
}

// Reset makes the memory of every verdict taken so far reusable.
func (b *Buffers) Reset() {
	b.verdicts = b.verdicts[:0]
	b.bytes = b.bytes[:0]
	b.outputs = b.outputs[:0]
	b.headers = b.headers[:0]
}

// take returns n elements from the free room of *s, zeroed when they were
// used before, growing *s (to a new array: the elements handed out before
// stay where they are) when the room is short.
func take[T any](s *[]T, n int) []T {
	if cap(*s)-len(*s) < n {
		*s = make([]T, 0, max(2*cap(*s), n, 64))
	}
	l := len(*s)
	*s = (*s)[:l+n]
	r := (*s)[l : l+n : l+n]
	clear(r)
	return r
}

func (b *Buffers) takeVerdicts(n int) []Verdict { return take(&b.verdicts, n) }
func (b *Buffers) takeOutputs(n int) []Output   { return take(&b.outputs, n) }
func (b *Buffers) takeHeaders(n int) []Header   { return take(&b.headers, n) }

// takeBytes is take for bytes, without zeroing: the caller overwrites them.
func (b *Buffers) takeBytes(n int) []byte {
	if cap(b.bytes)-len(b.bytes) < n {
		b.bytes = make([]byte, 0, max(2*cap(b.bytes), n, 4096))
	}
	l := len(b.bytes)
	b.bytes = b.bytes[:l+n]
	return b.bytes[l : l+n : l+n]
}
