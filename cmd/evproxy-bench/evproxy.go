package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildEvproxy builds ./cmd/evproxy of the module enclosing the working
// directory into dir and returns the binary's path.
func buildEvproxy(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", fmt.Errorf("%w (or pass -evproxy)", err)
	}
	bin := filepath.Join(dir, "evproxy")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/evproxy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/evproxy: %w\n%s", err, out)
	}
	return bin, nil
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // held until all are picked, so they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// readMetrics reads the /metrics of the evproxy admin server at addr and
// hands the body to parse.
func readMetrics(ctx context.Context, addr string, parse func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read evproxy metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("read evproxy metrics: %s", resp.Status)
	}
	if err := parse(resp.Body); err != nil {
		return fmt.Errorf("read evproxy metrics: %w", err)
	}
	return nil
}

// scanMetrics reads the Prometheus text format from r and calls add with
// the name, the labels (between the braces, "" when none) and the value of
// every sample whose name starts with prefix and whose labels match (nil:
// all of them).
func scanMetrics(r io.Reader, prefix string, match func(labels string) bool, add func(name, labels string, v float64)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		var name, labels, value string
		var ok bool
		if n, rest, found := strings.Cut(line, "{"); found {
			name = n
			labels, value, ok = strings.Cut(rest, "} ")
		} else {
			name, value, ok = strings.Cut(line, " ")
		}
		if !ok || (match != nil && !match(labels)) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return fmt.Errorf("metric line %q: %w", line, err)
		}
		add(name, labels, v)
	}
	return sc.Err()
}

// proxyProc is a running evproxy process.
type proxyProc struct {
	cmd    *exec.Cmd
	addr   string
	admin  string // admin server address, "" when disabled
	stderr *tailBuffer
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited closes
}

// proxyPlugin is the one plugin a plugin scenario runs on every record.
type proxyPlugin struct {
	name    string
	path    string        // absolute path of the .wasm
	timeout time.Duration // per-call timeout; 0 disables it
}

const proxyConfig = `# written by evproxy-bench
proxy {
  listen           = %q
  shutdown_timeout = "5s"
}
admin {
  listen = %q
}
kafka {
  brokers = [%q]
}
log {
  level = "warn"
}
`

const pluginConfig = `plugin %q {
  path    = %q
  config  = { source = "bench" }
  timeout = %q
}
route "all" {
  topics  = ["*"]
  plugins = [%q]
}
`

const passThroughRoute = `route "all" {
  topics = ["*"]
}
`

// proxyConfigText is the configuration of an evproxy listening on addr:
// pass-through when plugin is nil; else every record goes through the
// plugin and the admin server listens on admin for its metrics.
func proxyConfigText(addr, admin, broker string, plugin *proxyPlugin) []byte {
	b := fmt.Appendf(nil, proxyConfig, addr, admin, broker)
	if plugin == nil {
		return append(b, passThroughRoute...)
	}
	return fmt.Appendf(b, pluginConfig, plugin.name, plugin.path, plugin.timeout.String(), plugin.name)
}

// startProxy starts bin forwarding to broker, with plugin on every record
// unless it is nil, and waits until it accepts connections.
func startProxy(ctx context.Context, bin, dir, broker string, plugin *proxyPlugin) (*proxyProc, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, fmt.Errorf("pick ports for evproxy: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := ""
	if plugin != nil {
		admin = fmt.Sprintf("127.0.0.1:%d", ports[1])
	}
	cfgPath := filepath.Join(dir, fmt.Sprintf("evproxy-%d.hcl", ports[0]))
	if err := os.WriteFile(cfgPath, proxyConfigText(addr, admin, broker, plugin), 0o600); err != nil {
		return nil, err
	}
	// Plugins are compiled before evproxy listens.
	wait := 15 * time.Second
	if plugin != nil {
		wait = time.Minute
	}
	return launchProxy(ctx, bin, cfgPath, addr, admin, wait)
}

// launchProxy runs bin with the configuration at cfgPath, which listens on
// addr (and serves its admin API on admin, "" when it has none), and waits
// up to wait until it accepts connections.
func launchProxy(ctx context.Context, bin, cfgPath, addr, admin string, wait time.Duration) (*proxyProc, error) {
	p := &proxyProc{addr: addr, admin: admin, stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "run", "-c", cfgPath, "--log-format", "console")
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start evproxy: %w", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	// Poll until the listener answers; bounded in time and by the
	// process exiting.
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("evproxy exited before listening (%v):\n%s", p.err, p.stderr)
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("evproxy not listening on %s after %s:\n%s", addr, wait, p.stderr)
		}
	}
}

func (p *proxyProc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for a clean exit, killing the process after
// 15s. It returns the error of an unclean exit with evproxy's log.
func (p *proxyProc) stop() error {
	select {
	case <-p.exited:
		return fmt.Errorf("evproxy exited early (%v):\n%s", p.err, p.stderr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.kill()
		return fmt.Errorf("evproxy did not stop within 15s of SIGTERM:\n%s", p.stderr)
	}
	if p.err != nil {
		return fmt.Errorf("evproxy exited with %v:\n%s", p.err, p.stderr)
	}
	return nil
}

func (p *proxyProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
