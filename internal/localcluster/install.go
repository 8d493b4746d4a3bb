package localcluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/images"
	"github.com/seek-api/seek-operator/internal/tenants"
)

// importImages builds Seek's images and the pause image, imports them into containerd, and tags
// them with a tag derived from their contents, so that a changed image changes the pods' spec and a
// Helm upgrade rolls them. It returns that tag.
func (c *Cluster) importImages(ctx context.Context, socket string) (string, error) {
	cache := c.o.ImageCache
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(dir, "seek-operator", "images")
	}
	b := &images.Builder{ModuleDir: c.o.ModuleDir, Registry: ImageRegistry, Tag: "dev", CacheDir: cache,
		PauseRef: PauseImage, CACertFile: cmp.Or(c.o.CACertFile, images.SystemCACertFile())}
	c.logf("Building images (cached in %s)", cache)
	results, err := b.BuildAll(ctx, images.DefaultSpecs)
	if err != nil {
		return "", err
	}
	pause, err := b.PauseResult(ctx)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, r := range results {
		fmt.Fprintln(h, r.Ref, r.ImageID)
	}
	tag := "dev-" + hex.EncodeToString(h.Sum(nil))[:12]
	ctr := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", socket, "-n", "k8s.io"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, r := range append(results, pause) {
		if err := ctr("images", "import", r.Tarball); err != nil {
			return "", err
		}
		if r.Ref == pause.Ref {
			continue
		}
		if err := ctr("images", "tag", "--force", r.Ref, strings.TrimSuffix(r.Ref, ":dev")+":"+tag); err != nil {
			return "", err
		}
	}
	c.logf("Imported %d images, tag %s", len(results)+1, tag)
	return tag, nil
}

