package interop

import (
	"os/exec"
	"strconv"
	"testing"
)

// pythonBin is Debian's interpreter, which has python3-confluent-kafka; a
// python3 earlier on PATH (pyenv) may not.
const pythonBin = "/usr/bin/python3"

// TestConfluentPython produces with confluent-kafka-python (librdkafka) and
// its idempotent producer: lz4 with the default partitioner, zstd with
// every record pinned to a partition.
func TestConfluentPython(t *testing.T) {
	t.Parallel()
	err := exec.Command(pythonBin, "-c", "import confluent_kafka").Run()
	requireTool(t, err, "the Debian package python3-confluent-kafka (for "+pythonBin+")")

	for _, tc := range []struct {
		name  string
		codec string
		pin   bool
	}{
		{name: "lz4", codec: "lz4"},
		{name: "zstd-pinned", codec: "zstd", pin: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			st := startStack(t)
			topic := newTopic(ctx, t, st)

			opts := genOpts{NullKeys: true, Headers: richHeaders}
			if tc.pin {
				opts.Partition = func(i int) int32 { return int32(i/7) % numPartitions }
			}
			want := genRecords(numRecords, opts)
			expectPartitions(want, crc32Partition)

			cmd := exec.CommandContext(ctx, pythonBin, "testdata/producer.py",
				"--bootstrap", st.ProxyAddr,
				"--topic", topic,
				"--records", writeRecordsFile(t, want),
				"--codec", tc.codec,
				"--acks", "all",
				"--idempotent",
				"--debug", "msg",
				"--timeout", strconv.Itoa(int(testTimeout.Seconds()/2)),
			)
			stdout, stderr := runProducer(t, cmd)
			checkLibrdkafkaCodecs(t, tc.codec, stderr)
			checkAcked(t, want, parseDeliveries(t, stdout, len(want)))

			got := consumeUpstream(ctx, t, st.UpstreamAddr, topic, len(want))
			assertRecords(t, want, got)
		})
	}
}
