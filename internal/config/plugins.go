package config

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

func (d *decoder) deadLetter(dl *DeadLetterConfig, b *deadLetterBlock) {
	*dl = DeadLetterConfig{Enabled: true, TopicSuffix: defaultTopicSuffix}
	if b == nil {
		return
	}
	if v, st := d.boolean(b.Enabled, "dead_letter.enabled"); st == valid {
		dl.Enabled = v
	}
	if s, st := d.str(b.TopicSuffix, "dead_letter.topic_suffix"); st == valid {
		if s == "" {
			d.errorf(b.TopicSuffix.Range(), "Empty dead_letter.topic_suffix",
				"dead_letter.topic_suffix must not be empty, or dead letters would go back to the original topic: use %q", defaultTopicSuffix)
		} else {
			dl.TopicSuffix = s
		}
	}
}

// resolve makes a configured path absolute against the config file's
// directory.
func (d *decoder) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}

// checkFile reports a diagnostic at expr if path is not a readable file.
func (d *decoder) checkFile(expr hcl.Range, where, path string) bool {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		d.errorf(expr, "Missing file", "%s: %v: check the path (relative paths start at the configuration file's directory)", where, err)
		return false
	case st.IsDir():
		d.errorf(expr, "Not a file", "%s: %s is a directory: name the file", where, path)
		return false
	}
	return true
}

func (d *decoder) plugins(blocks []*pluginBlock) []PluginConfig {
	out := make([]PluginConfig, 0, len(blocks))
	seen := map[string]*pluginBlock{}
	for _, b := range blocks {
		where := fmt.Sprintf("plugin %q", b.Name)
		switch first, dup := seen[b.Name]; {
		case b.Name == "":
			d.errorf(b.NameRange, "Empty plugin name", "plugin names must not be empty: name it, e.g. plugin \"enrich\" { ... }")
		case dup:
			d.errorf(b.NameRange, "Duplicate plugin name",
				"%s: plugin names must be unique, and %q is already used by the plugin at %s: rename one of them", where, b.Name, position(first.DefRange))
		default:
			seen[b.Name] = b
		}
		p := PluginConfig{Name: b.Name, Config: []byte("{}"), MemoryLimit: defaultPluginMemory, Timeout: defaultPluginTimeout, Tables: map[string]string{}}
		switch s, st := d.str(b.Path, where+": path"); {
		case st == absent:
			d.errorf(b.DefRange, "Missing plugin path", "%s: path is required: the .wasm file, e.g. path = \"plugins/examples/enrich/enrich.wasm\"", where)
		case st == valid:
			p.Path = d.resolve(s)
			if d.checkFile(b.Path.Range(), where+": path", p.Path) && !strings.HasSuffix(s, ".wasm") {
				d.errorf(b.Path.Range(), "Not a .wasm file", "%s: path %q should name a compiled WebAssembly module (.wasm)", where, s)
			}
		}
		if v, st := d.eval(b.Config); st == valid {
			js, err := ctyjson.Marshal(v, v.Type())
			if err != nil {
				d.errorf(b.Config.Range(), "Invalid plugin config", "%s: config cannot be encoded as JSON: %v", where, err)
			} else {
				p.Config = js
			}
		}
		if s, st := d.str(b.MemoryLimit, where+": memory_limit"); st == valid {
			n, err := parseSize(s)
			switch {
			case err != nil:
				d.errorf(b.MemoryLimit.Range(), "Invalid size", "%s: memory_limit %q: %v; use a size such as \"64MiB\"", where, s, err)
			case n < 64<<10 || n > 2<<30:
				d.errorf(b.MemoryLimit.Range(), "Size out of range", "%s: memory_limit must be from 64KiB to 2GiB, got %q", where, s)
			default:
				p.MemoryLimit = n
			}
		}
		d.durationAttr(b.Timeout, where+": timeout", 0, math.MaxInt64, `; "0s" disables the timeout`, &p.Timeout)
		if v, st := d.eval(b.Tables); st == valid {
			ty := v.Type()
			if !ty.IsObjectType() && !ty.IsMapType() {
				d.errorf(b.Tables.Range(), "Invalid value type", "%s: tables must be an object of name = \"file.json\", got %s", where, ty.FriendlyName())
			} else {
				names := make([]string, 0)
				for k := range v.AsValueMap() {
					names = append(names, k)
				}
				sort.Strings(names)
				for _, k := range names {
					e := v.GetAttr(k)
					if e.IsNull() || e.Type() != cty.String {
						d.errorf(b.Tables.Range(), "Invalid value type", "%s: tables.%s must be a file path string", where, k)
						continue
					}
					path := d.resolve(e.AsString())
					if d.checkFile(b.Tables.Range(), fmt.Sprintf("%s: tables.%s", where, k), path) {
						p.Tables[k] = path
					}
				}
			}
		}
		out = append(out, p)
	}
	return out
}

var sizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$`)

// parseSize parses "64MiB", "1GB", "65536" (bytes).
func parseSize(s string) (uint64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("not a size (units: B, KiB, MiB, GiB, KB, MB, GB)")
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number out of range")
	}
	mult := map[string]uint64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9}[m[2]]
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("number out of range")
	}
	return n * mult, nil
}

// routeExtras decodes the plugin-related keys of a route.
func (d *decoder) routeExtras(r *RouteConfig, b *routeBlock, plugins []*pluginBlock, where string) {
	if types, st := d.strList(b.EventTypes, where+": event_types"); st == valid {
		ok := len(types) > 0
		if !ok {
			d.errorf(b.EventTypes.Range(), "Empty event_types", "%s: event_types must list at least one glob; remove the key to match every event type", where)
		}
		for i, t := range types {
			if msg := checkTopicPattern(t); msg != "" {
				d.errorf(elemRange(b.EventTypes, i), "Invalid event type pattern", "%s: %s", where, strings.ReplaceAll(msg, "topic", "event type"))
				ok = false
			}
		}
		if ok {
			r.EventTypes = types
		}
	}
	if s, st := d.str(b.EventTypeFrom, where+": event_type_from"); st == valid {
		if s != "" && !strings.HasPrefix(s, "/") {
			d.errorf(b.EventTypeFrom.Range(), "Invalid JSON pointer",
				"%s: event_type_from %q is not a JSON pointer: start it with '/', e.g. \"/type\" or \"/meta/type\"", where, s)
		} else {
			r.EventTypeFrom = s
		}
	}
	if names, st := d.strList(b.Plugins, where+": plugins"); st == valid {
		ok := true
		for i, n := range names {
			found := false
			for _, p := range plugins {
				if p.Name == n {
					found = true
				}
			}
			if !found {
				known := make([]string, 0, len(plugins))
				for _, p := range plugins {
					known = append(known, strconv.Quote(p.Name))
				}
				hint := "no plugin blocks are defined"
				if len(known) > 0 {
					hint = "defined plugins: " + strings.Join(known, ", ")
				}
				d.errorf(elemRange(b.Plugins, i), "Unknown plugin", "%s: plugin %q is not defined (%s): add a plugin %q { path = \"...\" } block or fix the name", where, n, hint, n)
				ok = false
			}
		}
		if ok {
			r.Plugins = names
		}
	}
	d.enum(b.OnReject, where+": on_reject", []string{OnRejectDeadLetter, OnRejectError, OnRejectDrop}, &r.OnReject)
}
