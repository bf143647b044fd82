package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evproxy/evproxy/internal/plugins"
)

// twinCase is one test vector of plugins/examples/validate/testdata/cases.json.
type twinCase struct {
	Name      string          `json:"name"`
	Config    json.RawMessage `json:"config"`
	EventType string          `json:"event_type"`
	InitError string          `json:"init_error"`
	Records   []struct {
		Topic string          `json:"topic"`
		Key   *string         `json:"key"`
		Value json.RawMessage `json:"value"`
		// ValueB64 holds values that are not valid UTF-8.
		ValueB64 []byte `json:"value_b64"`
	} `json:"records"`
	Verdicts []struct {
		Action string `json:"action"`
		Code   int32  `json:"code"`
		Reason string `json:"reason"`
	} `json:"verdicts"`
}

// The Go and C builds of validate give the same verdicts for every test
// vector, through the real host runtime.
func TestValidateTwinsAgree(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "plugins", "examples", "validate", "testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []twinCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	rt, err := plugins.NewRuntime(context.Background(), plugins.RuntimeConfig{CacheDir: filepath.Join(os.TempDir(), "evproxy-test-wazero-cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	ctx := context.Background()
	for _, twin := range []string{"validate", "validate-c"} {
		path := example(t, twin)
		for _, c := range file.Cases {
			t.Run(twin+"/"+c.Name, func(t *testing.T) {
				p, err := rt.Load(ctx, plugins.Config{Name: twin, Path: path, Config: c.Config, PoolSize: 1})
				if c.InitError != "" {
					if err == nil || !strings.Contains(err.Error(), c.InitError) {
						t.Fatalf("load error %v, want it to contain %q", err, c.InitError)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close(ctx)
				recs := make([]plugins.Record, len(c.Records))
				for i, r := range c.Records {
					recs[i] = plugins.Record{Topic: r.Topic}
					if r.Key != nil {
						recs[i].Key = []byte(*r.Key)
					}
					var s string
					switch {
					case r.ValueB64 != nil:
						recs[i].Value = r.ValueB64
					case len(r.Value) == 0 || string(r.Value) == "null":
					case json.Unmarshal(r.Value, &s) == nil:
						recs[i].Value = []byte(s)
					default:
						recs[i].Value = []byte(r.Value)
					}
				}
				vs, err := p.Process(ctx, c.EventType, recs)
				if err != nil {
					t.Fatal(err)
				}
				for i, want := range c.Verdicts {
					got := vs[i]
					if got.Action.String() != want.Action || got.Code != want.Code || got.Reason != want.Reason {
						t.Fatalf("record %d (%s): %s %d %q, want %s %d %q", i, recs[i].Value, got.Action, got.Code, got.Reason, want.Action, want.Code, want.Reason)
					}
				}
			})
		}
	}
}
