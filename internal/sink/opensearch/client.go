package opensearch

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/opensearch-project/opensearch-go/v4/opensearchtransport"
	"github.com/opensearch-project/opensearch-go/v4/signer"
	"github.com/opensearch-project/opensearch-go/v4/signer/awsv2"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
)

// endpoint is one configured URL with its own opensearch-go client. One client per URL keeps
// opensearch-go on its single-node path (no connection pool, dead-node resurrection or health
// checks); round-robin and fail-over are ours.
type endpoint struct {
	name      string // URL for logs (never carries credentials: config refuses them)
	api       *opensearchapi.Client
	downUntil atomic.Int64 // unix ns: skipped until then after a connection failure
}

// errBlocked answers any request opensearch-go would make on its own (health checks, node
// discovery): the plugin only ever sends _bulk.
var errBlocked = errors.New("opensearch: only _bulk requests are sent")

// credentialsError marks a SigV4 signing failure: no usable AWS credentials.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "AWS credentials for SigV4: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// wrappedSigner adapts the awsv2 signer so its failures are recognizable.
type wrappedSigner struct{ signer.Signer }

func (w wrappedSigner) SignRequest(r *http.Request) error {
	if err := w.Signer.SignRequest(r); err != nil {
		return &credentialsError{err}
	}
	return nil
}

// guard is the HTTP transport under opensearch-go. It refuses every request that is not a
// _bulk POST carrying our payload, and sends the payload's pooled bytes through a body that
// returns them to the pool only when net/http has closed it.
type guard struct {
	base    http.RoundTripper
	blocked atomic.Int64
	mu      sync.Mutex
	refused []string // the first few refused requests, for the log and tests
}

type payloadKey struct{}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	p, _ := req.Context().Value(payloadKey{}).(*payload)
	if req.Body != nil {
		req.Body.Close() // a reader over the same bytes (or the signer's copy of them)
	}
	if p == nil || req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/_bulk") {
		if g.blocked.Add(1) <= 10 {
			g.mu.Lock()
			g.refused = append(g.refused, req.Method+" "+req.URL.Path)
			g.mu.Unlock()
		}
		return nil, errBlocked
	}
	r2 := *req
	r2.Body = p.open()
	r2.ContentLength = int64(len(p.data))
	r2.GetBody = func() (io.ReadCloser, error) { return p.open(), nil }
	return g.base.RoundTrip(&r2)
}

// buf is a pooled, reference-counted byte buffer: request bodies outlive the call that sent
// them when net/http closes them late.
type buf struct {
	b    []byte
	refs atomic.Int32
	pool *sync.Pool
}

// maxPooled keeps huge one-off buffers out of the pool.
const maxPooled = 64 << 20

func getBuf(pool *sync.Pool) *buf {
	b := pool.Get().(*buf)
	b.b = b.b[:0]
	b.refs.Store(1)
	return b
}

func (b *buf) retain() { b.refs.Add(1) }

func (b *buf) release() {
	switch n := b.refs.Add(-1); {
	case n == 0:
		if cap(b.b) > maxPooled {
			b.b = nil
		}
		b.pool.Put(b)
	case n < 0:
		panic("opensearch: buffer released twice")
	}
}

// payload is one request body: data lives in owner.
type payload struct {
	owner *buf
	data  []byte
	raw   int // bytes before compression
}

func (p *payload) open() io.ReadCloser {
	p.owner.retain()
	r := &body{owner: p.owner}
	r.Reset(p.data)
	return r
}

type body struct {
	bytes.Reader
	owner  *buf
	closed atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("read after close")
	}
	return b.Reader.Read(p)
}

func (b *body) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.owner.release()
	}
	return nil
}

// appendWriter lets gzip write into a buf.
type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// compress appends the gzip form of src to dst. BestSpeed: log lines compress well already
// and the flush is on Fluent Bit's clock.
func compress(dst, src []byte) []byte {
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(appendWriter{&dst})
	zw.Write(src)
	zw.Close()
	zw.Reset(io.Discard)
	gzipPool.Put(zw)
	return dst
}

// newTransport builds the HTTP transport: TLS per config, connections sized to max_inflight.
func newTransport(cfg *config.Config) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(cfg.MaxInflight, 2)
	tr.ResponseHeaderTimeout = cfg.RequestTimeout
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !cfg.OpenSearchTLSVerify} //nolint:gosec // opensearch_tls_verify off is the user's explicit choice
	if cfg.OpenSearchTLSCAFile != "" {
		pem, err := os.ReadFile(cfg.OpenSearchTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("opensearch_tls_ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("opensearch_tls_ca_file %s: no PEM certificates in it", cfg.OpenSearchTLSCAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	return tr, nil
}

// newEndpoints makes one opensearch-go client per URL with its retries, discovery, health
// checks and node-stats polling off and every request bounded by request_timeout. The
// transport is built with opensearchtransport.New because opensearch.NewClient cannot turn
// off the health checks and the /_nodes/_local/stats poller, which need permissions the
// plugin's role should not have.
func newEndpoints(cfg *config.Config, rt http.RoundTripper, sign signer.Signer) ([]*endpoint, error) {
	var eps []*endpoint
	for _, u := range cfg.OpenSearchEndpoints {
		clean := *u
		clean.User = nil
		clean.RawQuery, clean.Fragment = "", ""
		tc := opensearchtransport.Config{
			URLs:                  []*url.URL{&clean},
			Transport:             rt,
			Signer:                sign,
			DisableRetry:          true,
			RequestTimeout:        cfg.RequestTimeout,
			DiscoverNodesInterval: 0,
			HealthCheck:           opensearchtransport.NoOpHealthCheck,
			HealthCheckMaxRetries: -1,
			MaxRetryClusterHealth: -1,
			NodeStatsInterval:     -1,
			Context:               context.Background(),
		}
		if cfg.OpenSearchAuth == config.AuthBasic {
			tc.Username = cfg.OpenSearchUser
			tc.Password = cfg.OpenSearchPassword.Reveal()
		}
		tp, err := opensearchtransport.New(tc)
		if err != nil {
			return nil, fmt.Errorf("opensearch client for %s: %w", clean.Redacted(), err)
		}
		api := opensearchapi.NewFromClient(&opensearch.Client{Transport: tp})
		eps = append(eps, &endpoint{name: strings.TrimRight(clean.Redacted(), "/"), api: api})
	}
	if len(eps) == 0 {
		return nil, errors.New("no opensearch_endpoint")
	}
	return eps, nil
}

// newSigner returns the SigV4 signer for aws_sigv4 auth, nil otherwise.
func newSigner(cfg *config.Config, awsCfg aws.Config) (signer.Signer, error) {
	s, err := awsv2.NewSignerWithService(awsCfg, cfg.OpenSearchAWSService)
	if err != nil {
		return nil, err
	}
	return wrappedSigner{s}, nil
}
