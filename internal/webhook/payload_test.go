package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestPayloadMarshal(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name    string
		payload Payload
		want    string
		wantErr string
	}{
		{
			name:    "completed in UTC",
			payload: Payload{Type: EventCompleted, Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Data: json.RawMessage(`{"id":"job_1"}`)},
			want:    `{"type":"job.completed","timestamp":"2025-01-02T03:04:05Z","data":{"id":"job_1"}}`,
		},
		{
			name:    "other zone written in UTC with nanoseconds",
			payload: Payload{Type: EventStarted, Timestamp: time.Date(2025, 1, 2, 4, 4, 5, 123456789, berlin), Data: json.RawMessage(`{}`)},
			want:    `{"type":"job.started","timestamp":"2025-01-02T03:04:05.123456789Z","data":{}}`,
		},
		{
			name:    "milliseconds",
			payload: Payload{Type: EventTimedOut, Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 120_000_000, time.UTC), Data: json.RawMessage(`[1]`)},
			want:    `{"type":"job.timed_out","timestamp":"2025-01-02T03:04:05.12Z","data":[1]}`,
		},
		{
			name:    "nil data",
			payload: Payload{Type: EventCanceled, Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
			want:    `{"type":"job.canceled","timestamp":"2025-01-02T03:04:05Z","data":null}`,
		},
		{
			name:    "data compacted",
			payload: Payload{Type: EventFailed, Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Data: json.RawMessage("{ \"error\" : \"boom\" }")},
			want:    `{"type":"job.failed","timestamp":"2025-01-02T03:04:05Z","data":{"error":"boom"}}`,
		},
		{
			name:    "invalid data",
			payload: Payload{Type: EventFailed, Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Data: json.RawMessage(`{`)},
			wantErr: "webhook: marshal job.failed payload",
		},
		{
			name:    "year out of range",
			payload: Payload{Type: EventFailed, Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Data: json.RawMessage(`{}`)},
			wantErr: "webhook: marshal job.failed payload",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.payload)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Marshal() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Marshal() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Marshal() mismatch (-want +got):\n%s", diff)
			}
			// Pointers marshal the same way, and the body reads back.
			viaPointer, err := json.Marshal(&tt.payload)
			if err != nil || string(viaPointer) != string(got) {
				t.Errorf("Marshal(&p) = %s, %v; want %s", viaPointer, err, got)
			}
			var back Payload
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("Unmarshal() error = %v", err)
			}
			if !back.Timestamp.Equal(tt.payload.Timestamp) || back.Type != tt.payload.Type {
				t.Errorf("round trip = %+v, want %+v", back, tt.payload)
			}
		})
	}
}

func TestReadSnippet(t *testing.T) {
	tests := []struct {
		name string
		r    io.Reader
		n    int
		want string
	}{
		{name: "short body", r: strings.NewReader("bad request"), n: 100, want: "bad request"},
		{name: "exact", r: strings.NewReader("abc"), n: 3, want: "abc"},
		{name: "cut", r: strings.NewReader("abcdef"), n: 4, want: "abcd"},
		{name: "empty", r: strings.NewReader(""), n: 10, want: ""},
		{name: "zero limit", r: strings.NewReader("abc"), n: 0, want: ""},
		{name: "negative limit", r: strings.NewReader("abc"), n: -1, want: ""},
		{name: "nil reader", r: nil, n: 10, want: ""},
		{name: "two-byte rune cut", r: strings.NewReader("aé"), n: 2, want: "a"},
		{name: "three-byte rune cut after one byte", r: strings.NewReader("ab€"), n: 3, want: "ab"},
		{name: "three-byte rune cut after two bytes", r: strings.NewReader("ab€"), n: 4, want: "ab"},
		{name: "three-byte rune whole", r: strings.NewReader("ab€x"), n: 5, want: "ab€"},
		{name: "four-byte rune cut after three bytes", r: strings.NewReader("😀"), n: 3, want: ""},
		{name: "four-byte rune whole", r: strings.NewReader("😀!"), n: 4, want: "😀"},
		{name: "invalid bytes replaced, cut rune dropped", r: strings.NewReader("a\xffb\xc3"), n: 10, want: "a\uFFFDb"},
		{name: "byte that never starts a rune replaced", r: strings.NewReader("ab\xc0"), n: 10, want: "ab\uFFFD"},
		{name: "invalid byte at the end kept as replacement", r: strings.NewReader("ab\xff"), n: 10, want: "ab\uFFFD"},
		{name: "lone continuation bytes", r: strings.NewReader("a\x80\x80"), n: 10, want: "a\uFFFD"},
		{name: "read error keeps what was read", r: io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errors.New("reset"))), n: 100, want: "partial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReadSnippet(tt.r, tt.n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadSnippet() mismatch (-want +got):\n%s", diff)
			}
			if !utf8.ValidString(got) {
				t.Errorf("ReadSnippet() = %q, not valid UTF-8", got)
			}
		})
	}
}

func TestReadSnippetReadsAtMostN(t *testing.T) {
	r := strings.NewReader(strings.Repeat("x", 100))
	if got := ReadSnippet(r, 10); len(got) != 10 {
		t.Errorf("ReadSnippet() returned %d bytes, want 10", len(got))
	}
	if diff := cmp.Diff(90, r.Len()); diff != "" {
		t.Errorf("unread bytes mismatch (-want +got):\n%s", diff)
	}
}
