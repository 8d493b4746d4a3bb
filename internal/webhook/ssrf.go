package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"code.dny.dev/ssrf"
)

const (
	// MaxURLLength is the longest callback URL CheckURL accepts, in bytes.
	MaxURLLength = 2048

	// DefaultTimeout is the per-attempt timeout NewClient uses when given a non-positive one.
	DefaultTimeout = 30 * time.Second

	// connectTimeout bounds name resolution plus connecting, across all of a name's addresses.
	connectTimeout = 5 * time.Second
	// tlsHandshakeTimeout bounds the TLS handshake.
	tlsHandshakeTimeout = 5 * time.Second
)

// ErrDisallowedDestination is wrapped by every error with which a client from Policy.NewClient, or
// Policy.Control, refuses to connect: a private or special-purpose address, a port other than 80 and
// 443, or a network other than TCP. The errors also wrap the matching code.dny.dev/ssrf sentinel
// (ssrf.ErrProhibitedIP, ssrf.ErrProhibitedPort, ssrf.ErrProhibitedNetwork, ssrf.ErrInvalidHostPort).
var ErrDisallowedDestination = errors.New("destination not allowed")

// denyList decides, for an address that AllowedCIDRs does not allow, whether it is public. Ports and
// networks are checked by Policy itself (the guardian's port check would run before, and so defeat,
// the AllowedCIDRs exception for ports), so the guardian is asked about addresses only.
var denyList = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork())

