package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// numPartitions is how many partitions every test topic has upstream.
	numPartitions = 3
	// numRecords is how many records each test produces.
	numRecords = 500
	// numKeys is how many distinct non-null keys the records use.
	numKeys = 20

	// testTimeout bounds one test (or subtest) end to end.
	testTimeout = 60 * time.Second
	// consumeTimeout bounds reading the records back from upstream.
	consumeTimeout = 30 * time.Second
)

// testRecord is one record a test produces and expects to find upstream.
type testRecord struct {
	Key     []byte // nil is a null key
	Value   []byte // never empty; starts with a unique "value-NNNNN|" prefix
	Headers []kgo.RecordHeader
	// Partition is where the record must land: -1 when the client's
	// partitioner chooses, otherwise an explicit partition (pinned by the
	// producer, or computed from the client's partitioner).
	Partition int32
}

// genOpts selects what genRecords puts into the records.
type genOpts struct {
	// NullKeys makes every 25th record keyless.
	NullKeys bool
	// Headers sets each record's headers; nil means no headers.
	Headers func(i int) []kgo.RecordHeader
	// Partition pins each record to a partition; nil leaves it to the
	// client's partitioner.
	Partition func(i int) int32
}

// genRecords returns n deterministic records: numKeys keys with binary
// bytes in them, binary values (every byte value, NULs, newlines, invalid
// UTF-8) of varied size including a few larger compressible ones.
func genRecords(n int, o genOpts) []testRecord {
	recs := make([]testRecord, n)
	for i := range recs {
		r := testRecord{Value: genValue(i), Partition: -1}
		if !o.NullKeys || i%25 != 24 {
			r.Key = genKey(i % numKeys)
		}
		if o.Headers != nil {
			r.Headers = o.Headers(i)
		}
		if o.Partition != nil {
			r.Partition = o.Partition(i)
		}
		recs[i] = r
	}
	return recs
}

func genKey(k int) []byte {
	return append(fmt.Appendf(nil, "key-%02d", k), 0x00, 0xfe, byte(k), '\n')
}

func genValue(i int) []byte {
	v := fmt.Appendf(nil, "value-%05d|", i)
	switch {
	case i == 0:
		for c := range 256 {
			v = append(v, byte(c))
		}
	case i%97 == 1:
		// Large and compressible, so codecs have something to do.
		v = append(v, bytes.Repeat([]byte("evproxy\x00\xff\r\n"), 1600)...)
	default:
		// Random binary bytes, repeated so codecs can compress them: some
		// clients (librdkafka) send a batch uncompressed when compressing
		// does not make it smaller.
		rng := rand.New(rand.NewPCG(uint64(i), 0x65767072))
		var block [16]byte
		for j := range block {
			block[j] = byte(rng.Uint32())
		}
		for j := range (i * 37) % 300 {
			v = append(v, block[j%len(block)])
		}
	}
	return v
}

// richHeaders is a header set for clients that set headers per record:
// binary values, a repeated name whose order matters, and some records
// with none.
func richHeaders(i int) []kgo.RecordHeader {
	if i%5 == 4 {
		return nil
	}
	return []kgo.RecordHeader{
		{Key: "ce_type", Value: []byte("evproxy.interop.v1")},
		{Key: "seq", Value: strconv.AppendInt(nil, int64(i), 10)},
		{Key: "bin", Value: []byte{0x00, 0x01, 0xff, '\n', '=', byte(i)}},
		{Key: "dup", Value: []byte("first")},
		{Key: "dup", Value: []byte("second")},
	}
}

// partitionFunc maps a non-null key to a partition, as a client's default
// partitioner does.
type partitionFunc func(key []byte, n int32) int32

// murmur2Partition is the Java client's key hashing, also used by
// franz-go's default partitioner, kafkajs' DefaultPartitioner and kafka-go's
// Murmur2Balancer.
func murmur2Partition(key []byte, n int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % n
}

// crc32Partition is librdkafka's default "consistent_random" partitioner
// for keyed records.
func crc32Partition(key []byte, n int32) int32 {
	return int32(crc32.ChecksumIEEE(key) % uint32(n))
}

