package registry

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/galley-dev/galley/bundles"
)

// Sentinel errors, for errors.Is. The messages of the errors that wrap them
// say what and where in one line.
var (
	// ErrInvalidReference: a reference is not oci://host/repo[:tag|@digest].
	ErrInvalidReference = errors.New("invalid reference")
	// ErrInvalidTag: a tag is not one galley pushes (see ValidateTag).
	ErrInvalidTag = errors.New("invalid tag")
	// ErrUnreachable: no connection to the registry (refused, DNS, TLS,
	// timeout).
	ErrUnreachable = errors.New("registry unreachable")
	// ErrUnauthorized: HTTP 401, no credentials or wrong ones.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied: HTTP 403, the credentials do not grant the operation.
	ErrDenied = errors.New("denied")
	// ErrRepositoryNotFound: the repository does not exist.
	ErrRepositoryNotFound = errors.New("repository not found")
	// ErrNotFound: a tag, manifest or blob is not in the repository.
	ErrNotFound = errors.New("not found")
	// ErrNotSigned: the manifest has no cosign signature tag.
	ErrNotSigned = errors.New("not signed")
	// ErrDigestMismatch: a blob or manifest does not match its digest or
	// size; the error also unwraps to a *bundles.DigestMismatchError when
	// the bytes were read.
	ErrDigestMismatch = bundles.ErrDigestMismatch
	// ErrTooLarge: the registry describes a blob bigger than galley reads.
	ErrTooLarge = errors.New("too large")
)

// Error is a failed registry operation on one reference.
type Error struct {
	Op  string // "push", "pull", "resolve", "list", "sign", "verify", ...
	Ref string // host/repo[:tag|@digest]; never credentials
	Err error
}

