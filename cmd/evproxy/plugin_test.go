package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