// saramaHashPartition is sarama's default NewHashPartitioner: FNV-1a with
// its historical absolute value.
func saramaHashPartition(key []byte, n int32) int32 {
	h := fnv.New32a()
	h.Write(key)
	p := int32(h.Sum32()) % n
	if p < 0 {
		p = -p
	}
	return p
}

func murmur2(b []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	h := uint32(seed) ^ uint32(len(b))
	for len(b) >= 4 {
		k := binary.LittleEndian.Uint32(b)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		b = b[4:]
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// expectPartitions fills in Partition for keyed records the client's
// partitioner places, so the test also checks that producers hash keys over
// the upstream partition count.
func expectPartitions(recs []testRecord, fn partitionFunc) {
	for i := range recs {
		if recs[i].Partition < 0 && recs[i].Key != nil {
			recs[i].Partition = fn(recs[i].Key, numPartitions)
		}
	}
}

// testContext returns a context bounded by testTimeout, cancelled when the
// test ends.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// requireTool skips the test when an external tool is missing, or fails it
// when the CI environment variable is set, since CI must run every client.
func requireTool(t *testing.T, err error, install string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%v; install %s", err, install)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var topicSeq atomic.Int64

// newTopic creates a uniquely named topic upstream with numPartitions
// partitions and returns its name. It is created directly on the upstream
// cluster, since some clients will not produce to a topic they cannot see.
func newTopic(ctx context.Context, t *testing.T, st *stack) string {
	t.Helper()
	name := strings.NewReplacer("/", ".", "=", "-", " ", "_").Replace(t.Name())
	name = fmt.Sprintf("interop.%s.%d", name, topicSeq.Add(1))

	cl := newAdminClient(t, st.UpstreamAddr)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = name
	rt.NumPartitions = numPartitions
	rt.ReplicationFactor = 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("creating topic %s: %v", name, err)
	}
	for _, tr := range resp.Topics {
		if err := kerr.ErrorForCode(tr.ErrorCode); err != nil {
			t.Fatalf("creating topic %s: %v", name, err)
		}
	}
	return name
}

func newAdminClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consumeUpstream reads topic from the upstream broker at addr with a
// franz-go consumer from the start until it has want records or
// consumeTimeout passes, then checks the partitions' end offsets add up to
// what it read, so duplicates past want do not go unnoticed.
func consumeUpstream(ctx context.Context, t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(ctx, consumeTimeout)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("fetching %s[%d]: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	if len(got) < want {
		t.Errorf("read %d of %d records from upstream before the deadline", len(got), want)
		return got
	}

	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range int32(numPartitions) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Errorf("listing end offsets of %s: %v", topic, err)
		return got
	}
	var end int64
	for _, tr := range resp.Topics {
		for _, pr := range tr.Partitions {
			if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
				t.Errorf("end offset of %s[%d]: %v", topic, pr.Partition, err)
			}
			end += pr.Offset
		}
	}
	if end != int64(len(got)) {
		t.Errorf("upstream holds %d records in %s, read %d: extra records (duplicates?)", end, topic, len(got))
	}
	t.Logf("upstream: %s", describeBatches(got))
	return got
}

