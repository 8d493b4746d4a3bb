package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// hello is the tiny main package of testdata/module.
var hello = Spec{Name: "hello", Package: "./cmd/hello"}

// newTestBuilder returns a Builder of testdata/module whose cache is a fresh temporary directory.
func newTestBuilder(t *testing.T) *Builder {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	// The test module lives in this repository: keep its state (VCS stamping, a workspace) out of
	// the binaries, which must only depend on their source.
	t.Setenv("GOFLAGS", "-buildvcs=false")
	t.Setenv("GOWORK", "off")
	return &Builder{
		ModuleDir: filepath.Join("testdata", "module"),
		Registry:  "seek.local/test",
		Tag:       "dev",
		CacheDir:  t.TempDir(),
		Logf:      t.Logf,
	}
}

// layerFile is one entry of an image's layer.
type layerFile struct {
	hdr  *tar.Header
	data []byte
}

// readImage reads the image in the tarball at path, as `ctr images import` would, with its layer's
// entries by name.
func readImage(t *testing.T, path, ref string) (v1.Image, map[string]layerFile) {
	t.Helper()
	tag, err := parseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		files[hdr.Name] = layerFile{hdr: hdr, data: data}
	}
	return img, files
}

func TestBuild(t *testing.T) {
	b := newTestBuilder(t)
	ctx := context.Background()

	ref, path, err := b.Build(ctx, hello)
	if err != nil {
		t.Fatal(err)
	}
	if want := "seek.local/test/hello:dev"; ref != want {
		t.Errorf("ref = %q, want %q", ref, want)
	}
	if dir := filepath.Dir(path); dir != b.CacheDir {
		t.Errorf("tarball %s is not in the cache directory %s", path, b.CacheDir)
	}
	img, files := readImage(t, path, ref)

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if got := cf.Config.User; got != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532", got)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/hello" {
		t.Errorf("entrypoint = %q, want [/hello]", got)
	}
	if got := cf.Config.WorkingDir; got != "/" {
		t.Errorf("working dir = %q, want /", got)
	}
	if got := cf.Config.Labels["org.opencontainers.image.source"]; got != DefaultSource {
		t.Errorf("source label = %q, want %q", got, DefaultSource)
	}
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("created = %v, want %v", cf.Created.Time, epoch)
	}
	if len(cf.Config.Env) == 0 || !strings.HasPrefix(cf.Config.Env[0], "PATH=") {
		t.Errorf("env = %q, want PATH first", cf.Config.Env)
	}

	exe, ok := files["hello"]
	if !ok {
		t.Fatalf("layer has no hello executable; entries: %v", names(files))
	}
	if exe.hdr.Typeflag != tar.TypeReg || exe.hdr.Mode != 0o755 || exe.hdr.Uid != 0 || exe.hdr.Gid != 0 {
		t.Errorf("hello: type %c mode %o owner %d:%d, want a regular file, 0755, 0:0",
			exe.hdr.Typeflag, exe.hdr.Mode, exe.hdr.Uid, exe.hdr.Gid)
	}
	f, err := elf.NewFile(bytes.NewReader(exe.data))
	if err != nil {
		t.Fatalf("hello is not an ELF executable: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("hello is dynamically linked (has an ELF interpreter)")
		}
	}
	if passwd, ok := files["etc/passwd"]; !ok || !strings.Contains(string(passwd.data), "nonroot:x:65532:65532:") {
		t.Errorf("etc/passwd has no nonroot 65532 user:\n%s", passwd.data)
	}
	if group, ok := files["etc/group"]; !ok || !strings.Contains(string(group.data), "nonroot:x:65532:") {
		t.Errorf("etc/group has no nonroot 65532 group:\n%s", group.data)
	}
	if tmp, ok := files["tmp/"]; !ok || tmp.hdr.Typeflag != tar.TypeDir || tmp.hdr.Mode != 0o1777 {
		t.Errorf("tmp/ is missing or not a 1777 directory: %+v", tmp.hdr)
	}
	if home, ok := files["home/nonroot/"]; !ok || home.hdr.Uid != NonrootUID || home.hdr.Gid != NonrootGID {
		t.Errorf("home/nonroot/ is missing or not owned by nonroot: %+v", home.hdr)
	}
	for n, f := range files {
		if !f.hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", n, f.hdr.ModTime, epoch)
		}
	}

	// The binary built into the cache runs, and is the one in the image.
	bin := filepath.Join(b.CacheDir, "bin", "linux_"+runtime.GOARCH, "hello")
	onDisk, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, exe.data) {
		t.Error("the image's executable differs from the cached binary")
	}
	if runtime.GOOS == "linux" {
		out, err := exec.Command(bin).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "hello from") {
			t.Errorf("run %s: %v: %s", bin, err, out)
		}
	}
}

