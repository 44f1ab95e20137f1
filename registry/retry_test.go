package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{"99999999999", 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"soon", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryable(t *testing.T) {
	status := func(code int) error {
		return &errcode.ErrorResponse{Method: http.MethodGet, URL: &url.URL{}, StatusCode: code}
	}
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "http://r/v2/", Err: err} }
	opErr := func(errno syscall.Errno) error {
		return urlErr(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", errno)})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"500", status(500), true},
		{"502", status(502), true},
		{"503", status(503), true},
		{"429", status(429), true},
		{"408", status(408), true},
		{"501", status(501), false},
		{"400", status(400), false},
		{"401", status(401), false},
		{"404", status(404), false},
		{"classified 503", &statusError{"x: HTTP 503", status(503)}, true},
		{"reset", opErr(syscall.ECONNRESET), true},
		{"broken pipe", opErr(syscall.EPIPE), true},
		{"refused", opErr(syscall.ECONNREFUSED), false},
		{"closed before the answer", urlErr(io.EOF), true},
		{"body cut short", fmt.Errorf("reading layer: %w", io.ErrUnexpectedEOF), true},
		{"response header timeout", urlErr(&timeoutErr{}), true},
		{"cancelled", urlErr(context.Canceled), false},
		{"not found", errdef.ErrNotFound, false},
		{"digest mismatch", &cleanError{"layer: content digest is x", ErrDigestMismatch, nil}, false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "net/http: timeout awaiting response headers" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }

func TestBackoff(t *testing.T) {
	o := RetryOptions{MinWait: 100 * time.Millisecond, MaxWait: time.Second}.withDefaults()
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 20 {
			if got := o.backoff(n + 1); got < want*3/4 || got > want*5/4 {
				t.Fatalf("backoff(%d) = %v, want %v ±25%%", n+1, got, want)
			}
		}
	}
}

func TestRetryErrorMessages(t *testing.T) {
	cause := errors.New("layer sha256:1: HTTP 503 Service Unavailable from r.example")
	for _, tc := range []struct {
		err  *RetryError
		want string
	}{
		{&RetryError{Attempts: 5, Elapsed: 1234567 * time.Microsecond, Err: cause}, "gave up after 5 attempts in 1.235s: " + cause.Error()},
		{&RetryError{Attempts: 1, TimeLimit: time.Minute, Err: cause}, "gave up after 1 attempt: the 1m0s time limit is reached: " + cause.Error()},
		{&RetryError{Attempts: 2, TimeLimit: time.Minute, RetryAfter: time.Hour, Err: cause}, "gave up after 2 attempts: the registry asks to wait 1h0m0s (Retry-After), beyond the 1m0s time limit: " + cause.Error()},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
		if !errors.Is(tc.err, cause) || errors.Is(tc.err, context.DeadlineExceeded) != (tc.err.TimeLimit > 0) {
			t.Errorf("%q unwraps wrongly", tc.err)
		}
	}
}

func TestRedact(t *testing.T) {
	secrets := append(secretForms("alice", "pa55word"), "refresh-token-value")
	for _, tc := range []struct{ in, want string }{
		{"HTTP 500: headers: Authorization: Basic YWxpY2U6cGE1NXdvcmQ=; Accept: */*", "HTTP 500: headers: Authorization: Basic ***; Accept: */*"},
		{"echo: authorization: bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "echo: authorization: bearer ***"},
		{"the password pa55word was wrong", "the password *** was wrong"},
		{"token refresh-token-value refused", "token *** refused"},
		{"cut: YWxpY2U6cGE1NXdvcmQ", "cut: ***"},
		{"nothing secret here", "nothing secret here"},
	} {
		in := errors.New(tc.in)
		got := redact(in, secrets)
		if got.Error() != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !errors.Is(got, in) {
			t.Errorf("redact(%q) does not unwrap to the original", tc.in)
		}
	}
	if strings.Contains(redact(errors.New("x"), nil).Error(), "***") {
		t.Error("redacted a message with no secret in it")
	}
}
