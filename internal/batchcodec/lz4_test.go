package batchcodec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// lz4Writer compresses b with pierrec/lz4's frame writer, as franz-go and
// the reference tools write frames, with the given options.
func lz4Writer(t testing.TB, b []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var out bytes.Buffer
	w := lz4.NewWriter(&out)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestLZ4Frames(t *testing.T) {
	t.Parallel()
	// 1 MB: several blocks at the smaller sizes, and noise that the writer
	// stores uncompressed.
	raw := append(text(1, 700_000), noise(300_000)...)
	cases := []struct {
		name string
		opts []lz4.Option
	}{
		{"defaults (4 MiB blocks, content checksum)", nil},
		{"64 KiB blocks", []lz4.Option{lz4.BlockSizeOption(lz4.Block64Kb)}},
		{"256 KiB blocks, block checksums", []lz4.Option{lz4.BlockSizeOption(lz4.Block256Kb), lz4.BlockChecksumOption(true)}},
		{"1 MiB blocks, content size, no content checksum", []lz4.Option{lz4.BlockSizeOption(lz4.Block1Mb), lz4.SizeOption(uint64(len(raw))), lz4.ChecksumOption(false)}},
		{"concurrent", []lz4.Option{lz4.ConcurrencyOption(4), lz4.BlockSizeOption(lz4.Block64Kb)}},
		{"high compression", []lz4.Option{lz4.CompressionLevelOption(lz4.Level9)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			frame := lz4Writer(t, raw, c.opts...)
			got, err := unlz4(nil, frame, len(raw))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Fatal("decoded bytes differ")
			}
			if _, err := unlz4(nil, frame, len(raw)-1); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("one byte under: %v, want ErrTooLarge", err)
			}
		})
	}

	t.Run("ours read by pierrec", func(t *testing.T) {
		t.Parallel()
		var c lz4Compressor
		frame := c.appendFrame([]byte("x"), raw)[1:]
		var out bytes.Buffer
		if _, err := out.ReadFrom(lz4.NewReader(bytes.NewReader(frame))); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), raw) {
			t.Fatal("pierrec decodes our frame to different bytes")
		}
		got, err := unlz4(nil, frame, len(raw))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("our frame does not round trip: %v", err)
		}
		if frame[4] != 0x60 || frame[5] != 0x40 {
			t.Fatalf("FLG %#x BD %#x, want Kafka's 0x60 0x40", frame[4], frame[5])
		}
	})

	t.Run("concatenated and skippable frames", func(t *testing.T) {
		t.Parallel()
		a, b := lz4Writer(t, []byte("first frame ")), lz4Writer(t, []byte("second frame"))
		skip := binary.LittleEndian.AppendUint32(nil, 0x184D2A5F)
		skip = binary.LittleEndian.AppendUint32(skip, 3)
		skip = append(skip, 1, 2, 3)
		all := bytes.Join([][]byte{a, skip, b}, nil)
		got, err := unlz4(nil, all, 100)
		if err != nil || string(got) != "first frame second frame" {
			t.Fatalf("got %q, %v", got, err)
		}
	})

	t.Run("empty frame", func(t *testing.T) {
		t.Parallel()
		var c lz4Compressor
		got, err := unlz4(nil, c.appendFrame(nil, nil), 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %q, %v", got, err)
		}
	})

	good := lz4Writer(t, text(2, 5000), lz4.BlockChecksumOption(true))
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	rehash := func(b []byte) []byte { b[6] = byte(xxh32(b[4:6]) >> 8); return b }
	for _, c := range []struct {
		name  string
		frame []byte
		want  error
		msg   string
	}{
		{"empty input", nil, ErrCorrupt, "magic truncated"},
		{"bad magic", mutate(func(b []byte) []byte { b[0] ^= 1; return b }), ErrCorrupt, "magic"},
		{"header checksum", mutate(func(b []byte) []byte { b[6] ^= 1; return b }), ErrCorrupt, "header checksum"},
		{"version", mutate(func(b []byte) []byte { b[4] = b[4]&^0xC0 | 0x80; return rehash(b) }), ErrCorrupt, "version"},
		{"reserved FLG bit", mutate(func(b []byte) []byte { b[4] |= 0x02; return rehash(b) }), ErrCorrupt, "reserved"},
		{"reserved BD bit", mutate(func(b []byte) []byte { b[5] |= 0x01; return rehash(b) }), ErrCorrupt, "reserved"},
		{"block size id", mutate(func(b []byte) []byte { b[5] = 3 << 4; return rehash(b) }), ErrCorrupt, "block size id"},
		{"dependent blocks", mutate(func(b []byte) []byte { b[4] &^= lz4FlagIndependent; return rehash(b) }), ErrUnsupportedCodec, "dependent"},
		{"dictionary", mutate(func(b []byte) []byte { b[4] |= lz4FlagDictID; return rehash(b) }), ErrUnsupportedCodec, "dictionary"},
		{"block checksum", mutate(func(b []byte) []byte { b[len(b)-9] ^= 1; return b }), ErrCorrupt, "block checksum"},
		{"content checksum", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCorrupt, "content checksum"},
		{"missing end mark", good[:len(good)-8], ErrCorrupt, "truncated"},
		{"block past the end", good[:20], ErrCorrupt, "block size"},
		{"trailing garbage", append(bytes.Clone(good), 1, 2, 3), ErrCorrupt, "magic truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := unlz4(nil, c.frame, 1<<20)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
}

func TestLZ4DecodedLen(t *testing.T) {
	t.Parallel()
	var c lz4.Compressor
	for _, src := range [][]byte{text(3, 100), text(4, 65536), bytes.Repeat([]byte("a"), 10000), noise(5000)} {
		dst := make([]byte, lz4.CompressBlockBound(len(src)))
		n, err := c.CompressBlock(src, dst)
		if err != nil || n == 0 {
			continue // incompressible: stored raw in frames
		}
		if got := lz4DecodedLen(dst[:n]); got != len(src) {
			t.Fatalf("decoded length %d, want %d", got, len(src))
		}
		if got := lz4DecodedLen(dst[:n-1]); got == len(src) {
			t.Fatalf("truncated block still measures %d", got)
		}
	}
}

// TestXXH32 checks the frame checksum against published xxHash-32 values.
func TestXXH32(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want uint32
	}{
		{"", 0x02cc5d05},
		{"a", 0x550d7456},
		{"abc", 0x32d153ff},
		{"Nobody inspects the spammish repetition", 0xe2293b2f},
	} {
		if got := xxh32([]byte(c.in)); got != c.want {
			t.Errorf("xxh32(%q) = %#08x, want %#08x", c.in, got, c.want)
		}
	}
}
