package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pluginSpec is an example plugin the plugin scenarios run.
type pluginSpec struct {
	name   string  // plugin block name and metrics label
	label  string  // as printed
	what   string  // what it does, for the report
	dir    string  // its directory, relative to the module root
	wasm   string  // the module's file name in dir
	target float64 // least throughput as a fraction of pass-through, judged with the timeout on
	goal   string  // what the target is about, for the report
	// srcDirs are the directories (relative to the module root) whose
	// source files the module is built from; a .wasm older than any of
	// them is rebuilt.
	srcDirs []string
	// build returns the command that builds the module into out.
	build func(ctx context.Context, root, out string) *exec.Cmd
	tool  string // the build command, for "not found" messages
	hint  string // how to install the toolchain
}

// pluginTimeout is the per-call timeout of the "with timeout" rows: the
// configuration's default.
const pluginTimeout = 100 * time.Millisecond

// Targets of the plugin scenarios (issue 4), against the pass-through
// evproxy run without compression.
const (
	targetHeaderPlugin = 0.80
	targetJSONPlugin   = 0.50
)

var pluginSpecs = []pluginSpec{
	{
		name:    "header-c",
		label:   "header-c",
		what:    "C, evp_v1 ABI without a kit; adds header enriched-by, never reads keys or values",
		dir:     "plugins/examples/header-c",
		wasm:    "header-c.wasm",
		target:  targetHeaderPlugin,
		goal:    "header-only plugin (header-c)",
		srcDirs: []string{"plugins/examples/header-c"},
		build: func(ctx context.Context, root, out string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, "clang", "--target=wasm32-wasi", "--sysroot=/usr", "-mexec-model=reactor", "-O2",
				"-o", out, "plugins/examples/header-c/header.c")
			cmd.Dir = root
			return cmd
		},
		tool: "clang",
		hint: "apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32",
	},
	{
		name:    "enrich",
		label:   "Go enrich",
		what:    "Go plugin kit; parses each value's JSON and adds field source, sets headers enriched-by, ce_id (UUIDv7), ce_time",
		dir:     "plugins/examples/enrich",
		wasm:    "enrich.wasm",
		target:  targetJSONPlugin,
		goal:    "JSON-field plugin (Go enrich)",
		srcDirs: []string{"plugins/examples/enrich", "plugins/sdk/go"},
		build: func(ctx context.Context, root, out string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-o", out, ".")
			cmd.Dir = filepath.Join(root, "plugins/examples/enrich")
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			return cmd
		},
		tool: "go",
		hint: "install Go 1.24 or newer",
	},
}

func specByName(name string) *pluginSpec {
	for i := range pluginSpecs {
		if pluginSpecs[i].name == name {
			return &pluginSpecs[i]
		}
	}
	return nil
}

// pluginScenarios are the plugin rows, in the order they run.
func pluginScenarios() []scenario {
	var out []scenario
	for _, p := range pluginSpecs {
		out = append(out,
			scenario{proxy: true, codec: "none", plugin: p.name},
			scenario{proxy: true, codec: "none", plugin: p.name, noTimeout: true})
	}
	return out
}

// preparePlugins finds or builds the .wasm of every plugin the scenarios
// use. A plugin that cannot be built is skipped (with the reason in
// skipped), which is not an error.
func preparePlugins(ctx context.Context, scs []scenario, tmp string, log io.Writer) (paths, skipped map[string]string) {
	paths, skipped = map[string]string{}, map[string]string{}
	root, rootErr := moduleRoot(ctx)
	for _, sc := range scs {
		p := specByName(sc.plugin)
		if p == nil || paths[p.name] != "" || skipped[p.name] != "" {
			continue
		}
		path, err := pluginWasm(ctx, p, root, rootErr, tmp, log)
		if err != nil {
			skipped[p.name] = err.Error()
			fmt.Fprintf(log, "plugin %s: skipping its rows: %v\n", p.name, err)
			continue
		}
		paths[p.name] = path
	}
	return paths, skipped
}

