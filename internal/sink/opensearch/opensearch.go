// Package opensearch is the OpenSearch destination: it writes records with _bulk directly,
// replacing the CloudWatch -> subscription filter -> LogsToElasticsearch Lambda chain, with
// the Lambda's index names and documents by default.
//
// Every record becomes a `create` with its deterministic _id, so a resend after any failure is
// answered 409 and counts as delivered: exactly once. Items are settled one by one from the
// _bulk response (SPEC.md "Errors"): 429 and 5xx items and failed requests are retried with
// backoff inside the flush, 400/404 items are rejected for good with their index, status,
// type and reason, 401/403 keep the data and print the missing permission once a minute.
//
// opensearch-go (opensearchapi.Bulk) does the HTTP, basic auth and SigV4 signing, with its
// own retries, node discovery and health checks off: this package is the only retry layer.
package opensearch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/opensearch-project/opensearch-go/v4/signer"

	"github.com/cwos/cloudwatch-opensearch/internal/awsauth"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/retry"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

// Name is the destination's name in logs, counters and rejections.
const Name = "opensearch"

// filterPath trims the _bulk response to what settling needs (as Logstash does): the
// response of a 5 MB request shrinks from ~1 MB to a few KB.
var filterPath = []string{"errors", "items.*.error", "items.*.status"}

// downFor is how long an endpoint that failed to connect is tried only after the others.
const downFor = 5 * time.Second

// minSplitBytes is the floor of the body size learned from 413 answers (a proxy such as
// nginx with its 1 MB default can be the one answering).
const minSplitBytes = 16 << 10

// Option adjusts New.
type Option func(*options)

type options struct {
	awsCfg  *aws.Config
	owner   *string
	backoff *retry.Backoff
	getenv  func(string) string
}

// WithAWSConfig signs with this AWS config instead of loading the default credential chain.
func WithAWSConfig(c aws.Config) Option { return func(o *options) { o.awsCfg = &c } }

// WithOwner sets the @owner account id of cwl documents ("" leaves it out).
func WithOwner(account string) Option { return func(o *options) { o.owner = &account } }

// WithBackoff replaces the backoff between retry rounds inside a flush.
func WithBackoff(b retry.Backoff) Option { return func(o *options) { o.backoff = &b } }

// WithGetenv replaces os.Getenv when looking up AWS_ROLE_ARN for @owner.
func WithGetenv(f func(string) string) Option { return func(o *options) { o.getenv = f } }

// Destination writes records to OpenSearch. It is safe for concurrent use.
type Destination struct {
	cfg     *config.Config
	rep     *report.Reporter
	enc     *encoder
	eps     []*endpoint
	guard   *guard
	tr      *http.Transport
	backoff retry.Backoff
	maxBody int          // opensearch_bulk_max_bytes
	limit   atomic.Int64 // body size to aim for: maxBody, lowered by 413 answers
	sem     chan struct{}
	rr      atomic.Uint32
	bufs    sync.Pool // *buf
	flights sync.Pool // *flight
	hdr     http.Header
	hdrGzip http.Header

	gate sink.Gate // running deliveries, for Close
}

var _ sink.Destination = (*Destination)(nil)

