package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPluginsAndRouteKeys(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "enrich.wasm")
	table := filepath.Join(dir, "countries.json")
	os.WriteFile(wasm, []byte("\x00asm"), 0o600)
	os.WriteFile(table, []byte(`{"de":"Germany"}`), 0o600)
	src := `
kafka {
  embedded = true
}
dead_letter {
  enabled      = true
  topic_suffix = ".dlq"
}
plugin "enrich" {
  path         = "enrich.wasm"
  config       = { source = "checkout", required = ["id", "amount"] }
  memory_limit = "32MiB"
  timeout      = "250ms"
  tables       = { countries = "countries.json" }
}
route "orders" {
  topics          = ["orders.*"]
  event_types     = ["order.*"]
  event_type_from = "/type"
  plugins         = ["enrich"]
  on_reject       = "error"
}
route "rest" {
  topics = ["*"]
}
`
	cfg, err := parse([]byte(src), filepath.Join(dir, "config.hcl"), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DeadLetter != (DeadLetterConfig{Enabled: true, TopicSuffix: ".dlq"}) {
		t.Fatalf("dead_letter %+v", cfg.DeadLetter)
	}
	p := cfg.Plugins[0]
	if p.Name != "enrich" || p.Path != wasm || p.MemoryLimit != 32<<20 || p.Timeout != 250*time.Millisecond || p.Tables["countries"] != table {
		t.Fatalf("plugin %+v", p)
	}
	if string(p.Config) != `{"required":["id","amount"],"source":"checkout"}` {
		t.Fatalf("plugin config JSON %s", p.Config)
	}
	r := cfg.Routes[0]
	if r.EventTypeFrom != "/type" || r.OnReject != OnRejectError || r.Plugins[0] != "enrich" || r.EventTypes[0] != "order.*" {
		t.Fatalf("route %+v", r)
	}
	if d := cfg.Routes[1]; d.OnReject != OnRejectDeadLetter || len(d.EventTypes) != 1 || d.EventTypes[0] != "*" || len(d.Plugins) != 0 {
		t.Fatalf("defaults of a plain route %+v", d)
	}
}

func TestPluginErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.wasm"), []byte("\x00asm"), 0o600)
	cases := []struct{ name, src, want string }{
		{"missing file", `plugin "p" { path = "nope.wasm" }`, `config.hcl:4:21: Missing file; plugin "p": path: stat ` + filepath.Join(dir, "nope.wasm") + `: no such file or directory`},
		{"no path", `plugin "p" { timeout = "1s" }`, `Missing plugin path; plugin "p": path is required`},
		{"bad size", "plugin \"p\" {\n path = \"ok.wasm\"\n memory_limit = \"lots\"\n}", `plugin "p": memory_limit "lots": not a size`},
		{"bad timeout", "plugin \"p\" {\n path = \"ok.wasm\"\n timeout = \"fast\"\n}", `invalid duration "fast" for plugin "p": timeout`},
		{"unknown plugin", "plugin \"p\" {\n path = \"ok.wasm\"\n}\nroute \"r\" {\n topics = [\"*\"]\n plugins = [\"p\", \"q\"]\n}", `route "r": plugin "q" is not defined (defined plugins: "p")`},
		{"bad on_reject", "route \"r\" {\n topics = [\"*\"]\n on_reject = \"ignore\"\n}", `route "r": on_reject: unknown value "ignore": use one of "dead_letter", "error", "drop"`},
		{"bad pointer", "route \"r\" {\n topics = [\"*\"]\n event_type_from = \"type\"\n}", `event_type_from "type" is not a JSON pointer`},
		{"empty suffix", "dead_letter {\n topic_suffix = \"\"\n}", `dead_letter.topic_suffix must not be empty`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "kafka {\n  embedded = true\n}\n" + c.src
			_, err := parse([]byte(src), filepath.Join(dir, "config.hcl"), lookupTestEnv)
			var de *DiagnosticsError
			if !errors.As(err, &de) {
				t.Fatalf("err %v, want diagnostics", err)
			}
			if !strings.Contains(de.Error(), c.want) {
				t.Fatalf("diagnostics:\n%s\nwant them to contain %q", de.Error(), c.want)
			}
		})
	}
}