func (e *Error) Error() string { return e.Op + " " + e.Ref + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// cleanError carries a one-line message while keeping the sentinel and the
// original error (e.g. *errcode.ErrorResponse) reachable for errors.Is/As.
type cleanError struct {
	msg   string
	kind  error
	cause error
}

func (e *cleanError) Error() string   { return e.msg }
func (e *cleanError) Unwrap() []error { return []error{e.kind, e.cause} }

// classify turns a transport or registry error into a one-line error that
// wraps a sentinel. what names the object being fetched or written
// ("tag 1.4.0", "blob sha256:..."), for 404s. Errors it does not recognise
// pass through unchanged.
func (c *Client) classify(err error, ref Reference, what string) error {
	if err == nil || isClassified(err) {
		return err
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		return c.classifyStatus(err, resp.StatusCode, codes(resp), ref, what)
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) || strings.Contains(err.Error(), "missing username or password for bearer auth") {
		return &cleanError{fmt.Sprintf("unauthorized: %s wants credentials for %s; log in (docker login) or give a username and password", ref.Registry, ref.Repo()), ErrUnauthorized, err}
	}
	if errors.Is(err, errdef.ErrNotFound) {
		// oras reports a 404 on HEAD or GET of a manifest or blob this way,
		// without the body: the caller refines it with repoExists.
		return &cleanError{fmt.Sprintf("%s not found in %s", what, ref.Repo()), ErrNotFound, err}
	}
	if msg, ok := unreachable(err, ref.Registry); ok {
		return &cleanError{msg, ErrUnreachable, err}
	}
	return err
}

// isClassified says whether err has been through classify already: a
// second pass would drop what the first one added.
func isClassified(err error) bool {
	var (
		clean  *cleanError
		status *statusError
		re     *RetryError
	)
	return errors.As(err, &clean) || errors.As(err, &status) || errors.As(err, &re)
}

func (c *Client) classifyStatus(err error, status int, codes []string, ref Reference, what string) error {
	switch status {
	case http.StatusUnauthorized:
		if c.sentCredentials.Load() {
			return &cleanError{fmt.Sprintf("unauthorized: %s rejected the credentials for %s (HTTP 401)", ref.Registry, ref.Repo()), ErrUnauthorized, err}
		}
		return &cleanError{fmt.Sprintf("unauthorized: %s wants credentials for %s (HTTP 401); log in (docker login) or give a username and password", ref.Registry, ref.Repo()), ErrUnauthorized, err}
	case http.StatusForbidden:
		return &cleanError{fmt.Sprintf("denied: no permission on %s (HTTP 403)", ref.Repo()), ErrDenied, err}
	case http.StatusNotFound:
		for _, code := range codes {
			if code == errcode.ErrorCodeNameUnknown {
				return &cleanError{fmt.Sprintf("repository %s not found", ref.Repo()), ErrRepositoryNotFound, err}
			}
		}
		return &cleanError{fmt.Sprintf("%s not found in %s", what, ref.Repo()), ErrNotFound, err}
	case http.StatusTooManyRequests:
		return &cleanError{fmt.Sprintf("%s is rate limiting requests (HTTP 429); try again later", ref.Registry), nil, err}
	}
	if len(codes) > 0 {
		var resp *errcode.ErrorResponse
		errors.As(err, &resp)
		return &statusError{fmt.Sprintf("%s: HTTP %d: %s", what, status, resp.Errors.Error()), err}
	}
	return &statusError{fmt.Sprintf("%s: HTTP %d %s from %s", what, status, http.StatusText(status), ref.Registry), err}
}

// statusError is an HTTP answer classify has no sentinel for. It keeps
// the original error reachable, so the status decides whether to retry.
type statusError struct {
	msg   string
	cause error
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.cause }

func codes(resp *errcode.ErrorResponse) []string {
	var cs []string
	for _, e := range resp.Errors {
		cs = append(cs, e.Code)
	}
	return cs
}

// unreachable recognises a failure to talk to the registry at all, and says
// why in a few words.
func unreachable(err error, host string) (string, bool) {
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		unkCA   x509.UnknownAuthorityError
		hostErr x509.HostnameError
		recErr  tls.RecordHeaderError
		urlErr  *url.Error
	)
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("registry %s unreachable: no such host", host), true
	case errors.As(err, &certErr), errors.As(err, &unkCA), errors.As(err, &hostErr):
		return fmt.Sprintf("registry %s unreachable: its TLS certificate is not trusted", host), true
	case errors.As(err, &recErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("registry %s unreachable: it speaks plain HTTP, not HTTPS; allow that explicitly (--plain-http) only on a network you trust", host), true
	case errors.As(err, &opErr):
		why := opErr.Err.Error()
		var sysErr interface{ Unwrap() error }
		if errors.As(opErr.Err, &sysErr) && sysErr.Unwrap() != nil {
			why = sysErr.Unwrap().Error()
		}
		return fmt.Sprintf("registry %s unreachable: %s", host, why), true
	case errors.As(err, &urlErr) && urlErr.Timeout():
		return fmt.Sprintf("registry %s unreachable: timed out", host), true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &urlErr) && errors.Is(urlErr.Err, io.EOF):
		return fmt.Sprintf("registry %s unreachable: it dropped the connection", host), true
	}
	return "", false
}

// redacted is an error whose message had secrets removed; it is the last
// guard, for registries and gateways that echo what they were sent.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// authValue matches the value of an Authorization header quoted in a
// message, whoever's credentials it carries.
var authValue = regexp.MustCompile(`(?i)\b(basic|bearer)(\s+)[A-Za-z0-9._~+/=-]{6,}`)

// redact replaces every occurrence of the secrets, and of anything shaped
// like an Authorization header value, in err's message by "***".
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := msg
	for _, s := range secrets {
		if s != "" {
			out = strings.ReplaceAll(out, s, "***")
		}
	}
	out = authValue.ReplaceAllString(out, "$1$2***")
	if out == msg {
		return err
	}
	return &redacted{out, err}
}

// secretForms returns what a credential may look like on the wire: the
// password or token itself and the base64 of user:password (a Basic
// Authorization header), longest first.
func secretForms(user, pass string) []string {
	if pass == "" {
		return nil
	}
	userpass := user + ":" + pass
	return []string{
		base64.StdEncoding.EncodeToString([]byte(userpass)),
		// Unpadded, it is also a prefix of the padded form cut short.
		base64.RawStdEncoding.EncodeToString([]byte(userpass)),
		base64.RawURLEncoding.EncodeToString([]byte(userpass)),
		pass,
	}
}
