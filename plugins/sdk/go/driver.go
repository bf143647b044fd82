package evp

import (
	"runtime"
	"strconv"
	"unsafe"
)

// driver is the guest side of the ABI calls (docs/plugin-abi.md §2), in Go
// terms: the exports of exports_wasip1.go translate pointers to slices and
// call it, and package evptest drives it directly.
type driver struct {
	p        Plugin
	in       []byte // the buffer evp_alloc hands out, reused
	out      []byte // the verdict buffer, reused
	dec      decoder
	verdicts []Verdict
	ready    bool // evp_init succeeded
}

func newDriver(p Plugin) *driver { return &driver{p: p} }

// Alloc returns the input buffer, grown to size bytes. There is one: the
// host asks for it right before each evp_init and evp_process call, and the
// previous call's input is dead by then.
func (d *driver) Alloc(size int32) []byte {
	if size < 0 {
		return nil
	}
	if int(size) > cap(d.in) || cap(d.in) == 0 {
		d.in = make([]byte, max(int(size), 2*cap(d.in), 4096))
	}
	return d.in[:size]
}

// region returns the n bytes at guest address ptr if they lie inside the
// input buffer: the only memory the host may have written.
func (d *driver) region(ptr uintptr, n int32) ([]byte, bool) {
	if cap(d.in) == 0 || n < 0 {
		return nil, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(d.in)))
	if ptr < base || ptr-base > uintptr(cap(d.in)) || uintptr(n) > uintptr(cap(d.in))-(ptr-base) {
		return nil, false
	}
	off := int(ptr - base)
	return d.in[off : off+int(n) : off+int(n)], true
}

// Init is evp_init: 0 when the plugin is ready.
func (d *driver) Init(config []byte) (status int32) {
	if d.p == nil {
		Log(LevelError, "evp: no plugin registered: call evp.Register from main's init")
		return 1
	}
	defer func() {
		if v := recover(); v != nil {
			logPanic("Init", v)
			status = 2
		}
	}()
	// The next Alloc reuses the buffer the config is in; the plugin may
	// keep its copy.
	if err := d.p.Init(cloneBytes(config)); err != nil {
		Log(LevelError, err.Error())
		return 1
	}
	d.ready = true
	return 0
}

// Process is evp_process: the verdict buffer, or a negative status (after
// logging why) that makes the host discard this instance.
func (d *driver) Process(in []byte) (out []byte, status int64) {
	if !d.ready {
		Log(LevelError, "evp: evp_process called before a successful evp_init")
		return nil, -1
	}
	eventType, recs, err := d.dec.decode(in)
	if err != nil {
		Log(LevelError, "evp: "+err.Error()+" ("+strconv.Itoa(len(in))+" bytes)")
		return nil, -2
	}
	if cap(d.verdicts) < len(recs) {
		d.verdicts = make([]Verdict, len(recs))
	}
	vs := d.verdicts[:len(recs)]
	clear(vs) // all Keep
	if !d.call(eventType, recs, vs) {
		return nil, -3
	}
	d.out = appendVerdicts(d.out[:0], vs)
	// vs keeps the plugin's output slices alive until the next batch clears it.
	return d.out, 0
}

func (d *driver) call(eventType string, recs []Record, vs []Verdict) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			logPanic("Process", v)
			ok = false
		}
	}()
	d.p.Process(eventType, recs, vs)
	return true
}

// logPanic logs a recovered panic with its stack: the guest's stderr goes
// nowhere.
func logPanic(where string, v any) {
	var msg string
	switch v := v.(type) {
	case error:
		msg = v.Error()
	case string:
		msg = v
	case interface{ String() string }:
		msg = v.String()
	default:
		msg = "(a value that is not a string or an error)"
	}
	buf := make([]byte, 4096)
	buf = buf[:runtime.Stack(buf, false)]
	Log(LevelError, "panic in "+where+": "+msg+"\n"+string(buf))
}
