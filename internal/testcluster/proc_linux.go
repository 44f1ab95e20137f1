package testcluster

import (
	"os/exec"
	"syscall"
)

// dieWithParent kills the server when the test binary dies (a panic, a
// -timeout), so no etcd or controller outlives the test run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
