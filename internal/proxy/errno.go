package proxy

import "syscall"

// errTooManyFiles is returned by accept when the process is out of file
// descriptors; the accept loop backs off instead of stopping.
var errTooManyFiles error = syscall.EMFILE
