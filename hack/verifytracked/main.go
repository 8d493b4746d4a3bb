// Command verifytracked fails when the Git index of a repository holds a build output: a file larger
// than the size limit, or an executable binary (an ELF, Mach-O, PE or WebAssembly file, or any file
// with the executable bit that is not a script starting with "#!"). `make verify` runs it, so CI
// refuses a commit that adds one.
//
// Usage: go run ./hack/verifytracked [-C dir] [-max-bytes N]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// defaultMaxBytes is the largest file the repository may track: 1 MiB.
const defaultMaxBytes = 1 << 20

func main() {
	dir := flag.String("C", ".", "the repository to check")
	maxBytes := flag.Int64("max-bytes", defaultMaxBytes, "the largest tracked file allowed, in bytes")
	flag.Parse()
	problems, err := check(*dir, *maxBytes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifytracked:", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "verifytracked:", p)
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "verifytracked: build outputs must not be committed; `git rm --cached` them and add them to .gitignore.")
		os.Exit(1)
	}
}

// trackedFile is one entry of the Git index.
type trackedFile struct {
	path string
	mode string // "100644", "100755", "120000" (symlink), "160000" (submodule)
}

// check returns one message per tracked file that breaks a rule, in index order.
func check(dir string, maxBytes int64) ([]string, error) {
	files, err := listTracked(dir)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, f := range files {
		if f.mode != "100644" && f.mode != "100755" {
			continue // symlinks and submodules hold no content of their own
		}
		p, err := checkFile(filepath.Join(dir, f.path), f.mode == "100755", maxBytes)
		if err != nil {
			return nil, err
		}
		if p != "" {
			problems = append(problems, f.path+": "+p)
		}
	}
	return problems, nil
}

func listTracked(dir string) ([]trackedFile, error) {
	cmd := exec.Command("git", "-C", dir, "ls-files", "--stage", "-z")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	var files []trackedFile
	for _, entry := range strings.Split(string(out), "\x00") {
		if entry == "" {
			continue
		}
		// "<mode> <object> <stage>\t<path>"
		meta, path, ok := strings.Cut(entry, "\t")
		fields := strings.Fields(meta)
		if !ok || len(fields) != 3 {
			return nil, fmt.Errorf("unexpected git ls-files entry %q", entry)
		}
		files = append(files, trackedFile{path: path, mode: fields[0]})
	}
	return files, nil
}

// binaryMagics are the first bytes of executable formats.
var binaryMagics = []struct {
	magic []byte
	name  string
}{
	{[]byte("\x7fELF"), "an ELF executable"},
	{[]byte{0xfe, 0xed, 0xfa, 0xce}, "a Mach-O executable"},
	{[]byte{0xfe, 0xed, 0xfa, 0xcf}, "a Mach-O executable"},
	{[]byte{0xce, 0xfa, 0xed, 0xfe}, "a Mach-O executable"},
	{[]byte{0xcf, 0xfa, 0xed, 0xfe}, "a Mach-O executable"},
	{[]byte{0xca, 0xfe, 0xba, 0xbe}, "a Mach-O universal binary"},
	{[]byte("MZ"), "a PE (Windows) executable"},
	{[]byte("\x00asm"), "a WebAssembly module"},
}

// checkFile returns why the file at path may not be tracked, or "" when it may. A file in the index
// but missing from the work tree (deleted, not yet committed) is skipped.
func checkFile(path string, executable bool, maxBytes int64) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	if info.Size() > maxBytes {
		return fmt.Sprintf("%d bytes, over the %d-byte limit for tracked files", info.Size(), maxBytes), nil
	}
	head := make([]byte, 4)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	head = head[:n]
	for _, m := range binaryMagics {
		if bytes.HasPrefix(head, m.magic) {
			return m.name, nil
		}
	}
	if executable && !bytes.HasPrefix(head, []byte("#!")) {
		return "executable but not a script (no #! line): a compiled binary?", nil
	}
	return "", nil
}
