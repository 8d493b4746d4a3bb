// Package images builds Seek's container images without Docker and without a registry. Each image is
// one Go main package compiled static (CGO_ENABLED=0: the pure Go resolver and user lookup) and packed, together with a
// minimal /etc/passwd, /etc/group, /home/nonroot and /tmp, into a single-layer image that runs as
// the distroless "nonroot" user (65532:65532). The image is written as a docker-archive tarball,
// which `ctr -n k8s.io images import FILE` (containerd) and `docker load -i FILE` accept.
//
// Images are reproducible: the layer's entries have fixed owners and modification times and the
// config a fixed creation time, so the same binary gives the same image digest. A Builder keeps the
// binaries and tarballs in its CacheDir and rewrites a tarball only when its binary, or anything else
// that goes into the image, changed.
//
// build/Dockerfile builds equivalent images with Docker (on distroless/static-debian12:nonroot).
package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	// NonrootUID is the user the images run as: "nonroot", as in the distroless images.
	NonrootUID = 65532
	// NonrootGID is the primary group of NonrootUID.
	NonrootGID = 65532

	// DefaultPauseRef is the reference of the pod sandbox image Builder.Pause builds when
	// Builder.PauseRef is empty.
	DefaultPauseRef = "seek.local/pause:3.10"
	// DefaultSource is the org.opencontainers.image.source label when Builder.Source is empty.
	DefaultSource = "https://github.com/seek-api/seek-operator"

	// pathEnv is the PATH of the images, the one of the distroless images.
	pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// caBundlePath is where Builder.CACertFile goes in the image: where Go's crypto/x509 and the
	// distroless images look for the system roots.
	caBundlePath = "etc/ssl/certs/ca-certificates.crt"
	// formatVersion is part of every cache key; bump it whenever the image layout changes.
	formatVersion = "1"
)

// epoch is the creation time of every image and the modification time of every layer entry, fixed
// so that builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// DefaultSpecs are Seek's images: the manager, the REST frontend, the runner of pooled workers'
// pods and the sample workers. Their repositories are the Helm chart's components (manager,
// frontend, runner, worker-<name>), so the chart finds them with image.registry=<Builder.Registry>
// and image.repositoryPrefix="". The runner's image holds /seek-runner, which a pool pod's init
// container runs as "/seek-runner install /seek/bin/seek-runner".
var DefaultSpecs = []Spec{
	{Name: "manager", Package: "./cmd/manager"},
	{Name: "frontend", Package: "./cmd/frontend"},
	{Name: "seek-runner", Package: "./cmd/seek-runner", Repository: "runner"},
	{Name: "echo", Package: "./cmd/workers/echo", Repository: "worker-echo"},
	{Name: "sleep", Package: "./cmd/workers/sleep", Repository: "worker-sleep"},
	{Name: "fail", Package: "./cmd/workers/fail", Repository: "worker-fail"},
	{Name: "email-validator", Package: "./cmd/workers/email-validator", Repository: "worker-email-validator"},
}

// systemCACerts is the usual PEM bundle of the system's trusted CAs (Debian, Ubuntu, Alpine, Arch).
const systemCACerts = "/etc/ssl/certs/ca-certificates.crt"

// SystemCACertFile is this machine's bundle of trusted CA certificates, a Builder's usual CACertFile,
// or "" if it has none where Debian, Ubuntu, Alpine and Arch keep it.
func SystemCACertFile() string {
	if _, err := os.Stat(systemCACerts); err != nil {
		return ""
	}
	return systemCACerts
}

// Spec is one image: a Go main package built static into a single-layer image.
type Spec struct {
	// Name names the image and its executable, /<Name> (the entrypoint), e.g. "manager". It must be
	// a lowercase repository path component: [a-z0-9]+ separated by single '.', '_' or '-'.
	Name string
	// Package is the main package, relative to Builder.ModuleDir, e.g. "./cmd/manager".
	Package string
	// Repository is the image's repository below Builder.Registry, e.g. "seek-operator-manager";
	// empty means Name.
	Repository string
}

