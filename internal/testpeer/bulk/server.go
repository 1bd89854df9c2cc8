// Package bulk is the project's OpenSearch `_bulk` test endpoint: an HTTP server on 127.0.0.1
// that answers _bulk requests with OpenSearch's documented semantics (per-item status,
// `errors`, 409 on a duplicate `create`, 429 rejected_execution_exception, 400
// mapper_parsing_exception, 403 security_exception, 413 on oversized bodies, gzip bodies,
// filter_path), stores what it accepted per index and _id, and injects faults on demand.
//
// It also checks every request independently of the plugin, so it catches the plugin's
// mistakes instead of sharing them: its own index-name validator, NDJSON framing (action line
// plus source line, trailing newline), strict JSON with duplicate-key detection, SigV4
// recomputed from the raw request over the exact received bytes, basic auth, and a log of
// every request that is not a _bulk call. It must never import the plugin's packages.
package bulk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is an open, plain-HTTP endpoint that creates
// every index on first write.
type Options struct {
	// Basic requires HTTP basic auth with these credentials (fine-grained access control's
	// internal users). Wrong or missing credentials get 401.
	Basic *BasicAuth
	// SigV4 requires every request to be signed with these credentials; a bad signature gets
	// 403 and is recorded in AuthFailures.
	SigV4 *SigV4Credentials
	// PathPrefix serves _bulk under this prefix (a reverse proxy in front of OpenSearch), e.g.
	// "/opensearch"; requests outside it are logged as non-_bulk.
	PathPrefix string
	// TLS serves HTTPS with a fresh self-signed certificate for 127.0.0.1 (see CertPEM).
	TLS bool
	// MaxBodyBytes answers 413 to bodies longer than this after decompression; 0 means
	// 100 MiB, OpenSearch's default http.max_content_length.
	MaxBodyBytes int
	// AutoCreateIndex decides whether a write to a missing index creates it; a false answer
	// gives the item 404 index_not_found_exception. nil creates every index.
	AutoCreateIndex func(index string) bool
	// DiscardSources keeps only the _ids of accepted documents (benchmarks).
	DiscardSources bool
	// Seed makes the per-item 429 choices reproducible.
	Seed uint64
	// Principal is the user named in security_exception reasons; default
	// "arn:aws:iam::123456789012:role/fluent-bit" with SigV4, the basic-auth user otherwise.
	Principal string
	// Now is the clock for SigV4 date checks; nil is time.Now.
	Now func() time.Time
}

// BasicAuth is an internal user of OpenSearch Security.
type BasicAuth struct{ User, Password string }

// Stats counts what the endpoint saw. Items counts every action line; the other item counters
// split them by outcome.
type Stats struct {
	Requests        int   // every HTTP request
	BulkRequests    int   // requests that reached the _bulk handler (after auth)
	NonBulk         int   // requests that were not _bulk calls
	GzipRequests    int   // _bulk requests with Content-Encoding: gzip
	SignedRequests  int   // requests whose SigV4 signature verified
	AuthFailures    int   // 401 (basic) and 403 (SigV4) answers for bad credentials
	InjectedFaults  int   // whole-request statuses answered by FailRequests
	TooLarge        int   // 413 answers
	Items           int   // action lines seen
	Created         int   // documents stored for the first time
	Updated         int   // index actions on an existing _id (an overwrite: a resend without _id dedup)
	Duplicates      int   // create actions on an existing _id (answered 409)
	Rejected429     int   // items answered 429 by the injected ratio
	RejectedMapper  int   // items answered 400 mapper_parsing_exception (predicate, bad JSON)
	RejectedMissing int   // items answered 404 (index not auto-created)
	RejectedOther   int   // items answered by ItemFault or invalid names
	MaxConcurrent   int   // most _bulk requests handled at the same time
	BodyBytes       int64 // _bulk bytes after decompression
	WireBytes       int64 // _bulk bytes as received
}

