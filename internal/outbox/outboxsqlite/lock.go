package outboxsqlite

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrInUse is the error (under errors.Is) of an Open whose database another
// evproxy process, or another Store of this process, has open.
var ErrInUse = errors.New("outboxsqlite: database in use by another evproxy process")

// inUseError names the database and, when the lock file says, the process
// holding it.
type inUseError struct {
	path string
	pid  int
}

func (e *inUseError) Error() string {
	s := fmt.Sprintf("outboxsqlite: %s is in use by another evproxy process", e.path)
	if e.pid > 0 {
		s += " (pid " + strconv.Itoa(e.pid) + ")"
	}
	return s
}

func (e *inUseError) Unwrap() error { return ErrInUse }

// fileLock is the exclusive lock on <path>.lock that makes the store
// single-process. The operating system releases it when the process ends,
// however it ends, so a kill -9 leaves no stale lock. The lock file is
// never deleted: deleting it would let two processes lock two different
// files of the same name.
type fileLock struct {
	f *os.File
}

// lockFile takes the lock on name, the lock file of the database at path.
func lockFile(path, name string) (*fileLock, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("outboxsqlite: lock file: %w", err)
	}
	busy, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("outboxsqlite: lock %s: %w", name, err)
	}
	if busy {
		b, _ := os.ReadFile(name)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		f.Close()
		return nil, &inUseError{path: path, pid: pid}
	}
	// The holder's pid, for the error message of the next one to try; not
	// needed for the lock itself, so failures are ignored.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

// release gives the lock up.
func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Truncate(0)
	unlock(l.f)
	l.f.Close()
	l.f = nil
}