func TestBuildReproducibleAndCached(t *testing.T) {
	ctx := context.Background()
	b := newTestBuilder(t)
	first, err := b.BuildAll(ctx, []Spec{hello})
	if err != nil {
		t.Fatal(err)
	}
	if first[0].Cached {
		t.Error("first build reports cached")
	}
	second, err := b.BuildAll(ctx, []Spec{hello})
	if err != nil {
		t.Fatal(err)
	}
	if !second[0].Cached {
		t.Error("second build of an unchanged binary rewrote the tarball")
	}
	if first[0].Digest != second[0].Digest || first[0].ImageID != second[0].ImageID {
		t.Errorf("digests differ: %s %s, then %s %s", first[0].Digest, first[0].ImageID, second[0].Digest, second[0].ImageID)
	}

	// A damaged tarball is rebuilt, identical.
	if err := os.WriteFile(first[0].Tarball, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := b.BuildAll(ctx, []Spec{hello})
	if err != nil {
		t.Fatal(err)
	}
	if third[0].Cached {
		t.Error("a damaged tarball was taken from the cache")
	}
	if third[0].Digest != first[0].Digest {
		t.Errorf("rebuild digest %s, want %s", third[0].Digest, first[0].Digest)
	}

	// Another builder, from scratch in another directory, makes the very same tarball.
	other := newTestBuilder(t)
	_, otherPath, err := other.Build(ctx, hello)
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(first[0].Tarball)
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile(otherPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c) {
		t.Error("two builds from scratch wrote different tarballs")
	}
	if first[0].Size != int64(len(a)) {
		t.Errorf("size = %d, want %d", first[0].Size, len(a))
	}

	// Anything else that goes into the image invalidates the cache: here, the tag.
	other.Tag = "dev2"
	r, err := other.BuildAll(ctx, []Spec{hello})
	if err != nil {
		t.Fatal(err)
	}
	if r[0].Cached || r[0].Digest == first[0].Digest || r[0].ImageID == first[0].ImageID {
		t.Errorf("retagged image: cached %v, digest %s (was %s)", r[0].Cached, r[0].Digest, first[0].Digest)
	}
}

func TestBuildCACerts(t *testing.T) {
	b := newTestBuilder(t)
	b.CACertFile = filepath.Join(t.TempDir(), "ca.pem")
	pem := []byte("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(b.CACertFile, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, path, err := b.Build(context.Background(), hello)
	if err != nil {
		t.Fatal(err)
	}
	img, files := readImage(t, path, ref)
	if got := files[caBundlePath]; !bytes.Equal(got.data, pem) || got.hdr.Mode != 0o644 {
		t.Errorf("%s: mode %o, content %q; want 0644, the bundle", caBundlePath, got.hdr.Mode, got.data)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cf.Config.Env, "SSL_CERT_FILE=/"+caBundlePath) {
		t.Errorf("env = %q, want SSL_CERT_FILE", cf.Config.Env)
	}
}

func TestPause(t *testing.T) {
	b := newTestBuilder(t)
	b.PauseRef = "seek.local/test-pause:1.0"
	ref, path, err := b.Pause(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ref != b.PauseRef {
		t.Errorf("ref = %q, want %q", ref, b.PauseRef)
	}
	img, files := readImage(t, path, ref)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/pause" {
		t.Errorf("entrypoint = %q, want [/pause]", got)
	}
	if f, ok := files["pause"]; !ok || f.hdr.Mode != 0o755 {
		t.Fatalf("layer has no 0755 pause executable; entries: %v", names(files))
	}

	if runtime.GOOS != "linux" {
		return
	}
	// The pause program blocks until SIGTERM, then exits 0.
	cmd := exec.Command(filepath.Join(b.CacheDir, "bin", "linux_"+runtime.GOARCH, "pause"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("pause exited before any signal: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pause after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("pause did not exit on SIGTERM")
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(*Builder)
		spec   Spec
		pause  bool
		want   string
	}{
		{name: "latest tag", mutate: func(b *Builder) { b.Tag = "latest" }, spec: hello, want: "latest"},
		{name: "no tag", mutate: func(b *Builder) { b.Tag = "" }, spec: hello, want: "no image tag"},
		{name: "latest pause", mutate: func(b *Builder) { b.PauseRef = "seek.local/pause:latest" }, pause: true, want: "latest"},
		{name: "untagged pause", mutate: func(b *Builder) { b.PauseRef = "seek.local/pause" }, pause: true, want: "invalid image reference"},
		{name: "registry without host", mutate: func(b *Builder) { b.Registry = "seek" }, spec: hello, want: "registry"},
		{name: "uppercase name", spec: Spec{Name: "Hello", Package: "./cmd/hello"}, want: "invalid image name"},
		{name: "name with slash", spec: Spec{Name: "a/b", Package: "./cmd/hello"}, want: "invalid image name"},
		{name: "name of a system directory", spec: Spec{Name: "etc", Package: "./cmd/hello"}, want: "collides"},
		{name: "no package", spec: Spec{Name: "hello"}, want: "no package"},
		{name: "windows", mutate: func(b *Builder) { b.GOOS = "windows" }, spec: hello, want: "only linux"},
		{name: "no cache dir", mutate: func(b *Builder) { b.CacheDir = "" }, spec: hello, want: "no cache directory"},
		{name: "missing package", spec: Spec{Name: "nope", Package: "./cmd/nope"}, want: "go build ./cmd/nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBuilder(t)
			if tc.mutate != nil {
				tc.mutate(b)
			}
			var err error
			if tc.pause {
				_, _, err = b.Pause(ctx)
			} else {
				_, _, err = b.Build(ctx, tc.spec)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if tc.name != "missing package" {
				if entries, _ := os.ReadDir(b.CacheDir); len(entries) != 0 {
					t.Errorf("refused build left %d entries in the cache directory", len(entries))
				}
			}
		})
	}
}

func TestBuildAllRefusesDuplicates(t *testing.T) {
	b := newTestBuilder(t)
	_, err := b.BuildAll(context.Background(), []Spec{hello, hello})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("err = %v, want a duplicate error", err)
	}
}

func TestBuildCanceled(t *testing.T) {
	b := newTestBuilder(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := b.Build(ctx, hello); err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Fatalf("err = %v, want context canceled", err)
	}
}

func TestDefaultSpecs(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range DefaultSpecs {
		if err := checkSpec(s); err != nil {
			t.Error(err)
		}
		if seen[s.Name] {
			t.Errorf("%s listed twice", s.Name)
		}
		seen[s.Name] = true
		if !strings.HasPrefix(s.Package, "./cmd/") {
			t.Errorf("%s: package %q is not under ./cmd/", s.Name, s.Package)
		}
	}
	// A pool pod's init container runs the runner image's binary by its path: /<Name>, which
	// copies itself to dispatch.RunnerPath.
	if i := slices.IndexFunc(DefaultSpecs, func(s Spec) bool { return s.Package == "./cmd/seek-runner" }); i < 0 {
		t.Error("DefaultSpecs lacks the runner")
	} else if got, want := "/"+DefaultSpecs[i].Name, "/"+path.Base(dispatch.RunnerPath); got != want {
		t.Errorf("the runner image's binary is %s, want %s", got, want)
	}
	for _, n := range []string{"manager", "frontend", "seek-runner", "echo", "sleep", "fail", "email-validator"} {
		if !seen[n] {
			t.Errorf("DefaultSpecs lacks %s", n)
		}
	}
}

func names(files map[string]layerFile) []string {
	var ns []string
	for n := range files {
		ns = append(ns, n)
	}
	return ns
}
