package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q")
	write := func(name string, data []byte, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", []byte("# hello\n"), 0o644)
	write("hack/run.sh", []byte("#!/usr/bin/env bash\necho hi\n"), 0o755)
	write("big.json", make([]byte, 2048), 0o644)
	write("bench", append([]byte("\x7fELF"), make([]byte, 100)...), 0o755)
	write("lib.so", append([]byte("\x7fELF"), make([]byte, 100)...), 0o644)
	write("tool.exe", []byte("MZ\x90\x00rest"), 0o644)
	write("seek-local", []byte("not a script"), 0o755)
	write("empty", nil, 0o644)
	write("ignored-big", make([]byte, 4096), 0o644)
	if err := os.Symlink("README.md", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "README.md", "hack/run.sh", "big.json", "bench", "lib.so", "tool.exe", "seek-local", "empty", "link")

	got, err := check(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bench: an ELF executable",
		"big.json: 2048 bytes, over the 1024-byte limit for tracked files",
		"lib.so: an ELF executable",
		"seek-local: executable but not a script (no #! line): a compiled binary?",
		"tool.exe: a PE (Windows) executable",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("check() mismatch (-want +got):\n%s", diff)
	}

	// A tracked file deleted from the work tree is not reported: the deletion is what removes it.
	if err := os.Remove(filepath.Join(dir, "bench")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "rm", "-q", "--cached", "lib.so", "tool.exe", "seek-local", "big.json")
	got, err = check(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("check() after removal = %q, want nothing", got)
	}
}

// TestRepository holds this repository itself to the rules, so `go test ./...` fails on a committed
// binary even where `make verify` is not run.
func TestRepository(t *testing.T) {
	got, err := check("../..", defaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		t.Error(p)
	}
}
