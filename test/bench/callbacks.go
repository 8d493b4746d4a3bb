package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// runCallbacks measures terminal state → delivered latency at a local receiver: SeekJobs with a
// callback and a cancel request (so they finish at once, with no pod) are created open loop at rate,
// an informer notes when each one's terminal status appears, and the receiver when its event arrives.
func runCallbacks(ctx context.Context, c client.Client, cfg *rest.Config, ns string, n int, rate float64) (sample, error) {
	var mu sync.Mutex
	terminal := map[string]time.Time{}
	arrived := map[string]time.Time{}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var p struct {
			Data struct {
				JobUUID string `json:"job_uuid"`
			} `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		if _, dup := arrived[p.Data.JobUUID]; !dup {
			arrived[p.Data.JobUUID] = at
			if len(arrived) == n {
				close(done)
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	// The informer sees each status write a few milliseconds after the apiserver took it.
	informers, err := cache.New(cfg, cache.Options{Scheme: manager.NewScheme(), DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return sample{}, err
	}
	inf, err := informers.GetInformer(ctx, &seekv1alpha1.SeekJob{})
	if err != nil {
		return sample{}, err
	}
	note := func(obj any) {
		sj, ok := obj.(*seekv1alpha1.SeekJob)
		if !ok || !sj.Status.State.IsTerminal() {
			return
		}
		mu.Lock()
		if _, seen := terminal["job_"+sj.Name]; !seen {
			terminal["job_"+sj.Name] = time.Now()
		}
		mu.Unlock()
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: note, UpdateFunc: func(_, o any) { note(o) }}); err != nil {
		return sample{}, err
	}
	ictx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = informers.Start(ictx) }()
	if !informers.WaitForCacheSync(ictx) {
		return sample{}, fmt.Errorf("informer did not sync")
	}

	start := time.Now()
	if _, err := openLoop(n, rate, func(i int) error {
		return c.Create(ctx, testutil.MakeSeekJob(fmt.Sprintf("cb-%05d", i), ns).Worker("absent").Callback(srv.URL+"/hook").Cancel("bench").Obj())
	}); err != nil {
		return sample{}, err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return sample{}, fmt.Errorf("only %d of %d callbacks arrived", len(arrived), n)
	}
	mu.Lock()
	defer mu.Unlock()
	s := sample{elapsed: time.Since(start)}
	for id, at := range arrived {
		t, ok := terminal[id]
		if !ok {
			return sample{}, fmt.Errorf("callback of %s arrived before its terminal state was seen", id)
		}
		s.latencies = append(s.latencies, max(0, at.Sub(t)))
	}
	return s, nil
}
