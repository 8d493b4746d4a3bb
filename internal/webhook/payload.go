package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Event types, the Payload's type field.
const (
	// EventStarted is sent when a job's first attempt starts.
	EventStarted = "job.started"
	// EventCompleted is sent when a job succeeds.
	EventCompleted = "job.completed"
	// EventFailed is sent when a job fails for good.
	EventFailed = "job.failed"
	// EventCanceled is sent when a job is canceled.
	EventCanceled = "job.canceled"
	// EventTimedOut is sent when a job runs out of time.
	EventTimedOut = "job.timed_out"
	// EventProgress is sent when a running job's worker reports progress (opt-in).
	EventProgress = "job.progress"
)

// Payload is the Standard Webhooks body of a delivery:
//
//	{"type": "job.completed", "timestamp": "2025-01-02T03:04:05.123456789Z", "data": {...}}
//
// Timestamp is when the event happened; it is always written in UTC, in RFC 3339 with as many
// fractional digits as needed (time.RFC3339Nano). Data is written as is and must be valid JSON; nil
// Data is written as null.
type Payload struct {
	// Type is one of the Event constants.
	Type string `json:"type"`
	// Timestamp is when the event happened.
	Timestamp time.Time `json:"timestamp"`
	// Data is the event's JSON body.
	Data json.RawMessage `json:"data"`
}

// MarshalJSON implements json.Marshaler, writing Timestamp in UTC.
func (p Payload) MarshalJSON() ([]byte, error) {
	type wire Payload // no methods, so no recursion
	w := wire(p)
	w.Timestamp = p.Timestamp.UTC()
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("webhook: marshal %s payload: %w", p.Type, err)
	}
	return b, nil
}

// ReadSnippet reads at most n bytes from r and returns them as valid UTF-8, for recording what a
// receiver said in an error response. A rune cut at the end by the limit is dropped, and any other
// invalid bytes become U+FFFD. A read error ends the snippet without being reported; n <= 0 reads
// nothing.
func ReadSnippet(r io.Reader, n int) string {
	if n <= 0 || r == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(r, int64(n)))
	// Find the start of the last rune: at most UTFMax-1 continuation bytes back.
	start := len(b) - 1
	for start > 0 && len(b)-start < utf8.UTFMax && !utf8.RuneStart(b[start]) {
		start--
	}
	if start >= 0 && !utf8.FullRune(b[start:]) {
		b = b[:start]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
