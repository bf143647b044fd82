package batchcodec

import (
	"testing"
)

// The benchmarks use 100 records with a 200-byte JSON-ish value, a short
// key and one header, the shape of a typical produce batch.

func BenchmarkDecode(b *testing.B) {
	for _, codec := range codecs {
		b.Run(codecNames[codec], func(b *testing.B) {
			var enc Encoder
			batch, err := enc.Encode(nil, codec, -1, -1, -1, numbered(100, 200))
			if err != nil {
				b.Fatal(err)
			}
			var dec Decoder
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dec.Decode(batch, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, codec := range codecs {
		b.Run(codecNames[codec], func(b *testing.B) {
			recs := numbered(100, 200)
			var enc Encoder
			dst, err := enc.Encode(nil, codec, -1, -1, -1, recs)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(dst)))
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = enc.Encode(dst[:0], codec, -1, -1, -1, recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