// Request is a logged non-_bulk request.
type Request struct {
	Method string
	Path   string // with the query
}

// Item is one action of a _bulk request, as ItemFault sees it.
type Item struct {
	Action string // create, index, delete, update
	Index  string
	ID     string // "" when the action has none
	Source []byte // the source line (nil for delete)
}

// Server is a running _bulk endpoint. All methods are safe for concurrent use.
type Server struct {
	opts    Options
	tlsCfg  *tls.Config
	certPEM []byte
	addr    string

	mu         sync.Mutex
	srv        *http.Server
	indices    map[string]*index
	stats      Stats
	violations []string
	nonBulk    []Request
	authFails  []string
	rng        *rand.Rand
	nextID     uint64
	inflight   int

	// faults
	item429     float64
	failStatus  int
	failLeft    int // <0: every request
	mapperField string
	mapperMatch func(index string, source []byte) bool
	itemFault   func(Item) (status int, errType, reason string)
	delay       time.Duration
	maxBody     int
}

type index struct {
	docs map[string]doc
	seq  int64
}

type doc struct {
	src     []byte
	version int
}

// Start listens on 127.0.0.1 on a free port and serves until Close.
func Start(opts Options) (*Server, error) {
	s := &Server{opts: opts, indices: map[string]*index{}}
	s.rng = rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	s.maxBody = opts.MaxBodyBytes
	if s.maxBody <= 0 {
		s.maxBody = 100 << 20
	}
	if opts.TLS {
		cfg, pemBytes, err := selfSigned()
		if err != nil {
			return nil, err
		}
		s.tlsCfg, s.certPEM = cfg, pemBytes
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	if s.tlsCfg != nil {
		ln = tls.NewListener(ln, s.tlsCfg)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nilLogger()}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
}

// URL is the endpoint's base URL including PathPrefix, e.g. http://127.0.0.1:34567/opensearch.
func (s *Server) URL() string {
	scheme := "http"
	if s.tlsCfg != nil {
		scheme = "https"
	}
	return scheme + "://" + s.addr + s.opts.PathPrefix
}

// Addr is the listening host:port.
func (s *Server) Addr() string { return s.addr }

// CertPEM is the self-signed certificate of a TLS endpoint, to write into a CA file.
func (s *Server) CertPEM() []byte { return s.certPEM }

// Close stops the endpoint and drops its connections.
func (s *Server) Close() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Stop takes the endpoint down (listener and connections closed, stored data kept) to
// simulate an outage; Restart brings it back on the same address.
func (s *Server) Stop() { s.Close() }

// Restart listens again on the address of the first Start.
func (s *Server) Restart() error {
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return errors.New("bulk: server is running")
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after Close
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s.serve(ln)
	return nil
}

// SetItem429Ratio answers this fraction of items 429 rejected_execution_exception (0 turns
// it off). Rejected items are not stored.
func (s *Server) SetItem429Ratio(r float64) { s.mu.Lock(); s.item429 = r; s.mu.Unlock() }

// FailRequests answers the next n requests (every request when n < 0; none when n == 0) with
// status and OpenSearch's error body for it: 403 is the security_exception of a missing
// role mapping, 429 rejected_execution_exception, 5xx an unavailable cluster, 413 the AWS
// size message.
func (s *Server) FailRequests(status, n int) {
	s.mu.Lock()
	s.failStatus, s.failLeft = status, n
	if n == 0 {
		s.failStatus = 0
	}
	s.mu.Unlock()
}

// RejectDocuments answers 400 mapper_parsing_exception (failed to parse field [field]) for
// every document for which match returns true; nil turns it off.
func (s *Server) RejectDocuments(field string, match func(index string, source []byte) bool) {
	s.mu.Lock()
	s.mapperField, s.mapperMatch = field, match
	s.mu.Unlock()
}

// SetItemFault installs a per-item hook run after the 429 ratio: a non-zero status answers
// the item with it and the given error type and reason (nothing is stored).
func (s *Server) SetItemFault(f func(Item) (status int, errType, reason string)) {
	s.mu.Lock()
	s.itemFault = f
	s.mu.Unlock()
}

// SetDelay holds every response this long (timeouts).
func (s *Server) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// SetMaxBodyBytes changes the 413 threshold (bytes after decompression).
func (s *Server) SetMaxBodyBytes(n int) { s.mu.Lock(); s.maxBody = n; s.mu.Unlock() }

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats { s.mu.Lock(); defer s.mu.Unlock(); return s.stats }

// Violations lists the protocol mistakes a client made: framing, invalid index names,
// invalid or duplicate-key JSON, missing Content-Type, unknown metadata, non-_bulk requests.
// A correct plugin leaves it empty.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// AuthFailures lists why requests failed authentication (wrong password, SigV4 mismatch with
// the canonical request the endpoint computed).
func (s *Server) AuthFailures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.authFails...)
}

