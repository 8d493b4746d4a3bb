// Package hack_test tests the download path of hack/k8s-binaries.sh and hack/helm.sh against release
// servers on localhost: a verified download is cached, a checksum mismatch is refused with nothing
// cached, and an unreachable or incomplete release falls back to building (observed through
// SEEK_BUILD=never, so no test builds Kubernetes).
package hack_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	k8sVersion  = "v1.37.2"
	etcdVersion = "v3.7.3"
	helmVersion = "v3.22.0"
	arch        = runtime.GOARCH
)

// release serves files at their paths and records the paths asked for.
type release struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	asked []string
}

func newRelease(t *testing.T, files map[string][]byte) *release {
	t.Helper()
	r := &release{files: files}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.asked = append(r.asked, req.URL.Path)
		data, ok := r.files[req.URL.Path]
		r.mu.Unlock()
		if !ok {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *release) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// fakeBinary is a script standing in for a release binary.
func fakeBinary(name string) []byte { return []byte("#!/bin/sh\necho fake " + name + "\n") }

func tarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// k8sFiles lays the given binaries out as dl.k8s.io/release does, under /k8s, and etcd's release as
// github.com/etcd-io/etcd/releases/download does, under /etcd.
func k8sFiles(t *testing.T, binaries ...string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range binaries {
		p := fmt.Sprintf("/k8s/%s/bin/linux/%s/%s", k8sVersion, arch, name)
		files[p] = fakeBinary(name)
		files[p+".sha256"] = []byte(sha(files[p])) // the official files hold the bare hex digest
	}
	dir := fmt.Sprintf("etcd-%s-linux-%s", etcdVersion, arch)
	tgz := tarGz(t, map[string][]byte{dir + "/etcd": fakeBinary("etcd"), dir + "/etcdctl": fakeBinary("etcdctl"), dir + "/README.md": []byte("etcd")})
	files["/etcd/"+etcdVersion+"/"+dir+".tar.gz"] = tgz
	other := sha([]byte("another release file"))
	files["/etcd/"+etcdVersion+"/SHA256SUMS"] = []byte(fmt.Sprintf("%s  etcd-%s-darwin-%s.zip\n%s  %s.tar.gz\n%s  etcd-%s-windows-amd64.zip\n",
		other, etcdVersion, arch, sha(tgz), dir, other, etcdVersion))
	return files
}

func helmFiles(t *testing.T) map[string][]byte {
	t.Helper()
	name := fmt.Sprintf("helm-%s-linux-%s.tar.gz", helmVersion, arch)
	tgz := tarGz(t, map[string][]byte{"linux-" + arch + "/helm": fakeBinary("helm"), "linux-" + arch + "/LICENSE": []byte("Apache-2.0")})
	return map[string][]byte{"/helm/" + name: tgz, "/helm/" + name + ".sha256sum": []byte(sha(tgz) + "  " + name + "\n")}
}

// unreachable is a URL nothing listens on.
func unreachable(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

type result struct {
	stdout, stderr string
	err            error
	took           time.Duration
}

// run runs a script of this directory with a temporary cache and env on top of an environment
// cleared of the variables the scripts read (make test sets KUBEBUILDER_ASSETS and HELM).
func run(t *testing.T, cache, script string, env map[string]string, args ...string) result {
	t.Helper()
	path, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SEEK_") || slices.Contains([]string{"KUBEBUILDER_ASSETS", "HELM", "K8S_VERSION", "ETCD_VERSION", "HELM_VERSION", "XDG_CACHE_HOME"}, name) {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "SEEK_CACHE_DIR="+cache, "K8S_VERSION="+k8sVersion, "ETCD_VERSION="+etcdVersion, "HELM_VERSION="+helmVersion)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err, took: time.Since(start)}
}

// cached lists the files under the cache (lock files aside) with their contents.
func cached(t *testing.T, cache string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(cache, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(cache, path)
		if strings.Contains(rel, ".download.") {
			got[rel] = "(download left behind)"
		}
		if d.IsDir() || d.Name() == ".lock" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got[rel] = fmt.Sprintf("%v %s", info.Mode(), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func exe(name string) string { return fmt.Sprintf("%v %s", fs.FileMode(0o755), fakeBinary(name)) }

func TestK8sBinariesDownload(t *testing.T) {
	t.Parallel()
	srv := newRelease(t, k8sFiles(t, "kube-apiserver", "kubectl"))
	cache := t.TempDir()
	env := map[string]string{"SEEK_K8S_RELEASE_URL": srv.URL + "/k8s", "SEEK_ETCD_RELEASE_URL": srv.URL + "/etcd", "SEEK_BUILD": "never"}
	res := run(t, cache, "k8s-binaries.sh", env, "etcd", "kube-apiserver", "kubectl")
	if res.err != nil {
		t.Fatalf("k8s-binaries.sh: %v\n%s", res.err, res.stderr)
	}
	bin := filepath.Join(cache, "k8s", k8sVersion, "bin")
	if res.stdout != bin+"\n" {
		t.Errorf("stdout = %q, want %q", res.stdout, bin+"\n")
	}
	want := map[string]string{
		"k8s/" + k8sVersion + "/bin/etcd":           exe("etcd"),
		"k8s/" + k8sVersion + "/bin/kube-apiserver": exe("kube-apiserver"),
		"k8s/" + k8sVersion + "/bin/kubectl":        exe("kubectl"),
	}
	if diff := cmp.Diff(want, cached(t, cache)); diff != "" {
		t.Errorf("cache (-want +got):\n%s\nstderr:\n%s", diff, res.stderr)
	}
	if out, err := exec.Command(filepath.Join(bin, "kube-apiserver")).Output(); err != nil || string(out) != "fake kube-apiserver\n" {
		t.Errorf("the cached kube-apiserver runs: %q, %v", out, err)
	}

	// Cached: a second run asks for nothing.
	asked := srv.requests()
	if res := run(t, cache, "k8s-binaries.sh", env, "etcd", "kube-apiserver", "kubectl"); res.err != nil || res.stdout != bin+"\n" {
		t.Fatalf("second run: %v, stdout %q\n%s", res.err, res.stdout, res.stderr)
	}
	if diff := cmp.Diff(asked, srv.requests()); diff != "" {
		t.Errorf("the second run made requests (-before +after):\n%s", diff)
	}
}

func TestK8sBinariesChecksumMismatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		binary string
		tamper func(files map[string][]byte)
	}{{
		name:   "kube-apiserver, another binary",
		binary: "kube-apiserver",
		tamper: func(files map[string][]byte) {
			files[fmt.Sprintf("/k8s/%s/bin/linux/%s/kube-apiserver", k8sVersion, arch)] = []byte("#!/bin/sh\necho evil\n")
		},
	}, {
		name:   "kube-apiserver, another checksum",
		binary: "kube-apiserver",
		tamper: func(files map[string][]byte) {
			files[fmt.Sprintf("/k8s/%s/bin/linux/%s/kube-apiserver.sha256", k8sVersion, arch)] = []byte(sha([]byte("something else")))
		},
	}, {
		name:   "etcd tarball",
		binary: "etcd",
		tamper: func(files map[string][]byte) {
			p := fmt.Sprintf("/etcd/%s/etcd-%s-linux-%s.tar.gz", etcdVersion, etcdVersion, arch)
			files[p] = tarGz(t, map[string][]byte{fmt.Sprintf("etcd-%s-linux-%s/etcd", etcdVersion, arch): []byte("#!/bin/sh\necho evil\n")})
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := k8sFiles(t, "kube-apiserver")
			tc.tamper(files)
			srv := newRelease(t, files)
			cache := t.TempDir()
			// SEEK_BUILD stays auto: a mismatch must fail by itself, not fall back to building.
			res := run(t, cache, "k8s-binaries.sh", map[string]string{"SEEK_K8S_RELEASE_URL": srv.URL + "/k8s", "SEEK_ETCD_RELEASE_URL": srv.URL + "/etcd"}, tc.binary)
			if res.err == nil {
				t.Fatalf("k8s-binaries.sh succeeded; stdout %q\n%s", res.stdout, res.stderr)
			}
			if !strings.Contains(res.stderr, "CHECKSUM MISMATCH") || strings.Contains(res.stderr, "building") {
				t.Errorf("stderr does not report a checksum mismatch, or builds:\n%s", res.stderr)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
			if got := cached(t, cache); len(got) > 0 {
				t.Errorf("cached after a mismatch: %v", got)
			}
		})
	}
}

func TestK8sBinariesFallBackToBuilding(t *testing.T) {
	t.Parallel()
	empty := newRelease(t, map[string][]byte{})
	for _, tc := range []struct {
		name string
		env  map[string]string
		// tried says the release is asked for at all.
		tried bool
	}{
		{name: "unreachable", env: map[string]string{"SEEK_K8S_RELEASE_URL": unreachable(t), "SEEK_ETCD_RELEASE_URL": unreachable(t)}, tried: true},
		{name: "not found", env: map[string]string{"SEEK_K8S_RELEASE_URL": empty.URL + "/k8s", "SEEK_ETCD_RELEASE_URL": empty.URL + "/etcd"}, tried: true},
		{name: "SEEK_DOWNLOAD=never", env: map[string]string{"SEEK_DOWNLOAD": "never", "SEEK_K8S_RELEASE_URL": empty.URL + "/k8s", "SEEK_ETCD_RELEASE_URL": empty.URL + "/etcd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			env := map[string]string{"SEEK_BUILD": "never"}
			for k, v := range tc.env {
				env[k] = v
			}
			before := len(empty.requests())
			res := run(t, cache, "k8s-binaries.sh", env, "kube-apiserver")
			if res.err == nil {
				t.Fatalf("k8s-binaries.sh succeeded with SEEK_BUILD=never; stdout %q\n%s", res.stdout, res.stderr)
			}
			if want := "kube-apiserver " + k8sVersion + " could not be downloaded"; !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, "would build") {
				t.Errorf("stderr lacks %q ... would build:\n%s", want, res.stderr)
			}
			if got := strings.Contains(res.stderr, "cannot download"); got != tc.tried {
				t.Errorf("tried the release: %v, want %v:\n%s", got, tc.tried, res.stderr)
			}
			if !tc.tried && len(empty.requests()) != before {
				t.Errorf("SEEK_DOWNLOAD=never made requests: %v", empty.requests()[before:])
			}
			if res.took > 10*time.Second {
				t.Errorf("falling back took %v", res.took)
			}
			if got := cached(t, cache); len(got) > 0 {
				t.Errorf("cached: %v", got)
			}
		})
	}
}

func TestHelmDownload(t *testing.T) {
	t.Parallel()
	srv := newRelease(t, helmFiles(t))
	cache := t.TempDir()
	env := map[string]string{"SEEK_HELM_RELEASE_URL": srv.URL + "/helm", "SEEK_BUILD": "never"}
	res := run(t, cache, "helm.sh", env)
	if res.err != nil {
		t.Fatalf("helm.sh: %v\n%s", res.err, res.stderr)
	}
	helm := filepath.Join(cache, "tools", "helm", helmVersion, "helm")
	if res.stdout != helm+"\n" {
		t.Errorf("stdout = %q, want %q", res.stdout, helm+"\n")
	}
	if diff := cmp.Diff(map[string]string{"tools/helm/" + helmVersion + "/helm": exe("helm")}, cached(t, cache)); diff != "" {
		t.Errorf("cache (-want +got):\n%s", diff)
	}
	asked := srv.requests()
	if res := run(t, cache, "helm.sh", env); res.err != nil || res.stdout != helm+"\n" {
		t.Fatalf("second run: %v, stdout %q\n%s", res.err, res.stdout, res.stderr)
	}
	if diff := cmp.Diff(asked, srv.requests()); diff != "" {
		t.Errorf("the second run made requests (-before +after):\n%s", diff)
	}
}

func TestHelmChecksumMismatch(t *testing.T) {
	t.Parallel()
	files := helmFiles(t)
	name := fmt.Sprintf("/helm/helm-%s-linux-%s.tar.gz", helmVersion, arch)
	files[name] = tarGz(t, map[string][]byte{"linux-" + arch + "/helm": []byte("#!/bin/sh\necho evil\n")})
	srv := newRelease(t, files)
	cache := t.TempDir()
	res := run(t, cache, "helm.sh", map[string]string{"SEEK_HELM_RELEASE_URL": srv.URL + "/helm"})
	if res.err == nil {
		t.Fatalf("helm.sh succeeded; stdout %q\n%s", res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "CHECKSUM MISMATCH") || strings.Contains(res.stderr, "building") {
		t.Errorf("stderr does not report a checksum mismatch, or builds:\n%s", res.stderr)
	}
	if got := cached(t, cache); len(got) > 0 {
		t.Errorf("cached after a mismatch: %v", got)
	}
}

func TestHelmFallBackToBuilding(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	res := run(t, cache, "helm.sh", map[string]string{"SEEK_HELM_RELEASE_URL": unreachable(t), "SEEK_BUILD": "never"})
	if res.err == nil {
		t.Fatalf("helm.sh succeeded with SEEK_BUILD=never; stdout %q\n%s", res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "cannot download") || !strings.Contains(res.stderr, "would build") {
		t.Errorf("stderr lacks the unreachable release and the fallback:\n%s", res.stderr)
	}
	if res.took > 10*time.Second {
		t.Errorf("falling back took %v", res.took)
	}
	if got := cached(t, cache); len(got) > 0 {
		t.Errorf("cached: %v", got)
	}
}
