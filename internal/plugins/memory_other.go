//go:build !unix

package plugins

import "github.com/tetratelabs/wazero/experimental"

func newLinearMemory(capacity, _ uint64) experimental.LinearMemory {
	return &sliceMemory{buf: make([]byte, 0, capacity)}
}
