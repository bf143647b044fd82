package plugins

import "github.com/tetratelabs/wazero/experimental"

// Linear memory of the instances.
//
// wazero's default linear memory is a Go slice that each memory.grow
// extends with append: the whole memory is copied into a new, larger slice
// and the old one left to Go's garbage collector. A Go guest grows its
// memory a few hundred KiB at a time while its heap warms up (13 times,
// from 2.8 to 10 MiB, in the first call of a 1,400-record batch of the
// enrich example), so that first call spent 20-32 ms growing memory (0.1
// ms here), and the host's heap carried every instance's memory.
//
// On Unix, guestMemory instead reserves address space for the memory's
// maximum (memory_limit) once, with no access, and makes pages accessible
// as the guest grows: growing never copies, the memory is outside the Go
// heap (the garbage collector neither scans nor counts it), only pages the
// guest touched are resident, and discarding an instance gives its memory
// back to the operating system at once. Elsewhere, or if the reservation
// fails, memory is a Go slice as wazero would make it.

// memoryAllocator is the experimental.MemoryAllocator of every instance.
var memoryAllocator experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(newLinearMemory)

// sliceMemory is wazero's default linear memory: a Go slice.
type sliceMemory struct{ buf []byte }

func (m *sliceMemory) Reallocate(size uint64) []byte {
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
	} else {
		m.buf = append(m.buf, make([]byte, size-uint64(len(m.buf)))...)
	}
	return m.buf
}

func (m *sliceMemory) Free() { m.buf = nil }
