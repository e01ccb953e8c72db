//go:build !linux

package main

import "syscall"

// sysProcAttr has no portable options outside Linux.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
