package plugins

import (
	"errors"
	"strconv"

	"github.com/evproxy/evproxy/internal/batchcodec"
)

// Header is a record header: the record batch codec's own type, so that
// the records a plugin sees and the verdicts it gives share their headers
// with decoded and re-encoded batches without conversion. A nil Value is a
// null header value.
type Header = batchcodec.Header

// Record is one input record as the plugin sees it (docs/plugin-abi.md
// §3.1). A nil Key or Value is null.
type Record struct {
	Topic     string
	Partition int32
	Timestamp int64 // Unix milliseconds
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Action is what a verdict does with its record.
type Action uint8

// Actions, numbered as on the wire (docs/plugin-abi.md §3.2).
const (
	Keep    Action = iota // the record goes on unchanged
	Drop                  // the record is discarded silently
	Reject                // the record is refused with Verdict.Code and Verdict.Reason
	Replace               // the record is replaced by Verdict.Outputs (one or more)
)

var actionNames = [...]string{"keep", "drop", "reject", "replace"}

// String returns the lower-case name used in metrics ("keep", …).
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Output is one REPLACE output. A field applies only if its Set flag is
// true; otherwise it is copied from the input record. Headers, when set,
// replace the input's headers entirely.
type Output struct {
	Topic      string
	TopicSet   bool
	Key        []byte
	KeySet     bool
	Value      []byte
	ValueSet   bool
	Headers    []Header
	HeadersSet bool
}

// Verdict is the plugin's answer for one record.
//
// Code and Reason are set for Reject; Outputs (never empty) for Replace. A
// plugin's REPLACE with no outputs is returned as Drop. The bytes and
// strings of one Process call's verdicts share one buffer, copied out of
// the guest: they stay valid after the call and may be modified (byte
// slices are capped, so append never overwrites a neighbour).
type Verdict struct {
	Action  Action
	Code    int32
	Reason  string
	Outputs []Output
}

// Reasons of the REJECT verdicts the host gives itself (with Code 0) to the
// records that make the plugin fail on their own; see "Failures and
// bisection" in the package documentation.
const (
	ReasonTrap      = "plugin_trap"             // a trap, a negative evp_process result, a failed evp_alloc or no usable instance
	ReasonTimeout   = "plugin_timeout"          // the call ran past Config.Timeout
	ReasonMalformed = "plugin_malformed_output" // the output failed validation
)

// ErrClosed is returned by Process once its Plugin (or Runtime) is closed,
// and by Set and Runtime methods after Close.
var ErrClosed = errors.New("plugins: closed")
