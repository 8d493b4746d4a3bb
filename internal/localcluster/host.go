package localcluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The host changes a node makes outside the cluster's directory, and how down undoes them. Up
// records the host's state before the first start (<dir>/host.json); down restores it.

// sysctls are the kernel settings the kubelet (vm.*, kernel.*), kube-proxy (route_localnet) and the
// bridge CNI plugin (ip_forward) change.
var sysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"net/ipv4/conf/all/route_localnet", "net/ipv4/ip_forward",
}

// hostPaths are directories outside <dir> that containerd, the kubelet and CNI create with fixed
// names; down removes those that did not exist before.
var hostPaths = []string{"/run/containerd", "/var/lib/cni", "/var/log/containers", "/var/log/pods", "/run/netns", "/var/run/netns"}

// iptablesPrefixes are the chains kube-proxy, the kubelet and the CNI plugins create.
var iptablesPrefixes = []string{"KUBE-", "CNI-"}

// hostState is the host as it was before the cluster first started.
type hostState struct {
	Sysctls map[string]string `json:"sysctls"`
	// Absent are hostPaths that did not exist.
	Absent []string `json:"absent"`
	// Chains are the iptables chains (by command and table) that existed: "iptables nat KUBE-X".
	Chains []string `json:"chains"`
	// Netns are the network namespaces in /run/netns.
	Netns []string `json:"netns"`
}

func (c *Cluster) hostFile() string { return filepath.Join(c.dir, "host.json") }

// recordHost saves the host's state unless it is already saved.
func (c *Cluster) recordHost() error {
	if _, err := os.Stat(c.hostFile()); err == nil {
		return nil
	}
	h := hostState{Sysctls: map[string]string{}, Chains: listChains(), Netns: listNetns()}
	for _, s := range sysctls {
		if v, err := os.ReadFile("/proc/sys/" + s); err == nil {
			h.Sysctls[s] = strings.TrimSpace(string(v))
		}
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			h.Absent = append(h.Absent, p)
		}
	}
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.hostFile(), data, 0o600)
}

// restoreHost undoes what the node left on the host: mounts under dir, the bridge, the pod cgroups,
// log links, iptables chains, kernel settings and the fixed-name directories that were absent.
func (c *Cluster) restoreHost() error {
	var errs []error
	killPods()
	unmountUnder(c.dir)
	if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w: %s", bridge, err, out))
		}
	}
	removeCgroups()
	// The kubelet links container logs from /var/log/containers into its pod log directory.
	if links, err := filepath.Glob("/var/log/containers/*"); err == nil {
		for _, l := range links {
			if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, c.dir) {
				_ = os.Remove(l)
			}
		}
	}
	// CNI's result cache holds one file per container of the "seek" network.
	if results, err := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*"); err == nil {
		for _, r := range results {
			_ = os.Remove(r)
		}
	}
	data, err := os.ReadFile(c.hostFile())
	if errors.Is(err, os.ErrNotExist) {
		return errors.Join(errs...)
	}
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var h hostState
	if err := json.Unmarshal(data, &h); err != nil {
		return errors.Join(append(errs, fmt.Errorf("%s: %w", c.hostFile(), err))...)
	}
	errs = append(errs, removeChains(h.Chains))
	removeNetns(h.Netns)
	for s, v := range h.Sysctls {
		if cur, err := os.ReadFile("/proc/sys/" + s); err == nil && strings.TrimSpace(string(cur)) != v {
			errs = append(errs, os.WriteFile("/proc/sys/"+s, []byte(v), 0o644))
		}
	}
	for _, p := range h.Absent {
		errs = append(errs, os.RemoveAll(p))
	}
	return errors.Join(errs...)
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
		}
	}
}

