package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcStat(t *testing.T) {
	cases := map[string]struct {
		raw      string
		wantComm string
		wantSec  float64
		wantOK   bool
	}{
		"daemon": {
			raw:      "26895 (kube-apiserver) S 1 26895 1 0 -1 4194560 1 0 0 0 6447 1200 30 40 20 0 20 0 1 1 1",
			wantComm: "kube-apiserver", wantSec: 76.47, wantOK: true,
		},
		"name with spaces and parentheses": {
			raw:      "7 (a (b) c) R 1 7 1 0 -1 0 0 0 0 0 100 50 0 0 20 0 1 0 1 1 1",
			wantComm: "a (b) c", wantSec: 1.5, wantOK: true,
		},
		"truncated": {raw: "7 (x) R 1 7", wantOK: false},
		"no name":   {raw: "7 x R", wantOK: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			comm, sec, ok := parseProcStat([]byte(tc.raw))
			if ok != tc.wantOK || comm != tc.wantComm || (ok && diffFloat(sec, tc.wantSec)) {
				t.Errorf("parseProcStat = %q, %v, %v; want %q, %v, %v", comm, sec, ok, tc.wantComm, tc.wantSec, tc.wantOK)
			}
		})
	}
}

func TestParseBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseBusy([]byte("cpu  3008 804 2201 9000 1 2 80 5 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(61.0, got); diff != "" {
		t.Errorf("busy seconds (-want +got):\n%s", diff)
	}
	if _, err := parseBusy([]byte("intr 1 2 3\n")); err == nil {
		t.Error("parseBusy of a line that is not the cpu line: no error")
	}
}

func diffFloat(a, b float64) bool {
	d := a - b
	return d > 1e-9 || d < -1e-9
}
