package batchcodec

import (
	"errors"

	"github.com/evproxy/evproxy/internal/recordbatch"
)

// Header is a record header. A nil Value is a null value, distinct from an
// empty non-nil one.
type Header struct {
	Key   string
	Value []byte
}

// Record is one decoded record. A nil Key or Value is null, distinct from an
// empty non-nil one.
type Record struct {
	Key, Value []byte
	Headers    []Header
	// Timestamp is absolute, in milliseconds: the batch's base timestamp
	// plus the record's delta. For a LogAppendTime batch (attribute bit 3)
	// the broker's time is the batch's MaxTimestamp.
	Timestamp int64
	// OffsetDelta is the record's offset relative to the batch's base
	// offset, as stored. Encode renumbers records 0..n-1.
	OffsetDelta int32
}

// Batch is a decoded v2 record batch. The base offset, partition leader
// epoch, CRC, last offset delta and record count are not kept: the first
// three are the broker's, and Encode derives the others from the records.
type Batch struct {
	// Attributes are the batch's attribute bits as stored: codec (bits
	// 0-2), timestamp type (bit 3), transactional (bit 4), control (bit 5).
	Attributes                  int16
	BaseTimestamp, MaxTimestamp int64
	ProducerID                  int64
	ProducerEpoch               int16
	BaseSequence                int32
	Records                     []Record
}

// Errors returned by Decode and Encode. They are wrapped with the codec and,
// for corrupt records, the record index and byte offset; compare with
// errors.Is.
var (
	// ErrCorrupt means the batch does not decode: a header field, a
	// compressed stream or a record is malformed, the records disagree
	// with the header's count, or bytes follow the last record.
	ErrCorrupt = errors.New("batchcodec: corrupt record batch")
	// ErrTooLarge means a compressed batch decompresses to more than the
	// caller's limit, or Encode was given records that do not fit in one
	// batch (lengths are int32 on the wire).
	ErrTooLarge = errors.New("batchcodec: record batch too large")
	// ErrUnsupportedCodec means the attributes name a codec other than
	// 0-4, or an LZ4 frame uses a feature Kafka does not (dependent blocks,
	// a dictionary).
	ErrUnsupportedCodec = errors.New("batchcodec: unsupported compression codec")
)

// errNoRecords is returned by Encode for an empty record slice: a v2 batch
// holds at least one record.
var errNoRecords = errors.New("batchcodec: a record batch needs at least one record")

// Field offsets within a batch; see the layout in package recordbatch.
const (
	headerLen        = recordbatch.HeaderLen
	offLength        = 8
	offLeaderEpoch   = 12
	offMagic         = 16
	offCRC           = 17
	offAttributes    = 21
	offLastDelta     = 23
	offBaseTimestamp = 27
	offMaxTimestamp  = 35
	offProducerID    = 43
	offEpoch         = 51
	offSequence      = 53
	offCount         = 57
)

// Codecs, the low three attribute bits.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// codecNames names the codecs in errors.
var codecNames = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

// minRecordLen is the smallest encoded record: a one-byte length, then
// attributes, timestamp delta, offset delta, key length, value length and
// header count, one byte each.
const minRecordLen = 7