// New builds the destination. It makes no request: credentials are fetched on the first
// signed request, and endpoints are contacted on the first flush.
func New(ctx context.Context, cfg *config.Config, rep *report.Reporter, opts ...Option) (*Destination, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if rep == nil {
		rep = report.New(Name, nil)
	}
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	g := &guard{base: tr}

	var sign signer.Signer
	if cfg.OpenSearchAuth == config.AuthSigV4 {
		var awsCfg aws.Config
		if o.awsCfg != nil {
			awsCfg = *o.awsCfg
		} else {
			awsCfg, err = awsauth.Load(ctx, awsauth.Options{Region: cfg.OpenSearchRegion, RoleARN: cfg.OpenSearchRoleARN,
				ExternalID: cfg.ExternalID, STSEndpoint: cfg.STSEndpoint})
			if err != nil {
				return nil, err
			}
		}
		if awsCfg.Region == "" {
			awsCfg.Region = cfg.OpenSearchRegion
		}
		if sign, err = newSigner(cfg, awsCfg); err != nil {
			return nil, err
		}
	}
	eps, err := newEndpoints(cfg, g, sign)
	if err != nil {
		return nil, err
	}
	owner := ""
	if o.owner != nil {
		owner = *o.owner
	} else if cfg.OpenSearchDocument != config.DocumentRecord {
		owner = ownerAccount(cfg, o.getenv)
	}
	d := &Destination{
		cfg: cfg, rep: rep, enc: newEncoder(cfg, owner), eps: eps, guard: g, tr: tr,
		maxBody: cfg.OpenSearchBulkMaxBytes,
		sem:     make(chan struct{}, max(cfg.MaxInflight, 1)),
		hdr:     http.Header{"Content-Type": {"application/x-ndjson"}},
		hdrGzip: http.Header{"Content-Type": {"application/x-ndjson"}, "Content-Encoding": {"gzip"}},
	}
	if d.maxBody <= 0 {
		d.maxBody = 5_000_000
	}
	d.limit.Store(int64(d.maxBody))
	if o.backoff != nil {
		d.backoff = *o.backoff
	}
	d.bufs.New = func() any { return &buf{pool: &d.bufs} }
	d.flights.New = func() any { return new(flight) }
	if !cfg.OpenSearchTLSVerify {
		rep.Warnf("opensearch: opensearch_tls_verify is off: the server certificate is not checked")
	}
	return d, nil
}

// Name implements sink.Destination.
func (d *Destination) Name() string { return Name }

// Close waits for in-flight deliveries until ctx is done, then releases connections.
func (d *Destination) Close(ctx context.Context) error {
	var err error
	if cerr := d.gate.Close(ctx); cerr != nil {
		err = fmt.Errorf("opensearch: close: deliveries still running: %w", cerr)
	}
	for _, ep := range d.eps {
		ep.api.Close()
	}
	d.tr.CloseIdleConnections()
	return err
}

// BlockedRequests counts requests opensearch-go tried to make on its own (health checks,
// discovery) that the transport refused; it stays 0 with the settings New uses.
func (d *Destination) BlockedRequests() int64 { return d.guard.blocked.Load() }

// outcome of one item within a Deliver call.
const (
	outPending uint8 = iota // not settled yet: retry
	outBlocked              // 401/403: kept for Fluent Bit's retry, not retried in this flush
	outDone                 // accepted or rejected
)

// item is one record's _bulk lines in the arena.
type item struct {
	rec      int32
	off, end int32
}

// flight is the state of one Deliver call.
type flight struct {
	d       *Destination
	ctx     context.Context
	recs    []sink.Record
	s       sink.Settler
	arena   *buf
	items   []item
	state   []uint8
	pending []int32

	mu   sync.Mutex
	last error
	perm *sink.PermissionError
}

func (f *flight) fail(err error) {
	f.mu.Lock()
	if f.last == nil || f.ctx.Err() == nil { // once the flush is over, keep the error that mattered
		f.last = err
	}
	f.mu.Unlock()
}

func (f *flight) lastErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *flight) denied(err *sink.PermissionError) {
	f.mu.Lock()
	f.perm = err
	f.mu.Unlock()
}

