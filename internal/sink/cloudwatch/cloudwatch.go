// Package cloudwatch is the CloudWatch Logs destination: it partitions a chunk's records by
// (log group, log stream), sorts each stream by time, cuts batches that obey every PutLogEvents
// rule exactly (limits.go), and sends one request per batch, streams in parallel up to
// max_inflight. Missing streams and groups are created on first use (ResourceNotFound, never a
// Describe call on the happy path).
//
// Delivery is at least once. A record is settled as accepted only after the PutLogEvents that
// carried it returned success, and the plugin core's ledger keeps a retry of the chunk from
// resending it. A request that CloudWatch accepted but whose response was lost (a timeout, a
// connection reset after the request was read, a crash) is sent again and then stored twice:
// CloudWatch has no idempotency key, so the destination cannot detect that duplicate; tests
// count it by reading the stream back.
//
// Nothing is dropped silently: empty messages, events more than 14 days old or more than 2 hours
// ahead, and events CloudWatch rejects (RejectedLogEventsInfo, InvalidParameter) are settled as
// rejected with the group, stream and age, and counted; oversized messages are truncated with a
// visible marker and counted; permission problems keep the data (FLB_RETRY) and print the IAM
// action and ARN to allow, at most once a minute per name.
package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/cwos/cloudwatch-opensearch/internal/awsauth"
	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/retry"
	"github.com/cwos/cloudwatch-opensearch/internal/sink"
)

// Name is the destination's name in reports, counters and rejections.
const Name = "cloudwatch"

// IAMActions are the IAM actions the plugin's role needs on its log groups and streams:
// PutLogEvents always; CreateLogStream with auto_create_stream; CreateLogGroup with
// auto_create_group; PutRetentionPolicy with log_retention_days; TagResource with log_group_tags
// (CloudWatch checks it when a group is created with tags). With log_group_kms_key_id the KMS
// key's policy must also allow the logs service principal of the region to use the key. With
// role_arn, the pod's own identity needs sts:AssumeRole on that role.
var IAMActions = []string{
	"logs:PutLogEvents",
	"logs:CreateLogStream",
	"logs:CreateLogGroup",
	"logs:PutRetentionPolicy",
	"logs:TagResource",
}

// Option changes how New builds the destination (mostly for tests).
type Option func(*options)

type options struct {
	now     func() time.Time
	creds   aws.CredentialsProvider
	backoff retry.Backoff
}

// WithClock sets the clock used to judge events too old or too new.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithCredentials replaces the default credential chain (and role_arn) with p.
func WithCredentials(p aws.CredentialsProvider) Option { return func(o *options) { o.creds = p } }

// WithBackoff sets the waits between retries inside one Deliver.
func WithBackoff(b retry.Backoff) Option { return func(o *options) { o.backoff = b } }

// Destination writes records to CloudWatch Logs. It is safe for concurrent use: Deliver runs
// once per flush, from several Fluent Bit workers at once.
type Destination struct {
	cfg       *config.Config
	rep       *report.Reporter
	client    *cloudwatchlogs.Client
	creds     aws.CredentialsProvider
	transport *http.Transport
	now       func() time.Time
	backoff   retry.Backoff
	region    string
	partition string

	sem   chan struct{} // max_inflight requests at once, across all Deliver calls
	prov  *provisioner
	plans sync.Pool // *plan

	gate sink.Gate // running deliveries, for Close
}

var _ sink.Destination = (*Destination)(nil)

