package batchcodec

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/pierrec/lz4/v4"

	"github.com/evproxy/evproxy/internal/recordbatch"
)

// FuzzDecode: Decode never panics; whatever it accepts re-encodes without
// compression into a batch that recordbatch.Parse accepts and that decodes
// to the same records.
func FuzzDecode(f *testing.F) {
	var enc Encoder
	seeds := [][]Record{
		{{Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: nil}, {Key: "e", Value: []byte{}}}, Timestamp: 10}},
		{{}, {Key: []byte{}, Value: []byte{}, Timestamp: -5}},
		numbered(20, 40),
	}
	for _, recs := range seeds {
		for _, codec := range codecs {
			b, err := enc.Encode(nil, codec, 7, 1, 0, recs)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	// Framings Encode does not write: xerial snappy, LZ4 frames with
	// checksums and content size.
	plain, err := enc.Encode(nil, codecNone, -1, -1, -1, numbered(5, 30))
	if err != nil {
		f.Fatal(err)
	}
	raw := plain[headerLen:]
	block := s2.EncodeSnappy(nil, raw)
	xerial := append([]byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"), binary.BigEndian.AppendUint32(nil, uint32(len(block)))...)
	f.Add(rebatch(plain, codecSnappy, append(xerial, block...)))
	f.Add(rebatch(plain, codecLZ4, lz4Writer(f, raw, lz4.BlockChecksumOption(true), lz4.SizeOption(uint64(len(raw))))))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		var dec Decoder
		batch, err := dec.Decode(b, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedCodec) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if n := int32(binary.BigEndian.Uint32(b[offCount:])); int(n) != len(batch.Records) {
			t.Fatalf("%d records, header counts %d", len(batch.Records), n)
		}
		if len(batch.Records) == 0 {
			return // Encode needs a record
		}
		var enc Encoder
		attrs := batch.Attributes &^ recordbatch.AttrCompressionMask
		again, err := enc.Encode(nil, attrs, batch.ProducerID, batch.ProducerEpoch, batch.BaseSequence, batch.Records)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := recordbatch.Parse(again); err != nil {
			t.Fatalf("re-encoded batch refused by recordbatch.Parse: %v", err)
		}
		var dec2 Decoder
		batch2, err := dec2.Decode(again, 0)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if batch2.Attributes != attrs || batch2.ProducerID != batch.ProducerID ||
			batch2.ProducerEpoch != batch.ProducerEpoch || batch2.BaseSequence != batch.BaseSequence {
			t.Fatalf("batch fields changed: %+v, then %+v", batch, batch2)
		}
		if err := diffRecords(batch.Records, batch2.Records, true); err != nil {
			t.Fatal(err)
		}
	})
}
