package evptest

import (
	"regexp"
	"slices"
	"sync"
	"time"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/internal/bridge"
)

// LogEntry is one message a plugin logged.
type LogEntry struct {
	Level   evp.Level
	Message string
}

// Host is a fake evproxy: the evp_v1 host functions with the contract of
// docs/plugin-abi.md §4, backed by a settable clock, captured logs, a
// metrics map and in-memory tables. Its methods are safe for concurrent
// use; calls into plugins through any Host are serialized (the host
// functions are package-level in evp).
type Host struct {
	mu       sync.Mutex
	now      int64
	fixedNow bool
	logs     []LogEntry
	metrics  map[string]int64
	warned   bool
	tables   map[string]map[string]string
}

// NewHost returns a host with the real clock, no logs, no metrics and no
// tables.
func NewHost() *Host {
	return &Host{metrics: map[string]int64{}, tables: map[string]map[string]string{}}
}

// SetNow fixes the clock at ms (Unix milliseconds).
func (h *Host) SetNow(ms int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now, h.fixedNow = ms, true
}

// Advance moves the clock forward by d (fixing it first if it was real).
func (h *Host) Advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.fixedNow {
		h.now, h.fixedNow = time.Now().UnixMilli(), true
	}
	h.now += d.Milliseconds()
}

// SetTable installs the lookup table name (as tables = { name = "file.json" }
// would).
func (h *Host) SetTable(name string, entries map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tables[name] = entries
}

// Logs returns the messages logged so far, oldest first.
func (h *Host) Logs() []LogEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.logs)
}

// Metrics returns the custom counters (evproxy_plugin_custom_total) by name.
func (h *Host) Metrics() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := make(map[string]int64, len(h.metrics))
	for k, v := range h.metrics {
		m[k] = v
	}
	return m
}

// lastError returns the last error-level message, for error reports.
func (h *Host) lastError() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.logs) - 1; i >= 0; i-- {
		if h.logs[i].Level == evp.LevelError {
			return h.logs[i].Message
		}
	}
	return "(nothing logged)"
}

// The limits of docs/plugin-abi.md §4.
const (
	maxLogBytes  = 4096
	maxMetrics   = 100
	lookupNoKey  = -1
	lookupNoTbl  = -2
	metricWarned = "too many metric names (at most 100): ignoring "
)

var metricName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)

// abiHost adapts Host to the bridge (its methods are not for plugin tests).
type abiHost struct{ h *Host }

func (a abiHost) Log(level int32, msg string) {
	if level < 0 || level > 3 {
		level = int32(evp.LevelInfo)
	}
	if len(msg) > maxLogBytes {
		msg = msg[:maxLogBytes]
	}
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	a.h.logs = append(a.h.logs, LogEntry{Level: evp.Level(level), Message: msg})
}

func (a abiHost) NowMillis() int64 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	if a.h.fixedNow {
		return a.h.now
	}
	return time.Now().UnixMilli()
}

func (a abiHost) MetricAdd(name string, delta int64) {
	if delta < 0 || !metricName.MatchString(name) {
		return
	}
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	if _, ok := a.h.metrics[name]; !ok && len(a.h.metrics) >= maxMetrics {
		if !a.h.warned {
			a.h.warned = true
			a.h.logs = append(a.h.logs, LogEntry{Level: evp.LevelWarn, Message: metricWarned + name})
		}
		return
	}
	a.h.metrics[name] += delta
}

func (a abiHost) Lookup(table, key string, out []byte) int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	t, ok := a.h.tables[table]
	if !ok {
		return lookupNoTbl
	}
	v, ok := t[key]
	if !ok {
		return lookupNoKey
	}
	if len(v) <= len(out) {
		copy(out, v)
	}
	return int32(len(v))
}

// callMu serializes calls into plugins: evp's host functions go to the
// one installed host.
var callMu sync.Mutex

// call runs f with h installed as the host.
func (h *Host) call(f func()) {
	callMu.Lock()
	defer callMu.Unlock()
	old := bridge.Swap(abiHost{h})
	defer bridge.Swap(old)
	f()
}
