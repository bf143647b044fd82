package evptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
)

// Case is one test vector of a cases file (testdata/cases.json): a plugin
// config, one input batch and the verdicts expected, or an expected
// failure to start. The same files drive the native tests of a plugin's
// Go source (RunCases) and tests of its .wasm builds under a real host.
//
// A cases file is {"plugin": "name", "cases": [case, ...]} where a case is
//
//	{"name": "...", "config": {...}, "now_ms": 1714566896789,
//	 "tables": {"name": {"key": "value"}}, "event_type": "order.created",
//	 "records": [record, ...], "verdicts": [verdict, ...]}
//
// or, for a config the plugin must refuse, {"name", "config",
// "init_error": "text the logged reason contains"}. config defaults to {},
// now_ms to the real clock, event_type to EventType of the first record.
// Records and verdicts have the JSON forms of [ReadEvents] and
// [AppendVerdictJSON].
type Case struct {
	Name      string
	Config    []byte
	NowMillis *int64
	Tables    map[string]map[string]string
	EventType string
	Records   []evp.Record
	InitError *string
	Verdicts  []Expect
}

type jsonCase struct {
	Name      string                       `json:"name"`
	Config    json.RawMessage              `json:"config"`
	NowMillis *int64                       `json:"now_ms"`
	Tables    map[string]map[string]string `json:"tables"`
	EventType *string                      `json:"event_type"`
	Records   []jsonRecord                 `json:"records"`
	InitError *string                      `json:"init_error"`
	Verdicts  []json.RawMessage            `json:"verdicts"`
}

// LoadCases reads a cases file.
func LoadCases(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file struct {
		Plugin string     `json:"plugin"`
		About  string     `json:"about"`
		Cases  []jsonCase `json:"cases"`
	}
	if err := strictUnmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cases := make([]Case, 0, len(file.Cases))
	for i, jc := range file.Cases {
		c, err := jc.parse()
		if err != nil {
			return nil, fmt.Errorf("%s: case %d (%s): %w", path, i, jc.Name, err)
		}
		cases = append(cases, c)
	}
	return cases, nil
}

func (jc *jsonCase) parse() (Case, error) {
	c := Case{Name: jc.Name, Config: []byte("{}"), NowMillis: jc.NowMillis, Tables: jc.Tables, InitError: jc.InitError}
	if jc.Name == "" {
		return c, fmt.Errorf(`"name" is required`)
	}
	if jc.Config != nil {
		c.Config = []byte(jc.Config)
	}
	for i := range jc.Records {
		r, et, err := jc.Records[i].record()
		if err != nil {
			return c, fmt.Errorf("record %d: %w", i, err)
		}
		if et != "" {
			return c, fmt.Errorf("record %d: event_type belongs to the case", i)
		}
		c.Records = append(c.Records, r)
	}
	switch {
	case jc.EventType != nil:
		c.EventType = *jc.EventType
	case len(c.Records) > 0:
		c.EventType = EventType(c.Records[0])
	}
	if c.InitError != nil {
		if len(jc.Records) > 0 || len(jc.Verdicts) > 0 {
			return c, fmt.Errorf("a case with init_error has no records or verdicts")
		}
		return c, nil
	}
	if len(jc.Verdicts) != len(c.Records) {
		return c, fmt.Errorf("%d records but %d verdicts", len(c.Records), len(jc.Verdicts))
	}
	for i, raw := range jc.Verdicts {
		e, err := ParseExpect(raw)
		if err != nil {
			return c, fmt.Errorf("verdict %d: %w", i, err)
		}
		c.Verdicts = append(c.Verdicts, e)
	}
	return c, nil
}

