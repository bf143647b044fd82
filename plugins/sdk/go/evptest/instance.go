package evptest

import (
	"errors"
	"fmt"
	"testing"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/internal/bridge"
)

// Instance is a plugin instantiated on a [Host], driven as evproxy drives a
// WebAssembly instance: every call goes through evp_alloc and the ABI's
// byte encoding both ways, so the kit's codec runs exactly as in the guest.
type Instance struct {
	host   *Host
	driver bridge.Driver
	batch  []byte
	broken error
}

// ErrInstanceBroken is returned by calls on an instance that failed a call:
// evproxy discards such an instance, so tests must not use it either.
var ErrInstanceBroken = errors.New("evptest: the instance failed a call and was discarded")

// Instantiate initializes p with config (JSON; "" means {}), as evp_init
// does. An error means the plugin refused to start; it carries the reason
// the plugin logged.
func (h *Host) Instantiate(p evp.Plugin, config string) (*Instance, error) {
	if config == "" {
		config = "{}"
	}
	in := &Instance{host: h, driver: bridge.NewDriver(p)}
	var status int32 = -1
	h.call(func() {
		buf := in.driver.Alloc(int32(len(config)))
		if buf == nil {
			return
		}
		copy(buf, config)
		status = in.driver.Init(buf)
	})
	if status != 0 {
		return nil, fmt.Errorf("evptest: the plugin refused to start (evp_init returned %d): %s", status, h.lastError())
	}
	return in, nil
}

// Process runs one batch: all records must have the event type eventType,
// as evproxy batches them. It returns the verdicts decoded from the output
// buffer with the host's checks (one per record, well-formed, no trailing
// bytes); they share no memory with the instance. An error means the call
// failed (a panic, a malformed output): the instance is then unusable.
func (in *Instance) Process(eventType string, recs []evp.Record) ([]evp.Verdict, error) {
	if in.broken != nil {
		return nil, ErrInstanceBroken
	}
	in.batch = AppendBatch(in.batch[:0], eventType, recs)
	var (
		out    []byte
		status int64 = -1
	)
	in.host.call(func() {
		buf := in.driver.Alloc(int32(len(in.batch)))
		if buf == nil {
			return
		}
		copy(buf, in.batch)
		out, status = in.driver.Process(buf)
	})
	if status != 0 {
		in.broken = fmt.Errorf("evptest: evp_process failed (%d): %s", status, in.host.lastError())
		return nil, in.broken
	}
	vs, err := DecodeVerdicts(out, len(recs))
	if err != nil {
		in.broken = err
		return nil, err
	}
	return vs, nil
}

// Host returns the host the instance runs on.
func (in *Instance) Host() *Host { return in.host }

// Run instantiates p with config on a new Host and processes one batch,
// failing t if either step fails.
func Run(t testing.TB, p evp.Plugin, config, eventType string, recs ...evp.Record) []evp.Verdict {
	t.Helper()
	in, err := NewHost().Instantiate(p, config)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := in.Process(eventType, recs)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}
