//go:build wasip1

package evp

import "unsafe"

// The exports of docs/plugin-abi.md §1. Go's c-shared build mode exports
// memory and _initialize, which runs the package initializers (and so
// Register) once.

var theDriver *driver

func wasmDriver() *driver {
	if theDriver == nil {
		theDriver = newDriver(registered)
	}
	return theDriver
}

func addr(b []byte) int32 { return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

//go:wasmexport evp_abi_v1
func evpABIv1() {}

//go:wasmexport evp_alloc
func evpAlloc(size int32) int32 {
	b := wasmDriver().Alloc(size)
	if b == nil {
		return 0
	}
	return addr(b)
}

//go:wasmexport evp_init
func evpInit(ptr, n int32) int32 {
	d := wasmDriver()
	config, ok := d.region(uintptr(uint32(ptr)), n)
	if !ok {
		Log(LevelError, "evp: evp_init: the config is not in the buffer evp_alloc returned")
		return 1
	}
	return d.Init(config)
}

//go:wasmexport evp_process
func evpProcess(ptr, n int32) int64 {
	d := wasmDriver()
	in, ok := d.region(uintptr(uint32(ptr)), n)
	if !ok {
		Log(LevelError, "evp: evp_process: the batch is not in the buffer evp_alloc returned")
		return -1
	}
	out, status := d.Process(in)
	if status != 0 {
		return status
	}
	return int64(uint64(uint32(addr(out)))<<32 | uint64(uint32(len(out))))
}
