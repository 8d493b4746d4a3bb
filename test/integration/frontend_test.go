package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/frontend"
	"github.com/seek-api/seek-operator/internal/frontend/apitest"
	"github.com/seek-api/seek-operator/internal/testutil"
)

const (
	systemNamespace      = "seek-system"
	credentialsNamespace = credentials.DefaultNamespace
)

// startFrontend runs the REST frontend against the control plane and returns its base URL.
func startFrontend(t *testing.T) string {
	t.Helper()
	return startFrontendWith(t, "", "0")
}

// startFrontendVia runs the REST frontend, reaching the apiserver through host ("" for directly).
func startFrontendVia(t *testing.T, host string) string {
	t.Helper()
	return startFrontendWith(t, host, "0")
}

// startFrontendWith runs the REST frontend, reaching the apiserver through host ("" for directly) and
// serving metrics on metricsAddr ("0" for not at all).
func startFrontendWith(t *testing.T, host, metricsAddr string) string {
	t.Helper()
	err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The frontend runs as its ServiceAccount with exactly the RBAC config/ grants it.
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := controlplane.ApplyManifestFile(context.Background(), k8sClient, filepath.Join(root, "config", "rbac", "frontend_rbac.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg, err := cp.ServiceAccountConfig("seek-system", "seek-frontend")
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		cfg.Host = host
	}
	restricted, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Secrets only in the credentials namespace: none of its own namespace (Helm's release Secrets).
	for _, ns := range []string{"default", systemNamespace} {
		if err := restricted.List(context.Background(), &corev1.SecretList{}, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
			t.Fatalf("the frontend identity may list Secrets in %s (%v): it must not", ns, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- frontend.Run(ctx, cfg, frontend.Options{
			Listen: "127.0.0.1:0", MetricsAddr: metricsAddr, HealthProbeAddr: "0", CredentialsNamespace: credentialsNamespace,
			MaxBodyBytes: frontend.DefaultMaxBodyBytes, QPS: 500, Burst: 1000, ShutdownTimeout: 5 * time.Second, Ready: ready,
			Callbacks: callbackPolicy,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("frontend: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("frontend exited: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("frontend did not start")
	}
	return ""
}

// apiKey mints a key for tenant and stores it as the admin CLI would.
func apiKey(t *testing.T, tenant string, scopes ...apikeys.Scope) string {
	t.Helper()
	secret, key, err := apikeys.New(credentialsNamespace, tenant, scopes, 1000)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, secret)
	return key
}

type apiClient struct {
	t    *testing.T
	base string
	key  string
}

// waitKeyAccepted waits until the frontend's cache has the client's key: GET path answers 200.
func (c *apiClient) waitKeyAccepted(path string) {
	c.t.Helper()
	eventually(c.t, "key accepted", func(context.Context) (bool, error) {
		code, body := c.call("GET", path, "")
		return code == http.StatusOK, fmt.Errorf("%d %v", code, body)
	})
}

// openAPI checks every response the integration tests receive against the API's OpenAPI document.
var (
	openAPI     *apitest.Validator
	openAPIOnce sync.Once
)

func (c *apiClient) call(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	code, _, out := c.callWith(method, path, body)
	return code, out
}

// callWith makes a request with headers (name, value pairs) and returns the status, headers and body.
func (c *apiClient) callWith(method, path, body string, header ...string) (int, http.Header, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", c.key)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	openAPIOnce.Do(func() { openAPI = apitest.NewValidator(c.t, frontend.OpenAPI) })
	if err := openAPI.Validate(method, req.URL.Path, resp.StatusCode, raw); err != nil {
		c.t.Errorf("OpenAPI: %v", err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: body is not a JSON object: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, out
}

func TestFrontend(t *testing.T) {
	metricsAddr := freeAddr()
	base := startFrontendWith(t, "", metricsAddr)
	tenant, other := newNamespace(t), newNamespace(t)
	w := readyWorker(t, echoWorker(t).InputSchema(`{"type":"object","required":["email"],"properties":{"email":{"type":"string"}}}`).Obj())
	api := &apiClient{t: t, base: base, key: apiKey(t, tenant, apikeys.ScopeSubmit, apikeys.ScopeRead, apikeys.ScopeCancel)}
	stranger := &apiClient{t: t, base: base, key: apiKey(t, other, apikeys.ScopeRead)}

	// The keys reach the frontend's cache within moments.
	api.waitKeyAccepted("/v1/workers/" + w.Name)

	t.Run("submit, then poll until completed", func(t *testing.T) {
		code, body := api.call("POST", "/v1/workers/"+w.Name+"/jobs", `{"email":"hello@example.com","callback_url":"https://app.example/hook"}`)
		if code != http.StatusAccepted || body["status"] != "queued" {
			t.Fatalf("submit = %d %v", code, body)
		}
		id := body["job_uuid"].(string)
		name := strings.TrimPrefix(id, "job_")
		// Read-after-write: the job is visible at once.
		if code, got := api.call("GET", "/v1/jobs/"+id, ""); code != http.StatusOK || got["job_uuid"] != id {
			t.Errorf("immediate get = %d %v", code, got)
		}
		if code, _ := stranger.call("GET", "/v1/jobs/"+id, ""); code != http.StatusNotFound {
			t.Errorf("another tenant's get = %d, want 404", code)
		}
		pod := waitForPod(t, tenant, name, 1)
		if got := pod.Annotations[seekv1alpha1.AnnotationInput]; got != `{"email":"hello@example.com"}` {
			t.Errorf("worker input = %s", got)
		}
		finishPod(t, pod, 0, `{"valid":true,"score":0.97}`)
		var got map[string]any
		eventually(t, "completed through the API", func(context.Context) (bool, error) {
			_, got = api.call("GET", "/v1/jobs/"+id, "")
			return got["status"] == "completed", fmt.Errorf("%v", got)
		})
		want := map[string]any{"valid": true, "score": 0.97}
		if fmt.Sprint(got["response_json"]) != fmt.Sprint(want) || got["attempts"] != float64(1) || got["completed_at"] == nil {
			t.Errorf("completed job = %v", got)
		}
	})

	t.Run("a SeekJob made with kubectl has an id too", func(t *testing.T) {
		mustCreate(t, testutil.MakeSeekJob("kubectl-made", tenant).Worker(w.Name).Input(`{"email":"a@b.c"}`).Obj())
		eventually(t, "visible", func(context.Context) (bool, error) {
			code, got := api.call("GET", "/v1/jobs/job_kubectl-made", "")
			return code == http.StatusOK && got["worker"] == w.Name, fmt.Errorf("%d %v", code, got)
		})
	})

	t.Run("a waiting job shows its place in the queue", func(t *testing.T) {
		capped := readyWorker(t, echoWorker(t).MaxConcurrent(1).Obj())
		var ids []string
		for i := range 3 {
			code, body := api.call("POST", "/v1/workers/"+capped.Name+"/jobs", fmt.Sprintf(`{"n":%d}`, i))
			if code != http.StatusAccepted {
				t.Fatalf("submit %d = %d %v", i, code, body)
			}
			ids = append(ids, body["job_uuid"].(string))
			time.Sleep(1100 * time.Millisecond) // creation times are whole seconds: one each keeps the order
		}
		first := waitForPod(t, tenant, strings.TrimPrefix(ids[0], "job_"), 1)
		position := func(id string) any {
			_, got := api.call("GET", "/v1/jobs/"+id, "")
			if q, ok := got["queue"].(map[string]any); ok {
				return q["position"]
			}
			return nil
		}
		eventually(t, "positions 1 and 2 behind the running job", func(context.Context) (bool, error) {
			p0, p1, p2 := position(ids[0]), position(ids[1]), position(ids[2])
			return p0 == nil && p1 == float64(1) && p2 == float64(2), fmt.Errorf("positions %v %v %v", p0, p1, p2)
		})
		finishPod(t, first, 0, `{"ok":true}`)
		waitForPod(t, tenant, strings.TrimPrefix(ids[1], "job_"), 1)
		eventually(t, "the last job moved up", func(context.Context) (bool, error) {
			p1, p2 := position(ids[1]), position(ids[2])
			return p1 == nil && p2 == float64(1), fmt.Errorf("positions %v %v", p1, p2)
		})
	})

	t.Run("cancel through the API", func(t *testing.T) {
		_, body := api.call("POST", "/v1/workers/"+w.Name+"/jobs", `{"email":"x@y.z"}`)
		id := body["job_uuid"].(string)
		waitForPod(t, tenant, strings.TrimPrefix(id, "job_"), 1)
		if code, got := api.call("POST", "/v1/jobs/"+id+"/cancel", ""); code != http.StatusAccepted {
			t.Fatalf("cancel = %d %v", code, got)
		}
		eventually(t, "canceled", func(context.Context) (bool, error) {
			_, got := api.call("GET", "/v1/jobs/"+id, "")
			return got["status"] == "canceled", fmt.Errorf("%v", got)
		})
	})

	t.Run("1,000 concurrent identical submissions make one job", func(t *testing.T) {
		const n = 1000
		ids := make([]string, n)
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/workers/"+w.Name+"/jobs", strings.NewReader(`{"email":"race@example.com"}`))
				req.Header.Set("X-Api-Key", api.key)
				req.Header.Set("Idempotency-Key", "the-race")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				var body map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&body)
				codes[i] = resp.StatusCode
				ids[i], _ = body["job_uuid"].(string)
			})
		}
		wg.Wait()
		created := 0
		for i := range n {
			if codes[i] == http.StatusAccepted {
				created++
			}
			if (codes[i] != http.StatusAccepted && codes[i] != http.StatusOK) || ids[i] != ids[0] {
				t.Fatalf("request %d: %d %q (first %q)", i, codes[i], ids[i], ids[0])
			}
		}
		list := &seekv1alpha1.SeekJobList{}
		if err := k8sClient.List(context.Background(), list, client.InNamespace(tenant)); err != nil {
			t.Fatal(err)
		}
		same := 0
		for _, sj := range list.Items {
			if "job_"+sj.Name == ids[0] {
				same++
			}
		}
		if created != 1 || same != 1 {
			t.Errorf("%d requests answered 202 and %d SeekJobs exist for the key; want exactly 1 each", created, same)
		}
	})

	t.Run("health, readiness and request metrics", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz"} {
			if status, body, err := httpGet(context.Background(), base+path); err != nil || status != http.StatusOK {
				t.Errorf("%s = %d %s (%v)", path, status, body, err)
			}
		}
		// Metrics are on their own port, never on the public API's.
		status, body, err := httpGet(context.Background(), "http://"+metricsAddr+"/metrics")
		want := `seek_frontend_requests_total{code="202",route="POST /v1/workers/{worker}/jobs"}`
		if err != nil || status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics = %d (%v), want a line starting %s", status, err, want)
		}
		if status, body, err := httpGet(context.Background(), base+"/metrics"); err != nil || status != http.StatusNotFound {
			t.Errorf("/metrics on the API port = %d %s (%v), want 404", status, body, err)
		}
	})

	t.Run("input not matching the worker's schema", func(t *testing.T) {
		code, body := api.call("POST", "/v1/workers/"+w.Name+"/jobs", `{"email":42}`)
		e, _ := body["error"].(map[string]any)
		if code != http.StatusBadRequest || e["field"] != "/email" {
			t.Errorf("= %d %v, want 400 naming /email", code, body)
		}
	})
}

// tcpProxy forwards connections to target until cut; restore accepts again on the same address.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	l      net.Listener
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.l, p.addr = l, l.Addr().String()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut refuses new connections and breaks the open ones, as a stopped apiserver would.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestFrontendApiserverOutage(t *testing.T) {
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	base := startFrontendVia(t, "https://"+proxy.addr)
	tenant := newNamespace(t)
	w := readyWorker(t, echoWorker(t).Obj())
	api := &apiClient{t: t, base: base, key: apiKey(t, tenant, apikeys.ScopeSubmit, apikeys.ScopeRead)}
	eventually(t, "frontend serving", func(context.Context) (bool, error) {
		code, body := api.call("POST", "/v1/workers/"+w.Name+"/jobs", `{}`)
		return code == http.StatusAccepted, fmt.Errorf("%d %v", code, body)
	})

	proxy.cut()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/workers/"+w.Name+"/jobs", strings.NewReader(`{}`))
	req.Header.Set("X-Api-Key", api.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("submit during the outage = %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	proxy.restore()
	eventually(t, "recovery without a restart", func(context.Context) (bool, error) {
		code, body := api.call("POST", "/v1/workers/"+w.Name+"/jobs", `{}`)
		return code == http.StatusAccepted, fmt.Errorf("%d %v", code, body)
	})
}

// TestFrontendWebhooks covers the webhook side of the API: the signing secret, callback URL checks at
// submit, the delivery ledger in job responses, and redelivery.
func TestFrontendWebhooks(t *testing.T) {
	base := startFrontend(t)
	tenant := newNamespace(t)
	api := &apiClient{t: t, base: base, key: apiKey(t, tenant, apikeys.Scopes...)}
	reader := &apiClient{t: t, base: base, key: apiKey(t, tenant, apikeys.ScopeRead)}
	api.waitKeyAccepted("/v1/webhooks/secret")

	_, first := api.call("GET", "/v1/webhooks/secret", "")
	secret, _ := first["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || first["previous_secret_expires_at"] != nil {
		t.Fatalf("secret = %v", first)
	}
	if _, again := api.call("GET", "/v1/webhooks/secret", ""); again["secret"] != secret {
		t.Errorf("the secret changed between two reads: %v", again)
	}
	if code, _ := reader.call("GET", "/v1/webhooks/secret", ""); code != http.StatusForbidden {
		t.Errorf("a key without the webhooks scope read the secret: %d", code)
	}
	code, rotated := api.call("POST", "/v1/webhooks/secret:rotate", "")
	if code != http.StatusOK || rotated["secret"] == secret || rotated["previous_secret_expires_at"] == nil {
		t.Fatalf("rotate = %d %v", code, rotated)
	}

	w := readyWorker(t, echoWorker(t).Obj())
	for _, url := range []string{"http://169.254.169.254/latest/meta-data", "ftp://files.example/x", "http://user@127.0.0.1/", "http://0x7f.1/"} {
		body := fmt.Sprintf(`{"callback_url": %q}`, url)
		if code, got := api.call("POST", "/v1/workers/"+w.Name+"/jobs", body); code != http.StatusBadRequest || got["error"].(map[string]any)["field"] != "callback_url" {
			t.Errorf("submit with callback_url %s = %d %v, want 400 naming callback_url", url, code, got)
		}
	}

	rc := newReceiver(t, nil)
	// A job whose worker does not exist stays queued until canceled, which finishes it. (The API
	// refuses submissions to unknown workers, so it is made with kubectl.)
	mustCreate(t, testutil.MakeSeekJob("hooked", tenant).Worker("no-such-worker").Callback(rc.url()).Obj())
	if code, got := api.call("POST", "/v1/jobs/job_hooked/callback:redeliver", ""); code != http.StatusConflict {
		t.Errorf("redeliver before the job finished = %d %v, want 409", code, got)
	}
	if code, got := api.call("POST", "/v1/jobs/job_hooked/cancel", ""); code != http.StatusAccepted {
		t.Fatalf("cancel = %d %v", code, got)
	}
	var got map[string]any
	eventually(t, "callback delivered, as the API shows it", func(context.Context) (bool, error) {
		_, got = api.call("GET", "/v1/jobs/job_hooked", "")
		cb, _ := got["callback"].(map[string]any)
		return cb != nil && cb["state"] == "delivered", fmt.Errorf("%v", got)
	})
	cb := got["callback"].(map[string]any)
	if cb["url"] != rc.url() || cb["attempts"] != float64(1) || cb["last_status_code"] != float64(204) || cb["delivered_at"] == nil {
		t.Errorf("callback = %v", cb)
	}
	call := rc.waitCalls(1)[0]
	for _, s := range []string{secret, rotated["secret"].(string)} {
		if err := verify(t, s, call); err != nil {
			t.Errorf("delivery does not verify with %s…: %v", s[:10], err)
		}
	}
	if typ, data := call.payload(t); typ != "job.canceled" || data["job_uuid"] != "job_hooked" || data["status"] != "canceled" {
		t.Errorf("payload = %s", call.body)
	}

	if code, got := api.call("POST", "/v1/jobs/job_hooked/callback:redeliver", ""); code != http.StatusAccepted {
		t.Fatalf("redeliver = %d %v", code, got)
	}
	again := rc.waitCalls(2)[1]
	if again.id() != call.id() {
		t.Errorf("redelivery webhook-id = %s, want the original %s", again.id(), call.id())
	}
	eventually(t, "redelivered", func(context.Context) (bool, error) {
		_, got = api.call("GET", "/v1/jobs/job_hooked", "")
		cb, _ := got["callback"].(map[string]any)
		return cb != nil && cb["state"] == "delivered", fmt.Errorf("%v", got)
	})

	// callback_events asks for job.started too.
	both := newReceiver(t, nil)
	code, job := api.call("POST", "/v1/workers/"+w.Name+"/jobs", fmt.Sprintf(`{"n":1,"callback_url":%q,"callback_events":["started","finished"]}`, both.url()))
	if code != http.StatusAccepted {
		t.Fatalf("submit with callback_events = %d %v", code, job)
	}
	name := strings.TrimPrefix(job["job_uuid"].(string), "job_")
	pod := waitForPod(t, tenant, name, 1)
	startPod(t, pod) // the job starts when its worker container does
	if typ, _ := both.waitCalls(1)[0].payload(t); typ != "job.started" {
		t.Errorf("first event = %s, want job.started", typ)
	}
	finishPod(t, pod, 0, `{}`)
	if typ, _ := both.waitCalls(2)[1].payload(t); typ != "job.completed" {
		t.Errorf("second event = %s, want job.completed", typ)
	}

	mustCreate(t, testutil.MakeSeekJob("plain", tenant).Worker("no-such-worker").Cancel("x").Obj())
	if code, got := api.call("POST", "/v1/jobs/job_plain/callback:redeliver", ""); code != http.StatusConflict {
		t.Errorf("redeliver without a callback = %d %v, want 409", code, got)
	}
}
