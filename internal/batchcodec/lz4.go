package batchcodec

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/pierrec/lz4/v4"

	"github.com/evproxy/evproxy/internal/xxhash32"
)

// LZ4 frames (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md)
// are read and written here around pierrec/lz4's block functions, rather
// than through its Reader and Writer: blocks decode straight into the
// records buffer, which is sized before decoding, and the frames written
// are the ones Kafka's Java producer writes.
//
//	magic      4  0x184D2204, little endian
//	FLG        1  version 01, block independence, block checksum,
//	              content size, content checksum, reserved, dictionary id
//	BD         1  block maximum size in bits 4-6 (4: 64 KiB ... 7: 4 MiB)
//	size       8  if FLG says so: the decompressed size
//	HC         1  second byte of the xxHash-32 of FLG..size
//	blocks        int32 size (high bit: stored uncompressed), data, and an
//	              xxHash-32 of the data if FLG says so; a zero size ends them
//	checksum   4  if FLG says so: xxHash-32 of the decompressed content
//
// Kafka's KafkaLZ4BlockInputStream refuses dependent blocks and the
// reserved bits (where the dictionary id now is), so a broker would refuse
// such a batch; Decode fails on them with ErrUnsupportedCodec. It accepts
// concatenated and skippable frames, as the reference decoder does.

const (
	lz4Magic             = 0x184D2204
	lz4SkippableMask     = 0xFFFFFFF0
	lz4SkippableMagic    = 0x184D2A50
	lz4VersionMask       = 0xC0
	lz4Version           = 0x40
	lz4FlagIndependent   = 0x20
	lz4FlagBlockChecksum = 0x10
	lz4FlagContentSize   = 0x08
	lz4FlagContentSum    = 0x04
	lz4FlagReserved      = 0x02
	lz4FlagDictID        = 0x01
	lz4BDReserved        = 0x8F
	lz4Uncompressed      = 1 << 31
)

// unlz4 appends the decoding of the LZ4 frames in src to out, failing past
// limit bytes in all.
func unlz4(out, src []byte, limit int) ([]byte, error) {
	at := 0
	for first := true; first || at < len(src); first = false {
		var (
			n   int
			err error
		)
		if out, n, err = lz4Frame(out, src[at:], limit, at); err != nil {
			return nil, err
		}
		at += n
	}
	return out, nil
}

// lz4Frame appends the decoding of the frame at the start of src to out
// and returns how many bytes of src the frame took. at is the position of
// src in the compressed records section, for errors.
func lz4Frame(out, src []byte, limit, at int) ([]byte, int, error) {
	if len(src) < 4 {
		return nil, 0, fmt.Errorf("%w: lz4: frame magic truncated at byte %d", ErrCorrupt, at)
	}
	magic := binary.LittleEndian.Uint32(src)
	if magic&lz4SkippableMask == lz4SkippableMagic {
		if len(src) < 8 || uint64(binary.LittleEndian.Uint32(src[4:])) > uint64(len(src)-8) {
			return nil, 0, fmt.Errorf("%w: lz4: skippable frame at byte %d truncated", ErrCorrupt, at)
		}
		return out, 8 + int(binary.LittleEndian.Uint32(src[4:])), nil
	}
	if magic != lz4Magic {
		return nil, 0, fmt.Errorf("%w: lz4: frame magic %#08x at byte %d", ErrCorrupt, magic, at)
	}
	if len(src) < 7 {
		return nil, 0, fmt.Errorf("%w: lz4: frame header at byte %d truncated", ErrCorrupt, at)
	}
	flg, bd := src[4], src[5]
	switch {
	case flg&lz4VersionMask != lz4Version:
		return nil, 0, fmt.Errorf("%w: lz4: frame version %d at byte %d", ErrCorrupt, flg>>6, at+4)
	case flg&lz4FlagReserved != 0 || bd&lz4BDReserved != 0:
		return nil, 0, fmt.Errorf("%w: lz4: frame reserved bits set at byte %d", ErrCorrupt, at+4)
	case flg&lz4FlagDictID != 0:
		return nil, 0, fmt.Errorf("%w: lz4: frame at byte %d needs a dictionary", ErrUnsupportedCodec, at)
	case flg&lz4FlagIndependent == 0:
		return nil, 0, fmt.Errorf("%w: lz4: frame at byte %d has dependent blocks, which Kafka refuses", ErrUnsupportedCodec, at)
	}
	bsi := bd >> 4 & 7
	if bsi < 4 {
		return nil, 0, fmt.Errorf("%w: lz4: block size id %d at byte %d", ErrCorrupt, bsi, at+5)
	}
	blockMax := 1 << (8 + 2*bsi) // 64 KiB, 256 KiB, 1 MiB, 4 MiB
	hl := 6
	if flg&lz4FlagContentSize != 0 {
		hl += 8
	}
	if len(src) < hl+1 {
		return nil, 0, fmt.Errorf("%w: lz4: frame header at byte %d truncated", ErrCorrupt, at)
	}
	if want := byte(xxh32(src[4:hl]) >> 8); src[hl] != want {
		return nil, 0, fmt.Errorf("%w: lz4: header checksum %#02x at byte %d, want %#02x", ErrCorrupt, src[hl], at+hl, want)
	}
	start, contentSize := len(out), -1
	if flg&lz4FlagContentSize != 0 {
		cs := binary.LittleEndian.Uint64(src[6:])
		if cs > uint64(limit-len(out)) {
			return nil, 0, errLimit("lz4", limit)
		}
		contentSize = int(cs)
		out = slices.Grow(out, contentSize)
	}
	sumLen := 0
	if flg&lz4FlagBlockChecksum != 0 {
		sumLen = 4
	}
	p := hl + 1
	for {
		if len(src)-p < 4 {
			return nil, 0, fmt.Errorf("%w: lz4: block size at byte %d truncated", ErrCorrupt, at+p)
		}
		bs := binary.LittleEndian.Uint32(src[p:])
		if bs == 0 {
			p += 4
			break
		}
		size := int(bs &^ lz4Uncompressed)
		if size > blockMax || size > len(src)-p-4-sumLen {
			return nil, 0, fmt.Errorf("%w: lz4: block size %d at byte %d, maximum %d, %d bytes left", ErrCorrupt, size, at+p, blockMax, len(src)-p-4)
		}
		block := src[p+4 : p+4+size]
		if sumLen > 0 {
			if got, want := xxh32(block), binary.LittleEndian.Uint32(src[p+4+size:]); got != want {
				return nil, 0, fmt.Errorf("%w: lz4: block checksum at byte %d", ErrCorrupt, at+p+4+size)
			}
		}
		if bs&lz4Uncompressed != 0 {
			if size > limit-len(out) {
				return nil, 0, errLimit("lz4", limit)
			}
			out = append(out, block...)
		} else {
			n := lz4DecodedLen(block)
			if n < 0 || n > blockMax {
				return nil, 0, fmt.Errorf("%w: lz4: block at byte %d malformed", ErrCorrupt, at+p)
			}
			if n > limit-len(out) {
				return nil, 0, errLimit("lz4", limit)
			}
			out = slices.Grow(out, n)
			o := len(out)
			if got, err := lz4.UncompressBlock(block, out[o:o+n]); err != nil || got != n {
				return nil, 0, fmt.Errorf("%w: lz4: block at byte %d does not decode", ErrCorrupt, at+p)
			}
			out = out[:o+n]
		}
		p += 4 + size + sumLen
	}
	if flg&lz4FlagContentSum != 0 {
		if len(src)-p < 4 {
			return nil, 0, fmt.Errorf("%w: lz4: content checksum at byte %d truncated", ErrCorrupt, at+p)
		}
		if xxh32(out[start:]) != binary.LittleEndian.Uint32(src[p:]) {
			return nil, 0, fmt.Errorf("%w: lz4: content checksum at byte %d", ErrCorrupt, at+p)
		}
		p += 4
	}
	if contentSize >= 0 && len(out)-start != contentSize {
		return nil, 0, fmt.Errorf("%w: lz4: frame at byte %d decoded to %d bytes, its header says %d", ErrCorrupt, at, len(out)-start, contentSize)
	}
	return out, p, nil
}

