// Package xxhash32 is the 32-bit xxHash that LZ4 frames use for their
// header, block and content checksums. It is small and allocation-free;
// pierrec/lz4 keeps its own copy internal, so evproxy keeps this one for the
// codecs that parse LZ4 frames themselves (internal/batchcodec,
// internal/messageset).
package xxhash32

import (
	"encoding/binary"
	"math/bits"
)

// xxHash-32 primes.
const (
	xxPrime1 uint32 = 2654435761
	xxPrime2 uint32 = 2246822519
	xxPrime3 uint32 = 3266489917
	xxPrime4 uint32 = 668265263
	xxPrime5 uint32 = 374761393
)

// xxh32 is xxHash-32 with seed 0, which LZ4 frames use for checksums (the
// same function as in package messageset).
// Sum returns the xxHash32 of b with seed 0.
func Sum(b []byte) uint32 {
	n := len(b)
	var h uint32
	if n >= 16 {
		var v1, v2, v3, v4 uint32
		v1 = xxPrime1
		v1 += xxPrime2 // wraps, as xxHash intends
		v2 = xxPrime2
		v4 -= xxPrime1
		for ; len(b) >= 16; b = b[16:] {
			v1 = xxRound(v1, binary.LittleEndian.Uint32(b))
			v2 = xxRound(v2, binary.LittleEndian.Uint32(b[4:]))
			v3 = xxRound(v3, binary.LittleEndian.Uint32(b[8:]))
			v4 = xxRound(v4, binary.LittleEndian.Uint32(b[12:]))
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) +
			bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = xxPrime5
	}
	h += uint32(n)
	for ; len(b) >= 4; b = b[4:] {
		h += binary.LittleEndian.Uint32(b) * xxPrime3
		h = bits.RotateLeft32(h, 17) * xxPrime4
	}
	for _, c := range b {
		h += uint32(c) * xxPrime5
		h = bits.RotateLeft32(h, 11) * xxPrime1
	}
	h ^= h >> 15
	h *= xxPrime2
	h ^= h >> 13
	h *= xxPrime3
	h ^= h >> 16
	return h
}

func xxRound(acc, in uint32) uint32 {
	acc += in * xxPrime2
	return bits.RotateLeft32(acc, 13) * xxPrime1
}