// describeBatches summarizes how records are stored upstream (codecs,
// producer IDs), for the log: through evproxy they need not match what the
// client sent, so tests do not assert on them.
func describeBatches(recs []*kgo.Record) string {
	codecs := make(map[string]int)
	pids := make(map[int64]bool)
	names := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	for _, r := range recs {
		c := fmt.Sprint(r.Attrs.CompressionType())
		if int(r.Attrs.CompressionType()) < len(names) {
			c = names[r.Attrs.CompressionType()]
		}
		codecs[c]++
		pids[r.ProducerID] = true
	}
	var ids []string
	for id := range pids {
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	sort.Strings(ids)
	return fmt.Sprintf("records by codec %v, producer IDs %v", codecs, ids)
}

// reporter is the part of testing.TB assertRecords uses, so its own test
// can check what it reports.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// assertRecords compares what a test produced with what arrived upstream:
// every record exactly once with the same key, value and headers (order,
// names, bytes, null versus empty); records land in their expected
// partition; records with the same key all land in one partition; and
// records with the same key appear in send order within their partition.
func assertRecords(t reporter, want []testRecord, got []*kgo.Record) {
	t.Helper()
	const maxErrs = 20
	nerr := 0
	errorf := func(format string, args ...any) {
		t.Helper()
		if nerr++; nerr <= maxErrs {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if nerr > maxErrs {
			t.Errorf("... and %d more mismatches", nerr-maxErrs)
		}
	}()

	if len(got) != len(want) {
		errorf("got %d records upstream, want %d", len(got), len(want))
	}
	byValue := make(map[string]int, len(want))
	for i, w := range want {
		byValue[string(w.Value)] = i
	}

	sorted := append([]*kgo.Record(nil), got...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Partition != sorted[j].Partition {
			return sorted[i].Partition < sorted[j].Partition
		}
		return sorted[i].Offset < sorted[j].Offset
	})

	type orderKey struct {
		partition int32
		key       string
	}
	seen := make([]bool, len(want))
	lastIndex := make(map[orderKey]int)
	keyPartition := make(map[string]int32)
	for _, g := range sorted {
		i, ok := byValue[string(g.Value)]
		if !ok {
			errorf("unexpected record at %d/%d: key %q value %.40q", g.Partition, g.Offset, g.Key, g.Value)
			continue
		}
		w := want[i]
		if seen[i] {
			errorf("record %d arrived twice (again at %d/%d)", i, g.Partition, g.Offset)
			continue
		}
		seen[i] = true

		if (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) {
			errorf("record %d: key %s, want %s", i, showBytes(g.Key), showBytes(w.Key))
		}
		if !headersEqual(g.Headers, w.Headers) {
			errorf("record %d: headers %s, want %s", i, showHeaders(g.Headers), showHeaders(w.Headers))
		}
		if w.Partition >= 0 && g.Partition != w.Partition {
			errorf("record %d (key %s): partition %d, want %d", i, showBytes(w.Key), g.Partition, w.Partition)
		}
		if w.Key == nil {
			continue
		}
		if w.Partition < 0 {
			if p, ok := keyPartition[string(w.Key)]; ok && p != g.Partition {
				errorf("record %d: key %s in partition %d and %d", i, showBytes(w.Key), p, g.Partition)
			}
			keyPartition[string(w.Key)] = g.Partition
		}
		ordk := orderKey{g.Partition, string(w.Key)}
		if prev, found := lastIndex[ordk]; found && prev > i {
			errorf("key %s in partition %d: record %d after record %d", showBytes(w.Key), g.Partition, i, prev)
		}
		lastIndex[ordk] = i
	}
	var missing []int
	for i, s := range seen {
		if !s {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		errorf("%d records missing upstream, first %v", len(missing), missing[:min(len(missing), 10)])
	}
}

func headersEqual(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || (a[i].Value == nil) != (b[i].Value == nil) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func showBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	return strconv.Quote(string(b))
}

func showHeaders(hs []kgo.RecordHeader) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, h := range hs {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s=%s", h.Key, showBytes(h.Value))
	}
	sb.WriteByte(']')
	return sb.String()
}

// writeRecordsFile writes recs as JSON lines for the Python and Node
// producers: {"k": base64 or null, "v": base64, "h": [[name, base64 or
// null]], "p": partition or -1}.
func writeRecordsFile(t *testing.T, recs []testRecord) string {
	t.Helper()
	type line struct {
		K *string     `json:"k"`
		V string      `json:"v"`
		H [][]*string `json:"h"`
		P int32       `json:"p"`
	}
	b64 := func(b []byte) *string {
		if b == nil {
			return nil
		}
		s := base64.StdEncoding.EncodeToString(b)
		return &s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range recs {
		l := line{K: b64(r.Key), V: *b64(r.Value), H: [][]*string{}, P: r.Partition}
		for _, h := range r.Headers {
			name := h.Key
			l.H = append(l.H, []*string{&name, b64(h.Value)})
		}
		if err := enc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runProducer runs an external producer and returns its stdout and
// stderr, failing the test with both when it exits non-zero.
func runProducer(t *testing.T, cmd *exec.Cmd) (stdout, stderr []byte) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	cmd.WaitDelay = 5 * time.Second // after the context kills it, stop waiting on its pipes
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s ran in %v", filepath.Base(cmd.Path), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s\nstdout (tail):\n%s", strings.Join(cmd.Args, " "), err, tail(errOut.Bytes()), tail(out.Bytes()))
	}
	return out.Bytes(), errOut.Bytes()
}

// librdkafkaBatchRE matches the line librdkafka's "msg" debug context logs
// for each produced batch, ending with the batch's codec.
var librdkafkaBatchRE = regexp.MustCompile(`Produce MessageSet with (\d+) message\(s\) \(.*, (\w+)\)\s*$`)

// checkLibrdkafkaCodecs asserts that librdkafka sent every batch with the
// configured codec, read from its "msg" debug output. librdkafka before
// 2.11.1 sends gzip, snappy and lz4 uncompressed when the broker's lowest
// Produce version is above 0 (librdkafka issue 4956); evproxy advertises
// Produce v0 so these codecs are really exercised on the wire.
func checkLibrdkafkaCodecs(t *testing.T, codec string, stderr []byte) {
	t.Helper()
	sent := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := librdkafkaBatchRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			sent[m[2]] += n
		}
		if i := strings.Index(line, "Broker does not support compression type"); i >= 0 {
			t.Fatalf("librdkafka refused to compress through evproxy: %s", line[i:])
		}
	}
	want := codec
	if codec == "none" {
		want = "uncompressed"
	}
	total := 0
	for c, n := range sent {
		total += n
		// librdkafka sends a batch uncompressed when compressing it
		// would not make it smaller (tiny batches): allowed.
		if c != want && c != "uncompressed" {
			t.Fatalf("librdkafka sent %d records as %s, configured %s (all: %v)", n, c, codec, sent)
		}
	}
	if total == 0 {
		t.Fatalf("no batch lines in librdkafka's debug output; cannot tell the codec")
	}
	if sent[want] == 0 {
		t.Fatalf("librdkafka sent no record with the configured codec %s (all: %v)", codec, sent)
	}
}

