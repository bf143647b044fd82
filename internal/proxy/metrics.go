package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are the proxy's Prometheus collectors. Create them with
// NewMetrics; a nil *Metrics disables metrics.
type Metrics struct {
	requests       *prometheus.CounterVec
	latencyHist    *prometheus.HistogramVec
	connections    prometheus.Gauge
	protocolErrors prometheus.Counter
	badBatches     prometheus.Counter
	upstreamErrors *prometheus.CounterVec
	recordsInC     *prometheus.CounterVec
	bytesInC       *prometheus.CounterVec
	recordsOutC    *prometheus.CounterVec
	bytesOutC      *prometheus.CounterVec
	upstreamReqs   prometheus.Histogram
	rejectedC      *prometheus.CounterVec
}

// NewMetrics creates the proxy's collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_requests_total", Help: "Kafka requests received, by API and version.",
		}, []string{"api", "version"}),
		latencyHist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evproxy_request_duration_seconds",
			Help:    "Time from reading a request to having its answer, by API (for Produce: until the upstream acknowledged).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"api"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "evproxy_open_connections", Help: "Producer connections currently open.",
		}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evproxy_protocol_errors_total", Help: "Connections closed because of bad input (garbage, oversized or truncated frames, unknown APIs).",
		}),
		badBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evproxy_bad_batches_total", Help: "Record batches refused as corrupt or invalid.",
		}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_upstream_errors_total", Help: "Errors from the upstream cluster, by Kafka error name (or 'metadata').",
		}, []string{"error"}),
		recordsInC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_records_in_total", Help: "Records accepted from producers, by topic.",
		}, []string{"topic"}),
		bytesInC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_bytes_in_total", Help: "Record batch bytes accepted from producers, by topic.",
		}, []string{"topic"}),
		recordsOutC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_records_out_total", Help: "Records the upstream acknowledged, by topic.",
		}, []string{"topic"}),
		bytesOutC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_bytes_out_total", Help: "Record batch bytes the upstream acknowledged, by topic.",
		}, []string{"topic"}),
		rejectedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evproxy_records_rejected_total", Help: "Records a plugin rejected, by topic (then dead-lettered, dropped or failed as on_reject says).",
		}, []string{"topic"}),
		upstreamReqs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "evproxy_upstream_produce_duration_seconds",
			Help:    "Round trip of produce requests forwarded to the upstream.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	reg.MustRegister(m.requests, m.latencyHist, m.connections, m.protocolErrors, m.badBatches,
		m.upstreamErrors, m.recordsInC, m.bytesInC, m.recordsOutC, m.bytesOutC, m.upstreamReqs, m.rejectedC)
	return m
}

// ProtocolErrors counts connections closed because of bad input.
func (m *Metrics) ProtocolErrors() prometheus.Counter { return m.protocolErrors }

func apiName(key int16) string {
	if n := kmsg.NameForKey(key); n != "" {
		return n
	}
	return "Unknown"
}

var versionLabels = func() [32]string {
	var out [32]string
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

func (m *Metrics) request(key, version int16) {
	v := "other"
	if version >= 0 && int(version) < len(versionLabels) {
		v = versionLabels[version]
	}
	m.requests.WithLabelValues(apiName(key), v).Inc()
}

func (m *Metrics) latency(key int16, d time.Duration) {
	m.latencyHist.WithLabelValues(apiName(key)).Observe(d.Seconds())
}

func (m *Metrics) recordsIn(topic string, records, bytes int) {
	m.recordsInC.WithLabelValues(topic).Add(float64(records))
	m.bytesInC.WithLabelValues(topic).Add(float64(bytes))
}

func (m *Metrics) rejected(topic string, n int) {
	m.rejectedC.WithLabelValues(topic).Add(float64(n))
}

func (m *Metrics) recordsOut(topic string, records, bytes int) {
	m.recordsOutC.WithLabelValues(topic).Add(float64(records))
	m.bytesOutC.WithLabelValues(topic).Add(float64(bytes))
}

// OnProduceDone implements upstream.Hooks.
func (m *Metrics) OnProduceDone(batches, bytes int, took time.Duration, err error) {
	m.upstreamReqs.Observe(took.Seconds())
	if err != nil {
		m.upstreamErrors.WithLabelValues("NETWORK_EXCEPTION").Inc()
	}
}
