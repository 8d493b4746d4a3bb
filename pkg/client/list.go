package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// ListOptions filter and page a job listing; the zero value lists every job, 20 a page.
type ListOptions struct {
	// Worker keeps the jobs of one worker.
	Worker string
	// Status keeps the jobs in one status.
	Status JobStatus
	// PageSize is how many jobs one request returns, 1 to 100; 0 for the API's default (20).
	PageSize int
}

// JobPage is one page of a job listing.
type JobPage struct {
	// Jobs are newest first.
	Jobs []*Job `json:"jobs"`
	// NextCursor asks for the next page; empty on the last.
	NextCursor string `json:"next_cursor"`
}

// ListPage returns the page of the tenant's jobs after cursor ("" for the first), newest first.
func (c *Client) ListPage(ctx context.Context, opts *ListOptions, cursor string) (*JobPage, error) {
	if opts == nil {
		opts = &ListOptions{}
	}
	q := url.Values{}
	if opts.Worker != "" {
		q.Set("worker", opts.Worker)
	}
	if opts.Status != "" {
		q.Set("status", string(opts.Status))
	}
	if opts.PageSize > 0 {
		q.Set("limit", strconv.Itoa(opts.PageSize))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/v1/jobs", query: q, idempotent: true})
	if err != nil {
		return nil, err
	}
	page := &JobPage{}
	if err := decode(resp, page); err != nil {
		return nil, err
	}
	return page, nil
}

// List iterates over the tenant's jobs, newest first, fetching a page at a time as the loop goes:
//
//	for job, err := range c.List(ctx, &client.ListOptions{Status: client.StatusFailed}) {
//		if err != nil { return err }
//		...
//	}
//
// An error ends the iteration, after being yielded with a nil job.
func (c *Client) List(ctx context.Context, opts *ListOptions) iter.Seq2[*Job, error] {
	return func(yield func(*Job, error) bool) {
		cursor := ""
		for {
			page, err := c.ListPage(ctx, opts, cursor)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, job := range page.Jobs {
				if !yield(job, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			cursor = page.NextCursor
		}
	}
}
