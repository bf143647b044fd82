package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildEvproxy builds ./cmd/evproxy of the module enclosing the working
// directory into dir and returns the binary's path.
func buildEvproxy(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root (go env GOMOD): %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the evproxy module: run from the repository or pass -evproxy")
	}
	bin := filepath.Join(dir, "evproxy")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/evproxy")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/evproxy: %w\n%s", err, out)
	}
	return bin, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// proxyProc is a running evproxy process.
type proxyProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *tailBuffer
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited closes
}

const proxyConfig = `# written by evproxy-bench
proxy {
  listen           = %q
  shutdown_timeout = "5s"
}
admin {
  listen = ""
}
kafka {
  brokers = [%q]
}
log {
  level = "warn"
}
route "all" {
  topics = ["*"]
}
`

// startProxy starts bin forwarding to broker and waits until it accepts
// connections.
func startProxy(ctx context.Context, bin, dir, broker string) (*proxyProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("pick a port for evproxy: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfgPath := filepath.Join(dir, fmt.Sprintf("evproxy-%d.hcl", port))
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, proxyConfig, addr, broker), 0o600); err != nil {
		return nil, err
	}
	p := &proxyProc{addr: addr, stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
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
	deadline := time.Now().Add(15 * time.Second)
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
			return nil, fmt.Errorf("evproxy not listening on %s after 15s:\n%s", addr, p.stderr)
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