// New builds the destination from cfg: credentials from the SDK's default chain (environment,
// IRSA web identity, EKS Pod Identity, IMDSv2 only) or role_arn through STS, the client pointed
// at cloudwatch_endpoint when set, SDK retries off (the plugin has one retry layer), every HTTP
// request bounded by request_timeout. It makes no AWS call.
func New(ctx context.Context, cfg *config.Config, rep *report.Reporter, opts ...Option) (*Destination, error) {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	inflight := cfg.MaxInflight
	if inflight <= 0 {
		inflight = 8
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	awsCfg, err := awsauth.Load(ctx, awsauth.Options{
		Region:         cfg.Region,
		RoleARN:        cfg.RoleARN,
		ExternalID:     cfg.ExternalID,
		STSEndpoint:    cfg.STSEndpoint,
		RequestTimeout: cfg.RequestTimeout,
	})
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region: set region in the [OUTPUT] section or AWS_REGION in the environment")
	}
	if o.creds != nil {
		awsCfg.Credentials = o.creds
	}
	// Our own client on the SDK's transport (which carries AWS_CA_BUNDLE when set): every
	// request bounded by request_timeout, enough idle connections for max_inflight, and a
	// transport we can close.
	tr := transportOf(awsCfg.HTTPClient)
	tr.MaxIdleConnsPerHost = max(2*inflight, 16)
	tr.MaxIdleConns = max(4*inflight, 100)
	hc := &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	client := cloudwatchlogs.NewFromConfig(awsCfg, func(co *cloudwatchlogs.Options) {
		co.Retryer = aws.NopRetryer{}
		co.HTTPClient = hc
		if cfg.CloudWatchEndpoint != "" {
			co.BaseEndpoint = aws.String(cfg.CloudWatchEndpoint)
		}
	})
	d := &Destination{
		cfg:       cfg,
		rep:       rep,
		client:    client,
		creds:     awsCfg.Credentials,
		transport: tr,
		now:       o.now,
		backoff:   o.backoff,
		region:    awsCfg.Region,
		partition: partitionOf(awsCfg.Region),
		sem:       make(chan struct{}, inflight),
	}
	d.prov = newProvisioner(d)
	d.plans.New = func() any { return newPlan() }
	return d, nil
}

// transportOf returns a copy of the SDK client's transport, or a default one.
func transportOf(c aws.HTTPClient) *http.Transport {
	if bc, ok := c.(*awshttp.BuildableClient); ok {
		return bc.GetTransport()
	}
	return http.DefaultTransport.(*http.Transport).Clone()
}

// Name implements sink.Destination.
func (d *Destination) Name() string { return Name }

var errClosed = errors.New("cloudwatch destination is closed")

// Deliver sends recs and settles each one with s. It returns nil when every record is settled,
// a *sink.PermissionError when an operator must act (some records are then still pending), or a
// *sink.PendingError when ctx ended with records still pending.
func (d *Destination) Deliver(ctx context.Context, recs []sink.Record, s sink.Settler) error {
	if !d.gate.Enter() {
		return &sink.PendingError{Destination: Name, Pending: len(recs), Last: errClosed}
	}
	defer d.gate.Leave()

	p := d.plans.Get().(*plan)
	defer d.plans.Put(p)
	p.build(recs, d.now().UnixMilli())
	d.settleRejects(p, recs, s)
	if len(p.batches) == 0 {
		return nil
	}
	dl := &delivery{d: d, p: p, recs: recs, s: s}

	workers := min(cap(d.sem), len(p.streams))
	if workers <= 1 {
		dl.work(ctx)
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() { dl.work(ctx) })
		}
		wg.Wait()
	}

	pending := len(p.items) - int(dl.settled.Load())
	if pending == 0 {
		return nil
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.perm != nil {
		return dl.perm
	}
	last := dl.last
	if last == nil {
		last = ctx.Err()
	}
	if last == nil {
		last = errors.New("not sent")
	}
	return &sink.PendingError{Destination: Name, Pending: pending, Last: last}
}

// Close stops new deliveries, waits for those in flight until ctx is done, and closes idle
// connections.
func (d *Destination) Close(ctx context.Context) error {
	defer d.transport.CloseIdleConnections()
	return d.gate.Close(ctx)
}

// call runs one API request inside the max_inflight limit.
func (d *Destination) call(ctx context.Context, fn func(context.Context) error) error {
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.sem }()
	d.rep.Add("cloudwatch_requests", 1)
	return fn(ctx)
}

// settleRejects settles the records the plan would not send.
func (d *Destination) settleRejects(p *plan, recs []sink.Record, s sink.Settler) {
	for _, rj := range p.rejects {
		r := &recs[rj.rec]
		why := sink.Rejection{Destination: Name, Target: r.Group + "/" + r.Stream}
		switch rj.kind {
		case rejectEmpty:
			d.rep.Add("cloudwatch_empty_messages", 1)
			why.Type, why.Reason = "empty_message", "the CloudWatch message is empty (CloudWatch rejects a whole batch with an empty event)"
		case rejectTooOld:
			d.rep.Add("cloudwatch_too_old", 1)
			why.Type, why.Reason = "tooOld", ageReason(r.Time, p.nowMs, "CloudWatch rejects events more than 14 days old")
		case rejectTooNew:
			d.rep.Add("cloudwatch_too_new", 1)
			why.Type, why.Reason = "tooNew", ageReason(r.Time, p.nowMs, "CloudWatch rejects events more than 2 hours in the future")
		}
		s.Rejected(r, why)
	}
}

