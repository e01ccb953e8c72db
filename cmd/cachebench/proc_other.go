//go:build !linux

package main

import "syscall"

// sysProcAttr has no portable options outside Linux.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// cpuSeconds is not measured outside Linux: it returns 0.
func cpuSeconds() float64 { return 0 }
