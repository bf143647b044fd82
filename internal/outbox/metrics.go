package outbox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the outbox's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	pending, scheduled, retrying *prometheus.GaugeVec
	oldest                       prometheus.Gauge
	deadLetters                  prometheus.Gauge
	lanes                        prometheus.Gauge
	published, retried, dead     prometheus.Counter
	droppedTotal                 prometheus.Counter
	written                      prometheus.Counter
	claim, publish, commit       prometheus.Histogram
}

// NewMetrics registers the outbox metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		pending:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "evproxy_outbox_pending", Help: "Outbox rows due or waiting for a retry, by topic."}, []string{"topic"}),
		scheduled:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "evproxy_outbox_scheduled", Help: "Outbox rows waiting for their evproxy.deliver-at time, by topic."}, []string{"topic"}),
		retrying:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "evproxy_outbox_retrying", Help: "Outbox rows that failed at least once and wait for a retry, by topic."}, []string{"topic"}),
		oldest:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "evproxy_outbox_oldest_pending_seconds", Help: "Age of the oldest pending outbox row."}),
		deadLetters:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "evproxy_outbox_dead_letters", Help: "Rows in the dead-letter table."}),
		lanes:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "evproxy_outbox_lanes_held", Help: "Ordering lanes this process relays."}),
		published:    prometheus.NewCounter(prometheus.CounterOpts{Name: "evproxy_outbox_published_total", Help: "Records the relay published to Kafka."}),
		retried:      prometheus.NewCounter(prometheus.CounterOpts{Name: "evproxy_outbox_retried_total", Help: "Failed publishes scheduled for a retry."}),
		dead:         prometheus.NewCounter(prometheus.CounterOpts{Name: "evproxy_outbox_dead_lettered_total", Help: "Records moved to the dead-letter table."}),
		droppedTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "evproxy_outbox_dropped_total", Help: "Application-written records a plugin dropped or rejected with on_reject = drop."}),
		written:      prometheus.NewCounter(prometheus.CounterOpts{Name: "evproxy_outbox_written_total", Help: "Records committed to the outbox by the proxy."}),
		claim:        prometheus.NewHistogram(prometheus.HistogramOpts{Name: "evproxy_outbox_claim_seconds", Help: "Time to claim a batch of due rows.", Buckets: buckets}),
		publish:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "evproxy_outbox_publish_seconds", Help: "Time to publish a claimed batch to Kafka.", Buckets: buckets}),
		commit:       prometheus.NewHistogram(prometheus.HistogramOpts{Name: "evproxy_outbox_commit_seconds", Help: "Time to commit a group of produce requests to the outbox.", Buckets: buckets}),
	}
	reg.MustRegister(m.pending, m.scheduled, m.retrying, m.oldest, m.deadLetters, m.lanes,
		m.published, m.retried, m.dead, m.droppedTotal, m.written, m.claim, m.publish, m.commit)
	return m
}

func (m *Metrics) observeClaim(d time.Duration) {
	if m != nil {
		m.claim.Observe(d.Seconds())
	}
}

func (m *Metrics) observePublish(d time.Duration) {
	if m != nil {
		m.publish.Observe(d.Seconds())
	}
}

func (m *Metrics) observeCommit(d time.Duration, rows int) {
	if m != nil {
		m.commit.Observe(d.Seconds())
		m.written.Add(float64(rows))
	}
}

func (m *Metrics) outcome(published, retried, dead int) {
	if m != nil {
		m.published.Add(float64(published))
		m.retried.Add(float64(retried))
		m.dead.Add(float64(dead))
	}
}

func (m *Metrics) dropped() {
	if m != nil {
		m.droppedTotal.Inc()
	}
}

func (m *Metrics) setLanes(n int) {
	if m != nil {
		m.lanes.Set(float64(n))
	}
}

func (m *Metrics) setStats(st *Stats, now time.Time) {
	m.pending.Reset()
	m.scheduled.Reset()
	m.retrying.Reset()
	var oldest time.Time
	for _, t := range st.Topics {
		m.pending.WithLabelValues(t.Topic).Set(float64(t.Pending))
		m.scheduled.WithLabelValues(t.Topic).Set(float64(t.Scheduled))
		m.retrying.WithLabelValues(t.Topic).Set(float64(t.Retrying))
		if t.Pending > 0 && (oldest.IsZero() || t.Oldest.Before(oldest)) {
			oldest = t.Oldest
		}
	}
	if oldest.IsZero() {
		m.oldest.Set(0)
	} else {
		m.oldest.Set(now.Sub(oldest).Seconds())
	}
	m.deadLetters.Set(float64(st.DeadLetters))
}
