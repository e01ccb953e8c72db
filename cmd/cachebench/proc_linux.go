package main

import "syscall"

// sysProcAttr puts a started server in its own process group, so that a
// terminal's Ctrl-C reaches only cachebench (which then stops the server by
// pid), and has the kernel kill it if cachebench dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// cpuSeconds is the user plus system CPU time this process has used, from
// getrusage(RUSAGE_SELF): every thread, not the servers it started.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