// Deliver sends recs with _bulk and settles each record (see sink.Destination).
func (d *Destination) Deliver(ctx context.Context, recs []sink.Record, s sink.Settler) error {
	if len(recs) == 0 {
		return nil
	}
	if !d.gate.Enter() {
		return &sink.PendingError{Destination: Name, Pending: len(recs), Last: errors.New("destination closed")}
	}
	defer d.gate.Leave()

	f := d.newFlight(ctx, recs, s)
	defer f.release()

	if err := f.encode(); err != nil {
		return err
	}
	for i := range f.items {
		f.pending = append(f.pending, int32(i))
	}
	for attempt := 1; len(f.pending) > 0; attempt++ {
		f.round()
		next := f.pending[:0]
		for _, it := range f.pending {
			if f.state[it] == outPending {
				next = append(next, it)
			}
		}
		f.pending = next
		if len(next) == 0 || ctx.Err() != nil {
			break
		}
		d.rep.Add("opensearch_retried_items", int64(len(next)))
		if d.backoff.Wait(ctx, attempt) != nil {
			break
		}
	}

	left := 0
	for _, st := range f.state {
		if st != outDone {
			left++
		}
	}
	if left == 0 {
		return nil
	}
	var last error = f.last
	if f.perm != nil {
		last = f.perm
	}
	if last == nil {
		last = ctx.Err()
	}
	return &sink.PendingError{Destination: Name, Pending: left, Last: last}
}

// newFlight takes a flight from the pool, keeping its slices' storage.
func (d *Destination) newFlight(ctx context.Context, recs []sink.Record, s sink.Settler) *flight {
	f := d.flights.Get().(*flight)
	*f = flight{d: d, ctx: ctx, recs: recs, s: s, arena: getBuf(&d.bufs), items: f.items[:0], state: f.state[:0], pending: f.pending[:0]}
	return f
}

// release returns the flight to the pool; the arena goes back once no request body uses it.
func (f *flight) release() {
	d := f.d
	f.arena.release()
	*f = flight{items: f.items[:0], state: f.state[:0], pending: f.pending[:0]}
	d.flights.Put(f)
}

// encode writes every record's _bulk lines into the arena; a record whose lines alone exceed
// opensearch_bulk_max_bytes is rejected here, since no request could carry it.
func (f *flight) encode() error {
	d := f.d
	if len(f.recs) > 1<<31-1 {
		return errors.New("opensearch: too many records in one chunk")
	}
	for i := range f.recs {
		r := &f.recs[i]
		start := len(f.arena.b)
		var ok bool
		f.arena.b, ok = d.enc.appendItem(f.arena.b, r)
		if !ok {
			d.rep.Add("opensearch_transcode_errors", 1)
			d.rep.Limited("opensearch:transcode", report.Warn, "opensearch: a record's fields could not be converted to JSON (nesting too deep); sent its @ fields only")
		}
		n := len(f.arena.b) - start
		if n > d.maxBody {
			f.arena.b = f.arena.b[:start]
			d.rep.Add("opensearch_oversized", 1)
			f.s.Rejected(r, sink.Rejection{Destination: Name, Target: r.Index, Status: http.StatusRequestEntityTooLarge, Type: "document_too_large",
				Reason: fmt.Sprintf("the document with its action line is %d bytes, over opensearch_bulk_max_bytes (%d)", n, d.maxBody)})
			continue
		}
		if len(f.arena.b) > 1<<31-1 {
			return &sink.PendingError{Destination: Name, Pending: len(f.recs), Last: errors.New("chunk larger than 2 GB")}
		}
		f.items = append(f.items, item{rec: int32(i), off: int32(start), end: int32(len(f.arena.b))})
		f.state = append(f.state, outPending)
	}
	return nil
}

// round sends every pending item once, in requests of at most the current body limit, up to
// max_inflight at a time (shared by all deliveries of the destination).
func (f *flight) round() {
	limit := int(f.d.limit.Load())
	var batches [][]int32
	start, size := 0, 0
	for k, it := range f.pending {
		n := int(f.items[it].end - f.items[it].off)
		if k > start && size+n > limit {
			batches = append(batches, f.pending[start:k])
			start, size = k, 0
		}
		size += n
	}
	batches = append(batches, f.pending[start:])
	if len(batches) == 1 {
		f.send(batches[0])
		return
	}
	var wg sync.WaitGroup
	for _, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.send(b)
		}()
	}
	wg.Wait()
}

