package plugins

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Metrics are the plugin runtime's Prometheus collectors, shared by every
// plugin (label plugin="NAME"). Create them with NewMetrics; a nil *Metrics
// disables metrics (metric_add then validates its arguments and does
// nothing).
type Metrics struct {
	calls     *prometheus.CounterVec
	records   *prometheus.CounterVec
	verdicts  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	instances *prometheus.GaugeVec
	custom    *prometheus.CounterVec
}

// Error kinds of evproxy_plugin_errors_total.
const (
	kindTrap      = "trap"
	kindTimeout   = "timeout"
	kindMalformed = "malformed"
	kindInit      = "init"
	kindWarmup    = "warmup"
)

// NewMetrics creates the collectors and registers them with reg:
//
//	evproxy_plugin_calls_total{plugin}            Process calls
//	evproxy_plugin_records_total{plugin}          records passed to Process
//	evproxy_plugin_verdicts_total{plugin,action}  verdicts returned, host REJECTs included
//	evproxy_plugin_errors_total{plugin,kind}      failed guest calls (trap, timeout, malformed),
//	                                              failed instantiations (init) and warm-up
//	                                              calls (warmup; a cold instance replaces it)
//	evproxy_plugin_call_duration_seconds{plugin}  Process time, bisection retries included
//	evproxy_plugin_instances{plugin}              live instances (all versions during a reload)
//	evproxy_plugin_custom_total{plugin,name}      the plugins' own counters (metric_add)
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_plugin_calls_total", Help: "Batches processed by each plugin.",
		}, []string{"plugin"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_plugin_records_total", Help: "Records processed by each plugin.",
		}, []string{"plugin"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_plugin_verdicts_total", Help: "Verdicts by plugin and action (keep, drop, reject, replace), the host's own REJECTs included.",
		}, []string{"plugin", "action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_plugin_errors_total", Help: "Plugin failures by kind: trap, timeout, malformed (output), init (an instance could not be made), warmup (a new instance failed its warm-up batch). Each costs an instance.",
		}, []string{"plugin", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evproxy_plugin_call_duration_seconds",
			Help:    "Time to process one batch, retries after failures included.",
			Buckets: []float64{.000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"plugin"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "evproxy_plugin_instances", Help: "Live plugin instances (old and new versions while a reload drains).",
		}, []string{"plugin"}),
		custom: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_plugin_custom_total", Help: "Counters the plugins increment with metric_add.",
		}, []string{"plugin", "name"}),
	}
	reg.MustRegister(m.calls, m.records, m.verdicts, m.errors, m.duration, m.instances, m.custom)
	return m
}

// pluginMetrics are one plugin version's collectors, resolved once at Load
// so the hot path does no label lookups. The zero value (metrics disabled)
// is usable.
type pluginMetrics struct {
	on        bool
	calls     prometheus.Counter
	records   prometheus.Counter
	verdicts  [4]prometheus.Counter // by Action
	errors    map[string]prometheus.Counter
	duration  prometheus.Observer
	instances prometheus.Gauge

	// Custom counters (metric_add): at most maxCustomNames names per
	// plugin version.
	plugin     string
	customVec  *prometheus.CounterVec
	customMu   sync.RWMutex
	custom     map[string]prometheus.Counter
	customFull atomic.Bool // the one warning was logged
}

// maxCustomNames is the most distinct metric_add names per plugin (§4).
const maxCustomNames = 100

func newPluginMetrics(m *Metrics, plugin string) *pluginMetrics {
	if m == nil {
		return &pluginMetrics{}
	}
	pm := &pluginMetrics{
		on:        true,
		calls:     m.calls.WithLabelValues(plugin),
		records:   m.records.WithLabelValues(plugin),
		errors:    map[string]prometheus.Counter{},
		duration:  m.duration.WithLabelValues(plugin),
		instances: m.instances.WithLabelValues(plugin),
		plugin:    plugin,
		customVec: m.custom,
		custom:    map[string]prometheus.Counter{},
	}
	for a := range pm.verdicts {
		pm.verdicts[a] = m.verdicts.WithLabelValues(plugin, Action(a).String())
	}
	for _, k := range []string{kindTrap, kindTimeout, kindMalformed, kindInit, kindWarmup} {
		pm.errors[k] = m.errors.WithLabelValues(plugin, k)
	}
	return pm
}

func (pm *pluginMetrics) errorInc(kind string) {
	if pm.on {
		pm.errors[kind].Inc()
	}
}

func (pm *pluginMetrics) instancesAdd(n int) {
	if pm.on {
		pm.instances.Add(float64(n))
	}
}

// call records one Process call.
func (pm *pluginMetrics) call(seconds float64, vs []Verdict) {
	if !pm.on {
		return
	}
	pm.calls.Inc()
	pm.records.Add(float64(len(vs)))
	pm.duration.Observe(seconds)
	var n [4]int
	for i := range vs {
		n[vs[i].Action&3]++
	}
	for a, c := range n {
		if c > 0 {
			pm.verdicts[a].Add(float64(c))
		}
	}
}

// customAdd adds delta to the custom counter name (already validated; the
// bytes may be guest memory and are copied only for a new name).
func (pm *pluginMetrics) customAdd(name []byte, delta int64, log *zerolog.Logger) {
	if !pm.on {
		return
	}
	pm.customMu.RLock()
	c, ok := pm.custom[string(name)]
	pm.customMu.RUnlock()
	if !ok {
		pm.customMu.Lock()
		if c, ok = pm.custom[string(name)]; !ok {
			if len(pm.custom) >= maxCustomNames {
				pm.customMu.Unlock()
				if !pm.customFull.Swap(true) {
					log.Warn().Int("limit", maxCustomNames).Str("name", string(name)).
						Msg("plugin metric_add: too many distinct counter names; further new names are ignored")
				}
				return
			}
			s := string(name)
			c = pm.customVec.WithLabelValues(pm.plugin, s)
			pm.custom[s] = c
		}
		pm.customMu.Unlock()
	}
	c.Add(float64(delta))
}

// validMetricName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]{0,63}.
func validMetricName(name []byte) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
