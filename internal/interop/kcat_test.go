package interop

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kcat reads records from stdin split by delimiters we choose; these are
// long enough that no generated key or value contains them.
const (
	kcatRecordDelim = "<<evproxy-interop-record>>"
	kcatKeyDelim    = "<<evproxy-interop-key>>"
)

// kcatHeaderArgs are kcat's -H flags: kcat sets the same headers on every
// message. A name without "=" is a header with a null value.
var kcatHeaderArgs = []string{
	"-H", "ce_type=evproxy.interop.kcat",
	"-H", "dup=first",
	"-H", "dup=second",
	"-H", "eq=a=b",
	"-H", "empty=",
	"-H", "nullval",
}

func kcatHeaders(int) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: "ce_type", Value: []byte("evproxy.interop.kcat")},
		{Key: "dup", Value: []byte("first")},
		{Key: "dup", Value: []byte("second")},
		{Key: "eq", Value: []byte("a=b")},
		{Key: "empty", Value: []byte{}},
		{Key: "nullval", Value: nil},
	}
}

// TestKcat produces with kcat (librdkafka): one subtest per compression
// codec with the idempotent producer, plus acks=1 and acks=0 without it.
func TestKcat(t *testing.T) {
	t.Parallel()
	_, err := exec.LookPath("kcat")
	requireTool(t, err, "the Debian package kcat")

	for _, tc := range []struct {
		name  string
		codec string
		acks  string
		idem  bool
	}{
		{name: "none", codec: "none", acks: "all", idem: true},
		{name: "gzip", codec: "gzip", acks: "all", idem: true},
		{name: "snappy", codec: "snappy", acks: "all", idem: true},
		{name: "lz4", codec: "lz4", acks: "all", idem: true},
		{name: "zstd", codec: "zstd", acks: "all", idem: true},
		{name: "acks=1", codec: "snappy", acks: "1"},
		{name: "acks=0", codec: "none", acks: "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			st := startStack(t)
			topic := newTopic(ctx, t, st)

			want := genRecords(numRecords, genOpts{NullKeys: true, Headers: kcatHeaders})
			expectPartitions(want, crc32Partition)

			var in bytes.Buffer
			for i, r := range want {
				if bytes.Contains(r.Key, []byte(kcatRecordDelim)) || bytes.Contains(r.Key, []byte(kcatKeyDelim)) ||
					bytes.Contains(r.Value, []byte(kcatRecordDelim)) || bytes.Contains(r.Value, []byte(kcatKeyDelim)) {
					t.Fatalf("record %d contains a kcat delimiter", i)
				}
				if r.Key != nil {
					in.Write(r.Key)
					in.WriteString(kcatKeyDelim)
				}
				in.Write(r.Value)
				in.WriteString(kcatRecordDelim)
			}

			args := []string{
				// -d msg logs each batch and its codec for checkLibrdkafkaCodecs.
				"-P", "-d", "msg", "-b", st.ProxyAddr, "-t", topic,
				"-K", kcatKeyDelim, "-D", kcatRecordDelim,
				"-z", tc.codec,
				"-X", "acks=" + tc.acks,
				"-X", "linger.ms=5",
				"-X", "message.timeout.ms=20000",
			}
			if tc.idem {
				args = append(args, "-X", "enable.idempotence=true")
			}
			args = append(args, kcatHeaderArgs...)
			cmd := exec.CommandContext(ctx, "kcat", args...)
			cmd.Stdin = &in
			_, stderr := runProducer(t, cmd)
			checkLibrdkafkaCodecs(t, tc.codec, stderr)

			got := consumeUpstream(ctx, t, st.UpstreamAddr, topic, len(want))
			assertRecords(t, want, got)
		})
	}
}
