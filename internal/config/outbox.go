package config

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// DefaultOutboxBatchSize is outbox.batch_size when the configuration does
// not set it.
const DefaultOutboxBatchSize = 2000

// Outbox defaults; keep them in step with docs/configuration.md.
const (
	defaultOutboxRelayWorkers   = 4
	defaultOutboxBatchBytes     = 16 << 20
	maxOutboxRelayWorkers       = 64 // the lanes (outbox.Lanes)
	maxOutboxBatchSize          = 100000
	defaultOutboxPollInterval   = time.Second
	defaultOutboxMaxRetries     = 5
	defaultOutboxRetryDelay     = time.Second
	defaultOutboxBackoffFactor  = 2.0
	defaultOutboxMaxRetryDelay  = 5 * time.Minute
	defaultOutboxRetention      = 168 * time.Hour
	defaultOutboxLeaseTTL       = 30 * time.Second
	defaultOutboxPublishTimeout = 10 * time.Second
	defaultOutboxBreakerFails   = 3
	defaultOutboxBreakerTimeout = 5 * time.Second
	defaultOutboxSchema         = "evproxy"
	defaultOrdering             = OrderingStrict
)

// Ordering values of [RouteConfig.Ordering]: what a failing record does to
// later records of the same (topic, key) on an outbox route.
const (
	// OrderingStrict makes later records of the key wait until the failing
	// record is published or dead-lettered: order over progress (default).
	OrderingStrict = "strict"
	// OrderingRelaxed lets later records of the key pass a record waiting
	// for a retry: progress over order.
	OrderingRelaxed = "relaxed"
)

// OutboxConfig is the outbox block: the transactional outbox store and its
// relay to Kafka.
type OutboxConfig struct {
	// Enabled is true when the file has an outbox block. Without one,
	// outbox routes are an error and no relay runs.
	Enabled bool
	// DatabaseURL is the store (key database_url): "postgres://..." (or
	// "postgresql://...") for PostgreSQL, or "sqlite:PATH" for the embedded
	// single-process store, PATH relative to the configuration file's
	// directory unless absolute. Required in an outbox block.
	DatabaseURL string
	// Schema is the PostgreSQL schema of evproxy's tables and functions
	// (key schema). Defaults to "evproxy".
	Schema string
	// BatchSize is the most records the relay publishes at once
	// (key batch_size). Defaults to 2000; 1 to 100000.
	BatchSize int
	// BatchBytes bounds what one claim of the relay holds: keys, values
	// and headers (key batch_bytes, a size such as "16MiB"). A claim stops
	// after the row that reaches it and always takes at least one row.
	// Defaults to 16 MiB; 1KiB to 1GiB.
	BatchBytes int64
	// RelayWorkers is how many relay workers of this process claim and
	// publish in parallel, each on its own share of the lanes the process
	// holds (key relay_workers). Defaults to 4; 1 to 64 (the lanes).
	RelayWorkers int
	// PollInterval is how often the relay looks for due rows when nothing
	// woke it (key poll_interval). Defaults to 1s; at least 1ms.
	PollInterval time.Duration
	// Retry is the retry policy of every outbox route unless the route's
	// retry block overrides it (keys max_retries, retry_delay,
	// backoff_factor, max_retry_delay).
	Retry RetryPolicy
	// Retention is how long dead letters are kept (key retention).
	// Defaults to 168h; "0s" keeps them forever.
	Retention time.Duration
	// LeaseTTL is how long a relay's claim on its lanes lasts without
	// renewal (key lease_ttl): after a crash, another evproxy process takes
	// the lanes over this long after the last renewal. Defaults to 30s;
	// at least 1s and more than twice PublishTimeout.
	LeaseTTL time.Duration
	// PublishTimeout bounds one relay publish to Kafka
	// (key publish_timeout). Defaults to 10s; at least 10ms.
	PublishTimeout time.Duration
	// BreakerFailures is how many failed publishes in a row open the
	// circuit breaker (key breaker_failures). Defaults to 3; at least 1.
	BreakerFailures int
	// BreakerTimeout is how long the breaker stays open before a probe
	// publish (key breaker_timeout). Defaults to 5s; at least 1ms.
	BreakerTimeout time.Duration
}