// pluginWasm returns the path of p's module: the one in its directory when
// it is at least as new as its sources, else one built into tmp.
func pluginWasm(ctx context.Context, p *pluginSpec, root string, rootErr error, tmp string, log io.Writer) (string, error) {
	if rootErr != nil {
		return "", rootErr
	}
	wasm := filepath.Join(root, p.dir, p.wasm)
	st, err := os.Stat(wasm)
	why := "missing"
	if err == nil {
		newest, src, err := newestSource(root, p.srcDirs)
		if err != nil {
			return "", fmt.Errorf("read its sources: %w", err)
		}
		if !newest.After(st.ModTime()) {
			fmt.Fprintf(log, "plugin %s: using %s\n", p.name, wasm)
			return wasm, nil
		}
		why = "older than " + src
	}
	if _, err := exec.LookPath(p.tool); err != nil {
		return "", fmt.Errorf("%s is %s and %s is not installed (%s)", filepath.Join(p.dir, p.wasm), why, p.tool, p.hint)
	}
	out := filepath.Join(tmp, p.wasm)
	cmd := p.build(ctx, root, out)
	fmt.Fprintf(log, "plugin %s: %s is %s; building %s\n", p.name, filepath.Join(p.dir, p.wasm), why, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build (%s): %w\n%s", strings.Join(cmd.Args, " "), err, tail(string(b), 2000))
	}
	return out, nil
}

// newestSource is the modification time of the newest source file (.go
// other than tests, .c, .h, go.mod, go.sum) under dirs, and its path.
func newestSource(root string, dirs []string) (time.Time, string, error) {
	var newest time.Time
	var path string
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			n := e.Name()
			src := (strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")) ||
				strings.HasSuffix(n, ".c") || strings.HasSuffix(n, ".h") || n == "go.mod" || n == "go.sum"
			if !src {
				return nil
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			if info.ModTime().After(newest) {
				newest, path = info.ModTime(), p
			}
			return nil
		})
		if err != nil {
			return newest, path, err
		}
	}
	if rel, err := filepath.Rel(root, path); err == nil {
		path = rel
	}
	return newest, path, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// pluginCounters are one plugin's counters from evproxy's /metrics.
type pluginCounters struct {
	calls, records, replaced int64
	errors, timeouts         int64   // failed calls (timeouts included), and timeouts
	seconds                  float64 // time in Process calls, retries included
}

func (c pluginCounters) sub(d pluginCounters) pluginCounters {
	return pluginCounters{
		calls: c.calls - d.calls, records: c.records - d.records, replaced: c.replaced - d.replaced,
		errors: c.errors - d.errors, timeouts: c.timeouts - d.timeouts, seconds: c.seconds - d.seconds,
	}
}

// perRecord is the time in Process per record, in µs.
func (c pluginCounters) perRecord() float64 {
	if c.records <= 0 {
		return 0
	}
	return c.seconds / float64(c.records) * 1e6
}

// scrapePlugin reads plugin's counters from the admin server at addr
// (internal/plugins/metrics.go): evproxy_plugin_calls_total,
// evproxy_plugin_records_total, evproxy_plugin_verdicts_total{action="replace"},
// evproxy_plugin_errors_total (every kind, and kind="timeout") and the sum
// of evproxy_plugin_call_duration_seconds.
func scrapePlugin(ctx context.Context, addr, plugin string) (pluginCounters, error) {
	var (
		c     pluginCounters
		found bool
	)
	err := readMetrics(ctx, addr, func(r io.Reader) (err error) {
		c, found, err = parsePluginCounters(r, plugin)
		return err
	})
	if err != nil {
		return c, err
	}
	if !found {
		return c, fmt.Errorf("evproxy metrics have no evproxy_plugin_records_total for plugin %q", plugin)
	}
	return c, nil
}

// parsePluginCounters parses the Prometheus text format for plugin's
// counters; found says whether its records counter was there.
func parsePluginCounters(r io.Reader, plugin string) (c pluginCounters, found bool, err error) {
	label := `plugin="` + plugin + `"`
	ofPlugin := func(labels string) bool { return hasLabel(labels, label) }
	err = scanMetrics(r, "evproxy_plugin_", ofPlugin, func(name, labels string, v float64) {
		n := int64(v)
		switch name {
		case "evproxy_plugin_call_duration_seconds_sum":
			c.seconds += v
		case "evproxy_plugin_calls_total":
			c.calls += n
		case "evproxy_plugin_records_total":
			c.records += n
			found = true
		case "evproxy_plugin_verdicts_total":
			if hasLabel(labels, `action="replace"`) {
				c.replaced += n
			}
		case "evproxy_plugin_errors_total":
			c.errors += n
			if hasLabel(labels, `kind="timeout"`) {
				c.timeouts += n
			}
		}
	})
	return c, found, err
}

// hasLabel reports whether the comma-separated labels hold l exactly.
func hasLabel(labels, l string) bool {
	for labels != "" {
		var one string
		one, labels, _ = strings.Cut(labels, ",")
		if one == l {
			return true
		}
	}
	return false
}

// moduleRoot is the directory of the go.mod enclosing the working
// directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root (go env GOMOD): %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the evproxy module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}
