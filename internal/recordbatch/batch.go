// Package recordbatch reads and patches the fixed header of Kafka v2 record
// batches without decoding or decompressing the records they carry.
//
// evproxy forwards batches as opaque bytes. It only needs the header: the
// record count and producer fields for idempotence, and the CRC to refuse a
// corrupt batch before it reaches the upstream. The layout (KIP-98):
//
//	offset  size  field
//	     0     8  baseOffset
//	     8     4  batchLength          (bytes after this field)
//	    12     4  partitionLeaderEpoch
//	    16     1  magic                (must be 2)
//	    17     4  crc                  (CRC-32C of bytes 21..end)
//	    21     2  attributes
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61        records...
package recordbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderLen is the size of a v2 record batch header in bytes.
const HeaderLen = 61

// Field offsets within a batch.
const (
	offLength     = 8
	offMagic      = 16
	offCRC        = 17
	offAttributes = 21
	offLastDelta  = 23
	offProducerID = 43
	offEpoch      = 51
	offSequence   = 53
	offCount      = 57
)

// Attribute bits.
const (
	// AttrCompressionMask selects the compression codec bits.
	AttrCompressionMask = 0x07
	// AttrTransactional marks a batch written inside a transaction.
	AttrTransactional = 0x10
	// AttrControl marks a control batch (transaction markers).
	AttrControl = 0x20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by Parse. They wrap nothing and compare with errors.Is.
var (
	// ErrTruncated means the bytes end before the batch does.
	ErrTruncated = errors.New("record batch truncated")
	// ErrMagic means the batch is not a v2 record batch.
	ErrMagic = errors.New("record batch magic is not 2")
	// ErrCRC means the stored CRC does not match the batch contents.
	ErrCRC = errors.New("record batch CRC mismatch")
	// ErrCorrupt means a header field is impossible (negative length,
	// record count that disagrees with the offset delta).
	ErrCorrupt = errors.New("record batch header corrupt")
)

// Header is the decoded fixed part of a v2 record batch.
type Header struct {
	BaseOffset      int64
	Length          int32 // batchLength: bytes after the length field
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// Size is the total size of the batch in bytes, header included.
func (h *Header) Size() int { return int(h.Length) + 12 }

// Compression returns the codec bits of the attributes (0 none, 1 gzip,
// 2 snappy, 3 lz4, 4 zstd).
func (h *Header) Compression() int8 { return int8(h.Attributes & AttrCompressionMask) }

// Transactional reports whether the batch was written inside a transaction.
func (h *Header) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// Control reports whether the batch is a control batch.
func (h *Header) Control() bool { return h.Attributes&AttrControl != 0 }

// LastSequence is the sequence number of the batch's last record.
func (h *Header) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	return h.BaseSequence + h.NumRecords - 1
}

// Parse decodes the header of the batch at the start of b and checks its
// magic, length and CRC. It returns the header and the batch's size so the
// caller can step to the next batch.
func Parse(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(b), HeaderLen)
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b))
	h.Length = int32(binary.BigEndian.Uint32(b[offLength:]))
	h.Magic = int8(b[offMagic])
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d", ErrMagic, h.Magic)
	}
	if h.Length < HeaderLen-12 {
		return h, fmt.Errorf("%w: batch length %d", ErrCorrupt, h.Length)
	}
	if h.Size() > len(b) {
		return h, fmt.Errorf("%w: batch length %d, %d bytes present", ErrTruncated, h.Length, len(b)-12)
	}
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[27:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[35:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offSequence:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[offCount:]))
	if h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("%w: %d records with last offset delta %d", ErrCorrupt, h.NumRecords, h.LastOffsetDelta)
	}
	if got := crc32.Checksum(b[offAttributes:h.Size()], crcTable); got != h.CRC {
		return h, fmt.Errorf("%w: stored %08x, computed %08x", ErrCRC, h.CRC, got)
	}
	return h, nil
}

// SetProducer rewrites the producer id, epoch and base sequence of the batch
// at the start of b and updates its CRC. b must hold a whole batch that
// Parse accepted (so its stored CRC is right). The CRC is updated from the
// changed bytes alone (crc.go), not recomputed over the batch.
func SetProducer(b []byte, id int64, epoch int16, seq int32) {
	var old, delta [14]byte
	copy(old[:], b[offProducerID:offCount])
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(id))
	binary.BigEndian.PutUint16(b[offEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offSequence:], uint32(seq))
	for i := range delta {
		delta[i] = old[i] ^ b[offProducerID+i]
	}
	size := int(int32(binary.BigEndian.Uint32(b[offLength:]))) + 12
	crc := binary.BigEndian.Uint32(b[offCRC:])
	crc ^= shiftZeros(rawCRC(delta[:]), size-offCount)
	binary.BigEndian.PutUint32(b[offCRC:], crc)
}