// RetryPolicy is how often and when the relay retries a record that failed
// to publish. The delay before attempt n+1 is RetryDelay*BackoffFactor^(n-1),
// at most MaxRetryDelay, with jitter.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt
	// (key max_retries). Defaults to 5; 0 dead-letters on the first
	// failure.
	MaxRetries int
	// RetryDelay is the first backoff (key retry_delay). Defaults to 1s.
	RetryDelay time.Duration
	// BackoffFactor multiplies the delay after each attempt
	// (key backoff_factor). Defaults to 2.0; 1 to 100.
	BackoffFactor float64
	// MaxRetryDelay caps the delay (key max_retry_delay). Defaults to 5m.
	MaxRetryDelay time.Duration
}

type outboxBlock struct {
	DatabaseURL     hcl.Expression `hcl:"database_url,optional"`
	Schema          hcl.Expression `hcl:"schema,optional"`
	BatchSize       hcl.Expression `hcl:"batch_size,optional"`
	BatchBytes      hcl.Expression `hcl:"batch_bytes,optional"`
	RelayWorkers    hcl.Expression `hcl:"relay_workers,optional"`
	PollInterval    hcl.Expression `hcl:"poll_interval,optional"`
	MaxRetries      hcl.Expression `hcl:"max_retries,optional"`
	RetryDelay      hcl.Expression `hcl:"retry_delay,optional"`
	BackoffFactor   hcl.Expression `hcl:"backoff_factor,optional"`
	MaxRetryDelay   hcl.Expression `hcl:"max_retry_delay,optional"`
	Retention       hcl.Expression `hcl:"retention,optional"`
	LeaseTTL        hcl.Expression `hcl:"lease_ttl,optional"`
	PublishTimeout  hcl.Expression `hcl:"publish_timeout,optional"`
	BreakerFailures hcl.Expression `hcl:"breaker_failures,optional"`
	BreakerTimeout  hcl.Expression `hcl:"breaker_timeout,optional"`
	DefRange        hcl.Range      `hcl:",def_range"`
}

func (b *outboxBlock) defRange() hcl.Range { return b.DefRange }

// retryBlock is a route's retry { } block: the outbox retry keys.
type retryBlock struct {
	MaxRetries    hcl.Expression `hcl:"max_retries,optional"`
	RetryDelay    hcl.Expression `hcl:"retry_delay,optional"`
	BackoffFactor hcl.Expression `hcl:"backoff_factor,optional"`
	MaxRetryDelay hcl.Expression `hcl:"max_retry_delay,optional"`
	DefRange      hcl.Range      `hcl:",def_range"`
}

func defaultRetry() RetryPolicy {
	return RetryPolicy{
		MaxRetries:    defaultOutboxMaxRetries,
		RetryDelay:    defaultOutboxRetryDelay,
		BackoffFactor: defaultOutboxBackoffFactor,
		MaxRetryDelay: defaultOutboxMaxRetryDelay,
	}
}

