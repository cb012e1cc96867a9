package chdb

import (
	"syscall"
	"unsafe"
)

// kernelSigaction is struct sigaction as the rt_sigaction system call takes it on
// linux/amd64 (the only platform libchdb.so is published for).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const numSignals = 64

// signalState holds every signal disposition of the process.
type signalState [numSignals + 1]kernelSigaction

// saveSignals records the current dispositions. The ClickHouse engine installs its own
// handlers when a session starts (for SIGSEGV, SIGINT, SIGQUIT, SIGURG among others);
// the Go runtime needs its own handlers for preemption, panics on nil dereference and
// shutdown, so driftd puts them back right after the engine starts.
func saveSignals() *signalState {
	var s signalState
	for sig := 1; sig <= numSignals; sig++ {
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&s[sig])), 8, 0, 0)
	}
	return &s
}

// restore puts back the dispositions that differ from the recorded ones.
func (s *signalState) restore() {
	for sig := 1; sig <= numSignals; sig++ {
		if sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP) {
			continue
		}
		var cur kernelSigaction
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&cur)), 8, 0, 0)
		if cur != s[sig] {
			syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&s[sig])), 0, 8, 0, 0)
		}
	}
}
