package recordbatch

import "hash/crc32"

// Updating a CRC after rewriting a few bytes, without reading the rest.
//
// CRCs are linear: for two messages of equal length, crc(a) ^ crc(b) equals
// the "raw" CRC (zero initial value, no final xor) of a ^ b. When only the
// producer fields change, a ^ b is zero except those 14 bytes, so the new
// CRC is the old one xor the raw CRC of the 14 changed bytes, advanced over
// the zero bytes that follow them. Advancing over n zero bytes multiplies
// by x^(8n) modulo the polynomial, which takes O(log n) small
// multiplications (the method of zlib's crc32_combine).

// castagnoliReflected is the CRC-32C polynomial, bit-reflected.
const castagnoliReflected = 0x82f63b78

// multModP multiplies a and b modulo the polynomial (reflected bits).
func multModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
}

// x2nTable[k] is x^(2^k) modulo the polynomial.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = multModP(p, p)
	}
	return t
}()

// shiftZeros returns the raw CRC state c advanced over n zero bytes.
func shiftZeros(c uint32, n int) uint32 {
	p := uint32(1) << 31 // x^0
	k := 3               // bytes: x^(8n) = x^(n * 2^3)
	for n > 0 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		n >>= 1
		k++
	}
	return multModP(p, c)
}

// rawCRC is the CRC-32C of b with zero initial value and no final xor.
func rawCRC(b []byte) uint32 { return ^crc32.Update(0xffffffff, crcTable, b) }
