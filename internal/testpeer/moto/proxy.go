package moto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kind is a fault the Proxy can inject.
type Kind int

// Faults. The error replies are what CloudWatch Logs sends (awsJson1.1, __type and message).
const (
	Throttle           Kind = iota + 1 // 400 ThrottlingException, not forwarded
	ServerError                        // 500 InternalFailure, not forwarded
	Unavailable                        // 503 ServiceUnavailableException, not forwarded
	AccessDenied                       // 400 AccessDeniedException naming the action and resource ARN, not forwarded
	ExpiredToken                       // 400 ExpiredTokenException, not forwarded
	ResetBeforeForward                 // the connection is reset after the request is read; moto never sees it
	ResetAfterForward                  // moto handles the request, then the connection is reset: the response is lost
	Delay                              // forwarded after Fault.Delay
	Respond                            // not forwarded; answers Fault.Status with Fault.Body
)

func (k Kind) String() string {
	switch k {
	case Throttle:
		return "throttle"
	case ServerError:
		return "server_error"
	case Unavailable:
		return "unavailable"
	case AccessDenied:
		return "access_denied"
	case ExpiredToken:
		return "expired_token"
	case ResetBeforeForward:
		return "reset_before_forward"
	case ResetAfterForward:
		return "reset_after_forward"
	case Delay:
		return "delay"
	case Respond:
		return "respond"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Fault selects requests and says what happens to them. Faults are matched in the order they
// were injected; the first with matches left applies.
type Fault struct {
	Action string // e.g. "PutLogEvents", "CreateLogGroup"; "" = any action
	Group  string // only requests naming this log group; "" = any
	// Contains selects requests whose body contains this text (e.g. one event's message); "" = any.
	Contains string
	Kind     Kind
	Times    int           // matching requests it applies to: 0 = once, < 0 = until Clear
	Delay    time.Duration // for Delay
	Status   int           // for Respond
	Body     string        // for Respond
}

// Proxy is a reverse proxy in front of a Server that checks every request against the service's
// rules (Check), records each violation and fails the test at cleanup if there was any, injects
// faults, and counts requests per action.
type Proxy struct {
	URL string

	t        testing.TB
	upstream string
	srv      *httptest.Server
	client   *http.Client

	mu         sync.Mutex
	faults     []*fault
	violations []Violation
	counts     map[string]int
	faulted    map[string]int
	failed     map[string]int
	inflight   map[string]int
	maxFlight  map[string]int
	bodies     map[string][][]byte
	keys       map[string]bool
	forwarded  int // events in PutLogEvents requests that reached moto
}

type fault struct {
	Fault
	left int
}

// NewProxy starts a proxy to upstream (a Server's URL) on 127.0.0.1. At the end of the test it
// stops and, if any request broke a rule, fails the test listing the violations.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p := &Proxy{
		t: t, upstream: strings.TrimRight(upstream, "/"),
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		counts: map[string]int{}, faulted: map[string]int{}, failed: map[string]int{}, inflight: map[string]int{}, maxFlight: map[string]int{},
		bodies: map[string][][]byte{}, keys: map[string]bool{},
	}
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	t.Cleanup(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.client.CloseIdleConnections()
		if v := p.Violations(); len(v) > 0 {
			var b strings.Builder
			for i, x := range v {
				if i == 20 {
					fmt.Fprintf(&b, "\n  ... and %d more", len(v)-20)
					break
				}
				b.WriteString("\n  " + x.String())
			}
			t.Errorf("moto proxy: %d requests broke CloudWatch Logs rules:%s", len(v), b.String())
		}
	})
	return p
}

// Inject adds a fault.
func (p *Proxy) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	left := f.Times
	if left == 0 {
		left = 1
	}
	p.faults = append(p.faults, &fault{Fault: f, left: left})
}

// Clear removes every fault.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// Count returns how many requests for action arrived (faulted or not).
func (p *Proxy) Count(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[action]
}

// Faulted returns how many requests for action got a fault.
func (p *Proxy) Faulted(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faulted[action]
}

// Failed returns how many requests for action got no 2xx answer: faults, resets, and errors from
// moto itself (such as ResourceNotFoundException).
func (p *Proxy) Failed(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed[action]
}

// MaxConcurrent returns the most requests for action that were in the proxy at the same time.
func (p *Proxy) MaxConcurrent(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxFlight[action]
}

