package plugins

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Names of docs/plugin-abi.md, in one place.
const (
	abiVersion   = 1
	hostModule   = "evp_v1"     // import namespace of the host functions
	abiMarker    = "evp_abi_v1" // export that says "I speak evp_v1"
	hostPrefix   = "evp_v"      // import namespaces of every ABI version
	markerPrefix = "evp_abi_v"  // markers of every ABI version

	exportMemory  = "memory"
	exportAlloc   = "evp_alloc"
	exportInit    = "evp_init"
	exportProcess = "evp_process"
	exportInitial = "_initialize" // WASI reactor start function

	fnLog       = "log"
	fnNowMS     = "now_ms"
	fnMetricAdd = "metric_add"
	fnLookup    = "lookup"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type signature struct {
	params, results []api.ValueType
}

func (s signature) String() string {
	return sigString(s.params, s.results)
}

func sigString(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		ss := make([]string, len(ts))
		for i, t := range ts {
			ss[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(ss, ", ") + ")"
	}
	return names(params) + " -> " + names(results)
}

// guestExports are the functions every plugin exports (§1).
var guestExports = []struct {
	name string
	sig  signature
}{
	{abiMarker, signature{nil, nil}},
	{exportAlloc, signature{[]api.ValueType{i32}, []api.ValueType{i32}}},
	{exportInit, signature{[]api.ValueType{i32, i32}, []api.ValueType{i32}}},
	{exportProcess, signature{[]api.ValueType{i32, i32}, []api.ValueType{i64}}},
}

// hostFuncs are the functions of the evp_v1 import module (§4).
var hostFuncs = map[string]signature{
	fnLog:       {[]api.ValueType{i32, i32, i32}, nil},
	fnNowMS:     {nil, []api.ValueType{i64}},
	fnMetricAdd: {[]api.ValueType{i32, i32, i64}, nil},
	fnLookup:    {[]api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}},
}

// ABIError is a load failure because the module does not implement evp_v1
// (docs/plugin-abi.md §1 and §6). Its message is the one the spec gives,
// for example `plugin "x": built for ABI evp_v2; this evproxy speaks evp_v1`.
type ABIError struct {
	Plugin string
	Msg    string
}

func (e *ABIError) Error() string { return fmt.Sprintf("plugin %q: %s", e.Plugin, e.Msg) }

func abiErrorf(plugin, format string, args ...any) error {
	return &ABIError{Plugin: plugin, Msg: fmt.Sprintf(format, args...)}
}

// versionSuffix returns N for prefix+N where N is a decimal number.
func versionSuffix(s, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || rest == "" {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

// validateABI checks a compiled module against §1, in the order that gives
// the most useful message: another ABI version first, then the marker,
// then imports, then the other exports. With instrumented, the module went
// through instrument, whose import (tickModule) is the host's own.
func validateABI(plugin string, m wazero.CompiledModule, instrumented bool) error {
	imports := m.ImportedFunctions()
	exports := m.ExportedFunctions()

	// Another version: an import from evp_vN, or a marker evp_abi_vN
	// without evp_abi_v1 (a module may speak several versions).
	for _, f := range imports {
		mod, _, _ := f.Import()
		if n, ok := versionSuffix(mod, hostPrefix); ok && n != abiVersion {
			return abiErrorf(plugin, "built for ABI %s; this evproxy speaks %s", mod, hostModule)
		}
	}
	if _, ok := exports[abiMarker]; !ok {
		names := make([]string, 0, len(exports))
		for name := range exports {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if n, ok := versionSuffix(name, markerPrefix); ok && n != abiVersion {
				return abiErrorf(plugin, "built for ABI evp_v%d; this evproxy speaks %s", n, hostModule)
			}
		}
		return abiErrorf(plugin, "not an evproxy plugin (no %s export)", abiMarker)
	}

	for _, f := range imports {
		mod, name, _ := f.Import()
		switch mod {
		case hostModule:
			want, ok := hostFuncs[name]
			if !ok {
				return abiErrorf(plugin, "imports %s.%s, which %s does not define", mod, name, hostModule)
			}
			if !slices.Equal(f.ParamTypes(), want.params) || !slices.Equal(f.ResultTypes(), want.results) {
				return abiErrorf(plugin, "imports %s.%s as %s, want %s", mod, name, sigString(f.ParamTypes(), f.ResultTypes()), want)
			}
		case wasi_snapshot_preview1.ModuleName:
			// checked by wazero at instantiation
		case tickModule:
			if instrumented { // added by instrument, which refuses modules that import it
				continue
			}
			fallthrough
		default:
			return abiErrorf(plugin, "imports %s.%s; plugins may import only from %s and %s",
				mod, name, hostModule, wasi_snapshot_preview1.ModuleName)
		}
	}
	for _, mem := range m.ImportedMemories() {
		mod, name, _ := mem.Import()
		return abiErrorf(plugin, "imports memory %s.%s; a plugin must define and export its own memory", mod, name)
	}
	if _, ok := m.ExportedMemories()[exportMemory]; !ok {
		return abiErrorf(plugin, "missing export %q (its linear memory)", exportMemory)
	}
	for _, e := range guestExports {
		f, ok := exports[e.name]
		if !ok {
			return abiErrorf(plugin, "missing export %s %s", e.name, e.sig)
		}
		if !slices.Equal(f.ParamTypes(), e.sig.params) || !slices.Equal(f.ResultTypes(), e.sig.results) {
			return abiErrorf(plugin, "export %s has type %s, want %s", e.name, sigString(f.ParamTypes(), f.ResultTypes()), e.sig)
		}
	}
	if f, ok := exports[exportInitial]; ok && (len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0) {
		return abiErrorf(plugin, "export %s has type %s, want () -> ()", exportInitial, sigString(f.ParamTypes(), f.ResultTypes()))
	}
	return nil
}