// Policy says which destinations deliveries may reach. The zero value allows public addresses on
// ports 80 and 443 only.
//
// "Public" follows code.dny.dev/ssrf's default deny lists: every IPv4 special-purpose range (0.0.0.0/8,
// loopback, RFC 1918, 100.64.0.0/10, 169.254.0.0/16 with the cloud metadata endpoints, documentation,
// benchmarking, multicast, reserved, ...) and every IPv6 address outside 2000::/3 (loopback, ::,
// fc00::/7, fe80::/10, multicast, NAT64, ...) plus the special-purpose ranges inside it. IPv4-mapped
// IPv6 addresses are unmapped first, so ::ffff:10.0.0.1 is judged as 10.0.0.1.
//
// A Policy is a plain value and safe for concurrent use as long as its slices are not modified.
type Policy struct {
	// AllowedCIDRs are private ranges deliveries may reach anyway (in-cluster receivers, tests). Off by
	// default. An address inside one of them is allowed whatever the deny lists say; the port rule
	// still applies unless AnyPort is set.
	AllowedCIDRs []netip.Prefix
	// AllowedHosts are host names (exact, case-insensitive, a trailing dot ignored) whose resolved
	// addresses are allowed even if private. They also exempt the name from CheckURL's local-name
	// rules. Addresses are not host names: use AllowedCIDRs for them.
	AllowedHosts []string
	// AnyPort lifts the 80/443 port restriction.
	AnyPort bool
	// LookupNetIP resolves host names for NewClient's dialer, as net.Resolver.LookupNetIP does (the
	// default, with net.DefaultResolver). Set it to use another resolver; what it answers is checked
	// like any resolver's answer.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ParsePolicy builds a Policy from comma-separated lists, as given on the command line. cidrs holds
// prefixes such as "10.0.0.0/8,fd00::/8"; a bare address stands for itself (a /32 or /128). hosts
// holds exact host names such as "receiver.example.com". Blank entries are ignored. The error names
// the first bad entry.
func ParsePolicy(cidrs, hosts string, anyPort bool) (Policy, error) {
	p := Policy{AnyPort: anyPort}
	for _, entry := range splitList(cidrs) {
		prefix, err := parsePrefix(entry)
		if err != nil {
			return Policy{}, fmt.Errorf("webhook: allowed CIDR %q: %w", entry, err)
		}
		p.AllowedCIDRs = append(p.AllowedCIDRs, prefix)
	}
	for _, entry := range splitList(hosts) {
		name := normalizeName(entry)
		switch {
		case strings.Contains(name, "*"):
			return Policy{}, fmt.Errorf("webhook: allowed host %q: wildcards are not supported, list exact names", entry)
		case looksLikeAddress(name):
			return Policy{}, fmt.Errorf("webhook: allowed host %q: is an address, allow it as a CIDR instead", entry)
		case !validHostName(name):
			return Policy{}, fmt.Errorf("webhook: allowed host %q: not a valid host name", entry)
		}
		p.AllowedHosts = append(p.AllowedHosts, name)
	}
	return p, nil
}

func splitList(s string) []string {
	var out []string
	for entry := range strings.SplitSeq(s, ",") {
		if entry = strings.TrimSpace(entry); entry != "" {
			out = append(out, entry)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR prefix or address: %w", err)
		}
		if addr.Zone() != "" {
			return netip.Prefix{}, errors.New("zoned addresses are not supported")
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR prefix: %w", err)
	}
	return normalizePrefix(prefix), nil
}

// normalizePrefix masks p and turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into the IPv4
// prefix it stands for (10.0.0.0/8), since addresses are unmapped before they are matched.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// URLError reports a callback URL that can never be delivered to. It is returned by Policy.CheckURL.
type URLError struct {
	// Reason says what is wrong, in words fit for an API error message. It names the offending part
	// but never repeats the whole URL, whose query may carry credentials.
	Reason string
}

// Error implements error.
func (e *URLError) Error() string { return "invalid callback URL: " + e.Reason }

func urlErrorf(format string, args ...any) error {
	return &URLError{Reason: fmt.Sprintf(format, args...)}
}

// CheckURL validates a callback URL at submit time. It returns a *URLError for URLs that can never be
// delivered: longer than MaxURLLength, not absolute, a scheme other than http and https, user
// information, a fragment, no host, a port other than 80 and 443 (unless AnyPort), an IP-address host
// in a range that is not public and not in AllowedCIDRs, or a local name (see below) not listed in
// AllowedHosts.
//
// Address hosts are recognised in every spelling a URL parser or resolver might accept: dotted
// quads, but also the WHATWG/inet_aton forms 2130706433, 0177.0.0.1, 0x7f.0.0.1, 127.1, and IPv6 in
// brackets including IPv4-mapped (::ffff:127.0.0.1) and zoned (fe80::1%25eth0) ones. IPv4 spelled
// any other way than a.b.c.d is refused even when public, because Go's resolver would not read it as
// an address, and IPv6 zones are refused. Non-ASCII hosts are refused too (net/http maps them through
// IDNA, which can turn e.g. full-width digits into an address): use the punycode (xn--) form.
//
// Local names are "localhost" and names ending in .localhost, .local (including .cluster.local),
// .localdomain, .internal (including metadata.google.internal), .home.arpa, .lan or .svc, and
// single-label names (which a cluster resolver expands with its search domains). Any other name passes:
// what it resolves to is checked again, on every connection, by the client from NewClient.
func (p Policy) CheckURL(raw string) error {
	switch {
	case raw == "":
		return urlErrorf("URL is empty")
	case len(raw) > MaxURLLength:
		return urlErrorf("URL is %d bytes long; the limit is %d", len(raw), MaxURLLength)
	case strings.ContainsFunc(raw, unicode.IsSpace):
		return urlErrorf("URL contains whitespace")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL; report only what is wrong with it.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return urlErrorf("URL does not parse: %v", err)
	}
	switch {
	case u.Scheme == "":
		return urlErrorf("URL is not absolute; it must start with https:// or http://")
	case u.Scheme != "http" && u.Scheme != "https":
		return urlErrorf("scheme %q is not allowed; use https or http", u.Scheme)
	case u.Opaque != "":
		return urlErrorf("URL must have the form %s://host/path", u.Scheme)
	case u.User != nil:
		return urlErrorf("URL must not contain user information (user:password@)")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return urlErrorf("URL must not contain a fragment (#...)")
	case u.Host == "" || u.Hostname() == "":
		return urlErrorf("URL has no host")
	}

	port := uint64(80)
	if u.Scheme == "https" {
		port = 443
	}
	if s := u.Port(); s != "" {
		port, err = strconv.ParseUint(s, 10, 16)
		if err != nil || port == 0 {
			return urlErrorf("port %q is not a valid port number", s)
		}
	}
	if !p.AnyPort && port != 80 && port != 443 {
		return urlErrorf("port %d is not allowed; use 443 (https) or 80 (http)", port)
	}

	if reason := p.hostReason(u.Hostname(), strings.HasPrefix(u.Host, "[")); reason != "" {
		return &URLError{Reason: reason}
	}
	return nil
}

// hostReason says why host (as url.URL.Hostname returns it) can never be delivered to, or "".
func (p Policy) hostReason(host string, bracketed bool) string {
	lower := strings.ToLower(host)

	if bracketed || strings.Contains(lower, ":") {
		addr, err := netip.ParseAddr(lower)
		if err != nil || !addr.Is6() {
			return fmt.Sprintf("host %q is not a valid IPv6 address", host)
		}
		if reason := p.addrReason(host, addr); reason != "" {
			return reason
		}
		if addr.Zone() != "" {
			return fmt.Sprintf("host %q has an IPv6 zone, which is not allowed", host)
		}
		return ""
	}

	for _, r := range lower {
		if r >= utf8.RuneSelf {
			return fmt.Sprintf("host %q is not ASCII; write internationalized names in their punycode (xn--) form", host)
		}
	}

	if endsInNumber(lower) {
		addr, ok := parseIPv4(lower)
		if !ok {
			return fmt.Sprintf("host %q looks like an IPv4 address but is not a valid one", host)
		}
		if reason := p.addrReason(host, addr); reason != "" {
			return reason
		}
		if lower != addr.String() {
			return fmt.Sprintf("host %q is an unusual spelling of the IPv4 address %s; write it as %s", host, addr, addr)
		}
		return ""
	}

	name := normalizeName(lower)
	switch {
	case !validHostName(name):
		return fmt.Sprintf("host %q is not a valid host name", host)
	case p.hostAllowed(name):
		return ""
	case isLocalName(name):
		return fmt.Sprintf("host %q is a local name, not reachable from the internet", host)
	case !strings.Contains(name, "."):
		return fmt.Sprintf("host %q is not a fully qualified domain name", host)
	}
	return ""
}

// addrReason says why the address host (written as host) may not be delivered to, or "".
func (p Policy) addrReason(host string, addr netip.Addr) string {
	ip := canonicalAddr(addr)
	if p.addrAllowed(ip) == nil {
		return ""
	}
	if strings.EqualFold(host, ip.String()) {
		return fmt.Sprintf("host %s is %s; callbacks must go to public addresses", ip, describeAddr(ip))
	}
	return fmt.Sprintf("host %q is %s (%s); callbacks must go to public addresses", host, describeAddr(ip), ip)
}

func describeAddr(ip netip.Addr) string {
	switch {
	case ip.IsUnspecified():
		return "the unspecified address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	case ip.IsMulticast():
		return "a multicast address"
	case sharedAddressSpace.Contains(ip):
		return "a shared (carrier-grade NAT) address"
	}
	return "a special-purpose address"
}

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// localSuffixes end names that only a local resolver can answer.
var localSuffixes = []string{".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan", ".svc"}

func isLocalName(name string) bool {
	if name == "localhost" {
		return true
	}
	for _, suffix := range localSuffixes {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// normalizeName lowercases a host name and drops one trailing dot.
func normalizeName(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// validHostName reports whether name (normalized) is a syntactically valid DNS host name: dot-separated
// labels of 1 to 63 letters, digits, hyphens or underscores, at most 253 characters in all.
func validHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// looksLikeAddress reports whether a host name would be read as an address.
func looksLikeAddress(name string) bool {
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	return strings.Contains(name, ":") || endsInNumber(name)
}

// endsInNumber is the WHATWG URL standard's "ends in a number" checker: a host whose last label is
// numeric is parsed as an IPv4 address (or rejected), never looked up as a name.
func endsInNumber(host string) bool {
	labels := strings.Split(host, ".")
	if labels[len(labels)-1] == "" {
		if len(labels) == 1 {
			return false
		}
		labels = labels[:len(labels)-1]
	}
	last := labels[len(labels)-1]
	if last != "" && strings.IndexFunc(last, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseIPv4 is the WHATWG URL standard's IPv4 parser (the inet_aton rules): one to four parts, each
// decimal, octal (leading 0) or hexadecimal (leading 0x), the last one filling the remaining bytes.
func parseIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(parts))
	for i, part := range parts {
		n, ok := parseIPv4Number(part)
		if !ok {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	ipv4 := last
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		ipv4 += n << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(ipv4 >> 24), byte(ipv4 >> 16), byte(ipv4 >> 8), byte(ipv4)}), true
}

// parseIPv4Number parses one part of an IPv4 address the WHATWG way.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" {
		return 0, true
	}
	// ParseUint would accept underscores and signs only with base 0; with an explicit base it takes
	// digits only. Numbers too big for 64 bits are out of range for IPv4 anyway.
	n, err := strconv.ParseUint(s, base, 64)
	return n, err == nil
}

// canonicalAddr unmaps IPv4-mapped IPv6 addresses and drops zones, so prefixes match as intended
// (netip.Prefix.Contains never matches a zoned or mapped address against an IPv4 prefix).
func canonicalAddr(ip netip.Addr) netip.Addr {
	return ip.Unmap().WithZone("")
}

// addrAllowed returns nil if ip may be connected to: it is in AllowedCIDRs or public.
func (p Policy) addrAllowed(ip netip.Addr) error {
	ip = canonicalAddr(ip)
	for _, prefix := range p.AllowedCIDRs {
		if normalizePrefix(prefix).Contains(ip) {
			return nil
		}
	}
	return denyList.SafeAddr(ip)
}

func (p Policy) portAllowed(port uint16) error {
	if p.AnyPort || port == 80 || port == 443 {
		return nil
	}
	return fmt.Errorf("%w: %d is not a permitted port (80, 443)", ssrf.ErrProhibitedPort, port)
}

func (p Policy) hostAllowed(host string) bool {
	host = normalizeName(host)
	for _, allowed := range p.AllowedHosts {
		if normalizeName(allowed) == host {
			return true
		}
	}
	return false
}

func refuse(address string, err error) error {
	return fmt.Errorf("webhook: %w: %s: %w", ErrDisallowedDestination, address, err)
}

// Control is a net.Dialer Control function. It runs after name resolution, on the address actually
// being connected to, and refuses (with an error wrapping ErrDisallowedDestination) unless the network
// is TCP, the port is 80 or 443 (or AnyPort is set) and the address is public or inside AllowedCIDRs.
// IPv4-mapped IPv6 addresses are unmapped first. It cannot know the host name, so AllowedHosts plays
// no part here; NewClient's dialer handles those.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return refuse(address, fmt.Errorf("%w: %s is not a permitted network type (tcp)", ssrf.ErrProhibitedNetwork, network))
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refuse(address, fmt.Errorf("%w: %w", ssrf.ErrInvalidHostPort, err))
	}
	if err := p.portAllowed(ap.Port()); err != nil {
		return refuse(address, err)
	}
	if err := p.addrAllowed(ap.Addr()); err != nil {
		return refuse(address, err)
	}
	return nil
}

// NewClient returns an *http.Client for deliveries. Each request (one attempt) is bounded by timeout
// overall and for the response headers (DefaultTimeout if timeout is not positive); connecting is
// bounded by 5s, the TLS handshake by 5s. Proxies from the environment are not used. Redirects are
// never followed: a 3xx response is the attempt's result. Idle connections are kept (4 per host, for
// 90s).
//
// The client resolves names itself and connects to the resulting addresses by number, so the address
// checked is the address used (no DNS rebinding between check and connect). For each address, in the
// resolver's order, the port must pass the port rule and the address must be public or inside
// AllowedCIDRs, unless the URL's host is one of AllowedHosts, in which case any address is allowed.
// Connections not exempted by AllowedHosts are also checked by Control on the socket, as a second
// guard. Refusals wrap ErrDisallowedDestination.
func (p Policy) NewClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// Copy the slices so a caller changing its Policy later cannot change this client.
	p.AllowedCIDRs = slices.Clone(p.AllowedCIDRs)
	p.AllowedHosts = slices.Clone(p.AllowedHosts)

	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           newDialer(p).DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// dialer resolves, checks and connects for NewClient's transport.
type dialer struct {
	policy  Policy
	lookup  func(ctx context.Context, network, host string) ([]netip.Addr, error) // net.Resolver.LookupNetIP
	guarded *net.Dialer                                                           // with Control, for hosts not in AllowedHosts
	trusted *net.Dialer                                                           // without, for hosts in AllowedHosts
}

func newDialer(p Policy) *dialer {
	lookup := p.LookupNetIP
	if lookup == nil {
		lookup = net.DefaultResolver.LookupNetIP
	}
	return &dialer{
		policy:  p,
		lookup:  lookup,
		guarded: &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second, Control: p.Control},
		trusted: &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second},
	}
}

