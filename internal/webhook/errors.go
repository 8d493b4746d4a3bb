package webhook

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"code.dny.dev/ssrf"
)

// FailureReason is why an attempt failed, from a small fixed set: fit for a metric label, and
// never carrying an address.
type FailureReason string

// Failure reasons of transport errors (DescribeTransportError).
const (
	// ReasonDestinationNotAllowed: the SSRF policy refused every address the host resolved to.
	ReasonDestinationNotAllowed FailureReason = "destination_not_allowed"
	// ReasonDNS: the host name could not be resolved.
	ReasonDNS FailureReason = "dns"
	// ReasonTimeout: connecting, or waiting for the answer, took too long.
	ReasonTimeout FailureReason = "timeout"
	// ReasonConnectionRefused: nothing listens at the destination.
	ReasonConnectionRefused FailureReason = "connection_refused"
	// ReasonTLS: the TLS handshake failed (certificate not trusted, not TLS, ...).
	ReasonTLS FailureReason = "tls"
	// ReasonConnection: any other network failure (reset, unreachable, closed without an answer).
	ReasonConnection FailureReason = "connection"
)

// DestinationNotAllowedMessage is what a tenant is told when the SSRF policy refused the addresses
// its callback host resolved to.
const DestinationNotAllowedMessage = "destination not allowed: the callback URL's host resolves to an address outside the allowed ranges"

// DescribeTransportError classifies an error returned by a client from Policy.NewClient (a
// transport error, not an HTTP status) and says what went wrong in words fit for the tenant whose
// callback it was: the message never contains an address. The addresses a name resolved to, the
// resolver's address and the policy's deny lists are the operator's business: errors from the
// dialer name them all, so callers log the full error and show tenants only this message.
func DescribeTransportError(err error) (FailureReason, string) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, ssrf.ErrProhibitedPort):
		return ReasonDestinationNotAllowed, "destination not allowed: the callback URL's port is not allowed"
	case errors.Is(err, ErrDisallowedDestination):
		return ReasonDestinationNotAllowed, DestinationNotAllowedMessage
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return ReasonDNS, "the callback URL's host could not be resolved: no such host"
		case dnsErr.IsTimeout:
			return ReasonDNS, "the callback URL's host could not be resolved: the lookup timed out"
		}
		return ReasonDNS, "the callback URL's host could not be resolved"
	case errors.Is(err, errNoAddresses):
		return ReasonDNS, "the callback URL's host could not be resolved: no addresses"
	case errors.As(err, &opErr) && opErr.Op == "dial" && opErr.Timeout():
		return ReasonTimeout, "timed out connecting to the receiver"
	case errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout, "timed out waiting for the receiver's answer"
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonConnectionRefused, "connection refused by the receiver"
	case errors.As(err, &certErr):
		return ReasonTLS, "TLS handshake failed: the receiver's certificate could not be verified"
	case errors.As(err, &recordErr) || errors.Is(err, http.ErrSchemeMismatch):
		return ReasonTLS, "TLS handshake failed: the receiver does not speak TLS"
	case errors.As(err, &opErr) && opErr.Op == "remote error": // a TLS alert from the receiver
		return ReasonTLS, "TLS handshake failed: the receiver answered with the alert " + opErr.Err.Error()
	case errors.Is(err, syscall.ECONNRESET):
		return ReasonConnection, "connection reset by the receiver"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonConnection, "the receiver closed the connection without answering"
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return ReasonConnection, "the receiver is unreachable"
	}
	return ReasonConnection, "the connection to the receiver failed"
}

// errNoAddresses is returned by the dialer when a name resolves to nothing.
var errNoAddresses = errors.New("no addresses")