// Bodies returns the bodies of the requests for action, except PutLogEvents (too large to keep).
func (p *Proxy) Bodies(action string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.bodies[action]...)
}

// Forwarded returns how many events PutLogEvents requests carried to moto, duplicates included.
func (p *Proxy) Forwarded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forwarded
}

// AccessKeys returns the access key ids that signed requests (to check which credentials the
// code under test used, e.g. ones from STS AssumeRole).
func (p *Proxy) AccessKeys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.keys))
	for k := range p.keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Violations returns every rule broken so far.
func (p *Proxy) Violations() []Violation {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Violation(nil), p.violations...)
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	action := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(action, '.'); i >= 0 {
		action = action[i+1:]
	}
	var names struct {
		Group  string     `json:"logGroupName"`
		Stream string     `json:"logStreamName"`
		Events []struct{} `json:"logEvents"`
	}
	_ = json.Unmarshal(body, &names)

	var vs []Violation
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/aws4_request") {
		vs = append(vs, Violation{Action: action, Group: names.Group, Stream: names.Stream, Rule: RuleUnsigned, Detail: "no SigV4 signature"})
	}
	keyID := ""
	if i := strings.Index(auth, "Credential="); i >= 0 {
		keyID, _, _ = strings.Cut(auth[i+len("Credential="):], "/")
	}
	vs = append(vs, Check(action, body)...)

	p.mu.Lock()
	p.violations = append(p.violations, vs...)
	p.counts[action]++
	if keyID != "" {
		p.keys[keyID] = true
	}
	p.inflight[action]++
	p.maxFlight[action] = max(p.maxFlight[action], p.inflight[action])
	if action != "PutLogEvents" {
		p.bodies[action] = append(p.bodies[action], body)
	}
	var f *Fault
	for _, x := range p.faults {
		if x.left != 0 && (x.Action == "" || x.Action == action) && (x.Group == "" || x.Group == names.Group) &&
			(x.Contains == "" || bytes.Contains(body, []byte(x.Contains))) {
			if x.left > 0 {
				x.left--
			}
			f = &x.Fault
			p.faulted[action]++
			break
		}
	}
	p.mu.Unlock()
	rec := &statusWriter{ResponseWriter: w}
	w = rec
	defer func() {
		p.mu.Lock()
		p.inflight[action]--
		if rec.status < 200 || rec.status > 299 {
			p.failed[action]++
		}
		p.mu.Unlock()
	}()

	kind := Kind(0)
	if f != nil {
		kind = f.Kind
	}
	switch kind {
	case Throttle:
		writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	case ServerError:
		writeError(w, http.StatusInternalServerError, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure.")
		return
	case Unavailable:
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "The service cannot complete the request.")
		return
	case AccessDenied:
		res := "arn:aws:logs:" + Region + ":" + AccountID + ":log-group:" + names.Group
		if action == "PutLogEvents" {
			res += ":log-stream:" + names.Stream
		} else {
			res += ":*"
		}
		writeError(w, http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf(
			"User: arn:aws:sts::%s:assumed-role/fluent-bit/test is not authorized to perform: logs:%s on resource: %s because no identity-based policy allows the logs:%s action",
			AccountID, action, res, action))
		return
	case ExpiredToken:
		writeError(w, http.StatusBadRequest, "ExpiredTokenException", "The security token included in the request is expired")
		return
	case ResetBeforeForward:
		reset(w)
		return
	case Respond:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(f.Status)
		io.WriteString(w, f.Body)
		return
	case Delay:
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}

	status, header, respBody, err := p.forward(r, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, "ProxyError", err.Error())
		return
	}
	if action == "PutLogEvents" && status == http.StatusOK {
		p.mu.Lock()
		p.forwarded += len(names.Events)
		p.mu.Unlock()
	}
	if kind == ResetAfterForward {
		reset(w)
		return
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	w.Write(respBody)
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"}

func (p *Proxy) forward(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.Host = r.Host
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	h := resp.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	return resp.StatusCode, h, b, nil
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "00000000-0000-0000-0000-000000000000")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// statusWriter remembers the status sent; 0 means none (the connection was reset).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack lets reset take the connection over.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

// reset closes the client's connection with a TCP RST, without a response.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("moto proxy: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}