// Result is one built image.
type Result struct {
	Spec Spec
	// Ref is the image's reference, <Registry>/<Repository>:<Tag>.
	Ref string
	// Tarball is the docker-archive tarball holding the image under Ref.
	Tarball string
	// Digest is the image's manifest digest as go-containerregistry computes it ("sha256:…"). An
	// importer that writes a manifest of its own (containerd does, for docker archives) may list
	// another one.
	Digest string
	// ImageID is the digest of the image's config, the image ID `crictl images` and `docker images`
	// show; it is the same wherever the tarball is imported.
	ImageID string
	// Size is the tarball's size in bytes.
	Size int64
	// Cached reports that the tarball was already up to date and was not rewritten.
	Cached bool
}

// Builder builds images from Go main packages of a module, with no Docker and no registry. Its
// exported fields must not change while it builds; a Builder must not be copied after first use.
// It builds one image at a time; other processes that share its CacheDir never see a partly written
// binary or tarball, but may duplicate work.
type Builder struct {
	// ModuleDir is the directory of the module whose packages are built; empty means the current
	// directory.
	ModuleDir string
	// Registry is the repository prefix of the images, e.g. "seek.local/seek-operator". Its first
	// component must be a registry host (containing '.' or ':', or "localhost"), so that the
	// reference a pod names is exactly the one the image is imported under.
	Registry string
	// Tag is the images' tag, e.g. "dev". "latest" is refused: with it, the kubelet defaults to
	// imagePullPolicy Always and tries to pull an image that only exists imported.
	Tag string
	// GOOS is the target operating system; empty means linux, the only one supported.
	GOOS string
	// GOARCH is the target architecture; empty means runtime.GOARCH.
	GOARCH string
	// CacheDir is where the binaries (bin/<GOOS>_<GOARCH>/<Name>) and the tarballs
	// (<Name>_<tag>_<GOOS>_<GOARCH>.tar) go. It is created if missing.
	CacheDir string
	// PauseRef is the reference of the pod sandbox image; empty means DefaultPauseRef.
	PauseRef string
	// Source is the org.opencontainers.image.source label; empty means DefaultSource.
	Source string
	// CACertFile, if set, is a PEM bundle of trusted CA certificates installed in every image as
	// /etc/ssl/certs/ca-certificates.crt (SSL_CERT_FILE), as the distroless images have one; without
	// it, outbound TLS from the images fails to verify servers.
	CACertFile string
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)

	mu sync.Mutex
}

// Build builds the image of s into a docker-archive tarball in CacheDir and returns its reference
// and the tarball's path.
func (b *Builder) Build(ctx context.Context, s Spec) (ref string, tarballPath string, err error) {
	r, err := b.build(ctx, s, false)
	if err != nil {
		return "", "", err
	}
	return r.Ref, r.Tarball, nil
}

// BuildAll builds the images of specs, one after the other, in order. On error it returns the
// results of the images built before the failing one.
func (b *Builder) BuildAll(ctx context.Context, specs []Spec) ([]Result, error) {
	seen := make(map[string]bool, len(specs))
	for _, s := range specs {
		if seen[s.Name] {
			return nil, fmt.Errorf("image %q is listed twice", s.Name)
		}
		seen[s.Name] = true
	}
	results := make([]Result, 0, len(specs))
	for _, s := range specs {
		r, err := b.build(ctx, s, false)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

// Pause builds the pod sandbox image, PauseRef (default DefaultPauseRef): a tiny static program,
// /pause, that blocks until SIGTERM or SIGINT and exits 0. Its source is embedded in this package
// and built in a scratch module of its own, so it does not depend on ModuleDir. containerd uses it
// once its CRI configuration names it as the sandbox image.
func (b *Builder) Pause(ctx context.Context) (ref, tarballPath string, err error) {
	r, err := b.PauseResult(ctx)
	if err != nil {
		return "", "", err
	}
	return r.Ref, r.Tarball, nil
}

// PauseResult is Pause returning the full Result.
func (b *Builder) PauseResult(ctx context.Context) (Result, error) {
	return b.build(ctx, Spec{Name: pauseName, Package: "."}, true)
}

// platform is a validated build target.
type platform struct{ goos, goarch string }

func (p platform) String() string { return p.goos + "_" + p.goarch }

// nameRE is a repository path component, as the distribution spec defines it.
var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// checkSpec validates s.
func checkSpec(s Spec) error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("invalid image name %q: want lowercase [a-z0-9] separated by '.', '_' or '-'", s.Name)
	}
	switch s.Name {
	case "etc", "home", "tmp":
		return fmt.Errorf("image name %q collides with the image's /%s directory", s.Name, s.Name)
	}
	if s.Package == "" {
		return fmt.Errorf("image %s: no package", s.Name)
	}
	return nil
}

