// Package messageset converts the legacy message sets of Produce v0-v2
// (message format magic 0 and 1) into one uncompressed v2 record batch, the
// only format evproxy sends upstream (Produce v3+).
//
// # Why
//
// librdkafka before 2.11.1 (kcat, confluent-kafka-python) compresses with
// gzip, snappy or lz4 only when the broker advertises Produce v0. So evproxy
// advertises Produce v0-v12 and must really accept v0-v2, whose partition
// data is a message set rather than a record batch.
//
// # Legacy message set (KIP-32, pre-KIP-98)
//
// A message set is messages laid end to end, with no count and no header:
//
//	offset       int64   ignored (for magic 1 inner messages: relative, KIP-31)
//	messageSize  int32   bytes after this field
//	crc          uint32  CRC-32 (IEEE) of the bytes after this field
//	magic        int8    0 or 1
//	attributes   int8    bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4);
//	                     bit 3 timestamp type (magic 1: 1 = LogAppendTime)
//	timestamp    int64   magic 1 only, milliseconds
//	key          bytes   int32 length, -1 for null
//	value        bytes   int32 length, -1 for null
//
// A message whose codec is not none is a wrapper: its value is a whole inner
// message set, compressed. Inner messages must be uncompressed and carry the
// wrapper's magic. Codec framing, as Kafka and librdkafka write it:
//
//   - gzip: an RFC 1952 stream.
//   - snappy: either xerial (snappy-java) framing, "\x82SNAPPY\x00", version
//     int32, compatible-version int32, then chunks of int32 length plus one
//     snappy block each; or one plain snappy block.
//   - lz4: an LZ4 frame. With magic 0 the frame header checksum was computed
//     over the wrong bytes (KAFKA-3160: magic number included), and Kafka
//     ignores it, so for magic 0 it is replaced by the correct one before
//     decoding. Magic 1 uses a standard frame, checked in full.
//
// # Output
//
// ToRecordBatch emits one v2 record batch (KIP-98): base offset 0, partition
// leader epoch -1, attributes 0 (uncompressed, CreateTime, not
// transactional), producer id -1, epoch -1, base sequence -1, CRC-32C set. It
// holds one record per uncompressed message, in order, with offset deltas
// 0..n-1, the key and value bytes exactly (null stays null, empty stays
// empty) and no headers. Each record's timestamp is
//
//   - the message's own timestamp for magic 1,
//   - the wrapper's timestamp for the inner messages of a magic 1 wrapper
//     marked LogAppendTime (as Kafka reads them),
//   - the caller's "now" for magic 0, which has no timestamp.
//
// The batch's base timestamp is the first record's and its max timestamp the
// largest. The timestamp type is always CreateTime: the upstream topic's
// configuration decides whether the broker overrides it.
//
// Dropped: offsets, CRCs, wrapper keys and attribute bits other than the
// codec and the wrapper's timestamp type.
//
// # Errors
//
// Every message CRC is checked. A set that ends inside a message is
// rejected ("truncated message set"), although brokers tolerate a truncated
// trailing message from consumers' fetches. Errors wrap ErrCorrupt,
// ErrEmpty or ErrTooLarge with the byte position of the offending message.
package messageset