// lz4DecodedLen walks the sequences of an LZ4 block and returns the size it
// decodes to, or -1 if it is malformed. It reads the tokens and lengths
// only, so that the output can be sized and bounded before decoding. As in
// the reference decoder, a block ends with literals.
func lz4DecodedLen(src []byte) int {
	n, i := 0, 0
	for i < len(src) {
		tok := src[i]
		i++
		lit := int(tok >> 4)
		if lit == 15 {
			for {
				if i >= len(src) {
					return -1
				}
				c := src[i]
				i++
				lit += int(c)
				if c != 255 {
					break
				}
			}
		}
		if lit > len(src)-i {
			return -1
		}
		i += lit
		n += lit
		if i == len(src) {
			return n
		}
		if len(src)-i < 2 {
			return -1
		}
		i += 2 // offset
		match := int(tok & 15)
		if match == 15 {
			for {
				if i >= len(src) {
					return -1
				}
				c := src[i]
				i++
				match += int(c)
				if c != 255 {
					break
				}
			}
		}
		n += match + 4
	}
	return -1
}

// lz4BlockSize is the block size Encode writes, Kafka's default (its
// KafkaLZ4BlockOutputStream uses 64 KiB blocks).
const lz4BlockSize = 64 << 10

// lz4FrameHeader is the header Encode writes, as the Java producer does:
// version 1, independent blocks, no checksums or content size, 64 KiB
// blocks. The batch CRC already covers the compressed bytes.
var lz4FrameHeader = func() [7]byte {
	h := [7]byte{0x04, 0x22, 0x4D, 0x18, lz4Version | lz4FlagIndependent, 4 << 4}
	h[6] = byte(xxh32(h[4:6]) >> 8)
	return h
}()

// lz4Compressor writes LZ4 frames; its hash table is reused between calls.
type lz4Compressor struct{ c lz4.Compressor }

// appendFrame appends raw as one LZ4 frame to dst. A block that does not
// shrink is stored uncompressed.
func (c *lz4Compressor) appendFrame(dst, raw []byte) []byte {
	dst = append(dst, lz4FrameHeader[:]...)
	for len(raw) > 0 {
		chunk := raw[:min(len(raw), lz4BlockSize)]
		raw = raw[len(chunk):]
		bound := lz4.CompressBlockBound(len(chunk))
		dst = slices.Grow(dst, 4+bound)
		at := len(dst)
		n, err := c.c.CompressBlock(chunk, dst[at+4:at+4+bound])
		if err != nil || n <= 0 || n >= len(chunk) {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(chunk))|lz4Uncompressed)
			dst = append(dst, chunk...)
			continue
		}
		dst = dst[:at+4+n]
		binary.LittleEndian.PutUint32(dst[at:], uint32(n))
	}
	return append(dst, 0, 0, 0, 0) // end mark
}

// xxh32 is the LZ4 frame checksum.
func xxh32(b []byte) uint32 { return xxhash32.Sum(b) }
