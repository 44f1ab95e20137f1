// Package faultproxy is an HTTP proxy for tests. It sits on 127.0.0.1 in
// front of a real registry and injects the faults registries and the
// networks before them produce: 5xx answers, 429 with Retry-After,
// connections reset in the middle of a body, slow answers, corrupted
// bodies, and a registry that goes away. A Rule picks the fault of each
// request; Random draws from a seeded generator, so a run that sends the
// same requests in the same order gets the same faults.
//
// The proxy keeps the client's Host header when it forwards, so the
// upload URLs a registry hands out (Location headers) point back through
// the proxy.
package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kind is a kind of fault.
type Kind int

const (
	// Pass forwards the request and its answer unchanged.
	Pass Kind = iota
	// Status answers Fault.Status (503 by default) with a registry-style
	// JSON error, without forwarding.
	Status
	// RateLimit answers 429 Too Many Requests with Fault.RetryAfter as
	// the Retry-After header, without forwarding.
	RateLimit
	// ResetRequest forwards the first half of the request body, aborts
	// the upstream request (the registry sees a truncated upload) and
	// resets the client's connection. A request without a body is reset
	// before it is forwarded.
	ResetRequest
	// ResetResponse forwards the request, then sends the client the
	// status line, the headers and half of the body before resetting the
	// connection. The registry has done the work; the client never learns
	// it. An answer without a body is reset before anything is sent.
	ResetResponse
	// Delay waits Fault.Delay before forwarding, or until the client
	// gives up.
	Delay
	// Corrupt forwards the request and flips one byte in the middle of
	// the response body.
	Corrupt
	// Down is the registry going away: the proxy resets this connection,
	// closes every other one and stops listening, so later connections
	// are refused until Up.
	Down
	// Stall forwards the request and sends the status line, the headers
	// and half of the body, then nothing more: it holds the connection
	// for Fault.Delay, or until the client gives up, and resets it. A
	// transfer that hangs half-way.
	Stall
)

