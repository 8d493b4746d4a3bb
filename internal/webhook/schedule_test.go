package webhook

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultSchedule(t *testing.T) {
	var total time.Duration
	for _, d := range DefaultSchedule {
		total += d
	}
	if diff := cmp.Diff(10, len(DefaultSchedule)); diff != "" {
		t.Errorf("attempts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(75*time.Hour+35*time.Minute+5*time.Second, total); diff != "" {
		t.Errorf("total mismatch (-want +got):\n%s", diff)
	}
	// The flag form round-trips.
	parts := make([]string, len(DefaultSchedule))
	for i, d := range DefaultSchedule {
		parts[i] = d.String()
	}
	parsed, err := ParseSchedule(strings.Join(parts, ","))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultSchedule, parsed); diff != "" {
		t.Errorf("ParseSchedule(DefaultSchedule) mismatch (-want +got):\n%s", diff)
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []time.Duration
		wantErr string
	}{
		{name: "one", in: "0", want: []time.Duration{0}},
		{name: "several with spaces", in: "0, 5s ,1m30s,2h", want: []time.Duration{0, 5 * time.Second, 90 * time.Second, 2 * time.Hour}},
		{name: "first positive", in: "1s,2s", want: []time.Duration{time.Second, 2 * time.Second}},
		{name: "empty", in: "", wantErr: "webhook: schedule is empty"},
		{name: "blank", in: "  ", wantErr: "webhook: schedule is empty"},
		{name: "empty entry", in: "0,,5s", wantErr: `webhook: schedule entry 2 (""): time: invalid duration ""`},
		{name: "no unit", in: "0,5", wantErr: `webhook: schedule entry 2 ("5"): time: missing unit in duration "5"`},
		{name: "negative", in: "0,-5s", wantErr: `webhook: schedule entry 2 ("-5s") is negative`},
		{name: "later zero", in: "0,5s,0s", wantErr: `webhook: schedule entry 3 ("0s") is zero; only the first may be`},
		{name: "garbage", in: "soon", wantErr: `webhook: schedule entry 1 ("soon"): time: invalid duration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSchedule(tt.in)
			var gotErr string
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tt.wantErr, gotErr); diff != "" {
				t.Fatalf("ParseSchedule(%q) error mismatch (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSchedule(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	fixed := func(v float64) func() float64 { return func() float64 { return v } }
	schedule := []time.Duration{0, 10 * time.Second, time.Hour}
	type result struct {
		Delay time.Duration
		OK    bool
	}
	tests := []struct {
		name     string
		schedule []time.Duration
		attempt  int
		jitter   float64
		random   func() float64
		want     result
	}{
		{name: "first attempt", schedule: schedule, attempt: 1, jitter: 0.2, random: fixed(0), want: result{0, true}},
		{name: "second attempt, middle", schedule: schedule, attempt: 2, jitter: 0.2, random: fixed(0.5), want: result{10 * time.Second, true}},
		{name: "second attempt, low", schedule: schedule, attempt: 2, jitter: 0.2, random: fixed(0), want: result{8 * time.Second, true}},
		{name: "second attempt, high", schedule: schedule, attempt: 2, jitter: 0.2, random: fixed(0.75), want: result{11 * time.Second, true}},
		{name: "last attempt", schedule: schedule, attempt: 3, jitter: 0.1, random: fixed(0.25), want: result{57 * time.Minute, true}},
		{name: "exhausted", schedule: schedule, attempt: 4, jitter: 0.1, random: fixed(0.5), want: result{0, false}},
		{name: "attempt zero", schedule: schedule, attempt: 0, random: fixed(0.5), want: result{0, false}},
		{name: "negative attempt", schedule: schedule, attempt: -1, random: fixed(0.5), want: result{0, false}},
		{name: "empty schedule", attempt: 1, random: fixed(0.5), want: result{0, false}},
		{name: "no jitter", schedule: schedule, attempt: 2, jitter: 0, random: fixed(0), want: result{10 * time.Second, true}},
		{name: "nil random", schedule: schedule, attempt: 2, jitter: 0.5, want: result{10 * time.Second, true}},
		{name: "negative jitter ignored", schedule: schedule, attempt: 2, jitter: -0.5, random: fixed(0), want: result{10 * time.Second, true}},
		{name: "NaN jitter ignored", schedule: schedule, attempt: 2, jitter: math.NaN(), random: fixed(0), want: result{10 * time.Second, true}},
		{name: "jitter clamped to 1", schedule: schedule, attempt: 2, jitter: 3, random: fixed(0), want: result{0, true}},
		{name: "jitter clamped to 1, high", schedule: schedule, attempt: 2, jitter: 3, random: fixed(1), want: result{20 * time.Second, true}},
		{name: "random out of range low", schedule: schedule, attempt: 2, jitter: 0.5, random: fixed(-7), want: result{5 * time.Second, true}},
		{name: "random NaN", schedule: schedule, attempt: 2, jitter: 0.5, random: fixed(math.NaN()), want: result{5 * time.Second, true}},
		{name: "negative schedule entry", schedule: []time.Duration{-time.Second}, attempt: 1, jitter: 0.5, random: fixed(1), want: result{0, true}},
		{name: "huge delay saturates", schedule: []time.Duration{math.MaxInt64}, attempt: 1, jitter: 1, random: fixed(1), want: result{math.MaxInt64, true}},
		{name: "default schedule, third", schedule: DefaultSchedule, attempt: 3, jitter: 0.1, random: fixed(0.5), want: result{5 * time.Minute, true}},
		{name: "default schedule, tenth", schedule: DefaultSchedule, attempt: 10, jitter: 0.1, random: fixed(0.5), want: result{24 * time.Hour, true}},
		{name: "default schedule, exhausted", schedule: DefaultSchedule, attempt: 11, jitter: 0.1, random: fixed(0.5), want: result{0, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			delay, ok := Backoff(tt.schedule, tt.attempt, tt.jitter, tt.random)
			if diff := cmp.Diff(tt.want, result{delay, ok}); diff != "" {
				t.Errorf("Backoff() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	response := func(code int, retryAfter string) *http.Response {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	type result struct {
		Outcome    Outcome
		RetryAfter time.Duration
	}
	tests := []struct {
		name string
		resp *http.Response
		err  error
		want result
	}{
		{name: "200", resp: response(200, ""), want: result{Delivered, 0}},
		{name: "201", resp: response(201, ""), want: result{Delivered, 0}},
		{name: "204", resp: response(204, ""), want: result{Delivered, 0}},
		{name: "299", resp: response(299, ""), want: result{Delivered, 0}},
		{name: "200 ignores Retry-After", resp: response(200, "60"), want: result{Delivered, 0}},
		{name: "101", resp: response(101, ""), want: result{Retry, 0}},
		{name: "301", resp: response(301, ""), want: result{Retry, 0}},
		{name: "302", resp: response(302, ""), want: result{Retry, 0}},
		{name: "400", resp: response(400, ""), want: result{Retry, 0}},
		{name: "401", resp: response(401, ""), want: result{Retry, 0}},
		{name: "404", resp: response(404, ""), want: result{Retry, 0}},
		{name: "410", resp: response(410, ""), want: result{Gone, 0}},
		{name: "410 ignores Retry-After", resp: response(410, "60"), want: result{Gone, 0}},
		{name: "500", resp: response(500, ""), want: result{Retry, 0}},
		{name: "500 ignores Retry-After", resp: response(500, "60"), want: result{Retry, 0}},
		{name: "502", resp: response(502, ""), want: result{Retry, 0}},
		{name: "429 without Retry-After", resp: response(429, ""), want: result{Retry, 0}},
		{name: "429 seconds", resp: response(429, "120"), want: result{Retry, 2 * time.Minute}},
		{name: "429 seconds with spaces", resp: response(429, " 7 "), want: result{Retry, 7 * time.Second}},
		{name: "429 zero", resp: response(429, "0"), want: result{Retry, 0}},
		{name: "503 seconds", resp: response(503, "30"), want: result{Retry, 30 * time.Second}},
		{name: "503 capped", resp: response(503, "172800"), want: result{Retry, 24 * time.Hour}},
		{name: "503 absurd", resp: response(503, "999999999999999999999999"), want: result{Retry, 24 * time.Hour}},
		{name: "503 date", resp: response(503, now.Add(90*time.Second).Format(http.TimeFormat)), want: result{Retry, 90 * time.Second}},
		{name: "503 RFC 850 date", resp: response(503, now.Add(time.Hour).Format(time.RFC850)), want: result{Retry, time.Hour}},
		{name: "503 past date", resp: response(503, now.Add(-time.Hour).Format(http.TimeFormat)), want: result{Retry, 0}},
		{name: "503 far date capped", resp: response(503, now.Add(72*time.Hour).Format(http.TimeFormat)), want: result{Retry, 24 * time.Hour}},
		{name: "503 negative", resp: response(503, "-5"), want: result{Retry, 0}},
		{name: "503 fraction", resp: response(503, "1.5"), want: result{Retry, 0}},
		{name: "503 garbage", resp: response(503, "soon"), want: result{Retry, 0}},
		{name: "transport error", err: errors.New("connection refused"), want: result{Retry, 0}},
		{name: "SSRF refusal", err: ErrDisallowedDestination, want: result{Retry, 0}},
		{name: "error with response", resp: response(200, ""), err: errors.New("body read failed"), want: result{Retry, 0}},
		{name: "nothing", want: result{Retry, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, retryAfter := Classify(tt.resp, tt.err, now)
			if diff := cmp.Diff(tt.want, result{o, retryAfter}); diff != "" {
				t.Errorf("Classify() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