// parseRef parses ref, which must name its registry and a tag other than "latest".
func parseRef(ref string) (name.Tag, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	if tag.TagStr() == "latest" {
		return name.Tag{}, fmt.Errorf("image reference %q: tag latest is refused: the kubelet would always try to pull it", ref)
	}
	return tag, nil
}

// ref returns the reference of s, or of the pause image.
func (b *Builder) ref(s Spec, pause bool) (name.Tag, error) {
	if pause {
		ref := b.PauseRef
		if ref == "" {
			ref = DefaultPauseRef
		}
		return parseRef(ref)
	}
	if b.Tag == "" {
		return name.Tag{}, errors.New("no image tag")
	}
	if b.Tag == "latest" {
		return name.Tag{}, errors.New("image tag latest is refused: the kubelet would always try to pull it")
	}
	if b.Registry == "" {
		return name.Tag{}, errors.New("no image registry")
	}
	repo := s.Repository
	if repo == "" {
		repo = s.Name
	}
	return parseRef(strings.TrimSuffix(b.Registry, "/") + "/" + repo + ":" + b.Tag)
}

// platform returns the target of b.
func (b *Builder) platform() (platform, error) {
	p := platform{goos: b.GOOS, goarch: b.GOARCH}
	if p.goos == "" {
		p.goos = "linux"
	}
	if p.goarch == "" {
		p.goarch = runtime.GOARCH
	}
	if p.goos != "linux" {
		return platform{}, fmt.Errorf("GOOS %q: only linux images are supported", p.goos)
	}
	if !nameRE.MatchString(p.goarch) {
		return platform{}, fmt.Errorf("invalid GOARCH %q", p.goarch)
	}
	return p, nil
}

func (b *Builder) logf(format string, args ...any) {
	if b.Logf != nil {
		b.Logf(format, args...)
	}
}