// ageReason says how old an event is, for rejections.
func ageReason(t time.Time, nowMs int64, rule string) string {
	age := time.Duration(nowMs-t.UnixMilli()) * time.Millisecond
	when := "old"
	if age < 0 {
		age, when = -age, "in the future"
	}
	return fmt.Sprintf("event time %s is %s %s; %s", t.UTC().Format("2006-01-02T15:04:05.000Z"), age.Round(time.Second), when, rule)
}

// delivery is one Deliver call's shared state.
type delivery struct {
	d    *Destination
	p    *plan
	recs []sink.Record
	s    sink.Settler

	next    atomic.Int32 // next stream to take
	settled atomic.Int64 // items settled (accepted or rejected)

	mu   sync.Mutex
	perm *sink.PermissionError
	last error
}

// reportChanged counts and reports an accepted message that was changed to fit: invalid UTF-8
// replaced, or truncated.
func (dl *delivery) reportChanged(it *item, key streamKey) {
	d := dl.d
	if it.fl&flagInvalidUTF8 != 0 {
		d.rep.Add("cloudwatch_invalid_utf8", 1)
	}
	if it.fl&flagTruncated != 0 {
		d.rep.Add("cloudwatch_truncated", 1)
		d.rep.Limited("cloudwatch:truncated:"+key.group+"/"+key.stream, report.Warn,
			"cloudwatch: truncated a %d-byte message for group %q stream %q to %d bytes (CloudWatch's limit per event is %d bytes including %d bytes overhead)",
			len(dl.recs[it.rec].Message), key.group, key.stream, it.size, MaxEventBytes, EventOverhead)
	}
}

// work sends whole streams, one at a time, until none is left. A stream's batches go out in
// order; a stream that cannot make progress (permission, time out) leaves its later batches
// pending and the worker moves on.
func (dl *delivery) work(ctx context.Context) {
	for {
		s := dl.next.Add(1) - 1
		if int(s) >= len(dl.p.streams) {
			return
		}
		sp := &dl.p.streams[s]
		for b := sp.blo; b < sp.bhi; b++ {
			bt := &dl.p.batches[b]
			budget := bisectBudget
			if err := dl.send(ctx, bt.stream, bt.lo, bt.hi, &budget); err != nil {
				dl.fail(err)
				break
			}
		}
	}
}

func (dl *delivery) fail(err error) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	var perm *sink.PermissionError
	if errors.As(err, &perm) {
		if dl.perm == nil {
			dl.perm = perm
		}
		return
	}
	if dl.last == nil || !errors.Is(err, context.DeadlineExceeded) {
		dl.last = err
	}
}

// bisectBudget bounds the extra requests spent finding the events of one batch that
// InvalidParameterException is about.
const bisectBudget = 32

// send delivers items[lo:hi] of stream s, retrying what can succeed later until ctx is done. It
// returns nil when every item is settled, a *sink.PermissionError, or the last error.
func (dl *delivery) send(ctx context.Context, s, lo, hi int32, budget *int) error {
	d := dl.d
	key := dl.p.streams[s].key
	var last error
	resent := false // sent again at once after creating the stream
	in := dl.p.input(s, lo, hi, dl.recs)
	for attempt := 0; ; {
		if ctx.Err() != nil {
			return pendingCause(last, ctx.Err())
		}
		var out *cloudwatchlogs.PutLogEventsOutput
		var sent time.Time
		err := d.call(ctx, func(ctx context.Context) error {
			sent = time.Now()
			var err error
			out, err = d.client.PutLogEvents(ctx, in)
			return err
		})
		if err == nil {
			dl.settle(lo, hi, out.RejectedLogEventsInfo, key)
			d.prov.delivered(ctx, key)
			return nil
		}
		if isContextErr(ctx, err) {
			return pendingCause(last, err)
		}
		c, code := classify(err)
		switch c {
		case classAccepted:
			dl.settle(lo, hi, nil, key)
			return nil
		case classNotFound:
			eerr := d.prov.ensureStream(ctx, key, apiMessage(err), sent)
			if eerr == nil && !resent {
				resent = true
				continue // it exists now: send again at once, then back off if it still fails
			}
			var perm *sink.PermissionError
			if errors.As(eerr, &perm) || (eerr != nil && isContextErr(ctx, eerr)) {
				return eerr
			}
			if eerr != nil {
				err = eerr
			}
		case classInvalid:
			return dl.isolate(ctx, s, lo, hi, budget, code, err)
		case classDenied, classCredentials:
			return d.denied(ctx, "logs:PutLogEvents", key.group, key.stream, c, code, err, keptRetried)
		}
		last = err
		attempt++
		d.rep.Add("cloudwatch_retries", 1)
		if code == "ThrottlingException" || code == "Throttling" {
			d.rep.Add("cloudwatch_throttled", 1)
		}
		d.rep.Limited("cloudwatch:retry:"+code, report.Warn, "cloudwatch: PutLogEvents to group %q stream %q failed, retrying with backoff: %v", key.group, key.stream, err)
		if werr := d.backoff.Wait(ctx, attempt); werr != nil {
			return pendingCause(last, werr)
		}
	}
}