func tail(b []byte) []byte {
	const max = 4000
	if len(b) > max {
		return append([]byte("..."), b[len(b)-max:]...)
	}
	return b
}

// parseDeliveries reads the delivery lines the Python and Node producers
// print, "ok <index> <partition>" (-1 when the client does not report
// partitions per record), and their closing "delivered <n>", and
// returns the partition each record was acknowledged in.
func parseDeliveries(t *testing.T, out []byte, want int) map[int]int32 {
	t.Helper()
	acked := make(map[int]int32, want)
	delivered := -1
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "ok":
			i, err1 := strconv.Atoi(f[1])
			p, err2 := strconv.ParseInt(f[2], 10, 32)
			if err := errors.Join(err1, err2); err != nil {
				t.Fatalf("bad delivery line %q: %v", sc.Text(), err)
			}
			if _, dup := acked[i]; dup {
				t.Errorf("record %d acknowledged twice", i)
			}
			acked[i] = int32(p)
		case len(f) == 2 && f[0] == "delivered":
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("bad summary line %q: %v", sc.Text(), err)
			}
			delivered = n
		}
	}
	if delivered != want || len(acked) != want {
		t.Fatalf("producer acknowledged %d records (summary %d), want %d", len(acked), delivered, want)
	}
	return acked
}

// checkAcked compares the partitions the producer was told with where the
// test expects records; records the test could not place take the
// acknowledged partition, so assertRecords checks it upstream.
func checkAcked(t *testing.T, want []testRecord, acked map[int]int32) {
	t.Helper()
	for i := range want {
		p, ok := acked[i]
		if !ok {
			t.Errorf("record %d not acknowledged", i)
			continue
		}
		switch {
		case p < 0: // the client does not say
		case want[i].Partition < 0:
			want[i].Partition = p
		case want[i].Partition != p:
			t.Errorf("record %d acknowledged in partition %d, want %d", i, p, want[i].Partition)
		}
	}
}