// build builds the image of s, or the pause image.
func (b *Builder) build(ctx context.Context, s Spec, pause bool) (Result, error) {
	if err := checkSpec(s); err != nil {
		return Result{}, err
	}
	tag, err := b.ref(s, pause)
	if err != nil {
		return Result{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	r, err := b.buildImage(ctx, s, tag, pause)
	if err != nil {
		return Result{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	return r, nil
}

func (b *Builder) buildImage(ctx context.Context, s Spec, tag name.Tag, pause bool) (Result, error) {
	plat, err := b.platform()
	if err != nil {
		return Result{}, err
	}
	if b.CacheDir == "" {
		return Result{}, errors.New("no cache directory")
	}
	cacheDir, err := filepath.Abs(b.CacheDir)
	if err != nil {
		return Result{}, fmt.Errorf("cache directory: %w", err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()

	start := time.Now()
	dir, pkg, env := b.ModuleDir, s.Package, []string(nil)
	if pause {
		if dir, err = writePauseModule(filepath.Join(cacheDir, "src", pauseName)); err != nil {
			return Result{}, err
		}
		// The scratch module is self-contained: no workspace, no vendoring, no VCS stamp (it may sit
		// in a repository whose state would change the binary).
		env = []string{"GOWORK=off", "GOFLAGS=-buildvcs=false"}
	}
	binPath, err := goBuild(ctx, dir, pkg, filepath.Join(cacheDir, "bin", plat.String()), s.Name, plat, env)
	if err != nil {
		return Result{}, err
	}
	compiled := time.Since(start)

	binDigest, err := fileDigest(binPath)
	if err != nil {
		return Result{}, err
	}
	var caPEM []byte
	if b.CACertFile != "" {
		if caPEM, err = os.ReadFile(b.CACertFile); err != nil {
			return Result{}, fmt.Errorf("CA certificates: %w", err)
		}
	}
	source := b.Source
	if source == "" {
		source = DefaultSource
	}
	in := imageInput{
		Format:     formatVersion,
		Go:         runtime.Version(), // compress/gzip's output may change between Go releases
		Ref:        tag.String(),
		Tag:        tag.TagStr(),
		Name:       s.Name,
		Package:    s.Package,
		OS:         plat.goos,
		Arch:       plat.goarch,
		Binary:     binDigest,
		CACerts:    digestBytes(caPEM),
		HasCACerts: caPEM != nil,
		Source:     source,
	}
	key, err := in.key()
	if err != nil {
		return Result{}, err
	}
	tarPath := filepath.Join(cacheDir, fmt.Sprintf("%s_%s_%s.tar", s.Name, tag.TagStr(), plat))
	res := Result{Spec: s, Ref: tag.String(), Tarball: tarPath}

	if e, ok := readCacheEntry(tarPath, key); ok {
		res.Digest, res.ImageID, res.Cached = e.Digest, e.ImageID, true
		if res.Size, err = fileSize(tarPath); err != nil {
			return Result{}, err
		}
		b.logf("%s: up to date (%s, compiled in %s)", res.Ref, res.Digest, compiled.Round(time.Millisecond))
		return res, nil
	}

	img, cleanup, err := assemble(cacheDir, in, binPath, caPEM)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	digest, err := img.Digest()
	if err != nil {
		return Result{}, fmt.Errorf("image digest: %w", err)
	}
	imageID, err := img.ConfigName()
	if err != nil {
		return Result{}, fmt.Errorf("image config digest: %w", err)
	}
	if err := writeTarball(tarPath, tag, img); err != nil {
		return Result{}, err
	}
	e := cacheEntry{Key: key, Ref: res.Ref, Digest: digest.String(), ImageID: imageID.String()}
	if err := writeCacheEntry(tarPath, e); err != nil {
		return Result{}, err
	}
	res.Digest, res.ImageID = e.Digest, e.ImageID
	if res.Size, err = fileSize(tarPath); err != nil {
		return Result{}, err
	}
	b.logf("%s: built %s (%d bytes; compiled in %s, total %s)", res.Ref, res.Digest, res.Size,
		compiled.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return res, nil
}

// goBuild compiles the main package pkg of the module in dir into binDir/binName and returns the
// binary's path. The binary is written under a temporary name and renamed into place.
func goBuild(ctx context.Context, dir, pkg, binDir, binName string, plat platform, extraEnv []string) (string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("binary directory: %w", err)
	}
	tmpDir, err := os.MkdirTemp(binDir, ".build-")
	if err != nil {
		return "", fmt.Errorf("binary directory: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	out := filepath.Join(tmpDir, binName)

	// CGO off already gives the pure Go net resolver and os/user: no netgo or osusergo tags, which
	// would change the net package's files and so the build cache key of every package importing it.
	// The Makefile runs every go command with these settings, so the tests' compiled packages serve here.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+plat.goos, "GOARCH="+plat.goarch)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.WaitDelay = 10 * time.Second
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", fmt.Errorf("go build %s: %w", pkg, ctxErr)
		}
		return "", fmt.Errorf("go build %s: %w: %s", pkg, err, bytes.TrimSpace(output.Bytes()))
	}
	binPath := filepath.Join(binDir, binName)
	if err := os.Rename(out, binPath); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return binPath, nil
}

// imageInput is everything that determines an image's tarball; its hash is the cache key.
type imageInput struct {
	Format     string `json:"format"`
	Go         string `json:"go"`
	Ref        string `json:"ref"`
	Tag        string `json:"tag"`
	Name       string `json:"name"`
	Package    string `json:"package"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Binary     string `json:"binary"`
	CACerts    string `json:"caCerts"`
	HasCACerts bool   `json:"hasCACerts"`
	Source     string `json:"source"`
}

func (in imageInput) key() (string, error) {
	j, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	return digestBytes(j), nil
}

// assemble builds the image of in, whose layer it writes to a temporary file in dir; cleanup
// removes that file once the image has been written.
func assemble(dir string, in imageInput, binPath string, caPEM []byte) (img v1.Image, cleanup func(), err error) {
	layerFile, err := os.CreateTemp(dir, ".layer-*.tar.gz")
	if err != nil {
		return nil, nil, fmt.Errorf("layer: %w", err)
	}
	cleanup = func() { os.Remove(layerFile.Name()) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if err := writeLayer(layerFile, in.Name, binPath, caPEM); err != nil {
		layerFile.Close()
		return nil, nil, fmt.Errorf("layer: %w", err)
	}
	if err := layerFile.Close(); err != nil {
		return nil, nil, fmt.Errorf("layer: %w", err)
	}
	layer, err := tarball.LayerFromFile(layerFile.Name())
	if err != nil {
		return nil, nil, fmt.Errorf("layer: %w", err)
	}

	img, err = mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: "CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' " + in.Package + " (seek-operator internal/images)",
			Comment:   "static binary /" + in.Name + ", /etc/passwd, /etc/group, /home/nonroot, /tmp",
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	base, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("image config: %w", err)
	}
	cfg := base.DeepCopy()
	cfg.OS = in.OS
	cfg.Architecture = in.Arch
	cfg.Created = v1.Time{Time: epoch}
	env := []string{pathEnv}
	if in.HasCACerts {
		env = append(env, "SSL_CERT_FILE=/"+caBundlePath)
	}
	cfg.Config = v1.Config{
		Entrypoint: []string{"/" + in.Name},
		User:       strconv.Itoa(NonrootUID) + ":" + strconv.Itoa(NonrootGID),
		WorkingDir: "/",
		Env:        env,
		Labels: map[string]string{
			"org.opencontainers.image.source":  in.Source,
			"org.opencontainers.image.title":   in.Name,
			"org.opencontainers.image.version": in.Tag,
		},
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, nil, fmt.Errorf("image config: %w", err)
	}
	return img, cleanup, nil
}

// writeTarball writes img as a docker-archive tarball tagged tag to path, atomically.
func writeTarball(path string, tag name.Tag, img v1.Image) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := tarball.Write(tag, img, f); err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	return nil
}

// cacheEntry is the sidecar file <tarball>.json: what the tarball was built from and its digests.
type cacheEntry struct {
	Key     string `json:"key"`
	Ref     string `json:"ref"`
	Digest  string `json:"digest"`
	ImageID string `json:"imageID"`
}

func cacheEntryPath(tarPath string) string { return tarPath + ".json" }

// readCacheEntry returns the cache entry of the tarball at tarPath if it was built from key and the
// tarball still holds the image the entry names. Any failure means "not cached".
func readCacheEntry(tarPath, key string) (cacheEntry, bool) {
	j, err := os.ReadFile(cacheEntryPath(tarPath))
	if err != nil {
		return cacheEntry{}, false
	}
	var e cacheEntry
	if err := json.Unmarshal(j, &e); err != nil || e.Key != key {
		return cacheEntry{}, false
	}
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		return cacheEntry{}, false
	}
	if d, err := img.Digest(); err != nil || d.String() != e.Digest {
		return cacheEntry{}, false
	}
	return e, true
}

// writeCacheEntry writes the cache entry of the tarball at tarPath, atomically.
func writeCacheEntry(tarPath string, e cacheEntry) error {
	j, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("cache entry: %w", err)
	}
	if err := writeFileAtomic(cacheEntryPath(tarPath), append(j, '\n'), 0o644); err != nil {
		return fmt.Errorf("cache entry: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file renamed into place.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// fileDigest returns the "sha256:<hex>" digest of the file at path.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// digestBytes returns the "sha256:<hex>" digest of b.
func digestBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("tarball: %w", err)
	}
	return fi.Size(), nil
}
