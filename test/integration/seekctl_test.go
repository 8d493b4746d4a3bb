package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/cmd/seekctl/jobcmd"
	"github.com/seek-api/seek-operator/internal/apikeys"
)

// TestSeekctlBatch runs `seekctl batch` in process against the real frontend: inputs are submitted in
// several chunks, their jobs finish in the reverse of their order (some failing), and the result file
// still has one line per input, in input order, each with its own input's outcome.
func TestSeekctlBatch(t *testing.T) {
	t.Parallel()
	base := startFrontend(t)
	tenant := newNamespace(t)
	w := readyWorker(t, echoWorker(t).InputSchema(`{"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}`).Obj())
	key := apiKey(t, tenant, apikeys.ScopeSubmit, apikeys.ScopeRead)
	newSDK(t, base, key) // waits until the frontend knows the key

	const jobs = 9
	dir := t.TempDir()
	var in strings.Builder
	for n := range jobs {
		fmt.Fprintf(&in, "{\"n\": %d}\n", n)
		if n == 3 {
			in.WriteString("\n")                    // blank: no input
			in.WriteString(`{"n": "three"}` + "\n") // refused by the worker's schema
			in.WriteString("not json\n")            // refused by seekctl
		}
	}
	inputs, results := filepath.Join(dir, "inputs.jsonl"), filepath.Join(dir, "results.jsonl")
	if err := os.WriteFile(inputs, []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	root := &cobra.Command{Use: "seekctl", SilenceUsage: true, SilenceErrors: true}
	jobcmd.AddTo(root)
	var stderr bytes.Buffer
	root.SetErr(&stderr)
	root.SetOut(&stderr)
	root.SetArgs([]string{"batch", w.Name, "-f", inputs, "-o", results, "--url", base, "--api-key", key,
		"--chunk-size", "4", "--concurrency", "3", "--progress-interval", "200ms"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	// Play the kubelet once every job's pod exists: the last input's job finishes first; every third
	// fails for good (exit code 65).
	pods := map[int]*corev1.Pod{}
	eventually(t, fmt.Sprintf("%d pods", jobs), func(ctx context.Context) (bool, error) {
		list := &corev1.PodList{}
		if err := k8sClient.List(ctx, list, client.InNamespace(tenant)); err != nil {
			return false, err
		}
		for i := range list.Items {
			var input struct{ N int }
			if err := json.Unmarshal([]byte(list.Items[i].Annotations[seekv1alpha1.AnnotationInput]), &input); err != nil {
				return false, err
			}
			pods[input.N] = &list.Items[i]
		}
		return len(pods) == jobs, fmt.Errorf("%d pods", len(pods))
	})
	for n := jobs - 1; n >= 0; n-- {
		if n%3 == 2 {
			finishPod(t, pods[n], 65, fmt.Sprintf(`{"message":"input %d refused","reason":"Bad"}`, n))
		} else {
			finishPod(t, pods[n], 0, fmt.Sprintf(`{"n":%d}`, n))
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("seekctl batch: %v\n%s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("seekctl batch did not finish\n%s", stderr.String())
	}

	raw, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != jobs+2 {
		t.Fatalf("%d result lines, want %d:\n%s", len(lines), jobs+2, raw)
	}
	var got []string
	for _, l := range lines {
		var r struct {
			Index    int                           `json:"index"`
			Line     int                           `json:"line"`
			Status   string                        `json:"status"`
			Result   json.RawMessage               `json:"response_json"`
			APIError *struct{ Code, Field string } `json:"api_error"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("result line %s: %v", l, err)
		}
		switch {
		case r.APIError != nil:
			got = append(got, fmt.Sprintf("%d@%d %s %s", r.Index, r.Line, r.APIError.Code, r.APIError.Field))
		case r.Status == "completed":
			got = append(got, fmt.Sprintf("%d@%d completed %s", r.Index, r.Line, r.Result))
		default:
			got = append(got, fmt.Sprintf("%d@%d %s", r.Index, r.Line, r.Status))
		}
	}
	want := []string{
		`0@1 completed {"n":0}`, `1@2 completed {"n":1}`, `2@3 failed`, `3@4 completed {"n":3}`,
		`4@6 invalid_input /n`, `5@7 invalid_json `,
		`6@8 completed {"n":4}`, `7@9 failed`, `8@10 completed {"n":6}`, `9@11 completed {"n":7}`, `10@12 failed`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(stderr.String(), "batch: finished in") || !strings.Contains(stderr.String(), "11/11 done: queued 0, running 0, completed 6, failed 3, refused 2") {
		t.Errorf("progress:\n%s", stderr.String())
	}
}
