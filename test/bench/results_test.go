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