var kindNames = [...]string{"pass", "status", "rate-limit", "reset-request", "reset-response", "delay", "corrupt", "down", "stall"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Fault is what the proxy does to one request.
type Fault struct {
	Kind Kind
	// Status is the HTTP status of a Status fault; 0 means 503.
	Status int
	// RetryAfter is the Retry-After header of a RateLimit fault, as sent
	// ("1", "0", an HTTP date); empty sends none.
	RetryAfter string
	// Delay is how long a Delay fault waits before forwarding, and how
	// long a Stall fault holds the connection.
	Delay time.Duration
	// Echo makes a Status fault's error message quote the request's
	// headers, Authorization included, as careless gateways do: what a
	// client prints of an error must not leak them.
	Echo bool
}

func (f Fault) String() string {
	switch f.Kind {
	case Status:
		return fmt.Sprintf("status %d", f.status())
	case RateLimit:
		return "rate-limit retry-after=" + f.RetryAfter
	case Delay, Stall:
		return f.Kind.String() + " " + f.Delay.String()
	}
	return f.Kind.String()
}

func (f Fault) status() int {
	if f.Status == 0 {
		return http.StatusServiceUnavailable
	}
	return f.Status
}

// lockedRand is a seeded generator safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newRand(seed uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

func (l *lockedRand) float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

func (l *lockedRand) intn(n int) int {
	if n <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// Request is what a Rule sees of a request.
type Request struct {
	// N numbers the requests the proxy received, from 1, across Down and
	// Up.
	N      int
	Method string
	Path   string
	Header http.Header
}

func (r Request) String() string { return fmt.Sprintf("#%d %s %s", r.N, r.Method, r.Path) }

// Rule picks the fault of a request. Rules are called one at a time, in
// the order requests arrive; a rule must not call the Proxy's SetRule.
type Rule func(Request) Fault

// Random injects a fault in about rate of the requests, picked uniformly
// from faults, from a generator seeded with seed. It draws the same
// numbers for every request, faulted or not, so the faults depend only on
// the seed and the order of the requests.
func Random(seed uint64, rate float64, faults ...Fault) Rule {
	rng := newRand(seed)
	return func(Request) Fault {
		x, i := rng.float64(), rng.intn(len(faults))
		if len(faults) == 0 || x >= rate {
			return Fault{}
		}
		return faults[i]
	}
}

// At gives request n the fault f.
func At(n int, f Fault) Rule {
	return func(r Request) Fault {
		if r.N == n {
			return f
		}
		return Fault{}
	}
}

// From gives request n and every later one the fault f.
func From(n int, f Fault) Rule {
	return func(r Request) Fault {
		if r.N >= n {
			return f
		}
		return Fault{}
	}
}

// Match gives f to the first times requests for which match is true, or
// to all of them when times is negative.
func Match(match func(Request) bool, times int, f Fault) Rule {
	var hit int
	return func(r Request) Fault {
		if !match(r) || times >= 0 && hit >= times {
			return Fault{}
		}
		hit++
		return f
	}
}

// Chain applies the rules in order; the first fault other than Pass wins.
// Every rule sees every request, so counting rules stay in step.
func Chain(rules ...Rule) Rule {
	return func(r Request) Fault {
		var f Fault
		for _, rule := range rules {
			if g := rule(r); f.Kind == Pass {
				f = g
			}
		}
		return f
	}
}

// Entry is one request the proxy handled.
type Entry struct {
	Request
	Fault Fault
	// Status is the status the client received, 0 when it received none
	// (a reset, the registry gone, or the client gave up first).
	Status int
	// Time is when the request arrived.
	Time time.Time
}

func (e Entry) String() string {
	s := e.Request.String()
	if e.Fault.Kind != Pass {
		s += " [" + e.Fault.String() + "]"
	}
	return fmt.Sprintf("%s -> %d", s, e.Status)
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	upstream  string
	addr      string
	transport *http.Transport

	ruleMu sync.Mutex // serialises rules, so Random is repeatable
	rule   Rule
	n      int

	mu   sync.Mutex
	log  []Entry
	srv  *http.Server
	down bool
}

// Start starts a proxy to upstream ("host:port", plain HTTP) on
// 127.0.0.1, with rule (nil passes everything), and closes it when the
// test ends.
func Start(t testing.TB, upstream string, rule Rule) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting fault proxy: %v", err)
	}
	p := &Proxy{
		upstream: upstream,
		addr:     l.Addr().String(),
		transport: &http.Transport{
			DisableCompression:  true,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		rule: rule,
	}
	p.serve(l)
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) serve(l net.Listener) {
	p.srv = &http.Server{
		Handler: p,
		// Resets and closed listeners are the point: keep the log quiet.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func(srv *http.Server) { _ = srv.Serve(l) }(p.srv)
}

// Host returns the proxy's "127.0.0.1:<port>", which stays the same across
// Down and Up.
func (p *Proxy) Host() string { return p.addr }

// SetRule replaces the rule; nil passes everything. The request count
// goes on.
func (p *Proxy) SetRule(r Rule) {
	p.ruleMu.Lock()
	defer p.ruleMu.Unlock()
	p.rule = r
}

// Log returns the requests handled so far.
func (p *Proxy) Log() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Entry(nil), p.log...)
}

// TakeLog returns the requests handled since the last TakeLog and
// forgets them.
func (p *Proxy) TakeLog() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.log
	p.log = nil
	return l
}

// Requests returns the number of requests received so far.
func (p *Proxy) Requests() int {
	p.ruleMu.Lock()
	defer p.ruleMu.Unlock()
	return p.n
}

// IsDown says whether a Down fault has stopped the proxy.
func (p *Proxy) IsDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

// Up listens again, on the same address, after a Down fault. It does
// nothing when the proxy is up.
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.down {
		return nil
	}
	var l net.Listener
	var err error
	// The old listener's port may take a moment to be free again.
	for range 50 {
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("fault proxy listening again on %s: %w", p.addr, err)
	}
	p.serve(l)
	p.down = false
	return nil
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.mu.Lock()
	srv := p.srv
	p.down = true
	p.mu.Unlock()
	_ = srv.Close()
	p.transport.CloseIdleConnections()
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.ruleMu.Lock()
	p.n++
	req := Request{N: p.n, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
	var f Fault
	if p.rule != nil {
		f = p.rule(req)
	}
	p.mu.Lock()
	i := len(p.log)
	p.log = append(p.log, Entry{Request: req, Fault: f, Time: time.Now()})
	p.mu.Unlock()
	p.ruleMu.Unlock()

	// The status is recorded before the client can see the end of the
	// answer, so a client that reads the log next finds it.
	p.handle(w, r, f, func(status int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if i < len(p.log) && p.log[i].N == req.N {
			p.log[i].Status = status
		}
	})
}

