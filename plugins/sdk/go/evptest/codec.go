package evptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
)

// The host side of the ABI's encoding (docs/plugin-abi.md §3), used to
// drive plugins and by tools that run .wasm plugins.

// AppendBatch appends the input batch encoding of recs with eventType.
func AppendBatch(dst []byte, eventType string, recs []evp.Record) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(recs)))
	dst = appendStr(dst, eventType)
	for i := range recs {
		r := &recs[i]
		dst = appendStr(dst, r.Topic)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(r.Partition))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Timestamp))
		dst = appendNBytes(dst, r.Key)
		dst = appendNBytes(dst, r.Value)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Headers)))
		for _, h := range r.Headers {
			dst = appendStr(dst, h.Name)
			dst = appendNBytes(dst, h.Value)
		}
	}
	return dst
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendNBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.LittleEndian.AppendUint32(dst, math.MaxUint32)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// ErrMalformed is wrapped by every error of DecodeVerdicts: the host treats
// such output as plugin_malformed_output.
var ErrMalformed = errors.New("malformed plugin output")

// DecodeVerdicts decodes and checks an output buffer as evproxy does: the
// count must be n, actions and output field bits known, lengths inside the
// buffer, and nothing may follow the last verdict. The verdicts copy what
// they need from buf.
func DecodeVerdicts(buf []byte, n int) ([]evp.Verdict, error) {
	d := vdec{b: buf}
	count := d.u32()
	if d.err != nil {
		return nil, d.err
	}
	if uint64(count) != uint64(n) {
		return nil, d.fail("%d verdicts for %d records", count, n)
	}
	vs := make([]evp.Verdict, n)
	for i := range vs {
		at := d.i
		switch action := evp.Action(d.u8()); action {
		case evp.ActionKeep:
			vs[i] = evp.Keep()
		case evp.ActionDrop:
			vs[i] = evp.Drop()
		case evp.ActionReject:
			code := int32(d.u32())
			vs[i] = evp.Reject(code, string(d.str()))
		case evp.ActionReplace:
			no := d.u32()
			if uint64(no) > uint64(len(buf)-d.i) { // every output takes a byte
				return nil, d.fail("verdict %d: %d outputs", i, no)
			}
			outs := make([]evp.Output, no)
			for j := range outs {
				outs[j] = d.output(i, j)
			}
			vs[i] = evp.Replace(outs...)
		default:
			if d.err == nil {
				return nil, d.fail("verdict %d at byte %d: unknown action %d", i, at, action)
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if d.i != len(buf) {
		return nil, d.fail("%d bytes after the last verdict", len(buf)-d.i)
	}
	return vs, nil
}

type vdec struct {
	b   []byte
	i   int
	err error
}

func (d *vdec) fail(format string, args ...any) error {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	return d.err
}

func (d *vdec) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || n > len(d.b)-d.i {
		d.fail("a length at byte %d runs past the end (%d bytes)", d.i, len(d.b))
		return false
	}
	return true
}

func (d *vdec) u8() byte {
	if !d.need(1) {
		return 0
	}
	d.i++
	return d.b[d.i-1]
}

func (d *vdec) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	d.i += 4
	return binary.LittleEndian.Uint32(d.b[d.i-4:])
}

func (d *vdec) str() []byte {
	n := d.u32()
	if n > math.MaxInt32 || !d.need(int(n)) {
		d.fail("a length at byte %d runs past the end", d.i)
		return nil
	}
	d.i += int(n)
	return d.b[d.i-int(n) : d.i]
}

func (d *vdec) nbytes() []byte {
	at := d.i
	n := int32(d.u32())
	if d.err != nil {
		return nil
	}
	if n == -1 {
		return nil
	}
	if n < -1 {
		d.fail("length %d at byte %d", n, at)
		return nil
	}
	if !d.need(int(n)) {
		return nil
	}
	d.i += int(n)
	return append(make([]byte, 0, n), d.b[d.i-int(n):d.i]...)
}

const knownFields = 0b1111

func (d *vdec) output(i, j int) evp.Output {
	o := evp.Original()
	at := d.i
	fields := d.u8()
	if fields&^knownFields != 0 {
		d.fail("verdict %d output %d at byte %d: unknown field bits %#x", i, j, at, fields)
		return o
	}
	if fields&1 != 0 {
		o = o.WithTopic(string(d.str()))
	}
	if fields&2 != 0 {
		o = o.WithKey(d.nbytes())
	}
	if fields&4 != 0 {
		o = o.WithValue(d.nbytes())
	}
	if fields&8 != 0 {
		hc := d.u32()
		if uint64(hc) > uint64(len(d.b)-d.i)/8 {
			d.fail("verdict %d output %d: %d headers", i, j, hc)
			return o
		}
		hs := make([]evp.Header, hc)
		for k := range hs {
			hs[k].Name = string(d.str())
			hs[k].Value = d.nbytes()
		}
		o = o.WithHeaders(hs)
	}
	return o
}
