//go:build !wasip1

package evp

import "github.com/evproxy/evproxy/plugins/sdk/go/internal/bridge"

// Outside WebAssembly the host functions go to the fake host that package
// evptest installs (or to one with a real clock that discards the rest).

func hostLog(level int32, msg string)        { bridge.Current().Log(level, msg) }
func hostNowMillis() int64                   { return bridge.Current().NowMillis() }
func hostMetricAdd(name string, delta int64) { bridge.Current().MetricAdd(name, delta) }

func hostLookup(table, key string) ([]byte, bool) {
	h := bridge.Current()
	buf := make([]byte, 64)
	for {
		n := h.Lookup(table, key, buf)
		switch {
		case n < 0:
			return nil, false
		case int(n) <= len(buf):
			return buf[:n:n], true
		}
		buf = make([]byte, n)
	}
}

func init() {
	bridge.NewDriver = func(p any) bridge.Driver { pl, _ := p.(Plugin); return newDriver(pl) }
}
