package interop

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestKafkajs produces with kafkajs (pure JavaScript) and its idempotent
// producer (maxInFlightRequests 1), with gzip (kafkajs' only built-in
// codec) and without compression.
func TestKafkajs(t *testing.T) {
	t.Parallel()
	const install = "Node.js and kafkajs (npm ci in internal/interop/testdata/node)"
	_, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("testdata", "node", "node_modules", "kafkajs", "package.json"))
		if errors.Is(err, os.ErrNotExist) {
			err = errors.New("kafkajs is not installed")
		}
	}
	requireTool(t, err, install)

	for _, codec := range []string{"gzip", "none"} {
		t.Run(codec, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			st := startStack(t)
			topic := newTopic(ctx, t, st)

			want := genRecords(numRecords, genOpts{NullKeys: true, Headers: richHeaders})
			expectPartitions(want, murmur2Partition)

			cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "node", "producer.js"),
				"--bootstrap", st.ProxyAddr,
				"--topic", topic,
				"--records", writeRecordsFile(t, want),
				"--codec", codec,
				"--acks", "-1",
				"--idempotent",
			)
			stdout, _ := runProducer(t, cmd)
			checkAcked(t, want, parseDeliveries(t, stdout, len(want)))

			got := consumeUpstream(ctx, t, st.UpstreamAddr, topic, len(want))
			assertRecords(t, want, got)
		})
	}
}
