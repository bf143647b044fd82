package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder evaluates the expressions of a decoded [fileSchema], fills in
// defaults and validates, collecting diagnostics instead of stopping at the
// first problem.
type decoder struct {
	ctx     *hcl.EvalContext
	missing hcl.Range // where to point when a whole block is missing: the file's start
	// schemaInvalid is set when gohcl reported unknown or malformed blocks;
	// a required block is then not reported missing, since it is most
	// likely the misspelled or mislabeled one.
	schemaInvalid bool
	diags         hcl.Diagnostics
	// dir is the configuration file's directory: relative plugin and
	// table paths are resolved against it.
	dir string
}

// state says what evaluating an attribute gave.
type state int

const (
	absent  state = iota // not set, or set to null: use the default
	valid                // set to a usable value
	invalid              // set, but a diagnostic was reported
)

func (d *decoder) errorf(subject hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject.Ptr(),
	})
}

// config builds the Config of raw.
func (d *decoder) config(raw *fileSchema) *Config {
	c := &Config{}
	d.proxy(&c.Proxy, single(d, raw.Proxy, "proxy"))
	d.admin(&c.Admin, single(d, raw.Admin, "admin"))
	d.kafka(&c.Kafka, single(d, raw.Kafka, "kafka"))
	d.log(&c.Log, single(d, raw.Log, "log"))
	d.deadLetter(&c.DeadLetter, single(d, raw.DeadLetter, "dead_letter"))
	d.outbox(&c.Outbox, single(d, raw.Outbox, "outbox"))
	c.Plugins = d.plugins(raw.Plugins)
	c.Routes = d.routes(raw.Routes, raw.Plugins, &c.Outbox)
	return c
}

// single returns the first of blocks, or nil if there is none, and reports
// every further block as a duplicate.
func single[B interface{ defRange() hcl.Range }](d *decoder, blocks []B, name string) B {
	var first B
	if len(blocks) == 0 {
		return first
	}
	first = blocks[0]
	for _, b := range blocks[1:] {
		d.errorf(b.defRange(), "Duplicate "+name+" block",
			"only one %s block is allowed: merge this one into the %s block at %s",
			name, name, position(first.defRange()))
	}
	return first
}

func (d *decoder) proxy(p *ProxyConfig, b *proxyBlock) {
	*p = ProxyConfig{
		Listen:          defaultProxyListen,
		MaxRequestBytes: defaultMaxRequestBytes,
		MaxInflight:     defaultMaxInflight,
		ShutdownTimeout: defaultShutdownTimeout,
		IdleTimeout:     defaultIdleTimeout,
	}
	if b == nil {
		p.Advertised = p.Listen
		return
	}
	listenState := d.address(b.Listen, "proxy.listen", `"127.0.0.1:9092"`, addrRule{allowPort0: true}, &p.Listen)
	switch d.address(b.Advertised, "proxy.advertised", `"evproxy.example.com:9092"`, addrRule{needHost: true, routable: true}, &p.Advertised) {
	case absent:
		if listenState == invalid {
			break
		}
		if host, port, err := net.SplitHostPort(p.Listen); err == nil && unspecifiedHost(host) {
			d.errorf(b.Listen.Range(), "Missing proxy.advertised",
				"proxy.advertised is required when proxy.listen binds all interfaces (%q): set advertised to the host:port producers connect to, e.g. advertised = \"evproxy.example.com:%s\"",
				p.Listen, port)
			break
		}
		p.Advertised = p.Listen
	}
	if n, st := d.integer(b.MaxRequestBytes, "proxy.max_request_bytes", minMaxRequestBytes, math.MaxInt32); st == valid {
		p.MaxRequestBytes = int32(n)
	}
	if n, st := d.integer(b.MaxInflight, "proxy.max_inflight", 1, maxMaxInflight); st == valid {
		p.MaxInflight = int(n)
	}
	d.durationAttr(b.ShutdownTimeout, "proxy.shutdown_timeout", 0, math.MaxInt64, "", &p.ShutdownTimeout)
	d.durationAttr(b.IdleTimeout, "proxy.idle_timeout", 0, math.MaxInt64, `; "0s" disables the idle timeout`, &p.IdleTimeout)
}

func (d *decoder) admin(a *AdminConfig, b *adminBlock) {
	a.Listen = defaultAdminListen
	if b == nil {
		return
	}
	s, st := d.str(b.Listen, "admin.listen")
	switch {
	case st != valid:
	case s == "":
		a.Listen = "" // disabled
	case d.checkAddress(b.Listen, "admin.listen", `"127.0.0.1:9644"`, addrRule{allowPort0: true}, s):
		a.Listen = s
	}
}

