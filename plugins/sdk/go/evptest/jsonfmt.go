package evptest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"unicode/utf8"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
)

// The JSON forms of records and verdicts: lines of events files (what
// `evproxy plugin test` reads), test vectors (testdata/cases.json) and
// printed verdicts. plugins/README.md documents them.
//
// A record is an object:
//
//	{"topic": "orders", "partition": 0, "timestamp": 1714566896789,
//	 "key": "k1", "value": {"id": 1}, "headers": {"ce_type": "order.created"},
//	 "event_type": "order.created"}
//
// topic is required, the rest optional. key and value: a JSON string is the
// bytes of its text, null or absent is null, any other JSON value is its
// exact text; key_b64/value_b64 give bytes in base64 instead. headers is an
// object whose members, in order and duplicates included, are the headers;
// a value is a string or null. event_type (events files only) overrides
// the event type evproxy would derive (EventType).
//
// A verdict is {"action": "keep"}, {"action": "drop"},
// {"action": "reject", "code": 1, "reason": "..."} or
// {"action": "replace", "outputs": [output, ...]}, where an output is an
// object with the fields it sets among topic, key, value (as in records, or
// key_b64/value_b64) and headers; absent fields are the input's. In
// expected verdicts a header value may be {"regex": "^...$"}.

// Event is one line of an events file.
type Event struct {
	Record    evp.Record
	EventType string // the line's event_type, or EventType(Record)
}

type jsonRecord struct {
	Topic     *string         `json:"topic"`
	Partition int32           `json:"partition"`
	Timestamp int64           `json:"timestamp"`
	Key       json.RawMessage `json:"key"`
	KeyB64    *string         `json:"key_b64"`
	Value     json.RawMessage `json:"value"`
	ValueB64  *string         `json:"value_b64"`
	Headers   json.RawMessage `json:"headers"`
	EventType string          `json:"event_type"`
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// ParseRecord parses one record in the JSON form; eventType is its
// event_type member ("" when absent).
func ParseRecord(data []byte) (r evp.Record, eventType string, err error) {
	var jr jsonRecord
	if err := strictUnmarshal(data, &jr); err != nil {
		return r, "", err
	}
	return jr.record()
}

func (jr *jsonRecord) record() (r evp.Record, eventType string, err error) {
	if jr.Topic == nil {
		return r, "", errors.New(`"topic" is required`)
	}
	r = evp.Record{Topic: *jr.Topic, Partition: jr.Partition, Timestamp: jr.Timestamp}
	if r.Key, _, err = bytesField("key", jr.Key, jr.KeyB64); err != nil {
		return r, "", err
	}
	if r.Value, _, err = bytesField("value", jr.Value, jr.ValueB64); err != nil {
		return r, "", err
	}
	hs, _, err := parseHeaders(jr.Headers, false)
	if err != nil {
		return r, "", err
	}
	for _, h := range hs {
		r.Headers = append(r.Headers, evp.Header{Name: h.name, Value: h.value})
	}
	return r, jr.EventType, nil
}

// bytesField decodes key/value and their _b64 twins; present is false when
// both are absent.
func bytesField(name string, raw json.RawMessage, b64 *string) (b []byte, present bool, err error) {
	switch {
	case raw != nil && b64 != nil:
		return nil, false, fmt.Errorf("both %q and %q", name, name+"_b64")
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, false, fmt.Errorf("%s_b64: %w", name, err)
		}
		return append([]byte{}, b...), true, nil
	case raw == nil:
		return nil, false, nil
	case string(raw) == "null":
		return nil, true, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, fmt.Errorf("%s: %w", name, err)
		}
		return append([]byte{}, s...), true, nil
	}
	return append([]byte{}, raw...), true, nil
}

type jsonHeader struct {
	name  string
	value []byte
	regex *regexp.Regexp
}

