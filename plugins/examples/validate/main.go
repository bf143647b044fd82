// Command validate is an evproxy plugin that rejects records whose value
// is not a JSON object with every field its config requires.
//
// Config: {"required": ["id", "amount"]}. A record is rejected with code 1
// and the reason "not a JSON object" (null, empty or invalid values
// included) or "missing field: <name>" for the first missing field in
// config order; a field is present whatever its value, null included.
// Everything else is kept. plugins/examples/validate-c is the same plugin
// in C; testdata/cases.json holds the vectors both pass.
package main

import (
	"errors"
	"strconv"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/jsonf"
)

// rejectCode is the code of every rejection.
const rejectCode = 1

type validate struct {
	required []string       // field names, in config order
	slot     map[string]int // name -> index in found (duplicates share one)
	found    []bool
	missing  []string // "missing field: <name>" per required entry
}

func (v *validate) Init(config []byte) error {
	var (
		required []string
		seen     bool
	)
	it := jsonf.Members(config)
	for it.Next() {
		switch key := string(it.Key()); key {
		case "required":
			seen, required = true, required[:0]
			list := jsonf.Elements(it.Value())
			for list.Next() {
				name, ok := jsonf.Unquote(list.Value())
				if !ok {
					return errors.New(`config "required" must be a list of field names (strings)`)
				}
				required = append(required, string(name))
			}
			if list.Err() != nil {
				return errors.New(`config "required" must be a list of field names (strings)`)
			}
		default:
			return errors.New(`unknown config key "` + key + `"`)
		}
	}
	if it.Err() != nil {
		return errors.New("config must be a JSON object")
	}
	if !seen {
		return errors.New(`config needs "required": a list of field names`)
	}
	v.required = required
	v.slot = make(map[string]int, len(required))
	for _, name := range required {
		if _, dup := v.slot[name]; !dup {
			v.slot[name] = len(v.slot)
		}
		v.missing = append(v.missing, "missing field: "+name)
	}
	v.found = make([]bool, len(v.slot))
	evp.Log(evp.LevelInfo, "validate: requiring "+strconv.Itoa(len(required))+" fields")
	return nil
}

func (v *validate) Process(_ string, recs []evp.Record, out []evp.Verdict) {
	rejected := 0
	for i := range recs {
		if reason := v.check(recs[i].Value); reason != "" {
			out[i] = evp.Reject(rejectCode, reason)
			rejected++
		}
	}
	if rejected > 0 {
		evp.MetricAdd("rejected", int64(rejected))
	}
}

// check returns why value is invalid, or "".
func (v *validate) check(value []byte) string {
	clear(v.found)
	it := jsonf.Members(value)
	for it.Next() {
		if s, ok := v.slot[string(it.Key())]; ok {
			v.found[s] = true
		}
	}
	if it.Err() != nil {
		return "not a JSON object"
	}
	for i, name := range v.required {
		if !v.found[v.slot[name]] {
			return v.missing[i]
		}
	}
	return ""
}

func init() { evp.Register(&validate{}) }

func main() {}