// handle applies f to one request and calls rec with the status the
// client gets (0 for none) before it gets it.
func (p *Proxy) handle(w http.ResponseWriter, r *http.Request, f Fault, rec func(int)) {
	switch f.Kind {
	case Status:
		msg := "injected fault"
		if f.Echo {
			var b strings.Builder
			_ = r.Header.Write(&b)
			msg = "injected fault; request headers: " + strings.ReplaceAll(b.String(), "\r\n", "; ")
		}
		rec(f.status())
		writeError(w, f.status(), "UNAVAILABLE", msg)
		return
	case RateLimit:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		rec(http.StatusTooManyRequests)
		writeError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "injected rate limit")
		return
	case Delay:
		// Read the body first: only then does the server notice a client
		// that gives up, and cancel the request's context.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			rec(0)
			reset(w, nil)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			rec(0)
			return
		}
	case ResetRequest:
		if r.ContentLength > 0 {
			body := io.MultiReader(io.LimitReader(r.Body, r.ContentLength/2), errReader{errInjected})
			if resp, err := p.forward(r, body); err == nil {
				resp.Body.Close()
			}
		}
		rec(0)
		reset(w, nil)
		return
	case Down:
		rec(0)
		reset(w, nil)
		p.mu.Lock()
		if !p.down {
			p.down = true
			_ = p.srv.Close()
		}
		p.mu.Unlock()
		return
	}

	resp, err := p.forward(r, r.Body)
	if err != nil {
		if r.Context().Err() != nil {
			rec(0)
			return
		}
		rec(http.StatusBadGateway)
		writeError(w, http.StatusBadGateway, "UNKNOWN", "fault proxy: "+err.Error())
		return
	}
	defer resp.Body.Close()

	switch f.Kind {
	case ResetResponse, Corrupt, Stall:
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			rec(0)
			reset(w, nil)
			return
		}
		if f.Kind == Corrupt {
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			rec(resp.StatusCode)
			copyHeader(w.Header(), resp.Header)
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(body)
			return
		}
		if len(body) == 0 {
			rec(0)
			reset(w, nil)
			return
		}
		var head bytes.Buffer
		fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
		h := resp.Header.Clone()
		removeHopHeaders(h)
		h.Set("Content-Length", fmt.Sprint(len(body)))
		_ = h.Write(&head)
		head.WriteString("\r\n")
		head.Write(body[:len(body)/2])
		rec(resp.StatusCode)
		if f.Kind == Stall {
			stall(w, head.Bytes(), f.Delay)
		} else {
			reset(w, head.Bytes())
		}
		return
	}

	rec(resp.StatusCode)
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// forward sends r, with body, upstream and returns the answer.
func (p *Proxy) forward(r *http.Request, body io.Reader) (*http.Response, error) {
	if r.ContentLength == 0 {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.upstream+r.URL.RequestURI(), body)
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	removeHopHeaders(out.Header)
	out.Host = r.Host
	out.ContentLength = r.ContentLength
	return p.transport.RoundTrip(out)
}

var errInjected = errors.New("fault proxy: injected reset")

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// reset takes over the connection of w, writes prefix and resets the
// connection (RST, not FIN), as a crashing server or a middlebox does.
func reset(w http.ResponseWriter, prefix []byte) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("fault proxy: hijacking connection: %v", err))
	}
	if len(prefix) > 0 {
		_, _ = buf.Write(prefix)
		_ = buf.Flush()
		// Let the client read the partial answer before the reset
		// discards what it has not read yet.
		time.Sleep(20 * time.Millisecond)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// stall takes over the connection of w, writes prefix, then waits for
// the client to close the connection, or for d, and resets it.
func stall(w http.ResponseWriter, prefix []byte, d time.Duration) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("fault proxy: hijacking connection: %v", err))
	}
	_, _ = buf.Write(prefix)
	_ = buf.Flush()
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(gone)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-gone:
	case <-t.C:
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

// hopHeaders belong to one connection and are not forwarded.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	removeHopHeaders(dst)
}

var _ http.Handler = (*Proxy)(nil)
