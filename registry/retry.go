package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"oras.land/oras-go/v2/registry/remote/errcode"
)

// RetryOptions say how a Client retries what failed for a reason that may
// pass: HTTP 5xx, 429 and 408 answers, connections reset or dropped
// mid-transfer, and timeouts. Other failures are final at once: 401, 403,
// 404, a digest mismatch, a refused connection (nothing listens: retrying
// would only delay the error), an untrusted certificate.
//
// Retries happen per step (checking a blob, uploading it, pushing the
// manifest, one tag...), never per HTTP request, so an upload cut
// half-way starts again with a new upload session.
type RetryOptions struct {
	// MaxTime bounds a whole operation (one Push, Pull, ListVersions,
	// Verify...), transfers, retries and waits included. Zero or less
	// means DefaultRetryOptions.MaxTime.
	MaxTime time.Duration
	// MaxAttempts bounds the tries of one step. Zero or less means
	// DefaultRetryOptions.MaxAttempts; 1 turns retrying off.
	MaxAttempts int
	// MinWait and MaxWait bound the wait before a retry, which starts at
	// MinWait and doubles, with ±25% jitter. A Retry-After header on a 429
	// or 503 answer is honoured even beyond MaxWait; when it would pass
	// MaxTime the operation fails at once instead. Zero or less means the
	// defaults.
	MinWait, MaxWait time.Duration
	// ResponseTimeout bounds the wait for the headers of an answer once a
	// request is sent, so a registry that stops answering is given up on
	// and the step retried. It applies to the default HTTP client only
	// (Options.HTTPClient nil). Zero or less means the default.
	ResponseTimeout time.Duration
}

// DefaultRetryOptions are the values a zero RetryOptions field takes.
var DefaultRetryOptions = RetryOptions{
	MaxTime:         2 * time.Minute,
	MaxAttempts:     5,
	MinWait:         250 * time.Millisecond,
	MaxWait:         10 * time.Second,
	ResponseTimeout: 30 * time.Second,
}

func (o RetryOptions) withDefaults() RetryOptions {
	d := DefaultRetryOptions
	if o.MaxTime <= 0 {
		o.MaxTime = d.MaxTime
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.MinWait <= 0 {
		o.MinWait = d.MinWait
	}
	if o.MaxWait <= 0 {
		o.MaxWait = max(d.MaxWait, o.MinWait)
	}
	if o.ResponseTimeout <= 0 {
		o.ResponseTimeout = d.ResponseTimeout
	}
	return o
}

// backoff is the wait before try n+1 after n failed tries.
func (o RetryOptions) backoff(n int) time.Duration {
	w := o.MinWait
	for i := 1; i < n && w < o.MaxWait; i++ {
		w *= 2
	}
	w = min(w, o.MaxWait)
	return time.Duration(float64(w) * (0.75 + rand.Float64()/2))
}

// RetryError is a step that failed for a reason that may pass every time
// it was tried, or until the operation's time limit. Its message is one
// line: what gave up, after how much, and the last cause; it unwraps to
// the last cause (and to context.DeadlineExceeded when the time limit
// ended it).
type RetryError struct {
	Attempts int
	Elapsed  time.Duration // from the first try of the step
	// TimeLimit is RetryOptions.MaxTime when it ended the retries, else 0.
	TimeLimit time.Duration
	// RetryAfter is the wait the registry asked for (Retry-After) when it
	// went beyond the time limit, else 0.
	RetryAfter time.Duration
	Err        error // the last failure
}

func (e *RetryError) Error() string {
	tries := "1 attempt"
	if e.Attempts != 1 {
		tries = fmt.Sprintf("%d attempts", e.Attempts)
	}
	switch {
	case e.RetryAfter > 0:
		return fmt.Sprintf("gave up after %s: the registry asks to wait %s (Retry-After), beyond the %s time limit: %v", tries, e.RetryAfter, e.TimeLimit, e.Err)
	case e.TimeLimit > 0:
		return fmt.Sprintf("gave up after %s: the %s time limit is reached: %v", tries, e.TimeLimit, e.Err)
	}
	return fmt.Sprintf("gave up after %s in %s: %v", tries, e.Elapsed.Round(time.Millisecond), e.Err)
}

func (e *RetryError) Unwrap() []error {
	if e.TimeLimit > 0 {
		return []error{e.Err, context.DeadlineExceeded}
	}
	return []error{e.Err}
}

// errTimeLimit is the cause of an operation's context ending at
// RetryOptions.MaxTime, to tell it from the caller's own cancellation.
// net/http reports the cause; as a timeout, classify calls it one.
var errTimeLimit error = timeLimitError{}

type timeLimitError struct{}

func (timeLimitError) Error() string        { return "time limit reached" }
func (timeLimitError) Timeout() bool        { return true }
func (timeLimitError) Is(target error) bool { return target == context.DeadlineExceeded }

// begin bounds an operation by RetryOptions.MaxTime.
func (c *Client) begin(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.retryOpts.MaxTime, errTimeLimit)
}