func (d *decoder) outbox(o *OutboxConfig, b *outboxBlock) {
	*o = OutboxConfig{
		Schema:          defaultOutboxSchema,
		BatchSize:       DefaultOutboxBatchSize,
		BatchBytes:      defaultOutboxBatchBytes,
		RelayWorkers:    defaultOutboxRelayWorkers,
		PollInterval:    defaultOutboxPollInterval,
		Retry:           defaultRetry(),
		Retention:       defaultOutboxRetention,
		LeaseTTL:        defaultOutboxLeaseTTL,
		PublishTimeout:  defaultOutboxPublishTimeout,
		BreakerFailures: defaultOutboxBreakerFails,
		BreakerTimeout:  defaultOutboxBreakerTimeout,
	}
	if b == nil {
		return
	}
	o.Enabled = true
	switch s, st := d.str(b.DatabaseURL, "outbox.database_url"); {
	case st == absent:
		d.errorf(b.DefRange, "Missing outbox.database_url",
			`outbox.database_url is required: use "postgres://user@host:5432/db" for PostgreSQL, or "sqlite:evproxy-outbox.db" for the embedded single-process store`)
	case st == valid:
		if msg := checkDatabaseURL(s); msg != "" {
			d.errorf(b.DatabaseURL.Range(), "Invalid outbox.database_url", "outbox.database_url: %s", msg)
		} else {
			if p, ok := strings.CutPrefix(s, "sqlite:"); ok {
				s = "sqlite:" + d.resolve(p)
			}
			o.DatabaseURL = s
		}
	}
	if s, st := d.str(b.Schema, "outbox.schema"); st == valid {
		if !isIdentifier(s) {
			d.errorf(b.Schema.Range(), "Invalid outbox.schema",
				"outbox.schema %q is not a plain SQL identifier: use lower-case letters, digits and '_', starting with a letter, e.g. \"evproxy\"", s)
		} else {
			o.Schema = s
		}
	}
	if n, st := d.integer(b.BatchSize, "outbox.batch_size", 1, maxOutboxBatchSize); st == valid {
		o.BatchSize = int(n)
	}
	if s, st := d.str(b.BatchBytes, "outbox.batch_bytes"); st == valid {
		n, err := parseSize(s)
		switch {
		case err != nil:
			d.errorf(b.BatchBytes.Range(), "Invalid size", "outbox.batch_bytes %q: %v; use a size such as \"16MiB\"", s, err)
		case n < 1<<10 || n > 1<<30:
			d.errorf(b.BatchBytes.Range(), "Size out of range", "outbox.batch_bytes must be from 1KiB to 1GiB, got %q", s)
		default:
			o.BatchBytes = int64(n)
		}
	}
	if n, st := d.integer(b.RelayWorkers, "outbox.relay_workers", 1, maxOutboxRelayWorkers); st == valid {
		o.RelayWorkers = int(n)
	}
	d.durationAttr(b.PollInterval, "outbox.poll_interval", time.Millisecond, math.MaxInt64, "", &o.PollInterval)
	d.retry(&o.Retry, b.MaxRetries, b.RetryDelay, b.BackoffFactor, b.MaxRetryDelay, "outbox")
	d.durationAttr(b.Retention, "outbox.retention", 0, math.MaxInt64, `; "0s" keeps dead letters forever`, &o.Retention)
	d.durationAttr(b.PublishTimeout, "outbox.publish_timeout", 10*time.Millisecond, time.Hour, "", &o.PublishTimeout)
	d.durationAttr(b.LeaseTTL, "outbox.lease_ttl", time.Second, 24*time.Hour, "", &o.LeaseTTL)
	if isSet(b.LeaseTTL) && o.LeaseTTL <= 2*o.PublishTimeout {
		d.errorf(b.LeaseTTL.Range(), "outbox.lease_ttl too short",
			"outbox.lease_ttl (%s) must be more than twice outbox.publish_timeout (%s), or a lease could expire while a publish is still running: raise lease_ttl or lower publish_timeout",
			o.LeaseTTL, o.PublishTimeout)
	} else if !isSet(b.LeaseTTL) && o.LeaseTTL <= 2*o.PublishTimeout {
		o.LeaseTTL = 3 * o.PublishTimeout
	}
	if n, st := d.integer(b.BreakerFailures, "outbox.breaker_failures", 1, math.MaxInt32); st == valid {
		o.BreakerFailures = int(n)
	}
	d.durationAttr(b.BreakerTimeout, "outbox.breaker_timeout", time.Millisecond, math.MaxInt64, "", &o.BreakerTimeout)
}

// retry decodes the retry keys of an outbox or route retry block into p.
func (d *decoder) retry(p *RetryPolicy, maxRetries, delay, factor, maxDelay hcl.Expression, where string) {
	if n, st := d.integer(maxRetries, where+".max_retries", 0, math.MaxInt32); st == valid {
		p.MaxRetries = int(n)
	}
	d.durationAttr(delay, where+".retry_delay", time.Millisecond, math.MaxInt64, "", &p.RetryDelay)
	if v, st := d.eval(factor); st == valid {
		if f, ok := numberValue(v); !ok || f < 1 || f > 100 {
			d.errorf(factor.Range(), "Invalid backoff_factor", "%s.backoff_factor must be a number from 1 to 100, got %s", where, friendlyValue(v))
		} else {
			p.BackoffFactor = f
		}
	}
	d.durationAttr(maxDelay, where+".max_retry_delay", time.Millisecond, math.MaxInt64, "", &p.MaxRetryDelay)
	if p.MaxRetryDelay < p.RetryDelay {
		d.errorf(rangeOr(maxDelay, delay), "Invalid max_retry_delay",
			"%s.max_retry_delay (%s) must not be shorter than retry_delay (%s)", where, p.MaxRetryDelay, p.RetryDelay)
	}
}