// body makes the request body of batch: the arena itself when the items are contiguous there
// (the first attempt), else a copy; gzip-compressed when configured.
func (f *flight) body(batch []int32) *payload {
	first, last := f.items[batch[0]], f.items[batch[len(batch)-1]]
	contiguous := int(last.end-first.off) == f.size(batch)
	var owner *buf
	var data []byte
	if contiguous {
		owner = f.arena
		owner.retain()
		data = f.arena.b[first.off:last.end]
	} else {
		owner = getBuf(&f.d.bufs)
		for _, it := range batch {
			owner.b = append(owner.b, f.arena.b[f.items[it].off:f.items[it].end]...)
		}
		data = owner.b
	}
	p := &payload{owner: owner, data: data, raw: len(data)}
	if f.d.cfg.OpenSearchCompress {
		z := getBuf(&f.d.bufs)
		z.b = compress(z.b, data)
		owner.release()
		p.owner, p.data = z, z.b
	}
	return p
}

func (f *flight) size(batch []int32) int {
	n := 0
	for _, it := range batch {
		n += int(f.items[it].end - f.items[it].off)
	}
	return n
}

func (f *flight) mark(batch []int32, st uint8) {
	for _, it := range batch {
		f.state[it] = st
	}
}

// send posts one batch and settles its items from the answer.
func (f *flight) send(batch []int32) {
	d := f.d
	p := f.body(batch)
	select {
	case d.sem <- struct{}{}:
	case <-f.ctx.Done():
		p.owner.release()
		f.fail(f.ctx.Err())
		return
	}
	res := d.post(f.ctx, p)
	<-d.sem
	p.owner.release()
	d.rep.Add("opensearch_requests", 1)

	switch {
	case res.err != nil && res.status == 0:
		var ce *credentialsError
		if errors.As(res.err, &ce) {
			f.mark(batch, outBlocked)
			f.denied(d.permission(res.ep, 0, "credentials", ce.Error(), nil))
			return
		}
		d.rep.Add("opensearch_request_errors", 1)
		f.fail(fmt.Errorf("%s: %w", res.ep.name, res.err))
	case res.status == http.StatusRequestEntityTooLarge:
		if len(batch) == 1 {
			it := f.items[batch[0]]
			r := &f.recs[it.rec]
			f.state[batch[0]] = outDone
			f.s.Rejected(r, sink.Rejection{Destination: Name, Target: r.Index, Status: res.status, Type: "request_entity_too_large",
				Reason: fmt.Sprintf("the endpoint refused a request with only this %d-byte document: %s", p.raw, snippet(res.body))})
			return
		}
		d.lowerLimit(res.ep, p.raw)
		half := len(batch) / 2
		f.send(batch[:half])
		f.send(batch[half:])
	case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
		f.mark(batch, outBlocked)
		f.denied(d.permission(res.ep, res.status, res.errType, res.reason, res.body))
	case res.status == http.StatusTooManyRequests || res.status >= 500:
		d.rep.Add("opensearch_request_errors", 1)
		f.fail(fmt.Errorf("%s: HTTP %d %s: %s", res.ep.name, res.status, res.errType, res.reason))
	case res.status >= 300:
		// 400 on the whole request (framing), 404 (a wrong path prefix), 406...: nothing in the
		// records can fix it, but dropping them would lose data over a proxy or config
		// problem. Keep them, say it loudly.
		d.rep.Add("opensearch_request_errors", 1)
		err := fmt.Errorf("%s: HTTP %d %s: %s", res.ep.name, res.status, res.errType, res.reason)
		d.rep.Limited("opensearch:status:"+res.ep.name+":"+fmt.Sprint(res.status), report.Error,
			"opensearch: _bulk answered HTTP %d (%s: %s); records are kept for retry. Check opensearch_endpoint (scheme, host, path prefix) and any proxy in front of OpenSearch. Body: %s",
			res.status, res.errType, res.reason, snippet(res.body))
		f.fail(err)
	default:
		f.settle(batch, res)
	}
}

