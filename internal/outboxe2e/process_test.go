package outboxe2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// evproxyBin is the evproxy binary TestMain builds.
var evproxyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evproxy-outboxe2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	evproxyBin = filepath.Join(dir, "evproxy")
	build := exec.Command("go", "build", "-o", evproxyBin, "./cmd/evproxy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build evproxy: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback address with a port free right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// process is an evproxy process.
type process struct {
	cmd       *exec.Cmd
	proxyAddr string
	adminAddr string
	exited    chan struct{}
}

// startProcess runs the evproxy binary with the config src (written to a
// file in dir) and waits until its listener is up.
func startProcess(t testing.TB, dir, src string) *process {
	t.Helper()
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: exec.Command(evproxyBin, "run", "-c", path), exited: make(chan struct{})}
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	ready := make(chan string, 1)
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			if m["message"] == "admin server started" {
				p.adminAddr = m["listen"].(string) // before the listener starts
			}
			if m["message"] == "kafka listener started" {
				ready <- m["listen"].(string)
			}
			if lvl := m["level"]; lvl == "error" || lvl == "fatal" || (lvl == "warn" && os.Getenv("EVPROXY_TEST_LOG") != "") {
				t.Logf("evproxy: %s", sc.Text())
			}
		}
		_ = p.cmd.Wait()
	}()
	select {
	case addr := <-ready:
		p.proxyAddr = addr
	case <-p.exited:
		t.Fatal("evproxy exited before its listener started")
	case <-time.After(60 * time.Second):
		t.Fatal("evproxy's listener did not start within 60s")
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// processConfig is a config for an evproxy process on proxyAddr with the
// outbox in schema.
func processConfig(proxyAddr, brokers, schema string) string {
	return fmt.Sprintf("proxy { listen = %q }\nadmin { listen = \"127.0.0.1:0\" }\nkafka { brokers = [%q] }\n", proxyAddr, brokers) +
		// Under a loaded CI machine a publish can time out; with the
		// quick retries of pgOutbox six timeouts would dead-letter a
		// record, which these tests would count as lost.
		pgOutbox(schema, `batch_size = 1000`, `max_retries = 1000`) + outboxRoutes
}

// TestCrashLosesNoAcknowledgedRecord: a producer sends records with
// acks=all through evproxy on an outbox route and records what was
// acknowledged; evproxy is killed with SIGKILL midway and restarted; once
// the relay drained, every acknowledged record is upstream.
func TestCrashLosesNoAcknowledgedRecord(t *testing.T) {
	t.Parallel()
	n := 200000
	if testing.Short() {
		n = 20000
	}
	kf := startKafka(t)
	schema := newSchema(t)
	dir := t.TempDir()
	addr := freePort(t)
	cfg := processConfig(addr, kf.ListenAddrs()[0], schema)
	p := startProcess(t, dir, cfg)

	cl := producer(t, addr, kgo.MaxBufferedRecords(20000), kgo.RecordDeliveryTimeout(2*time.Minute), kgo.ProducerBatchMaxBytes(256<<10))
	var (
		mu    sync.Mutex
		acked = make(map[int]bool, n)
		fails atomic.Int64
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	killed := make(chan struct{})
	restarted := make(chan struct{})
	go func() {
		// Kill once about half was acknowledged, then restart.
		for {
			mu.Lock()
			k := len(acked)
			mu.Unlock()
			if k >= n/2 || ctx.Err() != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		p.kill()
		close(killed)
		p = startProcess(t, dir, cfg)
		close(restarted)
	}()
	for i := range n {
		wg.Add(1)
		r := &kgo.Record{Topic: "orders", Key: []byte("k" + strconv.Itoa(i%1000)), Value: []byte(strconv.Itoa(i))}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				fails.Add(1)
				return
			}
			mu.Lock()
			acked[i] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	<-restarted
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	select {
	case <-killed:
	default:
		t.Fatal("the producer finished before evproxy was killed")
	}
	t.Logf("%d of %d records acknowledged (%d failed to the producer)", nAcked, n, fails.Load())
	if nAcked < n/2 {
		t.Fatalf("only %d records acknowledged", nAcked)
	}

	// Read until every acknowledged record arrived.
	rd, err := kgo.NewClient(kgo.SeedBrokers(kf.ListenAddrs()[0]), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := make(map[int]int, n)
	missing := nAcked
	rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer rcancel()
	for missing > 0 && rctx.Err() == nil {
		rd.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			i, _ := strconv.Atoi(string(r.Value))
			seen[i]++
			if seen[i] == 1 && acked[i] {
				missing--
			}
		})
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("upstream: %d distinct records, %d duplicates (crash window), %d acknowledged missing", len(seen), dups, missing)
	if missing > 0 {
		logOutboxState(t, schema)
		var ex []string
		for i := range acked {
			if seen[i] == 0 && len(ex) < 10 {
				ex = append(ex, strconv.Itoa(i))
			}
		}
		t.Fatalf("%d acknowledged records never arrived, e.g. %s", missing, strings.Join(ex, ", "))
	}
}

// TestTwoReplicasKeepKeyOrder: two evproxy processes share one outbox
// database; producers write through both; both relay; per-key order holds.
func TestTwoReplicasKeepKeyOrder(t *testing.T) {
	t.Parallel()
	const n, keys = 100000, 1000
	kf := startKafka(t)
	schema := newSchema(t)
	var procs [2]*process
	for i := range procs {
		procs[i] = startProcess(t, t.TempDir(), processConfig(freePort(t), kf.ListenAddrs()[0], schema))
	}
	// Wait until the replicas split the lanes (a replica started second
	// gets its share at the first renewals, lease_ttl/3 apart).
	deadline := time.Now().Add(30 * time.Second)
	for {
		l0 := metric(t, procs[0].adminAddr, "evproxy_outbox_lanes_held")
		l1 := metric(t, procs[1].adminAddr, "evproxy_outbox_lanes_held")
		if l0 > 0 && l1 > 0 && l0+l1 == 64 {
			t.Logf("lanes split %v / %v", l0, l1)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lanes not split between the replicas after 30s: %v / %v", l0, l1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for pi, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := producer(t, p.proxyAddr, kgo.MaxBufferedRecords(10000))
			var pwg sync.WaitGroup
			for i := pi; i < n; i += 2 {
				// Key k belongs to producer k%2, so each key has one
				// producer and a defined order.
				k := (i / 2 % (keys / 2) * 2) + pi
				pwg.Add(1)
				cl.Produce(ctx, &kgo.Record{Topic: "orders", Key: []byte("k" + strconv.Itoa(k)), Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
					}
					pwg.Done()
				})
			}
			pwg.Wait()
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d produces failed", f)
	}
	recs := consume(t, kf.ListenAddrs()[0], "orders", n, 3*time.Minute)
	per := checkKeyOrder(t, recs)
	if len(per) != keys {
		t.Fatalf("%d keys, want %d", len(per), keys)
	}
	// Both relayed: each leased its share of the lanes.
	for i, p := range procs {
		pub := metric(t, p.adminAddr, "evproxy_outbox_published_total")
		t.Logf("process %d published %v records", i, pub)
		if pub == 0 {
			t.Errorf("process %d published nothing: the lanes were not shared", i)
		}
	}
}

// logOutboxState logs what is left in the outbox, for a failing test.
func logOutboxState(t *testing.T, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		t.Logf("outbox state: %v", err)
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT lane, count(*), min(id), max(id), max(attempts), bool_or(blocks), min(deliver_at)::text, max(next_attempt_at)::text, min(last_error)
		FROM `+schema+`.outbox GROUP BY lane ORDER BY lane`)
	if err != nil {
		t.Logf("outbox state: %v", err)
		return
	}
	for rows.Next() {
		var lane, n, attempts int64
		var minID, maxID int64
		var blocks bool
		var deliver, next string
		var lastErr *string
		if err := rows.Scan(&lane, &n, &minID, &maxID, &attempts, &blocks, &deliver, &next, &lastErr); err != nil {
			t.Logf("outbox state: %v", err)
			return
		}
		t.Logf("outbox lane %d: %d rows, ids %d-%d, attempts %d, blocks %v, deliver_at %s, next_attempt %s, error %v", lane, n, minID, maxID, attempts, blocks, deliver, next, lastErr)
	}
	var lanes []string
	lr, err := conn.Query(ctx, `SELECT lane::text || '=' || coalesce(owner, '-') || '@' || coalesce(lease_until::text, '-') FROM `+schema+`.lane ORDER BY lane`)
	if err == nil {
		for lr.Next() {
			var l string
			_ = lr.Scan(&l)
			lanes = append(lanes, l)
		}
	}
	t.Logf("lanes: %v", lanes)
	var dead int
	var reason *string
	if err := conn.QueryRow(ctx, `SELECT count(*), min(reason) FROM `+schema+`.dead_letter`).Scan(&dead, &reason); err == nil {
		t.Logf("dead letters: %d (e.g. %v)", dead, reason)
	}
}
