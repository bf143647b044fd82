package evp

// Level is a log level of [Log].
type Level int32

// The log levels of the ABI's log function.
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Log writes msg to evproxy's log, tagged with the plugin's name. Messages
// longer than 4096 bytes are cut. (stdout and stderr are discarded: use Log.)
func Log(level Level, msg string) { hostLog(int32(level), msg) }

// NowMillis returns the wall-clock time in Unix milliseconds, from the
// clock evproxy uses for ce_time.
func NowMillis() int64 { return hostNowMillis() }

// MetricAdd adds delta (>= 0; negative values are ignored) to the counter
// evproxy_plugin_custom_total{plugin="NAME", name="<name>"}. Names must
// match [a-zA-Z_][a-zA-Z0-9_]{0,63}; a plugin may use at most 100 names.
func MetricAdd(name string, delta int64) { hostMetricAdd(name, delta) }

// Lookup returns the value of key in the read-only table named table (a
// plugin's tables = { name = "file.json" }). ok is false when there is no
// such key or no such table. The value is a fresh copy.
func Lookup(table, key string) (value []byte, ok bool) { return hostLookup(table, key) }