// killPods kills every process left in the pods' cgroups (a pod the kubelet did not stop in time:
// its shim is gone, its processes are not).
func killPods() {
	for range 20 {
		var pids []int
		_ = filepath.WalkDir("/sys/fs/cgroup/pids/kubepods", func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" {
				return nil //nolint:nilerr // best effort: a cgroup that vanished while walking holds no process
			}
			data, _ := os.ReadFile(p)
			for _, field := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(field); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// listNetns lists the named network namespaces.
func listNetns() []string {
	entries, _ := os.ReadDir("/run/netns")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// removeNetns removes the network namespaces containerd made for pods ("cni-<id>") that were not
// there before the cluster: those of pods the kubelet did not tear down.
func removeNetns(keep []string) {
	for _, name := range listNetns() {
		if !strings.HasPrefix(name, "cni-") || slices.Contains(keep, name) {
			continue
		}
		p := filepath.Join("/run/netns", name)
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		_ = os.Remove(p)
	}
}

// removeCgroups removes the kubelet's pod cgroups (/kubepods) from every cgroup v1 hierarchy, and
// the unified one.
func removeCgroups() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		roots = append(roots, "/sys/fs/cgroup/kubepods")
	}
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}

// savedRules is what iptables-save printed, reduced to what down needs.
type savedRules struct {
	// chains are the Kubernetes and CNI chains, as "<command> <table> <chain>".
	chains []string
	// jumps are the rules of other chains that jump to one of those.
	jumps []jump
}

// jump is a rule jumping to a Kubernetes or CNI chain: line is iptables-save's own, shell-quoted
// text ("-A POSTROUTING ... -j CNI-X"; comments have spaces).
type jump struct{ table, target, line string }

func parseSave(cmd string, out []byte) savedRules {
	var s savedRules
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			if name := strings.Fields(line[1:])[0]; ownChain(name) {
				s.chains = append(s.chains, cmd+" "+table+" "+name)
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if ownChain(f[1]) {
				continue // goes with its chain
			}
			if i := slices.Index(f, "-j"); i > 0 && i+1 < len(f) && ownChain(f[i+1]) {
				s.jumps = append(s.jumps, jump{table: table, target: f[i+1], line: line})
			}
		}
	}
	return s
}

// save runs <cmd>-save; false if it is not there.
func save(cmd string) (savedRules, bool) {
	out, err := exec.Command(cmd + "-save").Output()
	if err != nil {
		return savedRules{}, false
	}
	return parseSave(cmd, out), true
}

var iptablesCommands = []string{"iptables", "ip6tables"}

// listChains lists the Kubernetes and CNI iptables chains: "<command> <table> <chain>".
func listChains() []string {
	var chains []string
	for _, cmd := range iptablesCommands {
		s, _ := save(cmd)
		chains = append(chains, s.chains...)
	}
	return chains
}

func ownChain(name string) bool {
	for _, p := range iptablesPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// removeChains deletes the Kubernetes and CNI chains not in keep, and the rules that jump to them.
func removeChains(keep []string) error {
	var errs []error
	for _, cmd := range iptablesCommands {
		s, ok := save(cmd)
		if !ok {
			continue
		}
		// The jumps first, then the chains: flush all, then delete all (they may refer to each other).
		for _, j := range s.jumps {
			if slices.Contains(keep, cmd+" "+j.table+" "+j.target) {
				continue
			}
			rule := "-t " + j.table + " -D" + strings.TrimPrefix(j.line, "-A")
			if out, err := exec.Command("sh", "-c", cmd+" -w "+rule).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w: %s", cmd, rule, err, bytes.TrimSpace(out)))
			}
		}
		var gone [][]string // table, chain
		for _, ch := range s.chains {
			if !slices.Contains(keep, ch) {
				gone = append(gone, strings.Fields(ch)[1:])
			}
		}
		for _, op := range []string{"-F", "-X"} {
			for _, ch := range gone {
				errs = append(errs, iptables(cmd, "-t", ch[0], op, ch[1]))
			}
		}
	}
	return errors.Join(errs...)
}

// ensureMasquerade installs masqueradeChain and the POSTROUTING rule that sends pod traffic to it.
func ensureMasquerade() error {
	if iptables("iptables", "-t", "nat", "-C", "POSTROUTING", "-s", PodCIDR, "-j", masqueradeChain) == nil {
		return nil
	}
	for _, rule := range [][]string{
		{"-t", "nat", "-N", masqueradeChain},
		{"-t", "nat", "-A", masqueradeChain, "-d", PodCIDR, "-j", "RETURN"},
		{"-t", "nat", "-A", masqueradeChain, "-j", "MASQUERADE"},
		{"-t", "nat", "-A", "POSTROUTING", "-s", PodCIDR, "-j", masqueradeChain},
	} {
		if err := iptables("iptables", rule...); err != nil && rule[2] != "-N" {
			return err
		}
	}
	return nil
}

func iptables(cmd string, args ...string) error {
	if out, err := exec.Command(cmd, append([]string{"-w"}, args...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", cmd, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
