package batchcodec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/evproxy/evproxy/internal/recordbatch"
)

// Header keys are strings, so each decoded key would be an allocation. The
// Decoder interns them instead: a lookup with a converted []byte key does
// not allocate, and producers use few distinct header keys. The table is
// cleared when full, so a producer cycling through many keys costs an
// allocation per key and no more memory.
const (
	maxInternedKeys   = 256
	maxInternedKeyLen = 64
)

// Decoder decodes batches reusing its buffers; not safe for concurrent use.
// Records returned alias the decoder's buffers (or the input for
// uncompressed batches) and are valid until the next Decode.
//
// The zero value is ready to use. A Decoder keeps the largest buffers it
// has needed, so keep one per worker rather than one per batch.
type Decoder struct {
	batch Batch
	recs  []Record
	hdrs  []Header // every record's headers, laid end to end
	buf   []byte   // decompressed records section
	keys  map[string]string
	// recent[h] is the key of header h of the last record that had one:
	// records in a batch tend to repeat their header keys in order, and
	// comparing with it is cheaper than a map lookup.
	recent [8]string

	src     bytes.Reader // gzip's input
	gz      *gzip.Reader
	zstd    *zstd.Decoder
	zstdMax uint64 // the zstd decoder's WithDecoderMaxMemory
}

// Decode decodes a v2 record batch: exactly the bytes of one batch, as
// recordbatch.Parse accepted them (its Size). It checks the structure
// (length, magic, codec, records) but not the CRC, which Parse has
// checked. maxDecompressed bounds the decompressed records section of a
// compressed batch; past it Decode fails with ErrTooLarge. Uncompressed
// batches are not bounded: their records are already in memory.
//
// The returned Batch and everything it points to is owned by the Decoder
// and valid until the next call; see the package documentation.
func (d *Decoder) Decode(batch []byte, maxDecompressed int) (*Batch, error) {
	if len(batch) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, the batch header needs %d", ErrCorrupt, len(batch), headerLen)
	}
	if length := int64(int32(binary.BigEndian.Uint32(batch[offLength:]))); length+12 != int64(len(batch)) {
		return nil, fmt.Errorf("%w: batch length field %d at byte %d, but %d bytes follow it", ErrCorrupt, length, offLength, len(batch)-12)
	}
	if magic := int8(batch[offMagic]); magic != 2 {
		return nil, fmt.Errorf("%w: magic %d at byte %d, want 2", ErrCorrupt, magic, offMagic)
	}
	count := int32(binary.BigEndian.Uint32(batch[offCount:]))
	if count < 0 {
		return nil, fmt.Errorf("%w: record count %d at byte %d", ErrCorrupt, count, offCount)
	}
	b := &d.batch
	*b = Batch{
		Attributes:    int16(binary.BigEndian.Uint16(batch[offAttributes:])),
		BaseTimestamp: int64(binary.BigEndian.Uint64(batch[offBaseTimestamp:])),
		MaxTimestamp:  int64(binary.BigEndian.Uint64(batch[offMaxTimestamp:])),
		ProducerID:    int64(binary.BigEndian.Uint64(batch[offProducerID:])),
		ProducerEpoch: int16(binary.BigEndian.Uint16(batch[offEpoch:])),
		BaseSequence:  int32(binary.BigEndian.Uint32(batch[offSequence:])),
	}
	data := batch[headerLen:]
	codec := b.Attributes & recordbatch.AttrCompressionMask
	switch codec {
	case codecNone:
	case codecGzip, codecSnappy, codecLZ4, codecZstd:
		var err error
		if data, err = d.decompress(codec, data, maxDecompressed); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: codec %d in attributes %#04x", ErrUnsupportedCodec, codec, uint16(b.Attributes))
	}
	if err := d.readRecords(data, int(count), b.BaseTimestamp, codec != codecNone); err != nil {
		return nil, err
	}
	b.Records = d.recs[:count:count]
	return b, nil
}