// NonBulkRequests is the log of every request that was not a _bulk call.
func (s *Server) NonBulkRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.nonBulk...)
}

// Count is the number of stored documents over all indices.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ix := range s.indices {
		n += len(ix.docs)
	}
	return n
}

// Indices maps each index to its number of documents.
func (s *Server) Indices() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.indices))
	for name, ix := range s.indices {
		out[name] = len(ix.docs)
	}
	return out
}

// IDs returns the sorted _ids stored in index.
func (s *Server) IDs(index string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[index]
	if ix == nil {
		return nil
	}
	out := make([]string, 0, len(ix.docs))
	for id := range ix.docs {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Doc returns the stored source of index/_id (nil with DiscardSources).
func (s *Server) Doc(index, id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[index]
	if ix == nil {
		return nil, false
	}
	d, ok := ix.docs[id]
	return d.src, ok
}

// Each calls fn for every stored document, in no particular order, under the endpoint's lock:
// fn must not call the Server.
func (s *Server) Each(fn func(index, id string, source []byte)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, ix := range s.indices {
		for id, d := range ix.docs {
			fn(name, id, d.src)
		}
	}
}

// Reset forgets stored documents, counters, logs and faults.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.indices = map[string]*index{}
	s.stats = Stats{}
	s.violations, s.nonBulk, s.authFails = nil, nil, nil
	s.item429, s.failStatus, s.failLeft = 0, 0, 0
	s.mapperField, s.mapperMatch, s.itemFault, s.delay = "", nil, nil, 0
	s.maxBody = s.opts.MaxBodyBytes
	if s.maxBody <= 0 {
		s.maxBody = 100 << 20
	}
}

func (s *Server) violate(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

func (s *Server) principal() string {
	switch {
	case s.opts.Principal != "":
		return s.opts.Principal
	case s.opts.Basic != nil:
		return s.opts.Basic.User
	default:
		return "arn:aws:iam::123456789012:role/fluent-bit"
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the whole body first so every answer leaves the connection reusable, as a real
	// node behind a load balancer does. The cap protects the test process.
	raw, err := io.ReadAll(io.LimitReader(r.Body, int64(s.maxBodyCap())+1))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()

	bulkIndex, isBulk := s.route(r)
	if !isBulk {
		s.mu.Lock()
		s.stats.NonBulk++
		s.nonBulk = append(s.nonBulk, Request{Method: r.Method, Path: r.URL.RequestURI()})
		s.violate("non-_bulk request: %s %s", r.Method, r.URL.RequestURI())
		s.mu.Unlock()
		if r.Method == http.MethodGet && r.URL.Path == s.opts.PathPrefix+"/" {
			writeJSON(w, http.StatusOK, []byte(`{"name":"bulk-test-peer","cluster_name":"test","cluster_uuid":"test","version":{"distribution":"opensearch","number":"2.19.0"},"tagline":"The OpenSearch Project: https://opensearch.org/"}`))
			return
		}
		writeJSON(w, http.StatusBadRequest, appendJSON(nil, obj{{"error", fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.RequestURI(), r.Method)}, {"status", 400}}))
		return
	}

	if !s.authenticate(w, r, raw) {
		return
	}

	s.mu.Lock()
	delay := s.delay
	status := 0
	if s.failStatus != 0 && s.failLeft != 0 {
		status = s.failStatus
		if s.failLeft > 0 {
			s.failLeft--
		}
		s.stats.InjectedFaults++
	}
	s.stats.BulkRequests++
	s.stats.WireBytes += int64(len(raw))
	s.inflight++
	s.stats.MaxConcurrent = max(s.stats.MaxConcurrent, s.inflight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if status != 0 {
		s.writeInjected(w, status)
		return
	}
	s.bulk(w, r, raw, bulkIndex)
}

func (s *Server) maxBodyCap() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(4*s.maxBody, 1<<20)
}

// route reports whether r is a _bulk call (POST or PUT on [prefix]/_bulk or
// [prefix]/{index}/_bulk) and the index of the path form.
func (s *Server) route(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return "", false
	}
	p, ok := strings.CutPrefix(r.URL.Path, s.opts.PathPrefix)
	if !ok || !strings.HasPrefix(p, "/") {
		return "", false
	}
	p = p[1:]
	if p == "_bulk" {
		return "", true
	}
	if ix, ok := strings.CutSuffix(p, "/_bulk"); ok && ix != "" && !strings.Contains(ix, "/") {
		return ix, true
	}
	return "", false
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, raw []byte) bool {
	switch {
	case s.opts.SigV4 != nil:
		if err := VerifySigV4(r, raw, *s.opts.SigV4, s.now()); err != nil {
			s.mu.Lock()
			s.stats.AuthFailures++
			s.authFails = append(s.authFails, "sigv4: "+err.Error())
			s.mu.Unlock()
			writeJSON(w, http.StatusForbidden, []byte(`{"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}`))
			return false
		}
		s.mu.Lock()
		s.stats.SignedRequests++
		s.mu.Unlock()
	case s.opts.Basic != nil:
		u, p, ok := r.BasicAuth()
		if !ok || u != s.opts.Basic.User || p != s.opts.Basic.Password {
			why := "basic: no credentials"
			if ok {
				why = fmt.Sprintf("basic: wrong credentials for user %q", u) // never the password
			}
			s.mu.Lock()
			s.stats.AuthFailures++
			s.authFails = append(s.authFails, why)
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="OpenSearch Security"`)
			w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "Unauthorized")
			return false
		}
	}
	return true
}

// securityReason is OpenSearch Security's wording for a missing permission (the seed's
// trouble-shooting case 1).
func (s *Server) securityReason(action string) string {
	p := s.principal()
	roles := "[]"
	if strings.HasPrefix(p, "arn:") {
		roles = "[" + p + "]"
	}
	return fmt.Sprintf("no permissions for [%s] and User [name=%s, backend_roles=%s, requestedTenant=null]", action, p, roles)
}

func (s *Server) writeInjected(w http.ResponseWriter, status int) {
	var body []byte
	switch {
	case status == http.StatusForbidden:
		body = requestError(status, "security_exception", s.securityReason("indices:data/write/bulk"))
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="OpenSearch Security"`)
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(status)
		io.WriteString(w, "Unauthorized")
		return
	case status == http.StatusTooManyRequests:
		body = requestError(status, "rejected_execution_exception", "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=1]")
	case status == http.StatusRequestEntityTooLarge:
		s.mu.Lock()
		s.stats.TooLarge++
		max := s.maxBody
		s.mu.Unlock()
		body = appendJSON(nil, obj{{"Message", fmt.Sprintf("Request size exceeded %d bytes", max)}})
	case status >= 500:
		body = requestError(status, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];")
	default:
		body = requestError(status, "illegal_argument_exception", fmt.Sprintf("injected status %d", status))
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	w.Write(body)
}

// Shutdown is Close with a context, for symmetry with http.Server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}
