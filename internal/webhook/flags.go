package webhook

import (
	"flag"
	"strings"
)

// BindPolicyFlags registers --callback-allowed-cidrs, --callback-allowed-hosts and
// --callback-any-port, parsed straight into p (a bad value fails flag parsing). The frontend and the
// manager take the same flags: the frontend checks callback URLs at submit time, the manager again at
// every delivery.
func BindPolicyFlags(fs *flag.FlagSet, p *Policy) {
	fs.Func("callback-allowed-cidrs", "Comma-separated private CIDRs callbacks may reach anyway (in-cluster receivers). Off by default.", func(v string) error {
		parsed, err := ParsePolicy(strings.TrimSpace(v), "", false)
		p.AllowedCIDRs = parsed.AllowedCIDRs
		return err
	})
	fs.Func("callback-allowed-hosts", "Comma-separated host names callbacks may reach even when they resolve to private addresses. Off by default.", func(v string) error {
		parsed, err := ParsePolicy("", strings.TrimSpace(v), false)
		p.AllowedHosts = parsed.AllowedHosts
		return err
	})
	fs.BoolVar(&p.AnyPort, "callback-any-port", false, "Allow callback URLs on ports other than 80 and 443.")
}
