package interop

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/evproxy/evproxy/internal/proxytest"
)

// stack is what a test gets: the evproxy address producers use, and the
// upstream cluster behind it.
type stack struct {
	ProxyAddr    string // evproxy: producers bootstrap here
	UpstreamAddr string // the upstream broker, for direct reads
	Upstream     *kfake.Cluster
}

// startStack starts a kfake cluster (1 broker, topics auto-created with 3
// partitions) with evproxy in front of it, routing every topic directly.
func startStack(t *testing.T) *stack {
	t.Helper()
	s := proxytest.Start(t, nil)
	return &stack{ProxyAddr: s.ProxyAddr, UpstreamAddr: s.UpstreamAddr, Upstream: s.Upstream}
}
