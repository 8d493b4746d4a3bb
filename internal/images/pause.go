package images

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// pauseName is the name, and executable, of the pause image.
const pauseName = "pause"

// pauseSource is the pause program, pause/main.go.
//
//go:embed pause/main.go
var pauseSource []byte

// pauseGoMod is the go.mod of the scratch module the pause program is built in. Its go version is
// old on purpose: any toolchain that builds this module builds it without switching toolchains.
const pauseGoMod = "module seek.local/pause\n\ngo 1.22\n"

// writePauseModule writes the pause program's scratch module to dir and returns dir.
func writePauseModule(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pause module: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{"go.mod", []byte(pauseGoMod)},
		{"main.go", pauseSource},
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return "", fmt.Errorf("pause module: %w", err)
		}
	}
	return dir, nil
}