// settle applies the per-item statuses of a 2xx _bulk answer.
func (f *flight) settle(batch []int32, res result) {
	d := f.d
	items := res.resp.Items
	if len(items) != len(batch) {
		d.rep.Add("opensearch_request_errors", 1)
		f.fail(fmt.Errorf("%s: _bulk answered %d items for %d documents", res.ep.name, len(items), len(batch)))
		return
	}
	dups, retries := 0, 0
	for k, m := range items {
		idx := batch[k]
		r := &f.recs[f.items[idx].rec]
		var st int
		var typ, reason string
		for _, v := range m {
			st = v.Status
			if v.Error != nil {
				typ, reason = v.Error.Type, v.Error.Reason
				if v.Error.Cause.Type != "" {
					reason += " (caused by " + v.Error.Cause.Type + ": " + v.Error.Cause.Reason + ")"
				}
			}
		}
		switch {
		case st >= 200 && st < 300:
			f.state[idx] = outDone
			f.s.Accepted(r.Seq)
		case st == http.StatusConflict:
			// create on an existing _id: an earlier attempt landed.
			f.state[idx] = outDone
			dups++
			f.s.Accepted(r.Seq)
		case st == http.StatusTooManyRequests || st >= 500 || st == 0:
			if retries++; retries == 1 { // one error value per answer, not per item
				if st == 0 {
					typ, reason = "missing_status", "the _bulk answer has no status for this item"
				}
				f.fail(fmt.Errorf("%s: item for %s: %d %s: %s", res.ep.name, r.Index, st, typ, reason))
			}
		case st == http.StatusUnauthorized || st == http.StatusForbidden:
			f.state[idx] = outBlocked
			f.denied(d.permission(res.ep, st, typ, reason, nil))
		default:
			f.state[idx] = outDone
			f.s.Rejected(r, sink.Rejection{Destination: Name, Target: r.Index, Status: st, Type: typ, Reason: reason})
		}
	}
	if dups > 0 {
		d.rep.Add("opensearch_duplicates", int64(dups))
	}
	if retries > 0 {
		d.rep.Add("opensearch_throttled_items", int64(retries))
		d.rep.Limited("opensearch:throttled:"+res.ep.name, report.Warn,
			"opensearch: %s answered %d of %d items with 429 or 5xx (%v); retrying them with backoff", res.ep.name, retries, len(batch), f.lastErr())
	}
}

// lowerLimit remembers that the endpoint refuses bodies of n bytes: later requests aim at half.
func (d *Destination) lowerLimit(ep *endpoint, n int) {
	want := int64(max(n/2, minSplitBytes))
	for {
		cur := d.limit.Load()
		if want >= cur || d.limit.CompareAndSwap(cur, want) {
			break
		}
	}
	d.rep.Limited("opensearch:413:"+ep.name, report.Warn,
		"opensearch: %s refused a %d-byte _bulk body with 413 Request Entity Too Large; splitting it and sending at most %d bytes per request from now on (set opensearch_bulk_max_bytes below the domain's limit)",
		ep.name, n, d.limit.Load())
}

// permission builds the error for a 401/403 and prints the fix once a minute per problem.
func (d *Destination) permission(ep *endpoint, status int, errType, reason string, body []byte) *sink.PermissionError {
	kind, fix := "credentials", ""
	if errType == "credentials" {
		fix = "the plugin has no usable AWS credentials for SigV4: check IRSA (service account annotation, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE), EKS Pod Identity or the instance role, and that opensearch_role_arn trusts it (sts:AssumeRole)"
	} else {
		kind, fix = hint(d.cfg, status, errType, reason, body)
	}
	if reason == "" {
		reason = snippet(body)
	}
	err := fmt.Errorf("HTTP %d %s: %s", status, errType, reason)
	if status == 0 {
		err = errors.New(reason)
	}
	d.rep.Add("opensearch_permission_errors", 1)
	d.rep.Limited("opensearch:permission:"+ep.name+":"+kind, report.Error,
		"opensearch: %s denied _bulk (%v); the records are kept and Fluent Bit will retry. Fix: %s", ep.name, err, fix)
	return &sink.PermissionError{Destination: Name, Target: ep.name + "/_bulk", Err: err, Hint: fix}
}

// snippet is the start of a response body, for logs.
func snippet(b []byte) string {
	const n = 512
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