func (d *decoder) kafka(k *KafkaConfig, b *kafkaBlock) {
	*k = KafkaConfig{
		EmbeddedPartitions: defaultEmbeddedPartitions,
		ClientID:           defaultClientID,
		RequestTimeout:     defaultRequestTimeout,
		ProduceTimeout:     defaultProduceTimeout,
	}
	if b == nil {
		if d.schemaInvalid {
			return
		}
		d.errorf(d.missing, "Missing Kafka brokers",
			"kafka.brokers: at least one broker address is required unless embedded = true: add kafka { brokers = [\"host:9092\"] }, or kafka { embedded = true } to start a development broker")
		return
	}

	embedded, embeddedState := d.boolean(b.Embedded, "kafka.embedded")
	k.Embedded = embedded

	brokers, brokersState := d.strList(b.Brokers, "kafka.brokers")
	if brokersState == valid {
		ok := true
		rule := addrRule{needHost: true, allowPort0: embedded}
		for i, addr := range brokers {
			if msg := rule.check(addr); msg != "" {
				d.errorf(elemRange(b.Brokers, i), "Invalid broker address",
					"kafka.brokers: invalid address %q: %s; use host:port such as \"127.0.0.1:9092\"", addr, msg)
				ok = false
			}
		}
		if ok {
			k.Brokers = brokers
		}
	}
	switch {
	case embeddedState == invalid || brokersState == invalid:
	case embedded && len(brokers) > 1:
		d.errorf(b.Brokers.Range(), "Too many brokers for the embedded broker",
			"kafka.brokers: with embedded = true give one address, where the embedded broker listens, not %d: remove the others, or set embedded = false to use a real cluster",
			len(brokers))
		k.Brokers = nil
	case embedded && len(brokers) == 0:
		k.Brokers = []string{defaultEmbeddedBroker}
	case !embedded && len(brokers) == 0:
		subject := b.DefRange
		if brokersState == valid {
			subject = b.Brokers.Range()
		}
		d.errorf(subject, "Missing Kafka brokers",
			"kafka.brokers: at least one broker address is required unless embedded = true: add brokers = [\"host:9092\"], or set embedded = true to start a development broker")
	}

	if n, st := d.integer(b.EmbeddedPartitions, "kafka.embedded_partitions", 1, maxEmbeddedPartitions); st == valid {
		k.EmbeddedPartitions = int32(n)
	}
	if s, st := d.str(b.ClientID, "kafka.client_id"); st == valid {
		if s == "" {
			d.errorf(b.ClientID.Range(), "Empty kafka.client_id",
				"kafka.client_id must not be empty: set a name such as \"evproxy\", or remove the key to use the default %q", defaultClientID)
		} else {
			k.ClientID = s
		}
	}
	d.durationAttr(b.RequestTimeout, "kafka.request_timeout", time.Millisecond, math.MaxInt64, "", &k.RequestTimeout)
	d.durationAttr(b.ProduceTimeout, "kafka.produce_timeout", time.Millisecond, math.MaxInt32*time.Millisecond, "", &k.ProduceTimeout)
}

func (d *decoder) log(l *LogConfig, b *logBlock) {
	*l = LogConfig{Level: defaultLogLevel, Format: defaultLogFormat}
	if b == nil {
		return
	}
	d.enum(b.Level, "log.level", []string{"debug", "info", "warn", "error"}, &l.Level)
	d.enum(b.Format, "log.format", []string{"json", "console"}, &l.Format)
}

func (d *decoder) routes(blocks []*routeBlock, plugins []*pluginBlock, o *OutboxConfig) []RouteConfig {
	routes := make([]RouteConfig, 0, len(blocks))
	seen := make(map[string]*routeBlock, len(blocks))
	for _, b := range blocks {
		r := RouteConfig{Name: b.Name, Delivery: defaultDelivery, EventTypes: []string{"*"}, OnReject: defaultOnReject}
		where := fmt.Sprintf("route %q", b.Name)
		switch first, dup := seen[b.Name]; {
		case b.Name == "":
			d.errorf(b.NameRange, "Empty route name",
				"route names must not be empty: name the route, e.g. route \"orders\" { ... }")
		case dup:
			d.errorf(b.NameRange, "Duplicate route name",
				"%s: route names must be unique, and %q is already used by the route at %s: rename one of them",
				where, b.Name, position(first.DefRange))
		default:
			seen[b.Name] = b
		}

		topics, st := d.strList(b.Topics, where+": topics")
		switch {
		case st == absent || (st == valid && len(topics) == 0):
			subject := b.DefRange
			if st == valid {
				subject = b.Topics.Range()
			}
			d.errorf(subject, "Missing route topics",
				"%s: topics must list at least one topic glob, e.g. topics = [\"orders.*\"]", where)
		case st == valid:
			ok := true
			for i, t := range topics {
				if msg := checkTopicPattern(t); msg != "" {
					d.errorf(elemRange(b.Topics, i), "Invalid topic pattern", "%s: %s", where, msg)
					ok = false
				}
			}
			if ok {
				r.Topics = topics
			}
		}

		if s, st := d.str(b.Delivery, where+": delivery"); st == valid {
			switch s {
			case DeliveryDirect, DeliveryOutbox:
				r.Delivery = s
			default:
				d.errorf(b.Delivery.Range(), "Invalid delivery",
					"%s: unknown delivery %q: use %q or %q", where, s, DeliveryDirect, DeliveryOutbox)
			}
		}
		d.routeExtras(&r, b, plugins, where)
		d.routeOutbox(&r, b, o, where)
		routes = append(routes, r)
	}
	return routes
}

