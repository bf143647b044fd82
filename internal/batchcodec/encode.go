package batchcodec

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/evproxy/evproxy/internal/recordbatch"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Encoder encodes batches reusing its buffers; not safe for concurrent use.
//
// The zero value is ready to use. An Encoder keeps its codecs' state and
// the largest uncompressed records section it has built, so keep one per
// worker rather than one per batch.
type Encoder struct {
	raw  []byte // records section before compression
	w    sliceWriter
	gz   *gzip.Writer
	lz4  *lz4Compressor
	zstd *zstd.Encoder
}

// Encode appends a complete v2 batch (CRC-32C set, batchLength set,
// baseOffset 0, partitionLeaderEpoch -1) for recs with the given
// attributes' codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd) and
// timestamp type bit, producer fields, offset deltas 0..n-1 (renumbered),
// timestamps as given (BaseTimestamp = min, MaxTimestamp = max).
//
// attrs is written as given, so the transactional and control bits of a
// decoded batch survive re-encoding. Records' OffsetDelta fields are
// ignored. On error dst is returned unchanged in length.
func (e *Encoder) Encode(dst []byte, attrs int16, producerID int64, producerEpoch int16, baseSequence int32, recs []Record) ([]byte, error) {
	codec := attrs & recordbatch.AttrCompressionMask
	if codec > codecZstd {
		return dst, fmt.Errorf("%w: codec %d in attributes %#04x", ErrUnsupportedCodec, codec, uint16(attrs))
	}
	if len(recs) == 0 {
		return dst, errNoRecords
	}
	minTS, maxTS := recs[0].Timestamp, recs[0].Timestamp
	for i := range recs {
		minTS = min(minTS, recs[i].Timestamp)
		maxTS = max(maxTS, recs[i].Timestamp)
	}
	size, err := recordsLen(recs, minTS)
	if err != nil {
		return dst, err
	}

	start := len(dst)
	if codec == codecNone {
		dst = slices.Grow(dst, headerLen+size)
	}
	dst = binary.BigEndian.AppendUint64(dst, 0)                     // baseOffset
	dst = binary.BigEndian.AppendUint32(dst, 0)                     // batchLength, set below
	dst = binary.BigEndian.AppendUint32(dst, math.MaxUint32)        // partitionLeaderEpoch -1
	dst = append(dst, 2)                                            // magic
	dst = binary.BigEndian.AppendUint32(dst, 0)                     // crc, set below
	dst = binary.BigEndian.AppendUint16(dst, uint16(attrs))         // attributes
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)-1))   // lastOffsetDelta
	dst = binary.BigEndian.AppendUint64(dst, uint64(minTS))         // baseTimestamp
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTS))         // maxTimestamp
	dst = binary.BigEndian.AppendUint64(dst, uint64(producerID))    // producerId
	dst = binary.BigEndian.AppendUint16(dst, uint16(producerEpoch)) // producerEpoch
	dst = binary.BigEndian.AppendUint32(dst, uint32(baseSequence))  // baseSequence
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(recs)))     // recordCount
	if codec == codecNone {
		dst = appendRecords(dst, recs, minTS)
	} else {
		e.raw = appendRecords(slices.Grow(e.raw[:0], size), recs, minTS)
		if dst, err = e.compress(dst, codec, e.raw); err != nil {
			return dst[:start], err
		}
	}
	b := dst[start:]
	if len(b)-12 > math.MaxInt32 {
		return dst[:start], fmt.Errorf("%w: the batch would be %d bytes", ErrTooLarge, len(b))
	}
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crcTable))
	return dst, nil
}

// recordsLen is the size of the records section for recs, uncompressed. It
// fails with ErrTooLarge if a length does not fit the wire's int32.
func recordsLen(recs []Record, minTS int64) (int, error) {
	if len(recs) > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %d records", ErrTooLarge, len(recs))
	}
	total := 0
	for i := range recs {
		n, err := recordBodyLen(&recs[i], i, minTS)
		if err != nil {
			return 0, err
		}
		total += varintLen(int64(n)) + n
		if total > math.MaxInt32-headerLen {
			return 0, fmt.Errorf("%w: records past %d take more than %d bytes", ErrTooLarge, i, math.MaxInt32-headerLen)
		}
	}
	return total, nil
}

// recordBodyLen is the size of record i after its length varint.
func recordBodyLen(r *Record, i int, minTS int64) (int, error) {
	if len(r.Key) > math.MaxInt32 || len(r.Value) > math.MaxInt32 || len(r.Headers) > math.MaxInt32 {
		return 0, fmt.Errorf("%w: record %d key, value or header count exceeds int32", ErrTooLarge, i)
	}
	n := 1 + // attributes
		varintLen(r.Timestamp-minTS) +
		varintLen(int64(i)) +
		bytesLen(r.Key) +
		bytesLen(r.Value) +
		varintLen(int64(len(r.Headers)))
	for h := range r.Headers {
		k, v := r.Headers[h].Key, r.Headers[h].Value
		if len(k) > math.MaxInt32 || len(v) > math.MaxInt32 {
			return 0, fmt.Errorf("%w: record %d header %d exceeds int32", ErrTooLarge, i, h)
		}
		n += varintLen(int64(len(k))) + len(k) + bytesLen(v)
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: record %d takes %d bytes", ErrTooLarge, i, n)
	}
	return n, nil
}

// appendRecords appends the records section for recs; recordsLen has
// checked their sizes.
func appendRecords(dst []byte, recs []Record, minTS int64) []byte {
	for i := range recs {
		r := &recs[i]
		n, _ := recordBodyLen(r, i, minTS)
		dst = appendVarint(dst, int64(n))
		dst = append(dst, 0) // attributes
		dst = appendVarint(dst, r.Timestamp-minTS)
		dst = appendVarint(dst, int64(i))
		dst = appendBytes(dst, r.Key)
		dst = appendBytes(dst, r.Value)
		dst = appendVarint(dst, int64(len(r.Headers)))
		for h := range r.Headers {
			k := r.Headers[h].Key
			dst = appendVarint(dst, int64(len(k)))
			dst = append(dst, k...)
			dst = appendBytes(dst, r.Headers[h].Value)
		}
	}
	return dst
}
