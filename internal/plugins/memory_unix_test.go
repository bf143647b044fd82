//go:build unix

package plugins

import (
	"testing"
	"unsafe"
)

func TestMmapMemory(t *testing.T) {
	t.Parallel()
	lm := newLinearMemory(0, 4<<20)
	m, ok := lm.(*mmapMemory)
	if !ok {
		t.Fatalf("%T, want *mmapMemory", lm)
	}
	b := m.Reallocate(pageSize)
	if len(b) != pageSize || cap(b) != pageSize {
		t.Fatalf("len %d cap %d", len(b), cap(b))
	}
	b[0], b[pageSize-1] = 1, 2
	base := unsafe.SliceData(b)
	b = m.Reallocate(1 << 20)
	if len(b) != 1<<20 || unsafe.SliceData(b) != base {
		t.Fatal("growing moved the memory")
	}
	if b[0] != 1 || b[pageSize-1] != 2 {
		t.Fatal("growing lost the contents")
	}
	for i, c := range b[pageSize:] {
		if c != 0 {
			t.Fatalf("byte %d of the new pages is %d", pageSize+i, c)
		}
	}
	b[len(b)-1] = 3 // writable
	if m.Reallocate(4<<20+1) != nil {
		t.Fatal("grew past the maximum")
	}
	m.Free()
	m.Free()
	if m.Reallocate(pageSize) != nil {
		t.Fatal("grew after Free")
	}
	if _, ok := newLinearMemory(0, 0).(*sliceMemory); !ok {
		t.Fatal("no maximum: want the slice fallback")
	}
}
