// Package bridge connects package evp to package evptest in native (not
// WebAssembly) builds: evp registers its ABI driver here, and evptest
// installs the fake host that evp's host functions call. Plugins never use
// it.
package bridge

import (
	"sync/atomic"
	"time"
)

// Driver is evp's guest side of the ABI, minus the pointers: what the
// evp_alloc, evp_init and evp_process exports do with guest memory.
type Driver interface {
	// Alloc is evp_alloc: a buffer of size bytes, nil on failure.
	Alloc(size int32) []byte
	// Init is evp_init on the config bytes the host wrote into the last
	// Alloc buffer.
	Init(config []byte) int32
	// Process is evp_process on the batch the host wrote into the last
	// Alloc buffer: the verdict buffer, or status < 0 on failure.
	Process(batch []byte) (out []byte, status int64)
}

// NewDriver returns a driver for the evp.Plugin p; evp sets it in init.
var NewDriver func(p any) Driver

// Host is the evp_v1 import module, with Go types.
type Host interface {
	Log(level int32, msg string)
	NowMillis() int64
	MetricAdd(name string, delta int64)
	// Lookup has the ABI's contract: it writes the value into out when it
	// fits and returns its length, or -1 (no key), -2 (no table).
	Lookup(table, key string, out []byte) int32
}

var current atomic.Pointer[Host]

// Current returns the installed host, or one with a real clock that
// discards logs and metrics and has no tables.
func Current() Host {
	if h := current.Load(); h != nil {
		return *h
	}
	return nullHost{}
}

// Swap installs h (nil: the null host) and returns the previous one.
func Swap(h Host) Host {
	var old *Host
	if h == nil {
		old = current.Swap(nil)
	} else {
		old = current.Swap(&h)
	}
	if old == nil {
		return nil
	}
	return *old
}

type nullHost struct{}

func (nullHost) Log(int32, string)                   {}
func (nullHost) NowMillis() int64                    { return time.Now().UnixMilli() }
func (nullHost) MetricAdd(string, int64)             {}
func (nullHost) Lookup(string, string, []byte) int32 { return -2 }
