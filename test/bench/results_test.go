package main

import "testing"

func TestParseRSS(t *testing.T) {
	got, err := parseRSS([]byte("Name:\tkube-apiserver\nVmPeak:\t 2000 kB\nVmRSS:\t  123456 kB\nThreads:\t12\n"))
	if err != nil || got != 123456<<10 {
		t.Errorf("parseRSS = %d, %v; want %d", got, err, 123456<<10)
	}
	if _, err := parseRSS([]byte("Name:\tx\n")); err == nil {
		t.Errorf("parseRSS without VmRSS: no error")
	}
}

func TestMetricValue(t *testing.T) {
	text := []byte("# HELP x\ngo_memstats_heap_inuse_bytes 1.5e+06\netcd_mvcc_db_total_size_in_bytes{x=\"y\"} 3\n")
	if got := metricValue(text, "go_memstats_heap_inuse_bytes"); got != 1500000 {
		t.Errorf("metricValue = %d, want 1500000", got)
	}
	if got := metricValue(text, "etcd_mvcc_db_total_size_in_bytes"); got != 0 {
		t.Errorf("labeled metric read as %d", got)
	}
}
