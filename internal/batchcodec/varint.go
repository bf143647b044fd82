package batchcodec

import (
	"encoding/binary"
	"math/bits"
)

// Kafka's record fields are zigzag varints: "varint" for 32-bit values (at
// most 5 bytes, as Java's ByteUtils.readVarint allows) and "varlong" for the
// 64-bit timestamp delta (at most 10 bytes).

// readVarint reads a varint at b[p:] and returns it with the position after
// it, or a negative position if b ends inside it or it is longer than 5
// bytes. As in Java's ByteUtils.readVarint, bits past 32 in the fifth byte
// are dropped. It has no calls, so that it inlines.
func readVarint(b []byte, p int) (int32, int) {
	var x uint32
	for s := uint(0); s < 35; s += 7 {
		if uint(p) >= uint(len(b)) {
			return 0, -1
		}
		c := b[p]
		p++
		x |= uint32(c&0x7f) << s
		if c < 0x80 {
			return int32(x>>1) ^ -int32(x&1), p
		}
	}
	return 0, -1
}

// readVarlong reads a varlong at b[p:] like readVarint.
func readVarlong(b []byte, p int) (int64, int) {
	if uint(p) >= uint(len(b)) {
		return 0, -1
	}
	if c := b[p]; c < 0x80 {
		return int64(c>>1) ^ -int64(c&1), p + 1
	}
	ux, n := binary.Uvarint(b[p:])
	if n <= 0 {
		return 0, -1
	}
	return int64(ux>>1) ^ -int64(ux&1), p + n
}

// readBytes reads a varint length (-1 for null) and that many bytes at
// b[p:]. The result's capacity is its length, so appending to it cannot
// overwrite the bytes after it. ok is false if the length is out of range.
func readBytes(b []byte, p int) (v []byte, next int, ok bool) {
	n, q := readVarint(b, p)
	if q < 0 || n < -1 || int(n) > len(b)-q {
		return nil, p, false
	}
	if n < 0 {
		return nil, q, true
	}
	e := q + int(n)
	return b[q:e:e], e, true
}

// appendVarint appends v zigzag encoded; for values in int32 range it
// writes the same bytes as a 32-bit varint.
func appendVarint(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// varintLen is the encoded size of v.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return (bits.Len64(u|1) + 6) / 7
}

// bytesLen is the encoded size of a nullable byte field of length n.
func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

// appendBytes appends a nullable byte field.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 1) // zigzag(-1)
	}
	dst = appendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
