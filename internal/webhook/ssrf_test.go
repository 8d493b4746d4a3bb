package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"code.dny.dev/ssrf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		cidrs   string
		hosts   string
		anyPort bool
		want    Policy
		wantErr string // substring; "" for success
	}{
		{name: "empty", want: Policy{}},
		{name: "blank entries ignored", cidrs: " , ,", hosts: ",", want: Policy{}},
		{
			name:    "lists",
			cidrs:   "10.0.0.0/8, fd00::/8 ,192.168.1.7",
			hosts:   "Receiver.Example.com.,hooks.svc.cluster.local",
			anyPort: true,
			want: Policy{
				AllowedCIDRs: prefixes("10.0.0.0/8", "fd00::/8", "192.168.1.7/32"),
				AllowedHosts: []string{"receiver.example.com", "hooks.svc.cluster.local"},
				AnyPort:      true,
			},
		},
		{name: "prefix masked", cidrs: "10.1.2.3/8", want: Policy{AllowedCIDRs: prefixes("10.0.0.0/8")}},
		{name: "ipv4-mapped prefix unmapped", cidrs: "::ffff:10.0.0.0/104", want: Policy{AllowedCIDRs: prefixes("10.0.0.0/8")}},
		{name: "bare ipv6 address", cidrs: "::1", want: Policy{AllowedCIDRs: prefixes("::1/128")}},
		{name: "bad cidr", cidrs: "10.0.0.0/8,10.0.0.0/33", wantErr: `allowed CIDR "10.0.0.0/33"`},
		{name: "not an address", cidrs: "localhost", wantErr: `allowed CIDR "localhost"`},
		{name: "zoned address", cidrs: "fe80::1%eth0", wantErr: `allowed CIDR "fe80::1%eth0": zoned`},
		{name: "wildcard host", hosts: "*.example.com", wantErr: `allowed host "*.example.com": wildcards`},
		{name: "address as host", hosts: "ok.example.com,127.0.0.1", wantErr: `allowed host "127.0.0.1": is an address`},
		{name: "invalid host", hosts: "bad host", wantErr: `allowed host "bad host": not a valid host name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy(tt.cidrs, tt.hosts, tt.anyPort)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePolicy() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("ParsePolicy() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	local := Policy{AllowedCIDRs: prefixes("127.0.0.0/8"), AnyPort: true}
	tests := []struct {
		name   string
		policy Policy
		url    string
		want   string // the URLError's Reason; "" for an accepted URL
	}{
		// Accepted.
		{name: "https with explicit port", url: "https://example.com:443/hook"},
		{name: "https with query", url: "https://hooks.example.com/x?y=1"},
		{name: "http", url: "http://hooks.example.com/callback"},
		{name: "upper-case scheme and host", url: "HTTPS://Hooks.Example.COM/x"},
		{name: "trailing dot name", url: "https://hooks.example.com./x"},
		{name: "empty port means default", url: "https://example.com:/x"},
		{name: "public IPv4 literal", url: "https://8.8.8.8/hook"},
		{name: "public IPv6 literal", url: "https://[2606:4700:4700::1111]/hook"},
		{name: "public IPv4-mapped literal", url: "http://[::ffff:8.8.8.8]/"},
		{name: "allowed CIDR with AnyPort", policy: local, url: "http://127.0.0.1:8080/"},
		{name: "allowed CIDR matches mapped form", policy: local, url: "http://[::ffff:127.0.0.1]:8080/"},
		{name: "allowed host", policy: Policy{AllowedHosts: []string{"Receiver.Default.SVC"}}, url: "http://receiver.default.svc/"},
		{name: "allowed single-label host", policy: Policy{AllowedHosts: []string{"receiver"}}, url: "http://receiver/"},
		{name: "any port", policy: Policy{AnyPort: true}, url: "https://example.com:8443/"},
		{name: "max length", url: "https://example.com/" + strings.Repeat("a", MaxURLLength-len("https://example.com/"))},

		// Malformed or undeliverable.
		{name: "empty", url: "", want: "URL is empty"},
		{name: "too long", url: "https://example.com/" + strings.Repeat("a", MaxURLLength), want: "URL is 2068 bytes long; the limit is 2048"},
		{name: "relative", url: "/hooks/1", want: "URL is not absolute; it must start with https:// or http://"},
		{name: "scheme-relative", url: "//example.com/x", want: "URL is not absolute; it must start with https:// or http://"},
		{name: "ftp", url: "ftp://example.com/x", want: `scheme "ftp" is not allowed; use https or http`},
		{name: "file", url: "file:///etc/passwd", want: `scheme "file" is not allowed; use https or http`},
		{name: "gopher", url: "gopher://example.com:70/_x", want: `scheme "gopher" is not allowed; use https or http`},
		{name: "opaque", url: "http:example.com/x", want: "URL must have the form http://host/path"},
		{name: "no host", url: "http:///path", want: "URL has no host"},
		{name: "port only", url: "http://:80/", want: "URL has no host"},
		{name: "userinfo", url: "http://a@127.0.0.1", want: "URL must not contain user information (user:password@)"},
		{name: "user and password", url: "https://user:pw@example.com/", want: "URL must not contain user information (user:password@)"},
		{name: "fragment hiding the host", url: "http://127.0.0.1#@example.com", want: "URL must not contain a fragment (#...)"},
		{name: "empty fragment", url: "https://example.com/x#", want: "URL must not contain a fragment (#...)"},
		{name: "whitespace", url: "https://example.com/a b", want: "URL contains whitespace"},
		{name: "control character", url: "https://example.com/\x00", want: "URL does not parse: net/url: invalid control character in URL"},
		{name: "bad port", url: "https://example.com:99999/", want: `port "99999" is not a valid port number`},
		{name: "port zero", url: "https://example.com:0/", want: `port "0" is not a valid port number`},
		{name: "ssh port", url: "http://example.com:22/", want: "port 22 is not allowed; use 443 (https) or 80 (http)"},
		{name: "allowed CIDR without AnyPort keeps port rule", policy: Policy{AllowedCIDRs: prefixes("127.0.0.0/8")}, url: "http://127.0.0.1:8080/", want: "port 8080 is not allowed; use 443 (https) or 80 (http)"},

		// IPv4 literals in every spelling.
		{name: "loopback", url: "http://127.0.0.1/", want: "host 127.0.0.1 is a loopback address; callbacks must go to public addresses"},
		{name: "loopback decimal", url: "http://2130706433/", want: `host "2130706433" is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "loopback octal", url: "http://0177.0.0.1/", want: `host "0177.0.0.1" is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "loopback hex", url: "http://0x7f.0.0.1/", want: `host "0x7f.0.0.1" is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "loopback hex integer", url: "http://0x7F000001/", want: `host "0x7F000001" is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "loopback short", url: "http://127.1/", want: `host "127.1" is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "loopback mixed", url: "http://0x7f.1/", want: `host "0x7f.1" is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "loopback trailing dot", url: "http://127.0.0.1./", want: `host "127.0.0.1." is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "unspecified", url: "http://0.0.0.0/", want: "host 0.0.0.0 is the unspecified address; callbacks must go to public addresses"},
		{name: "unspecified short", url: "http://0/", want: `host "0" is the unspecified address (0.0.0.0); callbacks must go to public addresses`},
		{name: "metadata", url: "http://169.254.169.254/latest/meta-data", want: "host 169.254.169.254 is a link-local address; callbacks must go to public addresses"},
		{name: "rfc1918", url: "https://10.0.0.1/", want: "host 10.0.0.1 is a private address; callbacks must go to public addresses"},
		{name: "rfc1918 172", url: "https://172.16.5.4/", want: "host 172.16.5.4 is a private address; callbacks must go to public addresses"},
		{name: "rfc1918 192", url: "https://192.168.0.1/", want: "host 192.168.0.1 is a private address; callbacks must go to public addresses"},
		{name: "cgnat", url: "http://100.64.0.1/", want: "host 100.64.0.1 is a shared (carrier-grade NAT) address; callbacks must go to public addresses"},
		{name: "documentation", url: "http://192.0.2.1/", want: "host 192.0.2.1 is a special-purpose address; callbacks must go to public addresses"},
		{name: "multicast", url: "http://224.0.0.1/", want: "host 224.0.0.1 is a multicast address; callbacks must go to public addresses"},
		{name: "broadcast", url: "http://255.255.255.255/", want: "host 255.255.255.255 is a special-purpose address; callbacks must go to public addresses"},
		{name: "public but unusual spelling", url: "http://134744072/", want: `host "134744072" is an unusual spelling of the IPv4 address 8.8.8.8; write it as 8.8.8.8`},
		{name: "invalid numeric host", url: "http://1.2.3.256/", want: `host "1.2.3.256" looks like an IPv4 address but is not a valid one`},
		{name: "five parts", url: "http://1.2.3.4.5/", want: `host "1.2.3.4.5" looks like an IPv4 address but is not a valid one`},
		{name: "name ending in a number", url: "http://example.123/", want: `host "example.123" looks like an IPv4 address but is not a valid one`},
		{name: "name ending in hex number", url: "http://example.0x1/", want: `host "example.0x1" looks like an IPv4 address but is not a valid one`},

		// IPv6 literals.
		{name: "ipv6 loopback", url: "http://[::1]/", want: "host ::1 is a loopback address; callbacks must go to public addresses"},
		{name: "ipv6 loopback long form", url: "http://[0:0:0:0:0:0:0:1]/", want: `host "0:0:0:0:0:0:0:1" is a loopback address (::1); callbacks must go to public addresses`},
		{name: "ipv6 unspecified", url: "http://[::]/", want: "host :: is the unspecified address; callbacks must go to public addresses"},
		{name: "ipv4-mapped loopback", url: "http://[::ffff:127.0.0.1]/", want: `host "::ffff:127.0.0.1" is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "ipv4-mapped hex", url: "http://[::ffff:7f00:1]/", want: `host "::ffff:7f00:1" is a loopback address (127.0.0.1); callbacks must go to public addresses`},
		{name: "ipv4-mapped private", url: "http://[::ffff:10.0.0.1]/", want: `host "::ffff:10.0.0.1" is a private address (10.0.0.1); callbacks must go to public addresses`},
		{name: "link-local with zone", url: "http://[fe80::1%25eth0]/", want: `host "fe80::1%eth0" is a link-local address (fe80::1); callbacks must go to public addresses`},
		{name: "public with zone", url: "http://[2606:4700:4700::1111%25eth0]/", want: `host "2606:4700:4700::1111%eth0" has an IPv6 zone, which is not allowed`},
		{name: "unique local", url: "http://[fd00::1]/", want: "host fd00::1 is a private address; callbacks must go to public addresses"},
		{name: "nat64 of loopback", url: "http://[64:ff9b::7f00:1]/", want: "host 64:ff9b::7f00:1 is a special-purpose address; callbacks must go to public addresses"},
		{name: "ipv6 documentation", url: "http://[2001:db8::1]/", want: "host 2001:db8::1 is a special-purpose address; callbacks must go to public addresses"},
		{name: "ipv4 in brackets", url: "http://[127.0.0.1]/", want: `URL does not parse: invalid IP-literal`},

		// Names.
		{name: "localhost", url: "http://localhost/", want: `host "localhost" is a local name, not reachable from the internet`},
		{name: "localhost upper-case with dot", url: "http://LOCALHOST./", want: `host "LOCALHOST." is a local name, not reachable from the internet`},
		{name: "sub.localhost", url: "http://app.localhost/", want: `host "app.localhost" is a local name, not reachable from the internet`},
		{name: "mdns", url: "http://printer.local/", want: `host "printer.local" is a local name, not reachable from the internet`},
		{name: "cluster service", url: "http://api.default.svc.cluster.local/", want: `host "api.default.svc.cluster.local" is a local name, not reachable from the internet`},
		{name: "short cluster service", url: "http://api.default.svc/", want: `host "api.default.svc" is a local name, not reachable from the internet`},
		{name: "gce metadata", url: "http://metadata.google.internal/computeMetadata/v1/", want: `host "metadata.google.internal" is a local name, not reachable from the internet`},
		{name: "internal", url: "http://ip-10-0-0-1.ec2.internal/", want: `host "ip-10-0-0-1.ec2.internal" is a local name, not reachable from the internet`},
		{name: "single label", url: "http://kubernetes/", want: `host "kubernetes" is not a fully qualified domain name`},
		{name: "allowed host does not cover others", policy: Policy{AllowedHosts: []string{"receiver.default.svc"}}, url: "http://other.default.svc/", want: `host "other.default.svc" is a local name, not reachable from the internet`},
		{name: "non-ASCII", url: "http://\u2460\u2461\u2466.0.0.1/", want: `host "①②⑦.0.0.1" is not ASCII; write internationalized names in their punycode (xn--) form`},
		{name: "percent-encoded non-ASCII", url: "http://%E2%91%A0.example.com/", want: `host "①.example.com" is not ASCII; write internationalized names in their punycode (xn--) form`},
		{name: "punycode", url: "https://xn--nxasmq6b.example/"},
		{name: "backslash before userinfo", url: `http://evil.com\@127.0.0.1/`, want: "URL does not parse: net/url: invalid userinfo"},
		{name: "empty label", url: "http://a..example.com/", want: `host "a..example.com" is not a valid host name`},
		{name: "bad character", url: "http://a!b.example.com/", want: `host "a!b.example.com" is not a valid host name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.CheckURL(tt.url)
			var got string
			if err != nil {
				var uerr *URLError
				if !errors.As(err, &uerr) {
					t.Fatalf("CheckURL(%q) error %v (%T) is not a *URLError", tt.url, err, err)
				}
				got = uerr.Reason
				if !strings.HasPrefix(err.Error(), "invalid callback URL: ") {
					t.Errorf("Error() = %q, want the invalid callback URL prefix", err.Error())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CheckURL(%q) reason mismatch (-want +got):\n%s", tt.url, diff)
			}
		})
	}
}

func TestControl(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		network string
		address string
		want    error // matched with errors.Is, besides ErrDisallowedDestination
	}{
		{name: "public v4", network: "tcp4", address: "8.8.8.8:443"},
		{name: "public v4 on 80", network: "tcp", address: "1.1.1.1:80"},
		{name: "public v6", network: "tcp6", address: "[2606:4700:4700::1111]:443"},
		{name: "public mapped", network: "tcp6", address: "[::ffff:8.8.8.8]:443"},
		{name: "loopback", network: "tcp4", address: "127.0.0.1:80", want: ssrf.ErrProhibitedIP},
		{name: "ipv6 loopback", network: "tcp6", address: "[::1]:443", want: ssrf.ErrProhibitedIP},
		{name: "unspecified", network: "tcp4", address: "0.0.0.0:80", want: ssrf.ErrProhibitedIP},
		{name: "rfc1918", network: "tcp4", address: "10.1.2.3:443", want: ssrf.ErrProhibitedIP},
		{name: "cgnat", network: "tcp4", address: "100.64.0.1:443", want: ssrf.ErrProhibitedIP},
		{name: "metadata", network: "tcp4", address: "169.254.169.254:80", want: ssrf.ErrProhibitedIP},
		{name: "unique local", network: "tcp6", address: "[fd00::1]:443", want: ssrf.ErrProhibitedIP},
		{name: "link-local zoned", network: "tcp6", address: "[fe80::1%eth0]:443", want: ssrf.ErrProhibitedIP},
		{name: "mapped private", network: "tcp6", address: "[::ffff:10.0.0.1]:443", want: ssrf.ErrProhibitedIP},
		{name: "nat64 loopback", network: "tcp6", address: "[64:ff9b::7f00:1]:443", want: ssrf.ErrProhibitedIP},
		{name: "multicast", network: "tcp4", address: "239.1.1.1:443", want: ssrf.ErrProhibitedIP},
		{name: "public on ssh port", network: "tcp4", address: "8.8.8.8:22", want: ssrf.ErrProhibitedPort},
		{name: "public on any port", policy: Policy{AnyPort: true}, network: "tcp4", address: "8.8.8.8:22"},
		{name: "udp", network: "udp4", address: "8.8.8.8:443", want: ssrf.ErrProhibitedNetwork},
		{name: "unparsable", network: "tcp", address: "example.com:443", want: ssrf.ErrInvalidHostPort},
		{name: "allowed cidr", policy: Policy{AllowedCIDRs: prefixes("10.0.0.0/8")}, network: "tcp4", address: "10.1.2.3:443"},
		{name: "allowed cidr covers mapped form", policy: Policy{AllowedCIDRs: prefixes("10.0.0.0/8")}, network: "tcp6", address: "[::ffff:10.0.0.1]:443"},
		{name: "mapped allowed cidr covers v4", policy: Policy{AllowedCIDRs: prefixes("::ffff:10.0.0.0/104")}, network: "tcp4", address: "10.9.9.9:80"},
		{name: "allowed v6 cidr", policy: Policy{AllowedCIDRs: prefixes("fd00::/8")}, network: "tcp6", address: "[fd00::1]:443"},
		{name: "allowed cidr keeps port rule", policy: Policy{AllowedCIDRs: prefixes("10.0.0.0/8")}, network: "tcp4", address: "10.1.2.3:8080", want: ssrf.ErrProhibitedPort},
		{name: "allowed cidr does not cover others", policy: Policy{AllowedCIDRs: prefixes("10.0.0.0/8")}, network: "tcp4", address: "192.168.1.1:443", want: ssrf.ErrProhibitedIP},
		{name: "allowed hosts play no part", policy: Policy{AllowedHosts: []string{"localhost"}}, network: "tcp4", address: "127.0.0.1:80", want: ssrf.ErrProhibitedIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Control(tt.network, tt.address, nil)
			if diff := cmp.Diff(tt.want, err, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("Control(%q, %q) = %v; mismatch (-want +got):\n%s", tt.network, tt.address, err, diff)
			}
			if err != nil {
				if !errors.Is(err, ErrDisallowedDestination) {
					t.Errorf("Control() error %v does not wrap ErrDisallowedDestination", err)
				}
				if !strings.Contains(err.Error(), tt.address) {
					t.Errorf("Control() error %q does not name the address %s", err, tt.address)
				}
			}
		})
	}
}

func TestNewClientSettings(t *testing.T) {
	c := Policy{}.NewClient(7 * time.Second)
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T, want *http.Transport", c.Transport)
	}
	type settings struct {
		Timeout, TLSHandshakeTimeout, ResponseHeaderTimeout, IdleConnTimeout time.Duration
		MaxIdleConnsPerHost                                                  int
		Proxy, DialContext, CheckRedirect                                    bool
	}
	got := settings{
		Timeout:               c.Timeout,
		TLSHandshakeTimeout:   tr.TLSHandshakeTimeout,
		ResponseHeaderTimeout: tr.ResponseHeaderTimeout,
		IdleConnTimeout:       tr.IdleConnTimeout,
		MaxIdleConnsPerHost:   tr.MaxIdleConnsPerHost,
		Proxy:                 tr.Proxy != nil,
		DialContext:           tr.DialContext != nil,
		CheckRedirect:         c.CheckRedirect != nil,
	}
	want := settings{
		Timeout:               7 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 7 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		Proxy:                 false,
		DialContext:           true,
		CheckRedirect:         true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("client settings mismatch (-want +got):\n%s", diff)
	}
	if got := (Policy{}).NewClient(0).Timeout; got != DefaultTimeout {
		t.Errorf("NewClient(0).Timeout = %v, want %v", got, DefaultTimeout)
	}
}

// serverAddr returns the test server's host and port as a netip.AddrPort.
func serverAddr(t *testing.T, srv *httptest.Server) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func TestClientConnections(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	ap := serverAddr(t, srv)
	if !ap.Addr().IsLoopback() {
		t.Fatalf("test server on %s, want a loopback address", ap)
	}
	loopback := prefixes("127.0.0.0/8", "::1/128")
	byName := fmt.Sprintf("http://localhost:%d/", ap.Port())

	tests := []struct {
		name     string
		policy   Policy
		url      string
		wantErr  error  // matched with errors.Is; nil for a 200
		wantText string // substring of the error
	}{
		{name: "zero policy refuses the port", url: srv.URL, wantErr: ssrf.ErrProhibitedPort, wantText: ap.String()},
		{name: "loopback refused", policy: Policy{AnyPort: true}, url: srv.URL, wantErr: ssrf.ErrProhibitedIP, wantText: ap.Addr().String()},
		{name: "loopback allowed by CIDR", policy: Policy{AllowedCIDRs: loopback, AnyPort: true}, url: srv.URL},
		{name: "name resolving to loopback refused", policy: Policy{AnyPort: true}, url: byName, wantErr: ssrf.ErrProhibitedIP, wantText: "127.0.0.1"},
		{name: "allowed host", policy: Policy{AllowedHosts: []string{"LOCALHOST"}, AnyPort: true}, url: byName},
		{name: "allowed host keeps port rule", policy: Policy{AllowedHosts: []string{"localhost"}}, url: byName, wantErr: ssrf.ErrProhibitedPort},
		{name: "allowed host does not cover the address", policy: Policy{AllowedHosts: []string{"localhost"}, AnyPort: true}, url: srv.URL, wantErr: ssrf.ErrProhibitedIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			client := tt.policy.NewClient(5 * time.Second)
			defer client.CloseIdleConnections()
			resp, err := client.Get(tt.url)
			if err == nil {
				defer resp.Body.Close()
				_, _ = io.Copy(io.Discard, resp.Body)
			}
			if diff := cmp.Diff(tt.wantErr, err, cmpopts.EquateErrors()); diff != "" {
				t.Fatalf("Get(%s) error = %v; mismatch (-want +got):\n%s", tt.url, err, diff)
			}
			if err != nil {
				if !errors.Is(err, ErrDisallowedDestination) {
					t.Errorf("error %v does not wrap ErrDisallowedDestination", err)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error %q does not mention %q", err, tt.wantText)
				}
				if got := hits.Load() - before; got != 0 {
					t.Errorf("server got %d requests, want none", got)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
		})
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
	}))
	defer other.Close()

	tests := []struct {
		name     string
		location string
	}{
		{name: "to the metadata endpoint", location: "http://169.254.169.254/latest/meta-data/"},
		{name: "to another allowed server", location: other.URL + "/elsewhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, tt.location, http.StatusFound)
			}))
			defer srv.Close()
			client := Policy{AllowedCIDRs: prefixes("127.0.0.0/8", "::1/128"), AnyPort: true}.NewClient(5 * time.Second)
			defer client.CloseIdleConnections()

			resp, err := client.Get(srv.URL + "/hook")
			if err != nil {
				t.Fatalf("Get() error = %v, want the 302 as the result", err)
			}
			defer resp.Body.Close()
			type result struct {
				Status     int
				Location   string
				OtherHits  int64
				RequestURL string
			}
			got := result{resp.StatusCode, resp.Header.Get("Location"), otherHits.Load(), resp.Request.URL.String()}
			want := result{http.StatusFound, tt.location, 0, srv.URL + "/hook"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("redirect result mismatch (-want +got):\n%s", diff)
			}
			if o, _ := Classify(resp, err, time.Now()); o != Retry {
				t.Errorf("Classify(302) = %s, want %s", o, Retry)
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	client := Policy{AllowedCIDRs: prefixes("127.0.0.0/8", "::1/128"), AnyPort: true}.NewClient(200 * time.Millisecond)
	defer client.CloseIdleConnections()
	start := time.Now()
	resp, err := client.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("Get() succeeded, want a timeout")
	}
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Errorf("Get() error = %v, want a timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Get() took %v, want about 200ms", elapsed)
	}
}

func TestDialerResolvedAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	ap := serverAddr(t, srv)
	loopback := prefixes("127.0.0.0/8", "::1/128")
	lookupErr := errors.New("no such host")

	tests := []struct {
		name      string
		policy    Policy
		network   string
		addrs     []string // what the name resolves to
		lookupErr error
		wantErr   error  // matched with errors.Is; nil for a connection
		wantText  string // substring of the error
	}{
		{name: "private skipped, allowed used", policy: Policy{AllowedCIDRs: loopback, AnyPort: true}, addrs: []string{"10.0.0.1", ap.Addr().String()}},
		{name: "mapped answer unmapped", policy: Policy{AllowedCIDRs: prefixes("127.0.0.0/8"), AnyPort: true}, addrs: []string{"::ffff:" + ap.Addr().String()}},
		{name: "allowed host reaches any address", policy: Policy{AllowedHosts: []string{"receiver.example.com"}, AnyPort: true}, addrs: []string{ap.Addr().String()}},
		{name: "every answer private", policy: Policy{AnyPort: true}, addrs: []string{"10.0.0.1", "169.254.169.254"}, wantErr: ssrf.ErrProhibitedIP, wantText: "10.0.0.1:" + fmt.Sprint(ap.Port()) + ": prohibited IP address: 10.0.0.1 is not a permitted destination (denied by: 10.0.0.0/8); webhook: destination not allowed: 169.254.169.254"},
		{name: "mapped private answer", policy: Policy{AnyPort: true}, addrs: []string{"::ffff:" + ap.Addr().String()}, wantErr: ssrf.ErrProhibitedIP, wantText: ap.String()},
		{name: "no answers", policy: Policy{AnyPort: true}, wantText: "resolve receiver.example.com: no addresses"},
		{name: "lookup fails", policy: Policy{AnyPort: true}, lookupErr: lookupErr, wantErr: lookupErr, wantText: "resolve receiver.example.com: no such host"},
		{name: "udp", policy: Policy{AnyPort: true}, network: "udp", addrs: []string{"8.8.8.8"}, wantErr: ssrf.ErrProhibitedNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDialer(tt.policy)
			d.lookup = func(_ context.Context, network, host string) ([]netip.Addr, error) {
				if network != "ip" || host != "receiver.example.com" {
					t.Errorf("lookup(%q, %q), want (ip, receiver.example.com)", network, host)
				}
				var out []netip.Addr
				for _, a := range tt.addrs {
					out = append(out, netip.MustParseAddr(a))
				}
				return out, tt.lookupErr
			}
			network := tt.network
			if network == "" {
				network = "tcp"
			}
			conn, err := d.DialContext(context.Background(), network, fmt.Sprintf("receiver.example.com:%d", ap.Port()))
			if err == nil {
				if got := conn.RemoteAddr().String(); got != ap.String() {
					t.Errorf("connected to %s, want %s", got, ap)
				}
				conn.Close()
			}
			if tt.wantText == "" && tt.wantErr == nil {
				if err != nil {
					t.Fatalf("DialContext() error = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("DialContext() succeeded, want an error")
			}
			if tt.wantErr != nil {
				if diff := cmp.Diff(tt.wantErr, err, cmpopts.EquateErrors()); diff != "" {
					t.Errorf("DialContext() error = %v; mismatch (-want +got):\n%s", err, diff)
				}
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("DialContext() error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

// The socket-level guard refuses on its own, should the name-level check ever be bypassed.
func TestGuardedDialerControl(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	tests := []struct {
		name   string
		policy Policy
		want   error
	}{
		{name: "refused", policy: Policy{AnyPort: true}, want: ssrf.ErrProhibitedIP},
		{name: "allowed", policy: Policy{AllowedCIDRs: prefixes("127.0.0.0/8", "::1/128"), AnyPort: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := newDialer(tt.policy).guarded.DialContext(context.Background(), "tcp", srv.Listener.Addr().String())
			if err == nil {
				conn.Close()
			}
			if diff := cmp.Diff(tt.want, err, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("guarded dial error = %v; mismatch (-want +got):\n%s", err, diff)
			}
		})
	}
}