// install installs or upgrades the Helm release with values added: imported images (the Seek runner's
// among them, for the pooled samples), one frontend replica as a NodePort on APIPort (it serves the
// SeekJob admission webhook too; a rolling update starts the new pod before it stops the old one), callbacks allowed to this machine
// (nodeIP, any port), the sample workers with a concurrency cap: echo and email-validator pooled, with
// pools of SamplePoolMaxPods pods, sleep and fail in Job mode (the chart's samples.pooled). The
// manager finds the dispatch endpoint the pool pods reach from the chart's Service (--dispatch-service:
// its ClusterIP, as this cluster has no cluster DNS).
func (c *Cluster) install(ctx context.Context, kubeconfig, nodeIP, tag string, values ...string) error {
	c.logf("Installing Seek with the Helm chart (helm upgrade --install)")
	args := []string{"upgrade", "--install", releaseName, filepath.Join(c.o.ModuleDir, "charts", "seek-operator"),
		"--kubeconfig", kubeconfig, "--namespace", SystemNamespace, "--create-namespace", "--wait", "--timeout", "5m",
		"--set", "image.registry=" + ImageRegistry, "--set", "image.repositoryPrefix=", "--set", "image.tag=" + tag,
		"--set", "image.pullPolicy=Never",
		"--set", "frontend.replicas=1", "--set", "frontend.service.type=NodePort", "--set", fmt.Sprintf("frontend.service.nodePort=%d", APIPort),
		"--set", "callbacks.allowedCIDRs={" + nodeIP + "/32}", "--set", "callbacks.anyPort=true",
		"--set", "samples.enabled=true", "--set", fmt.Sprintf("samples.maxConcurrentJobs=%d", SampleMaxConcurrentJobs()),
		"--set", fmt.Sprintf("samples.pool.maxPods=%d", SamplePoolMaxPods()),
	}
	args = append(args, values...)
	cmd := exec.CommandContext(ctx, c.o.Helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+c.path("helm", "cache"), "HELM_CONFIG_HOME="+c.path("helm", "config"), "HELM_DATA_HOME="+c.path("helm", "data"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm %s: %w:\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// SampleMaxConcurrentJobs caps each sample worker's running jobs: 4 per CPU. Uncapped, a burst of jobs
// starts every pod at once, and a small node thrashes (most likely the kubelet relisting every
// container each second): measured on 2 CPUs, 100 jobs at once complete at 0.75/s, 500 at about 0.3/s; capped, the rest
// wait Queued and the node keeps its pace.
func SampleMaxConcurrentJobs() int { return 4 * runtime.NumCPU() }

// SamplePoolMaxPods caps the pool of a pooled sample worker in one tenant namespace: 2 pods per CPU,
// 4 on a 2-CPU node. A pool pod runs job after job, each a process start and a few milliseconds of
// work, so a few pods per CPU keep the node busy without the pod churn that caps Job mode.
func SamplePoolMaxPods() int { return min(2*runtime.NumCPU(), 100) }

// demoKey is the demo tenant's API key, kept so that Up prints the same key every time.
type demoKey struct {
	Secret string `json:"secret"`
	Key    string `json:"key"`
}

// demoTenant creates the demo tenant (as seekctl tenants create does) and an API key for it, or returns
// the key made before if its Secret still exists. Credentials an older install kept in the release
// namespace are moved to the credentials namespace first (seekctl credentials migrate).
func (c *Cluster) demoTenant(ctx context.Context, k8s client.Client) (string, error) {
	moved, err := credentials.Migrate(ctx, k8s, SystemNamespace, credentials.DefaultNamespace)
	if err != nil {
		return "", err
	}
	if len(moved) > 0 {
		c.logf("Moved %d credential Secrets from %s to %s", len(moved), SystemNamespace, credentials.DefaultNamespace)
	}
	if err := applyTenant(ctx, k8s, c.o.Tenant); err != nil {
		return "", err
	}
	file := c.path("demo-key.json")
	var saved demoKey
	if data, err := os.ReadFile(file); err == nil && json.Unmarshal(data, &saved) == nil {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: credentials.DefaultNamespace, Name: saved.Secret}, &corev1.Secret{})
		if err == nil {
			return saved.Key, nil
		}
		if !apierrors.IsNotFound(err) {
			return "", err
		}
	} else if !errors.Is(err, os.ErrNotExist) && err != nil {
		return "", err
	}
	secret, key, err := apikeys.New(credentials.DefaultNamespace, c.o.Tenant, apikeys.Scopes, 1000)
	if err != nil {
		return "", err
	}
	secret.Labels["app.kubernetes.io/created-by"] = "seek-local"
	if err := k8s.Create(ctx, secret); err != nil {
		return "", err
	}
	data, err := json.Marshal(demoKey{Secret: secret.Name, Key: key})
	if err != nil {
		return "", err
	}
	return key, os.WriteFile(file, data, 0o600)
}

// applyTenant makes namespace a tenant as seekctl tenants create does: Pod Security restricted, the
// default cap on unfinished SeekJobs, the chart's worker NetworkPolicy (which this cluster's bridge
// network does not enforce), and the frontend's Role for the jobs' logs.
func applyTenant(ctx context.Context, k8s client.Client, namespace string) error {
	policy, err := tenants.LoadTemplate(ctx, k8s, SystemNamespace)
	if err != nil {
		return err
	}
	if err := tenants.Apply(ctx, k8s, tenants.Tenant{Name: namespace, NetworkPolicy: policy, SystemNamespace: SystemNamespace}); err != nil {
		return err
	}
	return tenants.WaitCounted(ctx, k8s, namespace, 2*time.Minute)
}

// Tenant is a tenant namespace with an API key, made for one test or benchmark run.
type Tenant struct {
	Namespace string
	APIKey    string
	secret    *corev1.Secret
}

// NewTenant creates a tenant namespace named <prefix>-<random> as seekctl tenants create does, and an
// API key for it allowed rps requests per second, and waits until the REST API accepts the key.
func NewTenant(ctx context.Context, k8s client.Client, info *Info, prefix string, rps float64) (*Tenant, error) {
	t := &Tenant{Namespace: prefix + "-" + strings.ToLower(rand.Text()[:6])}
	if err := applyTenant(ctx, k8s, t.Namespace); err != nil {
		return nil, err
	}
	secret, key, err := apikeys.New(cmp.Or(info.CredentialsNamespace, credentials.DefaultNamespace), t.Namespace, apikeys.Scopes, rps)
	if err != nil {
		return nil, err
	}
	if err := k8s.Create(ctx, secret); err != nil {
		return nil, err
	}
	t.APIKey, t.secret = key, secret
	return t, WaitForKey(ctx, info.APIURL, key)
}

// Delete deletes the tenant's key and namespace (and so its jobs), without waiting for them to go.
func (t *Tenant) Delete(ctx context.Context, k8s client.Client) error {
	return errors.Join(
		client.IgnoreNotFound(k8s.Delete(ctx, t.secret)),
		client.IgnoreNotFound(k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.Namespace}})))
}

// AdmissionSecret is the Secret of SystemNamespace holding the frontend's admission serving certificate.
const AdmissionSecret = "seek-frontend-admission-local"

// admissionCertificate issues the serving certificate of the frontend's admission webhook from the
// cluster's own CA (kept under pki/ with the others, reused by every run), stores it in
// AdmissionSecret, and returns the chart values that use it and trust the CA.
func (c *Cluster) admissionCertificate(ctx context.Context, k8s client.Client, p *pki) ([]string, error) {
	host := "seek-frontend-admission." + SystemNamespace + ".svc"
	certFile, keyFile, err := p.issue(certRequest{name: "seek-frontend-admission", cn: host, server: true, hosts: []string{host, host + ".cluster.local"}})
	if err != nil {
		return nil, err
	}
	crt, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return nil, err
	}
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: AdmissionSecret, Namespace: SystemNamespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, k8s, secret, func() error {
		secret.Labels = map[string]string{"app.kubernetes.io/created-by": "seek-local"}
		secret.Type = corev1.SecretTypeTLS
		secret.Data = map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}
		return nil
	}); err != nil {
		return nil, err
	}
	return []string{"--set", "admission.certificate.source=secret", "--set", "admission.certificate.secretName=" + AdmissionSecret,
		"--set", "admission.certificate.caBundle=" + base64.StdEncoding.EncodeToString(ca)}, nil
}
