package jobcmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSubmitWaitGetAndFormats(t *testing.T) {
	f, url := newFakeSeek(t)
	out, _, err := run(t, url, "", "submit", "echo", "-d", `{"message":"hi"}`, "--wait", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var job map[string]any
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if job["job_uuid"] != "job_000" || job["status"] != "completed" || string(f.inputs["job_000"]) != `{"message":"hi"}` {
		t.Errorf("submitted %s, answered %v", f.inputs["job_000"], job)
	}

	out, _, err = run(t, url, `{"from":"stdin"}`, "submit", "echo", "-f", "-", "-o", "yaml")
	if err != nil || !strings.Contains(out, "job_uuid: job_001\n") || !strings.Contains(out, "status: queued\n") {
		t.Errorf("submit -f - -o yaml = %q, %v", out, err)
	}

	out, _, err = run(t, url, "", "get", "job_000", "job_001")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[1], "job_000") ||
		!strings.Contains(lines[1], "completed") || !strings.Contains(lines[1], `{"echo":{"message":"hi"}}`) || !strings.Contains(lines[2], "queued") {
		t.Errorf("get (table) =\n%s", out)
	}

	if _, _, err := run(t, url, "", "get", "job_999"); err == nil || !strings.Contains(err.Error(), "404 not_found") {
		t.Errorf("get of an unknown job = %v", err)
	}
	if _, _, err := run(t, url, "", "get", "job_000", "-o", "xml"); err == nil {
		t.Error("-o xml accepted")
	}
}

func TestListPagesAndFilters(t *testing.T) {
	f, url := newFakeSeek(t)
	f.mu.Lock()
	for range 5 {
		f.create(json.RawMessage(`{}`))
	}
	f.jobs["job_001"]["status"] = "failed"
	f.jobs["job_003"]["status"] = "failed"
	f.mu.Unlock()

	out, _, err := run(t, url, "", "list", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Jobs []struct {
			ID string `json:"job_uuid"`
		}
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range page.Jobs {
		ids = append(ids, j.ID)
	}
	if diff := cmp.Diff([]string{"job_004", "job_003", "job_002", "job_001", "job_000"}, ids); diff != "" {
		t.Errorf("list over three pages (-want +got):\n%s", diff)
	}

	out, _, err = run(t, url, "", "list", "--status", "failed")
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, "job_003") || !strings.Contains(out, "job_001") {
		t.Errorf("list --status failed =\n%s (%v)", out, err)
	}
	out, _, err = run(t, url, "", "list", "--limit", "1")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "job_004") {
		t.Errorf("list --limit 1 =\n%s (%v)", out, err)
	}
}

func TestCancelWaitAndWorkers(t *testing.T) {
	f, url := newFakeSeek(t)
	f.mu.Lock()
	f.create(json.RawMessage(`{}`))
	f.mu.Unlock()
	out, _, err := run(t, url, "", "cancel", "job_000")
	if err != nil || !strings.Contains(out, "canceled") {
		t.Errorf("cancel =\n%s (%v)", out, err)
	}
	out, _, err = run(t, url, "", "wait", "job_000", "-o", "json")
	if err != nil || !strings.Contains(out, `"status": "canceled"`) {
		t.Errorf("wait =\n%s (%v)", out, err)
	}
	out, _, err = run(t, url, "", "workers")
	if want := "NAME  DESCRIPTION\necho  Echoes its input\n"; err != nil || out != want {
		t.Errorf("workers = %q (%v), want %q", out, err, want)
	}
}

func TestLogsCommand(t *testing.T) {
	_, url := newFakeSeek(t)
	out, _, err := run(t, url, "", "logs", "job_000", "--tail", "5")
	if err != nil || out != "last 5 lines\n" {
		t.Errorf("logs --tail 5 = %q (%v)", out, err)
	}
	out, _, err = run(t, url, "", "logs", "job_000", "-f")
	if err != nil || out != "line 1\nline 2\nline 3\n" {
		t.Errorf("logs -f = %q (%v)", out, err)
	}
	if _, _, err := run(t, url, "", "logs", "job_000", "--tail", "10001"); err == nil {
		t.Error("logs --tail 10001: no error")
	}
}
