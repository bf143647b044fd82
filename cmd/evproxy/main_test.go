package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(good, []byte("kafka {\n  embedded = true\n}\nroute \"all\" {\n  topics = [\"*\"]\n}\n"), 0o600)
	os.WriteFile(bad, []byte("proxy {\n  listen = \"127.0.0.1:9092\"\n  shutdown_timeout = \"5x\"\n}\nkafka {\n  embedded = true\n}\n"), 0o600)
	cases := []struct {
		name       string
		args       []string
		code       int
		out, inErr string
	}{
		{"shipped config", []string{"validate", "-c", "../../config.hcl"}, 0, "../../config.hcl: OK (2 routes, 0 plugins)", ""},
		{"good", []string{"validate", "-c", good}, 0, "OK (1 routes, 0 plugins)", ""},
		{"bad duration", []string{"validate", "-c", bad}, 1, "", bad + `:3:22: Error: Invalid duration`},
		{"missing file", []string{"validate", "-c", filepath.Join(dir, "nope.hcl")}, 1, "", "nope.hcl"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"version", []string{"version"}, 0, "evproxy ", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), c.out) {
				t.Fatalf("stdout %q, want it to contain %q", stdout.String(), c.out)
			}
			if !strings.Contains(stderr.String(), c.inErr) {
				t.Fatalf("stderr %q, want it to contain %q", stderr.String(), c.inErr)
			}
		})
	}
}

// TestRunServesAndStopsOnSIGTERM runs the real binary with an embedded
// broker, produces through it, reads the broker, and checks that SIGTERM
// exits 0.
func TestRunServesAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	p := startBinary(t, `
route "all" {
  topics = ["*"]
}
`)
	cmd, lines, proxyAddr, adminAddr, brokerAddr := p.cmd, p.lines, p.proxyAddr, p.adminAddr, p.brokerAddr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(proxyAddr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "cli", Key: []byte("k"), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumeTopics("cli"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < 10 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Fatalf("broker holds %v", got)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "kafka: ok", "/metrics": `evproxy_records_in_total{topic="cli"} 10`} {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d %q, want 200 containing %q", path, resp.StatusCode, body, want)
		}
	}
	cl.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := false
	for m := range lines {
		if m["message"] == "stopped" {
			stopped = true
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !stopped {
		t.Fatal(`no "stopped" log line after SIGTERM`)
	}
}

// binary is a running evproxy process started by startBinary.
type binary struct {
	cmd                              *exec.Cmd
	cfg                              string // its config file
	lines                            chan map[string]any
	proxyAddr, adminAddr, brokerAddr string
}

// startBinary builds evproxy, writes a config with free ports, an embedded
// broker and extra (routes, plugins), starts it and waits for its addresses.
func startBinary(t *testing.T, extra string) *binary {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "evproxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	b := &binary{cfg: filepath.Join(dir, "config.hcl"), lines: make(chan map[string]any, 1000)}
	os.WriteFile(b.cfg, []byte(`
proxy {
  listen = "127.0.0.1:0"
}
admin {
  listen = "127.0.0.1:0"
}
kafka {
  brokers  = ["127.0.0.1:0"]
  embedded = true
}
`+extra), 0o600)
	b.cmd = exec.Command(bin, "run", "-c", b.cfg)
	stderr, _ := b.cmd.StderrPipe()
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.cmd.Process.Kill(); _ = b.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				b.lines <- m
			}
		}
		close(b.lines)
	}()
	deadline := time.After(30 * time.Second)
	for b.proxyAddr == "" || b.adminAddr == "" || b.brokerAddr == "" {
		select {
		case m, ok := <-b.lines:
			if !ok {
				t.Fatal("evproxy exited before it was ready")
			}
			switch m["message"] {
			case "kafka listener started":
				b.proxyAddr = m["listen"].(string)
			case "admin server started":
				b.adminAddr = m["listen"].(string)
			case "embedded development broker started: records live in memory only; use kafka { brokers = [...] } in production":
				b.brokerAddr = m["listen"].([]any)[0].(string)
			}
		case <-deadline:
			t.Fatal("evproxy did not log its addresses within 30s")
		}
	}
	return b
}

// waitLog waits for a log line with message msg.
func (b *binary) waitLog(t *testing.T, msg string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-b.lines:
			if !ok {
				t.Fatalf("evproxy exited before logging %q", msg)
			}
			if m["message"] == msg {
				return
			}
		case <-deadline:
			t.Fatalf("no %q log line within 30s", msg)
		}
	}
}
