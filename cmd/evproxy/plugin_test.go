package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPluginTestCommand(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		`{"topic":"orders","key":"a","value":{"id":1}}`,
		`{"topic":"orders","key":"b","value":"please drop me"}`,
		`{"topic":"orders","key":"c","value":"reject this"}`,
		`{"topic":"orders","key":"d","value":"poison"}`,
	}, "\n")
	var stdout, stderr bytes.Buffer
	code := cmdPluginTest([]string{"--plugin", "../../internal/plugins/testdata/behave.wasm"}, strings.NewReader(in), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := strings.Join([]string{
		`{"action":"keep"}`,
		`{"action":"drop"}`,
		`{"action":"reject","code":42,"reason":"value says reject"}`,
		`{"action":"reject","reason":"plugin_trap"}`,
	}, "\n") + "\n"
	if stdout.String() != want {
		t.Fatalf("verdicts:\n%s\nwant:\n%s", stdout.String(), want)
	}
	var out2 bytes.Buffer
	code = cmdPluginTest([]string{"--plugin", "../../internal/plugins/testdata/addheader.wasm"}, strings.NewReader(`{"topic":"t","key":"k","value":{"a":1},"headers":{"x":"1"}}`), &out2, &stderr)
	if code != 0 || !strings.Contains(out2.String(), `"action":"replace"`) || !strings.Contains(out2.String(), `"via":"evproxy"`) || !strings.Contains(out2.String(), `"value":{"a":1}`) {
		t.Fatalf("exit %d, replace verdict %s", code, out2.String())
	}
}

func TestValidateLoadsPlugins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	cases := []struct {
		name, wasm, out, err string
		code                 int
	}{
		{"good plugin", "../../internal/plugins/testdata/keep.wasm", "OK (1 routes, 1 plugins)", "", 0},
		{"not a plugin", "../../internal/plugins/testdata/nomarker.wasm", "", "not an evproxy plugin", 1},
		{"wrong ABI", "../../internal/plugins/testdata/abi_v2_export.wasm", "", "evp_v2", 1},
	}
	for i, c := range cases {
		cfg := filepath.Join(dir, c.name+".hcl")
		os.WriteFile(cfg, []byte("kafka {\n  embedded = true\n}\nplugin \"p\" {\n  path = \""+abs(c.wasm)+"\"\n}\nroute \"r\" {\n  topics  = [\"*\"]\n  plugins = [\"p\"]\n}\n"), 0o600)
		_ = i
		var stdout, stderr bytes.Buffer
		code := run([]string{"validate", "-c", cfg}, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String(), c.out) || !strings.Contains(stderr.String(), c.err) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", c.name, code, stdout.String(), stderr.String())
		}
	}
}

// SIGHUP re-reads the plugin blocks: pointing the plugin at another file
// changes what records get, without a restart.
func TestSIGHUPReloadsPlugins(t *testing.T) {
	t.Parallel()
	keep, _ := filepath.Abs("../../internal/plugins/testdata/keep.wasm")
	addheader, _ := filepath.Abs("../../internal/plugins/testdata/addheader.wasm")
	routes := `
route "all" {
  topics  = ["*"]
  plugins = ["p"]
}
`
	b := startBinary(t, "plugin \"p\" {\n  path = \""+keep+"\"\n}\n"+routes)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.proxyAddr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "hup", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(b.cfg)
	os.WriteFile(b.cfg, bytes.Replace(cfg, []byte(keep), []byte(addheader), 1), 0o600)
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	b.waitLog(t, "plugins reloaded")
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "hup", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.brokerAddr), kgo.ConsumeTopics("hup"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]bool{}
	for len(got) < 2 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			has := false
			for _, h := range r.Headers {
				has = has || (h.Key == "via" && string(h.Value) == "evproxy")
			}
			got[string(r.Value)] = has
		})
	}
	if has, ok := got["before"]; !ok || has {
		t.Fatalf("record before SIGHUP: seen %v, header %v; want it without the header", ok, has)
	}
	if has, ok := got["after"]; !ok || !has {
		t.Fatalf("record after SIGHUP: seen %v, header %v; want the new plugin's header", ok, has)
	}
}