// retry runs one step of an operation until it succeeds, fails for a
// reason that will not pass (returned as it is), has failed MaxAttempts
// times, or a retry would pass the operation's time limit (both a
// *RetryError). fn returns classified errors. When ctx is cancelled by
// the caller, fn's error is returned as it is.
func (c *Client) retry(ctx context.Context, fn func(context.Context) error) error {
	o := c.retryOpts
	start := time.Now()
	var last error
	for n := 1; ; n++ {
		hint := &retryHint{}
		err := fn(context.WithValue(ctx, retryHintKey{}, hint))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return c.stopped(ctx, n, start, err, last)
		}
		if !retryable(err) {
			return err
		}
		last = err
		if n >= o.MaxAttempts {
			return &RetryError{Attempts: n, Elapsed: time.Since(start), Err: err}
		}
		wait := o.backoff(n)
		asked, ok := hint.get()
		if ok && asked > wait {
			wait = asked
		}
		if dl, has := ctx.Deadline(); has && time.Now().Add(wait).After(dl) {
			re := &RetryError{Attempts: n, Elapsed: time.Since(start), TimeLimit: o.MaxTime, Err: err}
			if ok && asked == wait {
				re.RetryAfter = asked
			}
			return re
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return c.stopped(ctx, n, start, err, last)
		case <-t.C:
		}
	}
}

// stopped is the error of a step whose context ended after n tries: the
// caller's cancellation as it is, or the time limit with the last real
// cause.
func (c *Client) stopped(ctx context.Context, n int, start time.Time, err, last error) error {
	if !errors.Is(context.Cause(ctx), errTimeLimit) {
		return err
	}
	if last != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		err = last
	}
	return &RetryError{Attempts: n, Elapsed: time.Since(start), TimeLimit: c.retryOpts.MaxTime, Err: err}
}

// retryable says whether err may pass if the step is tried again.
func retryable(err error) bool {
	// Not context.DeadlineExceeded: net/http's response header timeout
	// matches it too. The caller's context is checked before this.
	if errors.Is(err, context.Canceled) {
		return false
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch s := resp.StatusCode; {
		case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
			return true
		case s == http.StatusNotImplemented, s == http.StatusHTTPVersionNotSupported:
			return false
		default:
			return s >= 500
		}
	}
	for _, e := range []error{syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT, io.ErrUnexpectedEOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && errors.Is(urlErr.Err, io.EOF) {
		// The connection closed before an answer.
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// retryHint carries what the answers of one try said about waiting.
type retryHint struct {
	mu         sync.Mutex
	retryAfter time.Duration
	set        bool
}

type retryHintKey struct{}

func (h *retryHint) get() (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.retryAfter, h.set
}

// hintTransport records the Retry-After of 429 and 503 answers in the
// request's retryHint: oras's errors keep the status but not the headers.
type hintTransport struct{ base http.RoundTripper }

func (t *hintTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return resp, err
	}
	if h, ok := req.Context().Value(retryHintKey{}).(*retryHint); ok {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			h.mu.Lock()
			h.retryAfter, h.set = d, true
			h.mu.Unlock()
		}
	}
	return resp, err
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		// Beyond a day is as good as forever; it also keeps the
		// multiplication from overflowing.
		return time.Duration(min(s, 86400)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// httpClient is the client requests go through: hc (or a default one with
// the response timeout) with a transport that records Retry-After.
func httpClient(hc *http.Client, o RetryOptions) *http.Client {
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = o.ResponseTimeout
		return &http.Client{Transport: &hintTransport{tr}}
	}
	c := *hc
	c.Transport = &hintTransport{hc.Transport}
	return &c
}
