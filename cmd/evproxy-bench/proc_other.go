//go:build !linux

package main

import (
	"errors"
	"syscall"
	"time"
)

var errNoProc = errors.New("needs Linux /proc")

func childAttr() *syscall.SysProcAttr { return nil }

func peakRSS(int) (int64, error) { return 0, errNoProc }

func cpuTime(int) (time.Duration, error) { return 0, errNoProc }

func machineBusy() (time.Duration, error) { return 0, errNoProc }

func postgresCPU() (time.Duration, bool, error) { return 0, false, errNoProc }
