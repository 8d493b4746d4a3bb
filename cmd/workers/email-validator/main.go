// Command email-validator is a Seek worker that checks an email address: its syntax and domain,
// disposable (throwaway) domains, role accounts such as admin@, typos of popular providers' domains
// and, unless told not to, whether the domain accepts mail (DNS MX records).
//
// Input: {"email": "ada@example.com", "check_mx": true}. "check_mx" defaults to true; other fields are
// ignored. An input that is not an object with an "email" string fails permanently with reason
// "InvalidInput". An address that is not valid is a result, not a failure:
//
//	{
//	  "email": "ada@example.com",
//	  "valid": true,
//	  "score": 1,
//	  "reason": "",
//	  "checks": {
//	    "syntax": true,
//	    "disposable": false,
//	    "role_account": false,
//	    "mx": true,
//	    "typo_suggestion": null
//	  }
//	}
//
// "email" is the address with its domain lowercased (the local part keeps its case). "reason" is empty
// for a valid address, else one of:
//
//   - invalid_syntax: not a bare RFC 5322 address (display names, angle brackets, comments and quoted
//     local parts are refused), a local part over 64 bytes or an address over 254 bytes;
//   - invalid_domain: not a host name of two or more labels with an alphabetic or "xn--" top-level
//     domain (IP address literals are refused);
//   - unsupported_idn: a domain with non-ASCII characters; send its punycode ("xn--") form;
//   - disposable: a domain, or a subdomain of one, in disposable_domains.txt;
//   - no_mx: the domain has neither MX nor address records, or does not exist;
//   - null_mx: the domain accepts no mail ("null MX", RFC 7505).
//
// "checks.mx" is null when it was not checked (check_mx false, or an earlier check failed) or DNS did
// not answer within 3 seconds; a domain without MX records accepts mail if it has an address (RFC 5321
// implicit MX). "checks.typo_suggestion" is the popular domain the domain is likely a typo of
// ("gmail.com" for "gmial.com"), else null. "score", from 0 to 1, is how likely the address reaches a
// person: 0 for invalid syntax or a domain without mail, 0.1 for a disposable domain, 0.5 for an
// unchecked IDN domain; for a valid address 1, times 0.8 for a role account, 0.5 for a typo
// suggestion, 0.9 when "mx" is null and 0.9 for a non-ASCII local part.
//
// DNS lookups use the system resolver (/etc/resolv.conf); names are looked up fully qualified, so
// Kubernetes search domains are not tried first.
package main

import (
	"net"

	"github.com/seek-api/seek-operator/pkg/worker"
)

func main() {
	worker.Run(newValidator(net.DefaultResolver, defaultLookupTimeout).handle)
}
