package upstream

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// StartEmbedded starts an in-process development broker (franz-go's kfake)
// listening on addr. Topics are created on first use with partitions
// partitions. It keeps every record in memory: for development and tests
// only. Close the returned cluster to stop it.
func StartEmbedded(addr string, partitions int32, opts ...kfake.Opt) (*kfake.Cluster, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("upstream: embedded broker address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("upstream: embedded broker port %q: %w", portStr, err)
	}
	if partitions <= 0 {
		partitions = 3
	}
	base := []kfake.Opt{
		kfake.Ports(port),
		kfake.ListenFn(func(network, a string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(a)
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
	}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("upstream: start embedded broker on %s: %w", addr, err)
	}
	return c, nil
}
