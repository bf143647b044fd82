// Package batchcodec decodes Kafka v2 record batches into records and
// encodes records back into batches, for the plugin pipeline, which reads
// and rewrites records. Everything else in evproxy forwards batches as
// opaque bytes (package recordbatch reads their header only).
//
// # Format
//
// A batch is the 61-byte header described in package recordbatch, then the
// records section, compressed as a whole when the attributes name a codec
// (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd). Each record is (KIP-98):
//
//	length          varint   bytes after this field
//	attributes      int8     unused, written as 0
//	timestampDelta  varlong  from the batch's base timestamp
//	offsetDelta     varint   from the batch's base offset
//	key             varint length (-1 null) + bytes
//	value           varint length (-1 null) + bytes
//	headers         varint count, then per header:
//	                  key    varint length (never null) + bytes
//	                  value  varint length (-1 null) + bytes
//
// Varints are zigzag encoded; varint fields are 32-bit (at most 5 bytes),
// varlong 64-bit.
//
// # Codecs
//
// Decode reads what Kafka's Java broker reads:
//
//   - gzip: an RFC 1952 stream; concatenated members are read.
//   - snappy: xerial framing (snappy-java's SnappyOutputStream, which the
//     Java producer writes: "\x82SNAPPY\x00", two int32 versions, then
//     chunks of an int32 length and a block), or one raw snappy block
//     (franz-go, librdkafka), told apart by the magic as snappy-java
//     does. Blocks are decoded with s2's decoder, like franz-go: it is
//     twice as fast as a strict snappy decoder, valid snappy decodes
//     identically, and the S2 extensions it also accepts are written by no
//     producer (a broker refuses such a batch if it is forwarded as is).
//   - lz4: LZ4 frames with independent blocks (lz4.go). Dependent blocks
//     and dictionaries fail with ErrUnsupportedCodec, as Kafka's
//     KafkaLZ4BlockInputStream refuses them. Header, block and content
//     checksums are checked when present.
//   - zstd: standard frames (klauspost/compress).
//
// Encode writes what the common producers write: gzip at the default
// level; one raw snappy block, like franz-go and librdkafka (snappy-java's
// SnappyInputStream reads input without the xerial magic as one raw block,
// so Java brokers and consumers accept it, and a block needs no framing
// buffer); an LZ4 frame as Kafka's Java producer writes it (independent 64
// KiB blocks, no checksums: the batch CRC covers the compressed bytes); a
// zstd frame with a 64 KiB window, as franz-go does, to bound the
// encoder's memory.
//
// # Limits
//
// Decode's maxDecompressed bounds the decompressed records section:
// snappy and LZ4 know their decoded sizes before decoding and fail before
// allocating, gzip stops reading one byte past the limit. zstd frames are
// decoded with a limit of at least 8 MiB, because the decoder refuses
// frames whose window exceeds its limit and the Java producer's frames
// declare 2 MiB windows (8 MiB at level 19) however small their content;
// the output is checked against maxDecompressed afterwards. So a zstd
// batch can briefly take max(maxDecompressed, 8 MiB) before failing.
//
// # Memory
//
// A Decoder reuses its record, header and decompression buffers, so
// decoding an uncompressed batch allocates nothing once the buffers have
// grown. Records of an uncompressed batch point into the input; those of
// a compressed batch into the Decoder's buffer. Either way they are valid
// until the next Decode and must be copied to be kept. Slices returned
// have their capacity cut to their length, so appending to one copies it
// rather than overwriting what follows. Header keys are strings: the
// Decoder interns them (up to 256 distinct keys of at most 64 bytes) so
// that steady traffic does not allocate them.
//
// An Encoder reuses its codecs and its uncompressed records buffer; it
// appends to the caller's dst, so encoding without compression into a dst
// with room allocates nothing.
//
// # Validation
//
// Decode expects the bytes of exactly one batch that recordbatch.Parse has
// accepted, and does not check the CRC again. It does check everything it
// reads: the length field against the input, the magic, the codec, every
// record's length against the fields it holds, the record count against
// the records present, and that no bytes follow the last record. The
// header's last offset delta and the records' offset deltas are reported,
// not checked (compacted batches fetched from a broker have gaps). Errors
// wrap ErrCorrupt, ErrTooLarge or ErrUnsupportedCodec, with the record
// index and byte offset: in the batch for uncompressed batches, in the
// decompressed records otherwise.
package batchcodec
