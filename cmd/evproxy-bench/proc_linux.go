package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childAttr makes the kernel kill evproxy if the benchmark dies first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// peakRSS is the process's peak resident set size (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime is the user plus system CPU time the process used so far, all
// threads included.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// fields are counted after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * clockTick, nil
}

// machineBusy is the CPU time every process of the machine used so far
// (user, nice, system, irq and softirq of /proc/stat's cpu line).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var sum int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return time.Duration(sum) * clockTick, nil
}

// postgresCPU is the CPU time PostgreSQL used so far: user plus system
// time of every live process named postgres, plus the time of the exited
// ones its postmaster reaped (cutime and cstime of a postgres process whose
// parent is not postgres). found is false when no such process is visible
// (a server elsewhere, or in another PID namespace).
func postgresCPU() (d time.Duration, found bool, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false, err
	}
	type proc struct {
		ppid      int
		own, kids int64 // clock ticks
	}
	procs := map[int]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		lp, rp := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if lp < 0 || rp < lp || string(b[lp+1:rp]) != "postgres" {
			continue
		}
		f := strings.Fields(string(b[rp+1:]))
		// f[1] is field 4 (ppid); utime, stime, cutime, cstime are
		// fields 14 to 17.
		if len(f) < 15 {
			continue
		}
		var n [5]int64
		for i, j := range []int{1, 11, 12, 13, 14} {
			if n[i], err = strconv.ParseInt(f[j], 10, 64); err != nil {
				return 0, false, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
		}
		procs[pid] = proc{ppid: int(n[0]), own: n[1] + n[2], kids: n[3] + n[4]}
	}
	var ticks int64
	for _, p := range procs {
		ticks += p.own
		if _, child := procs[p.ppid]; !child {
			ticks += p.kids // the postmaster: backends that exited
		}
	}
	return time.Duration(ticks) * clockTick, len(procs) > 0, nil
}