// Check compares got, the verdicts for c.Records, with c.Verdicts.
func (c *Case) Check(got []evp.Verdict) error {
	if len(got) != len(c.Verdicts) {
		return fmt.Errorf("%d verdicts, want %d", len(got), len(c.Verdicts))
	}
	var errs []string
	for i := range got {
		if err := c.Verdicts[i].Check(got[i]); err != nil {
			errs = append(errs, fmt.Sprintf("record %d: %v", i, err))
		}
	}
	if errs != nil {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// CheckInitError checks the reason a plugin logged when it refused to
// start against c.InitError.
func (c *Case) CheckInitError(reason string) error {
	if c.InitError == nil {
		return fmt.Errorf("the plugin refused to start: %s", reason)
	}
	if !strings.Contains(reason, *c.InitError) {
		return fmt.Errorf("the plugin refused to start with %q, want a reason containing %q", reason, *c.InitError)
	}
	return nil
}

// RunCases runs every case of the cases file at path as a subtest, each on
// a fresh Host and a fresh plugin from newPlugin.
func RunCases(t *testing.T, path string, newPlugin func() evp.Plugin) {
	t.Helper()
	cases, err := LoadCases(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			h := NewHost()
			if c.NowMillis != nil {
				h.SetNow(*c.NowMillis)
			}
			for name, tbl := range c.Tables {
				h.SetTable(name, tbl)
			}
			in, err := h.Instantiate(newPlugin(), string(c.Config))
			if err != nil {
				if err := c.CheckInitError(h.lastError()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if c.InitError != nil {
				t.Fatalf("the plugin started, want it to refuse with %q", *c.InitError)
			}
			got, err := in.Process(c.EventType, c.Records)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Check(got); err != nil {
				t.Error(err)
			}
		})
	}
}

// Expect is an expected verdict.
type Expect struct {
	action  evp.Action
	code    int32
	reason  string
	outputs []expectOutput
	text    []byte // as written, for messages
}

type expectOutput struct {
	topic            *string
	key, value       []byte
	hasKey, hasValue bool
	headers          []jsonHeader
	hasHeaders       bool
}

// ParseExpect parses an expected verdict in the JSON form.
func ParseExpect(data []byte) (Expect, error) {
	var jv struct {
		Action  string  `json:"action"`
		Code    *int32  `json:"code"`
		Reason  *string `json:"reason"`
		Outputs []struct {
			Topic    *string         `json:"topic"`
			Key      json.RawMessage `json:"key"`
			KeyB64   *string         `json:"key_b64"`
			Value    json.RawMessage `json:"value"`
			ValueB64 *string         `json:"value_b64"`
			Headers  json.RawMessage `json:"headers"`
		} `json:"outputs"`
	}
	e := Expect{text: bytes.Clone(data)}
	if err := strictUnmarshal(data, &jv); err != nil {
		return e, err
	}
	switch jv.Action {
	case "keep", "drop":
		e.action = evp.ActionKeep
		if jv.Action == "drop" {
			e.action = evp.ActionDrop
		}
		if jv.Code != nil || jv.Reason != nil || jv.Outputs != nil {
			return e, fmt.Errorf("%s takes no code, reason or outputs", jv.Action)
		}
	case "reject":
		if jv.Code == nil || jv.Reason == nil || jv.Outputs != nil {
			return e, fmt.Errorf("reject takes a code and a reason")
		}
		e.action, e.code, e.reason = evp.ActionReject, *jv.Code, *jv.Reason
	case "replace":
		if jv.Code != nil || jv.Reason != nil || jv.Outputs == nil {
			return e, fmt.Errorf("replace takes outputs")
		}
		e.action = evp.ActionReplace
		for i, jo := range jv.Outputs {
			o := expectOutput{topic: jo.Topic}
			var err error
			if o.key, o.hasKey, err = bytesField("key", jo.Key, jo.KeyB64); err != nil {
				return e, fmt.Errorf("output %d: %w", i, err)
			}
			if o.value, o.hasValue, err = bytesField("value", jo.Value, jo.ValueB64); err != nil {
				return e, fmt.Errorf("output %d: %w", i, err)
			}
			if o.headers, o.hasHeaders, err = parseHeaders(jo.Headers, true); err != nil {
				return e, fmt.Errorf("output %d: %w", i, err)
			}
			e.outputs = append(e.outputs, o)
		}
	default:
		return e, fmt.Errorf("unknown action %q (keep, drop, reject, replace)", jv.Action)
	}
	return e, nil
}

// Check compares got with e.
func (e Expect) Check(got evp.Verdict) error {
	if err := e.check(got); err != nil {
		return fmt.Errorf("%v\n\tgot  %s\n\twant %s", err, AppendVerdictJSON(nil, got), e.text)
	}
	return nil
}

func (e Expect) check(got evp.Verdict) error {
	if got.Action() != e.action {
		return fmt.Errorf("action %v, want %v", got.Action(), e.action)
	}
	switch e.action {
	case evp.ActionReject:
		if got.Code() != e.code || got.Reason() != e.reason {
			return fmt.Errorf("reject (%d, %q), want (%d, %q)", got.Code(), got.Reason(), e.code, e.reason)
		}
	case evp.ActionReplace:
		if got.NumOutputs() != len(e.outputs) {
			return fmt.Errorf("%d outputs, want %d", got.NumOutputs(), len(e.outputs))
		}
		for i, want := range e.outputs {
			if err := want.check(got.Output(i)); err != nil {
				return fmt.Errorf("output %d: %v", i, err)
			}
		}
	}
	return nil
}

func (w expectOutput) check(o evp.Output) error {
	t, hasTopic := o.Topic()
	switch {
	case hasTopic != (w.topic != nil):
		return fmt.Errorf("topic set: %v, want %v", hasTopic, w.topic != nil)
	case hasTopic && t != *w.topic:
		return fmt.Errorf("topic %q, want %q", t, *w.topic)
	}
	if err := checkBytes("key", o.Key, w.key, w.hasKey); err != nil {
		return err
	}
	if err := checkBytes("value", o.Value, w.value, w.hasValue); err != nil {
		return err
	}
	hs, has := o.Headers()
	if has != w.hasHeaders {
		return fmt.Errorf("headers set: %v, want %v", has, w.hasHeaders)
	}
	if len(hs) != len(w.headers) {
		return fmt.Errorf("%d headers, want %d", len(hs), len(w.headers))
	}
	for i, h := range hs {
		wh := w.headers[i]
		switch {
		case h.Name != wh.name:
			return fmt.Errorf("header %d is %q, want %q", i, h.Name, wh.name)
		case wh.regex != nil:
			if h.Value == nil || !wh.regex.Match(h.Value) {
				return fmt.Errorf("header %q = %q does not match %s", h.Name, h.Value, wh.regex)
			}
		case (h.Value == nil) != (wh.value == nil) || !bytes.Equal(h.Value, wh.value):
			return fmt.Errorf("header %q = %s, want %s", h.Name, quoteBytes(h.Value), quoteBytes(wh.value))
		}
	}
	return nil
}

func checkBytes(name string, get func() ([]byte, bool), want []byte, wantSet bool) error {
	got, set := get()
	switch {
	case set != wantSet:
		return fmt.Errorf("%s set: %v, want %v", name, set, wantSet)
	case (got == nil) != (want == nil) || !bytes.Equal(got, want):
		return fmt.Errorf("%s %s, want %s", name, quoteBytes(got), quoteBytes(want))
	}
	return nil
}

func quoteBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("%q", b)
}