// routeOutbox decodes a route's outbox keys (priority, ordering, retry),
// which only outbox routes may set.
func (d *decoder) routeOutbox(r *RouteConfig, b *routeBlock, o *OutboxConfig, where string) {
	r.Ordering = defaultOrdering
	r.Retry = o.Retry
	outbox := r.Delivery == DeliveryOutbox
	onlyOutbox := func(rng hcl.Range, key string) {
		d.errorf(rng, "Key needs outbox delivery",
			"%s: %s applies to outbox delivery only: remove it, or set delivery = %q", where, key, DeliveryOutbox)
	}
	if isSet(b.Priority) {
		if !outbox {
			onlyOutbox(b.Priority.Range(), "priority")
		} else if n, st := d.integer(b.Priority, where+": priority", math.MinInt32, math.MaxInt32); st == valid {
			r.Priority = int32(n)
		}
	}
	if isSet(b.Ordering) {
		if !outbox {
			onlyOutbox(b.Ordering.Range(), "ordering")
		} else {
			d.enum(b.Ordering, where+": ordering", []string{OrderingStrict, OrderingRelaxed}, &r.Ordering)
		}
	}
	for i, rb := range b.Retry {
		switch {
		case i > 0:
			d.errorf(rb.DefRange, "Duplicate retry block", "%s: only one retry block is allowed per route: merge them", where)
		case !outbox:
			onlyOutbox(rb.DefRange, "the retry block")
		default:
			d.retry(&r.Retry, rb.MaxRetries, rb.RetryDelay, rb.BackoffFactor, rb.MaxRetryDelay, where+": retry")
		}
	}
	if outbox && !o.Enabled && !d.schemaInvalid {
		d.errorf(b.Delivery.Range(), "Outbox delivery needs an outbox block",
			`%s: delivery = "outbox" needs an outbox block naming the store: add outbox { database_url = "sqlite:evproxy-outbox.db" } (embedded, single process) or outbox { database_url = "postgres://user@host:5432/db" }`, where)
	}
}

// checkDatabaseURL returns what is wrong with an outbox database URL, or "".
func checkDatabaseURL(s string) string {
	switch {
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return ""
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(s, "sqlite:")
		switch {
		case p == "":
			return `"sqlite:" needs a file path, e.g. "sqlite:evproxy-outbox.db"`
		case p == ":memory:" || strings.Contains(p, "mode=memory"):
			return "an in-memory SQLite store would lose acknowledged records on exit: name a file, e.g. \"sqlite:evproxy-outbox.db\""
		}
		return ""
	}
	return fmt.Sprintf(`unknown store %q: use "postgres://user@host:5432/db" for PostgreSQL or "sqlite:PATH" for the embedded store`, redactURL(s))
}

// redactURL hides a password in a URL-like string for messages.
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	userinfo := s[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return s[:scheme+3] + user + ":***" + s[at:]
	}
	return s
}

// isIdentifier reports whether s is a plain lower-case SQL identifier.
func isIdentifier(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// rangeOr returns the range of the first expression that is set.
func rangeOr(exprs ...hcl.Expression) hcl.Range {
	for _, e := range exprs {
		if isSet(e) {
			return e.Range()
		}
	}
	return hcl.Range{}
}

// isSet reports whether an attribute is present in the file and not null
// (gohcl gives missing attributes a null expression).
func isSet(expr hcl.Expression) bool {
	if expr == nil {
		return false
	}
	v, diags := expr.Value(nil)
	return diags.HasErrors() || !v.IsNull()
}

// numberValue converts v to a float64, if it is a number or a numeric
// string.
func numberValue(v cty.Value) (float64, bool) {
	n, err := convert.Convert(v, cty.Number)
	if err != nil || n.IsNull() {
		return 0, false
	}
	f, _ := n.AsBigFloat().Float64()
	return f, true
}
