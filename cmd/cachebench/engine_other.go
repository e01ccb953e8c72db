//go:build !linux

package main

const epollAvailable = false

// runEpoll is not available outside Linux; -engine epoll is refused there.
func (r *run) runEpoll() { panic("cachebench: the epoll engine needs Linux") }
