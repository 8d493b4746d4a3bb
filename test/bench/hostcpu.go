package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The node's own processes: what the cluster costs besides Seek's pods. The real-node phases run on
// the node itself, so they read /proc: each daemon's CPU (its own threads, not its children: a
// containerd shim's reaped children are the pods' processes, counted by their cgroups) and the whole
// node's busy time (every process and the kernel, the bench's own client included).

// nodeDaemons are the processes counted by name (/proc/<pid>/comm, which the kernel cuts to 15 bytes),
// under the group printed for them.
var nodeDaemons = map[string]string{
	"kube-apiserver":  "kube-apiserver",
	"etcd":            "etcd",
	"kube-controller": "kube-controller-manager",
	"kube-scheduler":  "kube-scheduler",
	"kubelet":         "kubelet",
	"kube-proxy":      "kube-proxy",
	"containerd":      "containerd and shims",
	"containerd-shim": "containerd and shims",
}

// nodeDaemonGroups is the order the groups are printed in.
var nodeDaemonGroups = []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "containerd and shims"}

// nodeBusyGroup is the group of the node's busy CPU time (every CPU, every process, the kernel).
const nodeBusyGroup = "node, every process and the kernel"

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux architecture Go supports
// but alpha and ia64.
const clockTicks = 100

// hostCPU returns CPU seconds by group now: the node's daemons, keyed by pid so that a restarted or
// short-lived process (a shim) counts from when it is first seen, and the node's busy time.
func hostCPU(proc string) (daemons map[string]float64, groups map[string]string, busy float64, err error) {
	raw, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return nil, nil, 0, err
	}
	if busy, err = parseBusy(raw); err != nil {
		return nil, nil, 0, err
	}
	daemons, groups = map[string]float64{}, map[string]string{}
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, nil, 0, err
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue // gone since the listing
		}
		comm, seconds, ok := parseProcStat(stat)
		if !ok {
			continue
		}
		if g, ok := nodeDaemons[comm]; ok {
			daemons[e.Name()] = seconds
			groups[e.Name()] = g
		}
	}
	return daemons, groups, busy, nil
}

// parseBusy reads the busy seconds of all CPUs from /proc/stat's "cpu" line: user, nice, system, irq,
// softirq and steal (not idle or iowait).
func parseBusy(raw []byte) (float64, error) {
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat field %d: %w", i, err)
		}
		ticks += v
	}
	return float64(ticks) / clockTicks, nil
}

// parseProcStat reads a process's name and its own CPU seconds (utime + stime) from /proc/<pid>/stat.
// The name is between the first "(" and the last ")": it may hold spaces and parentheses.
func parseProcStat(raw []byte) (comm string, seconds float64, ok bool) {
	open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	// After ") ": state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt,
	// utime, stime.
	f := strings.Fields(string(raw[end+1:]))
	if len(f) < 13 {
		return "", 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return string(raw[open+1 : end]), float64(utime+stime) / clockTicks, true
}
