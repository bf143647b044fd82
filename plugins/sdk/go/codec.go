package evp

import (
	"encoding/binary"
	"errors"
	"math"
)

// The guest side of the ABI's encoding (docs/plugin-abi.md §3): decoding
// the input batch and encoding the verdicts. Both reuse their memory from
// one batch to the next.

var errMalformedBatch = errors.New("malformed input batch")

// minRecordSize is the encoding of a record with empty topic, null key and
// value and no headers: it bounds the record count a buffer can hold.
const minRecordSize = 4 + 4 + 8 + 4 + 4 + 4

// decoder decodes input batches into records that alias the input.
type decoder struct {
	recs  []Record
	hdrs  []Header
	spans []int32 // per record, the end of its headers in hdrs (spare slots follow)
	names map[string]string
	// The previous record's topic and header names by position: records of
	// a batch mostly repeat them, and comparing beats hashing.
	lastTopic string
	lastHdrs  [8]string
}

// spareSlots is the room after each record's headers for headers a plugin
// adds without allocating.
const spareSlots = 4

var spareHeaders [spareSlots]Header

// maxNames bounds the interned topic and header names.
const maxNames = 1024

// intern returns b as a string, allocating only the first time it sees it:
// topics, event types and header names repeat from batch to batch.
func (d *decoder) intern(b []byte) string {
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	if d.names == nil || len(d.names) >= maxNames {
		d.names = make(map[string]string, 64)
	}
	s := string(b)
	d.names[s] = s
	return s
}

// strAt reads the str at in[i:]: its bytes and the index after it. The
// decoder reads with free functions on (in, i) rather than a reader
// struct: in a Go WebAssembly guest that halves the cost of a batch.
func strAt(in []byte, i int) ([]byte, int, bool) {
	if len(in)-i < 4 {
		return nil, 0, false
	}
	n := uint64(binary.LittleEndian.Uint32(in[i:]))
	i += 4
	if n > uint64(len(in)-i) {
		return nil, 0, false
	}
	return in[i : i+int(n) : i+int(n)], i + int(n), true
}

// nbytesAt reads the nbytes at in[i:] (nil for -1: null). The result's
// capacity ends at its length, so appending to it never writes into the
// input.
func nbytesAt(in []byte, i int) ([]byte, int, bool) {
	if len(in)-i < 4 {
		return nil, 0, false
	}
	n := int32(binary.LittleEndian.Uint32(in[i:]))
	i += 4
	if n == -1 {
		return nil, i, true
	}
	if n < 0 || int(n) > len(in)-i {
		return nil, 0, false
	}
	return in[i : i+int(n) : i+int(n)], i + int(n), true
}

// decode decodes one input batch; the records are valid until the next
// call.
func (d *decoder) decode(in []byte) (eventType string, recs []Record, err error) {
	if len(in) < 4 {
		return "", nil, errMalformedBatch
	}
	count := uint64(binary.LittleEndian.Uint32(in))
	et, i, ok := strAt(in, 4)
	if !ok || count > uint64(len(in)-i)/minRecordSize {
		return "", nil, errMalformedBatch
	}
	n := int(count)
	if cap(d.recs) < n {
		d.recs = make([]Record, n)
		d.spans = make([]int32, n)
	}
	recs, spans := d.recs[:n], d.spans[:n]
	hdrs := d.hdrs[:0]
	for k := range recs {
		var topic, key, value []byte
		if topic, i, ok = strAt(in, i); !ok || len(in)-i < 12 {
			return "", nil, errMalformedBatch
		}
		partition := int32(binary.LittleEndian.Uint32(in[i:]))
		ts := int64(binary.LittleEndian.Uint64(in[i+4:]))
		if key, i, ok = nbytesAt(in, i+12); !ok {
			return "", nil, errMalformedBatch
		}
		if value, i, ok = nbytesAt(in, i); !ok || len(in)-i < 4 {
			return "", nil, errMalformedBatch
		}
		hc := uint64(binary.LittleEndian.Uint32(in[i:]))
		i += 4
		if hc > uint64(len(in)-i)/8 {
			return "", nil, errMalformedBatch
		}
		for h := range int(hc) {
			var name, v []byte
			if name, i, ok = strAt(in, i); !ok {
				return "", nil, errMalformedBatch
			}
			if v, i, ok = nbytesAt(in, i); !ok {
				return "", nil, errMalformedBatch
			}
			var s string
			switch {
			case h < len(d.lastHdrs) && string(name) == d.lastHdrs[h]:
				s = d.lastHdrs[h]
			case h < len(d.lastHdrs):
				s = d.intern(name)
				d.lastHdrs[h] = s
			default:
				s = d.intern(name)
			}
			hdrs = append(hdrs, Header{Name: s, Value: v})
		}
		spans[k] = int32(len(hdrs))
		hdrs = append(hdrs, spareHeaders[:]...)
		if string(topic) != d.lastTopic {
			d.lastTopic = d.intern(topic)
		}
		r := &recs[k]
		r.Topic, r.Partition, r.Timestamp, r.Key, r.Value = d.lastTopic, partition, ts, key, value
	}
	if i != len(in) {
		return "", nil, errMalformedBatch
	}
	// Headers are attached once hdrs stopped growing. Each record's window
	// has spare capacity for SetHeader to add a few headers in place, and
	// ends before the next record's.
	start := int32(0)
	for k := range recs {
		end := spans[k]
		recs[k].Headers = hdrs[start : end : end+spareSlots]
		start = end + spareSlots
	}
	d.hdrs = hdrs
	return d.intern(et), recs, nil
}

// appendVerdicts encodes vs as the output buffer.
func appendVerdicts(dst []byte, vs []Verdict) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(vs)))
	for i := range vs {
		v := &vs[i]
		dst = append(dst, byte(v.action))
		switch v.action {
		case ActionReject:
			dst = binary.LittleEndian.AppendUint32(dst, uint32(v.code))
			dst = appendStr(dst, v.reason)
		case ActionReplace:
			if v.single {
				dst = binary.LittleEndian.AppendUint32(dst, 1)
				dst = appendOutput(dst, &v.one)
				continue
			}
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v.outs)))
			for j := range v.outs {
				dst = appendOutput(dst, &v.outs[j])
			}
		}
	}
	return dst
}

func appendOutput(dst []byte, o *Output) []byte {
	dst = append(dst, o.fields)
	if o.fields&fieldTopic != 0 {
		dst = appendStr(dst, o.topic)
	}
	if o.fields&fieldKey != 0 {
		dst = appendNBytes(dst, o.key)
	}
	if o.fields&fieldValue != 0 {
		dst = appendNBytes(dst, o.value)
	}
	if o.fields&fieldHeaders != 0 {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(o.headers)))
		for _, h := range o.headers {
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
		return binary.LittleEndian.AppendUint32(dst, math.MaxUint32) // -1: null
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}