// checkTopicPattern returns what is wrong with the topic glob p, or "".
func checkTopicPattern(p string) string {
	if p == "" {
		return `a topic pattern is empty: write a glob such as "orders.*", or remove it`
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Sprintf(`invalid topic pattern %q: use path.Match syntax, where * matches any characters, ? one character, [abc] or [a-z] one of a set, and \ escapes the next character`, p)
	}
	if strings.Contains(p, "/") {
		return fmt.Sprintf(`topic pattern %q never matches, since Kafka topic names cannot contain '/': remove the '/'`, p)
	}
	return ""
}

// eval evaluates expr. It reports errors and returns invalid, and returns
// absent for a missing attribute or null.
func (d *decoder) eval(expr hcl.Expression) (cty.Value, state) {
	if expr == nil {
		return cty.NilVal, absent
	}
	v, diags := expr.Value(d.ctx)
	d.diags = append(d.diags, rewriteEnvDiags(diags)...)
	if diags.HasErrors() {
		return cty.NilVal, invalid
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return cty.NilVal, absent
	}
	if !v.IsWhollyKnown() {
		// Unreachable without variables; kept so a future variable cannot
		// slip an unknown value past validation.
		d.errorf(expr.Range(), "Unknown value", "the value is not known when the configuration is loaded: use a constant or env()")
		return cty.NilVal, invalid
	}
	return v, valid
}

// str evaluates a string attribute.
func (d *decoder) str(expr hcl.Expression, where string) (string, state) {
	v, st := d.eval(expr)
	if st != valid {
		return "", st
	}
	if v.Type() != cty.String {
		d.errorf(expr.Range(), "Invalid value type", "%s must be a string in quotes, got %s", where, v.Type().FriendlyName())
		return "", invalid
	}
	return v.AsString(), valid
}

// strList evaluates a list-of-strings attribute.
func (d *decoder) strList(expr hcl.Expression, where string) ([]string, state) {
	v, st := d.eval(expr)
	if st != valid {
		return nil, st
	}
	ty := v.Type()
	if !ty.IsTupleType() && !ty.IsListType() && !ty.IsSetType() {
		d.errorf(expr.Range(), "Invalid value type", "%s must be a list of strings such as [\"a\", \"b\"], got %s", where, ty.FriendlyName())
		return nil, invalid
	}
	elems := v.AsValueSlice()
	out := make([]string, len(elems))
	for i, e := range elems {
		if e.IsNull() || e.Type() != cty.String {
			d.errorf(elemRange(expr, i), "Invalid value type",
				"%s must be a list of strings, but element %d is %s", where, i+1, friendlyValue(e))
			st = invalid
			continue
		}
		out[i] = e.AsString()
	}
	if st != valid {
		return nil, st
	}
	return out, valid
}

// boolean evaluates a bool attribute; "true" and "false" strings convert.
func (d *decoder) boolean(expr hcl.Expression, where string) (bool, state) {
	v, st := d.eval(expr)
	if st != valid {
		return false, st
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		d.errorf(expr.Range(), "Invalid value type", "%s must be true or false, got %s", where, friendlyValue(v))
		return false, invalid
	}
	return b.True(), valid
}

// integer evaluates a whole-number attribute that must lie in [lo, hi];
// numeric strings convert.
func (d *decoder) integer(expr hcl.Expression, where string, lo, hi int64) (int64, state) {
	v, st := d.eval(expr)
	if st != valid {
		return 0, st
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		d.errorf(expr.Range(), "Invalid value type", "%s must be a whole number from %d to %d, got %s", where, lo, hi, friendlyValue(v))
		return 0, invalid
	}
	f := n.AsBigFloat()
	if !f.IsInt() || f.Cmp(new(big.Float).SetInt64(lo)) < 0 || f.Cmp(new(big.Float).SetInt64(hi)) > 0 {
		d.errorf(expr.Range(), "Value out of range", "%s must be a whole number from %d to %d, got %s", where, lo, hi, formatNumber(f))
		return 0, invalid
	}
	i, _ := f.Int64()
	return i, valid
}

