package runner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// prepare gets the files ready for job: an empty scratch directory, no result or progress file, and
// the input.
// A scratch directory that cannot be emptied is only logged: it holds the same tenant's files.
func (r *runner) prepare(job *dispatch.Job) error {
	if err := emptyDir(r.cfg.TmpDir); err != nil {
		r.log.Printf("job %s/%s attempt %d: emptying %s: %v", job.Namespace, job.Name, job.Attempt, r.cfg.TmpDir, err)
	}
	if err := os.Remove(r.cfg.ResultPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the previous result: %w", err)
	}
	if err := os.Remove(r.cfg.ProgressPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the previous progress: %w", err)
	}
	input := []byte(job.Input)
	if len(input) == 0 {
		input = []byte("null")
	}
	if err := os.MkdirAll(filepath.Dir(r.cfg.InputPath), 0o755); err != nil {
		return fmt.Errorf("writing the input: %w", err)
	}
	// Removed first: the previous job's file is read-only, and its process may have changed that.
	if err := os.Remove(r.cfg.InputPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the previous input: %w", err)
	}
	if err := os.WriteFile(r.cfg.InputPath, input, 0o444); err != nil {
		return fmt.Errorf("writing the input: %w", err)
	}
	return nil
}

// emptyDir removes everything in dir, but not dir itself, which it creates if missing. Directories
// the previous job made read-only are made writable first.
func emptyDir(dir string) error {
	if clean := filepath.Clean(dir); clean == "/" || clean == "." {
		return fmt.Errorf("refusing to empty %q", dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			makeWritable(p)
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// makeWritable gives the owner full access to p and every directory under it, if p is a directory
// (best effort; symbolic links are not followed).
func makeWritable(p string) {
	if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
		return
	}
	_ = os.Chmod(p, 0o700)
	entries, _ := os.ReadDir(p)
	for _, e := range entries {
		if e.IsDir() {
			makeWritable(filepath.Join(p, e.Name()))
		}
	}
}

// readResult reads the result file: at most dispatch.MaxReportBytes (1 MiB + 1), whether it held
// more, and its size. No file is an empty result.
func readResult(path string) (result string, truncated bool, size int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, 0, nil
	}
	if err != nil {
		return "", false, 0, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, dispatch.MaxReportBytes+1))
	if err != nil {
		return "", false, 0, err
	}
	size = int64(len(data))
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > size {
		size = st.Size()
	}
	if len(data) > dispatch.MaxReportBytes {
		return string(data[:dispatch.MaxReportBytes]), true, size, nil
	}
	return string(data), false, size, nil
}

// OOM-kill counters of the container's memory cgroup, relative to its mount.
const (
	cgroupV2Events  = "memory.events"
	cgroupV1Control = "memory/memory.oom_control"
)

// readOOMKills reads how many processes the kernel's OOM killer has killed in the cgroup mounted at
// dir: the oom_kill line of cgroup v2's memory.events, else of cgroup v1's memory.oom_control.
func readOOMKills(dir string) (uint64, error) {
	v2, v1 := filepath.Join(dir, cgroupV2Events), filepath.Join(dir, cgroupV1Control)
	data, err := os.ReadFile(v2)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = os.ReadFile(v1)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("neither %s nor %s exists", v2, v1)
		}
	}
	if err != nil {
		return 0, err
	}
	return parseOOMKills(data)
}

// parseOOMKills returns the value of the "oom_kill N" line of a memory.events or memory.oom_control
// file.
func parseOOMKills(data []byte) (uint64, error) {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		key, value, ok := bytes.Cut(s.Bytes(), []byte(" "))
		if !ok || string(key) != "oom_kill" {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(value)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("oom_kill: %w", err)
		}
		return n, nil
	}
	return 0, errors.New("no oom_kill counter (kernel older than 4.13?)")
}

// reapOrphans collects every exited child without blocking: processes that outlived their parent
// are reparented to PID 1, which must wait for them.
func reapOrphans() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
