package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/seek-api/seek-operator/pkg/client"
)

// cannedAPI stands in for a Seek frontend in these examples only: it answers each route with a fixed
// body, enough to show the examples' output. The package's tests against the real frontend are in
// test/integration/client_test.go.
func cannedAPI() *httptest.Server {
	job := func(status, result string) string {
		return `{"job_uuid":"job_7f3kq","worker":"email-validator","status":"` + status + `","status_reason":null,"status_message":null,
			"response_json":` + result + `,"error":null,"created_at":"2026-12-01T10:00:00Z","started_at":null,"completed_at":null,"attempts":1,"callback":null}`
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/workers/email-validator/jobs":
			body, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(body), `"email"`) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":{"code":"invalid_input","message":"input: missing property 'email'","field":"/email"}}`)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, job("queued", "null"))
		case r.URL.Path == "/v1/jobs/job_7f3kq":
			_, _ = io.WriteString(w, job("completed", `{"valid":true,"score":0.72}`))
		case r.URL.Path == "/v1/jobs" && r.URL.Query().Get("cursor") == "":
			_, _ = io.WriteString(w, `{"jobs":[`+job("failed", "null")+`],"next_cursor":"page2"}`)
		case r.URL.Path == "/v1/jobs":
			_, _ = io.WriteString(w, `{"jobs":[`+strings.Replace(job("failed", "null"), "job_7f3kq", "job_2m9xa", 1)+`],"next_cursor":null}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no such endpoint"}}`)
		}
	}))
}

// Submit a job and wait for its result.
func Example() {
	api := cannedAPI()
	defer api.Close()
	ctx := context.Background()

	c, err := client.New(api.URL, "seek_demo_key") // e.g. os.Getenv("SEEK_API_URL"), os.Getenv("SEEK_API_KEY")
	if err != nil {
		log.Fatal(err)
	}
	job, err := c.Submit(ctx, "email-validator", map[string]any{"email": "hello@example.com"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.ID, job.Status)

	job, err = c.Wait(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	var result struct {
		Valid bool    `json:"valid"`
		Score float64 `json:"score"`
	}
	if err := job.DecodeResult(&result); err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.Status, result.Valid, result.Score)
	// Output:
	// job_7f3kq queued
	// completed true 0.72
}

// A refused request is an *APIError naming the field at fault.
func ExampleAPIError() {
	api := cannedAPI()
	defer api.Close()
	c, _ := client.New(api.URL, "seek_demo_key")

	_, err := c.Submit(context.Background(), "email-validator", map[string]any{"mail": 1}, nil)
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Code, apiErr.Field)
	}
	fmt.Println(err)
	// Output:
	// 400 invalid_input /email
	// seek: 400 invalid_input (field /email): input: missing property 'email'
}

// List iterates over every page of a listing.
func ExampleClient_List() {
	api := cannedAPI()
	defer api.Close()
	c, _ := client.New(api.URL, "seek_demo_key")

	for job, err := range c.List(context.Background(), &client.ListOptions{Status: client.StatusFailed}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(job.ID, job.Status)
	}
	// Output:
	// job_7f3kq failed
	// job_2m9xa failed
}