// durationAttr evaluates a duration attribute in Go syntax that must lie in
// [lo, hi], and stores it in dst if it is set and valid. hint is appended to
// range errors.
func (d *decoder) durationAttr(expr hcl.Expression, where string, lo, hi time.Duration, hint string, dst *time.Duration) {
	v, st := d.eval(expr)
	if st != valid {
		return
	}
	if v.Type() == cty.Number {
		d.errorf(expr.Range(), "Invalid duration",
			"invalid duration %s for %s: a duration needs a unit and quotes, such as \"30s\" or \"5m\"", formatNumber(v.AsBigFloat()), where)
		return
	}
	s, st := d.str(expr, where)
	if st != valid {
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(expr.Range(), "Invalid duration",
			"invalid duration %q for %s: use Go duration syntax such as \"30s\" or \"5m\"", s, where)
		return
	}
	switch {
	case dur < lo && lo == 0:
		d.errorf(expr.Range(), "Invalid duration", "%s must not be negative, got %q%s", where, s, hint)
	case dur < lo:
		d.errorf(expr.Range(), "Invalid duration", "%s must be at least %s, got %q%s", where, lo, s, hint)
	case dur > hi:
		d.errorf(expr.Range(), "Invalid duration", "%s must be at most %s, got %q%s", where, hi, s, hint)
	default:
		*dst = dur
	}
}

// enum evaluates a string attribute that must be one of allowed, and stores
// it in dst if it is set and valid.
func (d *decoder) enum(expr hcl.Expression, where string, allowed []string, dst *string) {
	s, st := d.str(expr, where)
	if st != valid {
		return
	}
	for _, a := range allowed {
		if s == a {
			*dst = s
			return
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	d.errorf(expr.Range(), "Invalid value", "%s: unknown value %q: use one of %s", where, s, strings.Join(quoted, ", "))
}

// addrRule says which host:port addresses an attribute accepts.
type addrRule struct {
	needHost   bool // the host may not be empty
	routable   bool // the host may not be 0.0.0.0 or ::
	allowPort0 bool // port 0 (any free port) is allowed
}

// check returns what is wrong with addr, or "".
func (r addrRule) check(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return ae.Err
		}
		return err.Error()
	}
	lo := uint64(1)
	if r.allowPort0 {
		lo = 0
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n < lo {
		return fmt.Sprintf("port %q is not a number from %d to 65535", port, lo)
	}
	if host == "" && (r.needHost || r.routable) {
		return "the host is empty"
	}
	if r.routable && unspecifiedHost(host) {
		return fmt.Sprintf("%s is not an address clients can connect to", host)
	}
	return ""
}

// address evaluates a host:port attribute and stores it in dst if it is set
// and valid; example is a valid value for the message.
func (d *decoder) address(expr hcl.Expression, where, example string, rule addrRule, dst *string) state {
	s, st := d.str(expr, where)
	if st != valid {
		return st
	}
	if !d.checkAddress(expr, where, example, rule, s) {
		return invalid
	}
	*dst = s
	return valid
}

// checkAddress reports whether s, the value of expr, is a host:port address
// that rule accepts, and reports a diagnostic if not.
func (d *decoder) checkAddress(expr hcl.Expression, where, example string, rule addrRule, s string) bool {
	if msg := rule.check(s); msg != "" {
		d.errorf(expr.Range(), "Invalid address", "%s: invalid address %q: %s; use host:port such as %s", where, s, msg, example)
		return false
	}
	return true
}

// unspecifiedHost reports whether a listener on host binds all interfaces.
func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// elemRange returns the source range of element i of a list expression, or
// the whole expression's range when the element cannot be located (the list
// came from a function call, say).
func elemRange(expr hcl.Expression, i int) hcl.Range {
	if t, ok := expr.(*hclsyntax.TupleConsExpr); ok && i < len(t.Exprs) {
		return t.Exprs[i].Range()
	}
	return expr.Range()
}

// friendlyValue describes v for a message without printing huge values.
func friendlyValue(v cty.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case v.Type() == cty.String && len(v.AsString()) <= 64:
		return strconv.Quote(v.AsString())
	case v.Type() == cty.Number:
		return formatNumber(v.AsBigFloat())
	case v.Type() == cty.Bool:
		return strconv.FormatBool(v.True())
	}
	return v.Type().FriendlyName()
}

// formatNumber formats f for a message. It never formats a number of huge
// magnitude in full: math/big takes seconds to print 1e10000000.
func formatNumber(f *big.Float) string {
	if f.IsInt() {
		if i, acc := f.Int64(); acc == big.Exact {
			return strconv.FormatInt(i, 10)
		}
	}
	x, _ := f.Float64()
	switch {
	case math.IsInf(x, 0):
		return "a number too large to show"
	case x == 0 && f.Sign() != 0:
		return "a number too close to zero to show"
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}
