package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seek-api/seek-operator/internal/localcluster"
)

func run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestEnv(t *testing.T) {
	dir := t.TempDir()
	if _, err := run("env", "--dir", dir); err == nil || !strings.Contains(err.Error(), "run up") {
		t.Fatalf("env with no cluster: %v, want an error saying to run up", err)
	}
	info := localcluster.Info{Kubeconfig: "/c/admin.kubeconfig", Kubectl: "/bin/k8s/kubectl", APIURL: "http://127.0.0.1:8080", APIKey: "seek_a_b", NodeIP: "192.0.2.2"}
	data, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run("env", "--dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export SEEK_API_URL=http://127.0.0.1:8080\n", "export SEEK_API_KEY=seek_a_b\n",
		"export KUBECONFIG=/c/admin.kubeconfig\n", "export PATH=/bin/k8s:$PATH\n", "export SEEK_CALLBACK_HOST=192.0.2.2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("env output lacks %q:\n%s", want, out)
		}
	}
}

func TestUpNeedsBinaries(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", "")
	t.Setenv("HELM", "")
	if _, err := run("up", "--dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "--assets and --helm") {
		t.Fatalf("up without binaries: %v", err)
	}
}

func TestStatusOfNoCluster(t *testing.T) {
	out, err := run("status", "--dir", filepath.Join(t.TempDir(), "none"))
	if err == nil || !strings.Contains(out, "No cluster") {
		t.Fatalf("status = %q, %v; want an error and \"No cluster\"", out, err)
	}
}

func TestDownOfNoClusterIsFine(t *testing.T) {
	if _, err := run("down", "--dir", filepath.Join(t.TempDir(), "none")); err != nil {
		t.Fatalf("down with no cluster: %v", err)
	}
}