// readRecords decodes count records filling data exactly into d.recs and
// d.hdrs. compressed says whether data is decompressed (for error offsets).
func (d *Decoder) readRecords(data []byte, count int, baseTS int64, compressed bool) error {
	if count > len(data)/minRecordLen {
		return fmt.Errorf("%w: the header counts %d records, but %d bytes of records hold at most %d",
			ErrCorrupt, count, len(data), len(data)/minRecordLen)
	}
	recs := slices.Grow(d.recs[:0], count)[:count]
	hdrs := d.hdrs[:0]
	hdrsCap := cap(hdrs)
	p := 0
	for i := range recs {
		n, q := readVarint(data, p)
		if q < 0 {
			return recordError(compressed, i, p, "malformed length varint")
		}
		if n < 0 || int(n) > len(data)-q {
			return recordError(compressed, i, p, "length %d, but %d bytes are left", n, len(data)-q)
		}
		end := q + int(n)
		rec := data[:end] // no field may run past the record
		p = q + 1         // attributes: unused since magic 2, ignored as Kafka does
		tsDelta, q := readVarlong(rec, p)
		if q < 0 {
			return recordError(compressed, i, p, "malformed timestamp delta")
		}
		p = q
		offDelta, q := readVarint(rec, p)
		if q < 0 {
			return recordError(compressed, i, p, "malformed offset delta")
		}
		p = q
		key, q, ok := readBytes(rec, p)
		if !ok {
			return recordError(compressed, i, p, "key length malformed or past the record's end")
		}
		p = q
		value, q, ok := readBytes(rec, p)
		if !ok {
			return recordError(compressed, i, p, "value length malformed or past the record's end")
		}
		p = q
		nh, q := readVarint(rec, p)
		// Each header takes at least two bytes (two lengths), which
		// bounds how far hdrs can grow on hostile input.
		if q < 0 || nh < 0 || int(nh) > (end-q)/2 {
			return recordError(compressed, i, p, "header count malformed or too large for the record")
		}
		p = q
		first := len(hdrs)
		for h := range int(nh) {
			kn, q := readVarint(rec, p)
			if q < 0 || kn < 0 || int(kn) > end-q {
				return recordError(compressed, i, p, "header %d key length malformed, null or past the record's end", h)
			}
			k := rec[q : q+int(kn)]
			p = q + int(kn)
			v, q, ok := readBytes(rec, p)
			if !ok {
				return recordError(compressed, i, p, "header %d value length malformed or past the record's end", h)
			}
			p = q
			hdrs = append(hdrs, Header{Key: d.headerKey(h, k), Value: v})
		}
		if p != end {
			return recordError(compressed, i, p, "fields end %d bytes before the record's length says", end-p)
		}
		r := &recs[i]
		r.Key, r.Value = key, value
		r.Headers = nil
		if nh > 0 {
			r.Headers = hdrs[first:len(hdrs):len(hdrs)]
		}
		r.Timestamp = baseTS + tsDelta
		r.OffsetDelta = offDelta
	}
	if p != len(data) {
		return recordError(compressed, len(recs), p, "%d bytes follow the last record", len(data)-p)
	}
	if cap(hdrs) != hdrsCap {
		// hdrs moved while growing: point every record at the final
		// array, so that the next Decode reuses one array only.
		at := 0
		for i := range recs {
			if n := len(recs[i].Headers); n > 0 {
				recs[i].Headers = hdrs[at : at+n : at+n]
				at += n
			}
		}
	}
	// Drop what the previous batch left past this one's end, so that the
	// Decoder does not keep earlier inputs from being collected.
	if len(d.recs) > len(recs) {
		clear(d.recs[len(recs):])
	}
	if len(d.hdrs) > len(hdrs) {
		clear(d.hdrs[len(hdrs):])
	}
	d.recs, d.hdrs = recs, hdrs
	return nil
}

// recordError wraps ErrCorrupt with the record index and byte offset: in
// the batch for an uncompressed batch, in the decompressed records section
// otherwise.
func recordError(compressed bool, rec, pos int, format string, args ...any) error {
	where := fmt.Sprintf("batch byte %d", headerLen+pos)
	if compressed {
		where = fmt.Sprintf("decompressed byte %d", pos)
	}
	return fmt.Errorf("%w: record %d at %s: %s", ErrCorrupt, rec, where, fmt.Sprintf(format, args...))
}

// headerKey returns the key k of header h of a record as a string.
func (d *Decoder) headerKey(h int, k []byte) string {
	if h < len(d.recent) {
		if string(k) == d.recent[h] {
			return d.recent[h]
		}
		s := d.intern(k)
		d.recent[h] = s
		return s
	}
	return d.intern(k)
}

// intern returns b as a string, shared with earlier equal keys.
func (d *Decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternedKeyLen {
		return string(b)
	}
	if s, ok := d.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	switch {
	case d.keys == nil:
		d.keys = make(map[string]string)
	case len(d.keys) >= maxInternedKeys:
		clear(d.keys)
	}
	d.keys[s] = s
	return s
}
