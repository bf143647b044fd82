//go:build !unix && !windows

package outboxsqlite

import (
	"errors"
	"os"
)

// tryLock fails: this platform has no file lock to keep the store
// single-process.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("file locks are not supported on this platform")
}

func unlock(*os.File) {}
