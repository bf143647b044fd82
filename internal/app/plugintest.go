package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/evproxy/evproxy/internal/plugins"
)

// PluginTestOptions configure RunPluginTest.
type PluginTestOptions struct {
	Path    string        // .wasm file
	Config  string        // plugin configuration, JSON ("" = {})
	Timeout time.Duration // per call; 0 disables
	Log     zerolog.Logger
}

// testEvent is one line of the input: a record to run the plugin on.
type testEvent struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Key       *string           `json:"key"`
	Value     json.RawMessage   `json:"value"`
	Headers   map[string]string `json:"headers"`
	Timestamp int64             `json:"timestamp"`
	EventType string            `json:"event_type"`
}

// testVerdict is one line of the output.
type testVerdict struct {
	Action  string       `json:"action"`
	Code    int32        `json:"code,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Outputs []testOutput `json:"outputs,omitempty"`
}

type testOutput struct {
	Topic   string            `json:"topic"`
	Key     *string           `json:"key"`
	Value   json.RawMessage   `json:"value"`
	Headers map[string]string `json:"headers,omitempty"`
}

// RunPluginTest loads a plugin and runs it on the JSON-lines events of in,
// writing one JSON verdict line per event to out, in order. Each event is
// {"topic", "partition", "key", "value", "headers", "timestamp",
// "event_type"}; a value that is a JSON string is passed as its text, any
// other JSON value as its JSON encoding. The event type defaults to header
// ce_type, then event_type, then the topic.
func RunPluginTest(ctx context.Context, in io.Reader, out io.Writer, o PluginTestOptions) error {
	if _, err := os.Stat(o.Path); err != nil {
		return fmt.Errorf("plugin: %w", err)
	}
	cfg := []byte(o.Config)
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	if !json.Valid(cfg) {
		return fmt.Errorf("--config is not valid JSON: %s", cfg)
	}
	rt, err := plugins.NewRuntime(ctx, plugins.RuntimeConfig{})
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	name := filepath.Base(o.Path)
	p, err := rt.Load(ctx, plugins.Config{Name: name, Path: o.Path, Config: cfg, Timeout: o.Timeout, PoolSize: 1, Logger: o.Log})
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 64<<20)
	enc := json.NewEncoder(out)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var ev testEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if ev.Topic == "" {
			return fmt.Errorf("line %d: \"topic\" is required", line)
		}
		rec := plugins.Record{Topic: ev.Topic, Partition: ev.Partition, Timestamp: ev.Timestamp, Value: jsonValue(ev.Value)}
		if ev.Key != nil {
			rec.Key = []byte(*ev.Key)
		}
		for k, v := range ev.Headers {
			rec.Headers = append(rec.Headers, plugins.Header{Key: k, Value: []byte(v)})
		}
		et := ev.EventType
		if et == "" {
			et = ev.Headers["ce_type"]
		}
		if et == "" {
			et = ev.Headers["event_type"]
		}
		if et == "" {
			et = ev.Topic
		}
		vs, err := p.Process(ctx, et, []plugins.Record{rec})
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := enc.Encode(toTestVerdict(rec, vs[0])); err != nil {
			return err
		}
	}
	return sc.Err()
}

// jsonValue is the record value of an event's "value".
func jsonValue(raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return []byte(raw)
}

// outValue renders bytes as JSON if they are JSON, else as a JSON string.
func outValue(b []byte) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

func toTestVerdict(in plugins.Record, v plugins.Verdict) testVerdict {
	switch v.Action {
	case plugins.Keep:
		return testVerdict{Action: "keep"}
	case plugins.Drop:
		return testVerdict{Action: "drop"}
	case plugins.Reject:
		return testVerdict{Action: "reject", Code: v.Code, Reason: v.Reason}
	}
	tv := testVerdict{Action: "replace", Outputs: []testOutput{}}
	for _, o := range v.Outputs {
		topic, key, value, headers := in.Topic, in.Key, in.Value, in.Headers
		if o.TopicSet {
			topic = o.Topic
		}
		if o.KeySet {
			key = o.Key
		}
		if o.ValueSet {
			value = o.Value
		}
		if o.HeadersSet {
			headers = o.Headers
		}
		to := testOutput{Topic: topic, Value: outValue(value)}
		if key != nil {
			k := string(key)
			to.Key = &k
		}
		if len(headers) > 0 {
			to.Headers = map[string]string{}
			for _, h := range headers {
				to.Headers[h.Key] = string(h.Value)
			}
		}
		tv.Outputs = append(tv.Outputs, to)
	}
	return tv
}

// ValidatePlugins loads every plugin of cfg once (compile, ABI check,
// evp_init with its config) and closes it again.
func ValidatePlugins(ctx context.Context, cfgPlugins []plugins.Config) error {
	if len(cfgPlugins) == 0 {
		return nil
	}
	rt, err := plugins.NewRuntime(ctx, plugins.RuntimeConfig{})
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	for _, c := range cfgPlugins {
		c.PoolSize = 1
		p, err := rt.Load(ctx, c)
		if err != nil {
			return err
		}
		_ = p.Close(ctx)
	}
	return nil
}

// PluginConfigs is the runtime configuration of cfg's plugin blocks.
func (a *App) PluginConfigs() []plugins.Config { return a.pluginConfigs(a.cfg, nil) }