// pendingCause is the error to report for records left pending: the last real failure when
// there was one, else why the wait ended.
func pendingCause(last, ctxErr error) error {
	if last != nil {
		return last
	}
	return ctxErr
}

// isolate handles InvalidParameterException (the request's content): the batch is split in
// halves until the events CloudWatch refuses are alone, so one bad event does not cost its
// neighbours. A single event, or any part left when the budget is spent, is rejected for good
// with the service's reason.
func (dl *delivery) isolate(ctx context.Context, s, lo, hi int32, budget *int, code string, err error) error {
	d := dl.d
	if hi-lo == 1 || *budget < 2 {
		key := dl.p.streams[s].key
		why := sink.Rejection{Destination: Name, Target: key.group + "/" + key.stream, Status: 400, Type: code, Reason: apiMessage(err)}
		for j := lo; j < hi; j++ {
			d.rep.Add("cloudwatch_invalid_parameter", 1)
			dl.s.Rejected(&dl.recs[dl.p.items[j].rec], why)
			dl.settled.Add(1)
		}
		return nil
	}
	*budget -= 2
	mid := lo + (hi-lo)/2
	e1 := dl.send(ctx, s, lo, mid, budget)
	e2 := dl.send(ctx, s, mid, hi, budget)
	var perm *sink.PermissionError
	switch {
	case errors.As(e1, &perm) || errors.As(e2, &perm):
		return perm
	case e1 != nil:
		return e1
	}
	return e2
}

// settle marks items[lo:hi] accepted, except the ones RejectedLogEventsInfo names: indexes are
// into the request's events, tooOld and expired end indexes exclusive, tooNew start inclusive
// (API reference, RejectedLogEventsInfo).
func (dl *delivery) settle(lo, hi int32, info *types.RejectedLogEventsInfo, key streamKey) {
	n := int(hi - lo)
	expiredEnd, tooOldEnd, tooNewStart := 0, 0, n
	if info != nil {
		if info.ExpiredLogEventEndIndex != nil {
			expiredEnd = clampIndex(int(*info.ExpiredLogEventEndIndex), n)
		}
		if info.TooOldLogEventEndIndex != nil {
			tooOldEnd = clampIndex(int(*info.TooOldLogEventEndIndex), n)
		}
		if info.TooNewLogEventStartIndex != nil {
			tooNewStart = clampIndex(int(*info.TooNewLogEventStartIndex), n)
		}
	}
	d := dl.d
	for k := range n {
		it := &dl.p.items[int(lo)+k]
		rec := &dl.recs[it.rec]
		var typ, rule, counter string
		switch {
		case k < expiredEnd:
			typ, counter, rule = "expired", "cloudwatch_expired", "CloudWatch rejected it as older than the log group's retention (expiredLogEventEndIndex)"
		case k < tooOldEnd:
			typ, counter, rule = "tooOld", "cloudwatch_too_old", "CloudWatch rejected it as too old (tooOldLogEventEndIndex)"
		case k >= tooNewStart:
			typ, counter, rule = "tooNew", "cloudwatch_too_new", "CloudWatch rejected it as too far in the future (tooNewLogEventStartIndex)"
		default:
			dl.s.Accepted(rec.Seq)
			if it.fl != 0 {
				dl.reportChanged(it, key)
			}
			continue
		}
		d.rep.Add(counter, 1)
		dl.s.Rejected(rec, sink.Rejection{Destination: Name, Target: key.group + "/" + key.stream, Type: typ,
			Reason: ageReason(rec.Time, d.now().UnixMilli(), rule)})
	}
	dl.settled.Add(int64(n))
}

func clampIndex(i, n int) int {
	return max(0, min(i, n))
}