// parseHeaders reads a headers object in order, keeping duplicates.
func parseHeaders(raw json.RawMessage, allowRegex bool) (hs []jsonHeader, present bool, err error) {
	if raw == nil || string(raw) == "null" {
		return nil, raw != nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false, errors.New(`"headers" must be an object of name: value`)
	}
	hs = []jsonHeader{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false, err
		}
		h := jsonHeader{name: t.(string)}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false, err
		}
		switch {
		case string(v) == "null":
		case v[0] == '"':
			var s string
			_ = json.Unmarshal(v, &s)
			h.value = append([]byte{}, s...)
		case allowRegex && v[0] == '{':
			var m struct {
				Regex string `json:"regex"`
			}
			if err := strictUnmarshal(v, &m); err != nil {
				return nil, false, fmt.Errorf("header %q: %w", h.name, err)
			}
			if h.regex, err = regexp.Compile(m.Regex); err != nil {
				return nil, false, fmt.Errorf("header %q: %w", h.name, err)
			}
		default:
			return nil, false, fmt.Errorf("header %q: the value must be a string or null, got %s", h.name, v)
		}
		hs = append(hs, h)
	}
	return hs, true, nil
}

// ReadEvents reads an events file: one record per line in the JSON form
// (plus an optional "event_type"); blank lines and lines starting with #
// are skipped.
func ReadEvents(r io.Reader) ([]Event, error) {
	var evs []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		rec, et, err := ParseRecord(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if et == "" {
			et = EventType(rec)
		}
		evs = append(evs, Event{Record: rec, EventType: et})
	}
	return evs, sc.Err()
}

// AppendRecordJSON appends r in the JSON form.
func AppendRecordJSON(dst []byte, r evp.Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = strconv.AppendQuote(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp, 10)
	dst = appendBytesJSON(dst, "key", r.Key)
	dst = appendBytesJSON(dst, "value", r.Value)
	dst = appendHeadersJSON(dst, r.Headers)
	return append(dst, '}')
}

// AppendVerdictJSON appends v in the JSON form.
func AppendVerdictJSON(dst []byte, v evp.Verdict) []byte {
	switch v.Action() {
	case evp.ActionKeep:
		return append(dst, `{"action":"keep"}`...)
	case evp.ActionDrop:
		return append(dst, `{"action":"drop"}`...)
	case evp.ActionReject:
		dst = append(dst, `{"action":"reject","code":`...)
		dst = strconv.AppendInt(dst, int64(v.Code()), 10)
		dst = append(dst, `,"reason":`...)
		dst = appendJSONString(dst, v.Reason())
		return append(dst, '}')
	case evp.ActionReplace:
		dst = append(dst, `{"action":"replace","outputs":[`...)
		for i := range v.NumOutputs() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendOutputJSON(dst, v.Output(i))
		}
		return append(dst, "]}"...)
	}
	return append(dst, `{"action":"unknown"}`...)
}

func appendOutputJSON(dst []byte, o evp.Output) []byte {
	dst = append(dst, '{')
	n := len(dst)
	if t, ok := o.Topic(); ok {
		dst = append(dst, `,"topic":`...)
		dst = appendJSONString(dst, t)
	}
	if k, ok := o.Key(); ok {
		dst = appendBytesJSON(dst, "key", k)
	}
	if v, ok := o.Value(); ok {
		dst = appendBytesJSON(dst, "value", v)
	}
	if h, ok := o.Headers(); ok {
		dst = appendHeadersJSON(dst, h)
	}
	if len(dst) > n { // drop the first comma
		dst = append(dst[:n], dst[n+1:]...)
	}
	return append(dst, '}')
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// appendBytesJSON appends ,"name":<bytes> choosing the form that reads back
// as exactly b.
func appendBytesJSON(dst []byte, name string, b []byte) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	switch {
	case b == nil:
		return append(dst, `":null`...)
	case len(b) > 0 && b[0] != '"' && !isSpaceByte(b[0]) && !isSpaceByte(b[len(b)-1]) && string(b) != "null" && json.Valid(b):
		dst = append(dst, `":`...)
		return append(dst, b...)
	case utf8.Valid(b):
		dst = append(dst, `":`...)
		return appendJSONString(dst, string(b))
	}
	dst = append(dst, `_b64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func appendHeadersJSON(dst []byte, hs []evp.Header) []byte {
	dst = append(dst, `,"headers":{`...)
	for i, h := range hs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, h.Name)
		dst = append(dst, ':')
		if h.Value == nil {
			dst = append(dst, "null"...)
		} else {
			dst = appendJSONString(dst, string(h.Value))
		}
	}
	return append(dst, '}')
}
