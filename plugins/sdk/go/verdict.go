package evp

import (
	"strconv"
	"strings"
)

// Action is what a verdict does with its record.
type Action uint8

// The actions of the ABI (docs/plugin-abi.md §3.2), with their wire values.
const (
	ActionKeep    Action = 0 // the record goes on unchanged
	ActionDrop    Action = 1 // the record is discarded silently
	ActionReject  Action = 2 // the record is refused with a code and a reason
	ActionReplace Action = 3 // the record is replaced by zero or more outputs
)

func (a Action) String() string {
	switch a {
	case ActionKeep:
		return "KEEP"
	case ActionDrop:
		return "DROP"
	case ActionReject:
		return "REJECT"
	case ActionReplace:
		return "REPLACE"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Verdict is a plugin's decision about one record. The zero Verdict is
// [Keep]. Build one with [Keep], [Drop], [Reject], [Replace], [Modified] or
// [RouteTo].
type Verdict struct {
	action Action
	code   int32
	reason string
	single bool   // REPLACE with exactly one output, held in one
	one    Output // so that Modified and RouteTo allocate nothing
	outs   []Output
}

// Keep lets the record go on unchanged.
func Keep() Verdict { return Verdict{} }

// Drop discards the record silently.
func Drop() Verdict { return Verdict{action: ActionDrop} }

// Reject refuses the record: evproxy reports code and reason to the
// producer or the dead letter, as the route's on_reject says. Codes are the
// plugin's own; 0–65535 is suggested.
func Reject(code int32, reason string) Verdict {
	return Verdict{action: ActionReject, code: code, reason: reason}
}

// Replace replaces the record by outs, in order: one output modifies or
// routes it, several fan it out, none drops it. Each output starts as a copy
// of the input record and overrides the fields it sets (see [Output]).
func Replace(outs ...Output) Verdict {
	if len(outs) == 1 {
		return Verdict{action: ActionReplace, single: true, one: outs[0]}
	}
	return Verdict{action: ActionReplace, outs: outs}
}

// Modified replaces the record by r: REPLACE with one output carrying r's
// topic, key, value and headers (all of them, so fields set to nil become
// null). Partition and timestamp cannot be changed; a different topic routes
// the record there.
func Modified(r Record) Verdict {
	return Verdict{action: ActionReplace, single: true, one: OutputOf(r)}
}

// RouteTo sends the record, otherwise unchanged, to topic.
func RouteTo(topic string) Verdict {
	return Verdict{action: ActionReplace, single: true, one: To(topic)}
}

// Action returns what v does.
func (v Verdict) Action() Action { return v.action }

// Code returns the reject code (REJECT only).
func (v Verdict) Code() int32 { return v.code }

// Reason returns the reject reason (REJECT only).
func (v Verdict) Reason() string { return v.reason }

// Outputs returns the outputs of a REPLACE verdict.
func (v Verdict) Outputs() []Output {
	if v.single {
		return []Output{v.one}
	}
	return v.outs
}

// NumOutputs returns len(v.Outputs()) without allocating.
func (v Verdict) NumOutputs() int {
	if v.single {
		return 1
	}
	return len(v.outs)
}

// Output returns v.Outputs()[i] without allocating.
func (v Verdict) Output(i int) Output {
	if v.single && i == 0 {
		return v.one
	}
	return v.outs[i]
}

// String describes v for test failures and logs, e.g.
// REJECT(1, "missing field: id") or REPLACE[{topic=audit}, {}].
func (v Verdict) String() string {
	switch v.action {
	case ActionReject:
		return "REJECT(" + strconv.Itoa(int(v.code)) + ", " + strconv.Quote(v.reason) + ")"
	case ActionReplace:
		var b strings.Builder
		b.WriteString("REPLACE[")
		for i := range v.NumOutputs() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(v.Output(i).String())
		}
		b.WriteString("]")
		return b.String()
	}
	return v.action.String()
}

// Output fields present bits (docs/plugin-abi.md §3.2).
const (
	fieldTopic   = 1 << 0
	fieldKey     = 1 << 1
	fieldValue   = 1 << 2
	fieldHeaders = 1 << 3
)

// Output is one record a REPLACE verdict produces. It starts as a copy of
// the input record ([Original]); each With method returns a copy that
// overrides one field. Outputs keep the input's partition when their topic
// is the input's; outputs to another topic are partitioned by key.
type Output struct {
	fields  uint8
	topic   string
	key     []byte
	value   []byte
	headers []Header
}

// Original returns the output that is an unchanged copy of the input
// record (in a fan-out, the original next to its copies).
func Original() Output { return Output{} }

// To returns the output that is the input record sent to topic.
func To(topic string) Output { return Output{fields: fieldTopic, topic: topic} }

// OutputOf returns the output that carries all of r's topic, key, value and
// headers.
func OutputOf(r Record) Output {
	return Output{fields: fieldTopic | fieldKey | fieldValue | fieldHeaders,
		topic: r.Topic, key: r.Key, value: r.Value, headers: r.Headers}
}

// WithTopic returns o sent to topic.
func (o Output) WithTopic(topic string) Output { o.fields |= fieldTopic; o.topic = topic; return o }

// WithKey returns o with key k (nil: null).
func (o Output) WithKey(k []byte) Output { o.fields |= fieldKey; o.key = k; return o }

// WithValue returns o with value v (nil: null).
func (o Output) WithValue(v []byte) Output { o.fields |= fieldValue; o.value = v; return o }

// WithHeaders returns o with exactly the headers h, which replace all of the
// input's (nil or empty: no headers).
func (o Output) WithHeaders(h []Header) Output { o.fields |= fieldHeaders; o.headers = h; return o }

// Topic returns the topic o sets, if it sets one.
func (o Output) Topic() (string, bool) { return o.topic, o.fields&fieldTopic != 0 }

// Key returns the key o sets, if it sets one.
func (o Output) Key() ([]byte, bool) { return o.key, o.fields&fieldKey != 0 }

// Value returns the value o sets, if it sets one.
func (o Output) Value() ([]byte, bool) { return o.value, o.fields&fieldValue != 0 }

// Headers returns the headers o sets, if it sets them.
func (o Output) Headers() ([]Header, bool) { return o.headers, o.fields&fieldHeaders != 0 }

// String describes o, e.g. {topic=audit key=k1 value=2B headers=[ce_id]}; {}
// is an unchanged copy of the input.
func (o Output) String() string {
	var parts []string
	if o.fields&fieldTopic != 0 {
		parts = append(parts, "topic="+o.topic)
	}
	if o.fields&fieldKey != 0 {
		parts = append(parts, "key="+describeBytes(o.key))
	}
	if o.fields&fieldValue != 0 {
		parts = append(parts, "value="+describeBytes(o.value))
	}
	if o.fields&fieldHeaders != 0 {
		names := make([]string, len(o.headers))
		for i, h := range o.headers {
			names[i] = h.Name
		}
		parts = append(parts, "headers=["+strings.Join(names, " ")+"]")
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func describeBytes(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case len(b) <= 64:
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:61])+"...") + "(" + strconv.Itoa(len(b)) + "B)"
}
