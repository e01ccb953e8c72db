package main

import "syscall"

// sysProcAttr puts a started server in its own process group, so that a
// terminal's Ctrl-C reaches only cachebench (which then stops the server by
// pid), and has the kernel kill it if cachebench dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
