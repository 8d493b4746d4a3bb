package webhook

import (
	"flag"
	"fmt"
	"strings"
)

// PolicyFlags binds a Policy to command-line flags. The frontend and the manager take the same flags:
// the frontend checks callback URLs at submit time, the manager again at every delivery.
type PolicyFlags struct {
	cidrs, hosts string
	anyPort      bool
}

// Bind registers --callback-allowed-cidrs, --callback-allowed-hosts and --callback-any-port.
func (f *PolicyFlags) Bind(fs *flag.FlagSet) {
	fs.StringVar(&f.cidrs, "callback-allowed-cidrs", "", "Comma-separated private CIDRs callbacks may reach anyway (in-cluster receivers). Off by default.")
	fs.StringVar(&f.hosts, "callback-allowed-hosts", "", "Comma-separated host names callbacks may reach even when they resolve to private addresses. Off by default.")
	fs.BoolVar(&f.anyPort, "callback-any-port", false, "Allow callback URLs on ports other than 80 and 443.")
}

// Policy returns the policy the flags describe.
func (f *PolicyFlags) Policy() (Policy, error) {
	p, err := ParsePolicy(strings.TrimSpace(f.cidrs), strings.TrimSpace(f.hosts), f.anyPort)
	if err != nil {
		return Policy{}, fmt.Errorf("callback policy flags: %w", err)
	}
	return p, nil
}
