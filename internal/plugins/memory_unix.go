//go:build unix

package plugins

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapMemory is a linear memory in a private anonymous mapping of max
// bytes, accessible up to committed.
type mmapMemory struct {
	mem       []byte // the whole reservation; nil once freed
	committed int    // bytes made readable and writable
}

func newLinearMemory(capacity, max uint64) experimental.LinearMemory {
	if max > 0 && max <= maxMemoryLimit {
		mem, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err == nil {
			return &mmapMemory{mem: mem}
		}
	}
	return &sliceMemory{buf: make([]byte, 0, capacity)}
}

// Reallocate makes the first size bytes accessible (they are zero until
// the guest writes them) and returns them. The address never changes.
func (m *mmapMemory) Reallocate(size uint64) []byte {
	if m.mem == nil || size > uint64(len(m.mem)) {
		return nil
	}
	if n := int(size); n > m.committed {
		page := syscall.Getpagesize()
		end := min((n+page-1)/page*page, len(m.mem))
		if err := syscall.Mprotect(m.mem[m.committed:end], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil // memory.grow fails in the guest
		}
		m.committed = end
	}
	return m.mem[:size:size]
}

// Free unmaps the memory. wazero calls it when the instance is closed,
// after its last call.
func (m *mmapMemory) Free() {
	if m.mem != nil {
		_ = syscall.Munmap(m.mem)
		m.mem = nil
	}
}
