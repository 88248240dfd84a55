package lambdalocal

// PID is the process id of the emulator; the function's bootstrap runs as
// its child. The chaos suite reads the bootstrap's peak memory through it.
func (f *Function) PID() int {
	if f == nil || f.cmd == nil || f.cmd.Process == nil {
		return 0
	}
	return f.cmd.Process.Pid
}

// Exited reports whether the emulator has ended (crashed or stopped).
func (f *Function) Exited() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}