// DialContext connects to addr ("host:port") on a TCP network.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ipNetwork := map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network]
	if ipNetwork == "" {
		return nil, refuse(addr, fmt.Errorf("%w: %s is not a permitted network type (tcp)", ssrf.ErrProhibitedNetwork, network))
	}
	host, portString, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, refuse(addr, fmt.Errorf("%w: %w", ssrf.ErrInvalidHostPort, err))
	}
	port64, err := strconv.ParseUint(portString, 10, 16)
	if err != nil {
		return nil, refuse(addr, fmt.Errorf("%w: port %q: %w", ssrf.ErrInvalidHostPort, portString, err))
	}
	port := uint16(port64)
	if err := d.policy.portAllowed(port); err != nil {
		return nil, refuse(addr, err)
	}

	// One budget for resolving and connecting; a connection, once made, outlives the context.
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()

	trusted := d.policy.hostAllowed(host)
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = d.lookup(ctx, ipNetwork, host)
		if err != nil {
			return nil, fmt.Errorf("webhook: resolve %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("webhook: resolve %s: %w", host, errNoAddresses)
		}
	}

	var errs []error
	for _, ip := range ips {
		ip = ip.Unmap()
		target := netip.AddrPortFrom(ip, port).String()
		netDialer := d.trusted
		if !trusted {
			if err := d.policy.addrAllowed(ip); err != nil {
				errs = append(errs, refuse(target, err))
				continue
			}
			netDialer = d.guarded
		}
		conn, err := netDialer.DialContext(ctx, network, target)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("webhook: connect to %s: %w", addr, joinedError(errs))
}

// joinedError is errors.Join on one line: the errors separated by "; ".
type joinedError []error

func (e joinedError) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e joinedError) Unwrap() []error { return e }
