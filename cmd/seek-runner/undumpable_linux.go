package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// undumpable makes the runner's process not dumpable: its /proc entries then belong to root, so the
// worker's processes (the same user, no capabilities) can neither open its file descriptors (the
// container's log: /proc/1/fd/2) nor read its memory. The runner must be the only writer of the pod
// log, or a worker could write a line that passes for the runner's (a job marker; see pkg/joblog).
// Processes the runner starts are dumpable again (execve resets the flag).
func undumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}
